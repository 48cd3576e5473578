"""What a workspace holds now: sessions and their manifests, artifacts and their
append-only log, State, the query index and `.spellignore`.

May import: config, agent, store and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "ArtifactLog": "artifact_log",
        "Artifacts": "artifact",
        "FIELDS": "manifest",
        "Ignore": "ignore",
        "collect_files": "ignore",
        "Index": "index",
        "KNOWN_TYPES": "artifact",
        "LIVE": "session",
        "STATUSES": "manifest",
        "Sessions": "session",
        "State": "state",
        "record_problem": "schema",
        "valid_name": "artifact_log",
        "identity_problems": "artifact_log",
        "WorkingCopy": "working_copy",
        "Worktree": "worktree",
        "StatCache": "statcache",
        "hash_path": "statcache",
        "inflight": "inflight",
        "repair_inflight": "inflight",
        "is_editor_temp": "statcache",
        "carried": "handedits",
        "copies_now": "handedits",
        "not_files": "leftovers",
        "edited_since": "handedits",
        "require_active": "store_inputs",
        "file_name": "artifact_writes",
        "TRANSITIONS": "session",
        "dump_manifest": "manifest",
        "load_manifest": "manifest",
    },
)
