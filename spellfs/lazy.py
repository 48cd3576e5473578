"""Lazy re-exports for the layer packages (PEP 562).

Each subpackage's ``__init__`` names its public names and the module that defines
each; ``from spellfs.store import ObjectStore`` then imports ``spellfs.store.objects``
on first use, so a command pays only for the layers it touches (``spell run`` with
no model provider never imports the agent layer).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["exports"]


def exports(
    package: str, names: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``; ``names``: name -> module."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__, sorted(names)
