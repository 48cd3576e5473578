"""Remote object stores (S3-compatible, a directory): the transport, the `remotes:`
section of spell.yaml, and push/pull/fetch.

May import: history and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "Remote": "transport",
        "RemoteSpec": "spec",
        "add_remote": "config",
        "get_remote": "sync",
        "install_fetcher": "sync",
        "list_remotes": "config",
        "parse_remote_url": "spec",
        "pull": "sync",
        "push": "sync",
        "remote_has": "sync",
        "remove_remote": "config",
        "verify_file": "transport",
    },
)
