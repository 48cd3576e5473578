"""``spell run --sandbox``: standard Lua without file or process access.

Removed: ``io``, ``require``, ``package``, ``dofile``, ``loadfile``, ``debug``,
and ``os.execute/remove/rename/exit/getenv/tmpname/setlocale``; ``load`` accepts
text only (mode ``"t"``), so no bytecode from ``string.dump`` can be loaded.
What stays: ``string``, ``table``, ``math``, ``utf8``, ``coroutine``,
``os.time/clock/date/difftime``, ``print``, and the spellfs globals, whose file
access (``Artifact.storeFile``, the ``file_operations`` tool) is confined to the
workspace.

Limits (``--max-memory``, ``--timeout``): the Lua state is made with lupa's own
allocator limit (``LuaRuntime(max_memory=...)``), so a growing table fails its
allocation instead of taking the machine's memory; and an instruction-count hook
(``debug.sethook``, installed from here before ``debug`` is removed, and on every
coroutine the script makes, since hooks are per coroutine) checks the wall clock
every :data:`HOOK_EVERY` instructions. Once the time is up the hook raises on every
instruction, so no ``pcall`` loop can swallow it; the runtime reports either as a
one-line error and the command exits 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_TIMEOUT",
    "HOOK_EVERY",
    "REMOVED",
    "apply",
    "install_time_limit",
]

#: Defaults of ``spell run --sandbox``: Lua memory in bytes, and wall-clock seconds.
DEFAULT_MAX_MEMORY = 512 << 20
DEFAULT_TIMEOUT = 300.0
#: Instructions between two looks at the clock.
HOOK_EVERY = 100_000

REMOVED = (
    "io",
    "require",
    "package",
    "dofile",
    "loadfile",
    "debug",
    "os.execute",
    "os.remove",
    "os.rename",
    "os.exit",
    "os.getenv",
    "os.tmpname",
    "os.setlocale",
)

_APPLY = b"""
local load, select = load, select
io, require, package, dofile, loadfile, debug = nil, nil, nil, nil, nil, nil
os.execute, os.remove, os.rename, os.exit, os.getenv, os.tmpname, os.setlocale = nil, nil, nil, nil, nil, nil, nil
_G.load = function(chunk, name, mode, ...)
  if select("#", ...) == 0 then return load(chunk, name, "t") end
  return load(chunk, name, "t", (...))
end
"""  # noqa: E501


_TIME_LIMIT = b"""
local expired, sethook, cocreate, coresume = ...
local EVERY = %d
local function hook()
  if expired() then
    sethook(hook, "", 1)  -- from now on every instruction fails: no pcall loop outlives it
    error("time limit exceeded", 0)
  end
end
sethook(hook, "", EVERY)
coroutine.create = function(f)
  local co = cocreate(f)
  sethook(co, hook, "", EVERY)
  return co
end
coroutine.wrap = function(f)
  local co = coroutine.create(f)
  return function(...)
    local r = table.pack(coresume(co, ...))
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end
end
"""


def install_time_limit(rt: "Runtime", seconds: float) -> None:
    """Stop the script ``seconds`` after now (wall clock), whatever it runs; sets
    ``rt.timed_out``."""
    import time

    deadline = time.monotonic() + seconds

    def expired() -> bool:
        if time.monotonic() > deadline:
            rt.timed_out = True
            return True
        return False

    lua = rt.lua
    sethook = lua.eval("debug.sethook")
    rt.clear_hook = (
        sethook  # called with no arguments it removes the hook (the runtime's last flush)
    )
    lua.execute(
        _TIME_LIMIT % HOOK_EVERY,
        expired,
        sethook,
        lua.eval("coroutine.create"),
        lua.eval("coroutine.resume"),
    )


def apply(rt: "Runtime") -> None:
    rt.lua.execute(_APPLY)
