"""The web view's libraries are optional: say clearly which are missing and how to get them."""

from __future__ import annotations

import importlib.util

from ..errors import UsageError

__all__ = ["MISSING_HINT", "check_dependencies"]

REQUIRED = ("starlette", "uvicorn", "jinja2")
MISSING_HINT = "pip install 'spellfs[ui]'"


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None, or a broken install
        return False


def check_dependencies(modules: tuple[str, ...] = REQUIRED) -> None:
    """Raise a one-line :class:`UsageError` naming the missing libraries, before an import
    fails."""
    missing = [m for m in modules if not _present(m)]
    if missing:
        raise UsageError(
            f"spell ui needs {', '.join(missing)}, which is not installed "
            f"(install the web extra: {MISSING_HINT})"
        )
