"""``spell run --sandbox``: standard Lua without file or process access.

Removed: ``io``, ``require``, ``package``, ``dofile``, ``loadfile``, ``debug``,
and ``os.execute/remove/rename/exit/getenv/tmpname/setlocale``; ``load`` accepts
text only (mode ``"t"``), so no bytecode from ``string.dump`` can be loaded.
What stays: ``string``, ``table``, ``math``, ``utf8``, ``coroutine``,
``os.time/clock/date/difftime``, ``print``, and the spellfs globals, whose file
access (``Artifact.storeFile``, the ``file_operations`` tool) is confined to the
workspace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["REMOVED", "apply"]

REMOVED = ("io", "require", "package", "dofile", "loadfile", "debug",
           "os.execute", "os.remove", "os.rename", "os.exit", "os.getenv", "os.tmpname", "os.setlocale")

_APPLY = b"""
local load, select = load, select
io, require, package, dofile, loadfile, debug = nil, nil, nil, nil, nil, nil
os.execute, os.remove, os.rename, os.exit, os.getenv, os.tmpname, os.setlocale = nil, nil, nil, nil, nil, nil, nil
_G.load = function(chunk, name, mode, ...)
  if select("#", ...) == 0 then return load(chunk, name, "t") end
  return load(chunk, name, "t", (...))
end
"""


def apply(rt: "Runtime") -> None:
    rt.lua.execute(_APPLY)
