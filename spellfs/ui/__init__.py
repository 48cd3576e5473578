"""``spell ui``: a read-only local web view of a workspace (Starlette, uvicorn, Jinja2).

May import: lua and below (see tests/test_layers.py); the CLI imports it. The web
libraries are an optional extra (``pip install 'spellfs[ui]'``) and are imported
only when the view is built, so no other command pays for them.
Public names are re-exported here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "MISSING_HINT": "deps",
        "check_dependencies": "deps",
        "make_app": "app",
        "serve": "server",
    },
)
