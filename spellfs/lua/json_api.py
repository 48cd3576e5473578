"""The ``JSON`` global: ``JSON.stringify(value)`` and ``JSON.parse(text)``, via
:mod:`spellfs.lua.values`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .values import json_parse, json_stringify

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]


def install(rt: "Runtime", ws: "Workspace") -> None:
    def stringify(value: Any = None) -> bytes:
        return json_stringify(value).encode("utf-8")

    def parse(text: Any = None) -> Any:
        return json_parse(rt.lua, text)

    rt.set_global("JSON", rt.table("JSON", {"stringify": stringify, "parse": parse}))
