"""Sharing through git: repository set-up and reconciling a clone, `spell commit` and
`spell status`, and export/import archives.

May import: maintenance and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "ArchiveError": "archive",
        "CommitResult": "commits",
        "MAX_MEMBERS": "archive",
        "commit": "commits",
        "export_session": "archive_export",
        "import_session": "archive_import",
        "init_git": "repo",
        "install_rebuilder": "rebuild",
        "on_open": "repo",
        "reachable_objects": "archive_export",
        "rebuild_missing": "rebuild",
        "reconcile": "repo",
        "status": "status_report",
    },
)
