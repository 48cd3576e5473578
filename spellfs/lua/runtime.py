"""The Lua 5.4 interpreter of ``spell run``, and the bridge every global is built on.

A :class:`Runtime` is one ``lupa.lua54.LuaRuntime(encoding=None,
unpack_returned_tuples=True, register_eval=False)``: Lua strings reach Python as
``bytes`` (binary content passes unchanged), integers and floats stay distinct.
Lupa's ``python`` table is removed and Lua may not touch any Python attribute,
so a script sees only standard Lua plus the globals installed here.

What a caller may rely on:

* :meth:`Runtime.function` turns a Python callable into a Lua function. A
  :class:`~spellfs.errors.SpellError` becomes a Lua error (catchable with
  ``pcall``) whose message is the SpellError's, prefixed with the calling
  script line (``script.lua:12: session not found: 1234``); a Lua error raised
  by Lua code Python called back (a hook) is re-raised unchanged.
* :func:`run_script` loads the script with chunk name ``@path`` (so every
  message names file and line), sets ``arg`` as the standalone ``lua`` does and
  raises :class:`ScriptError` (exit 1) for a syntax error or an uncaught error.
* :data:`EXTRA_GLOBALS` is the place to add globals (``Agent``): each entry is a
  callable ``(runtime, ws)``, or ``"module:function"`` imported when a script
  runs; it runs after the built-in globals are installed.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from lupa import lua54
from lupa.lua54 import LuaMemoryError

from ..errors import SpellError, UsageError
from .values import to_lua, to_python

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["EXTRA_GLOBALS", "LuaRaised", "Runtime", "ScriptError", "run_script"]

#: Installers of further globals, called as ``installer(runtime, ws)`` after the built-in ones.
EXTRA_GLOBALS: list[Callable[["Runtime", Any], None] | str] = [
    "spellfs.lua.agent_api:install",
    "spellfs.lua.workflow_api:install",
    "spellfs.lua.state_backup:install",
    "spellfs.lua.provider_api:install",
    "spellfs.lua.replay_api:install",
]

BUILTIN_GLOBALS = (
    "session_api",
    "artifact_api",
    "state_api",
    "json_api",
    "event_api",
    "hook_api",
    "tool_api",
)

_lua_type = lua54.lua_type

# The Lua side of Runtime.function: Python answers (ok, value-or-error, level);
# error() at level 2 prefixes the message with the script line that made the call.
_WRAP = b"""
local error = error
return function(pyfn)
  return function(...)
    local ok, r, level = pyfn(...)
    if ok then return r end
    error(r, level)
  end
end
"""

# Calls Lua code from Python (hooks) and hands back the raw error value, not a traceback.
_PCALL = b"""
local pcall = pcall
return function(f, ...) return pcall(f, ...) end
"""

# Runs the main chunk; a non-string error object gets the message standalone lua gives it,
# after the script's file and line that raised it (``error({code = 1})`` carries neither).
# (``debug.getinfo`` is kept here before the sandbox removes ``debug``; scripts never see it.)
_MAIN = b"""
local xpcall, type, tostring, getmetatable = xpcall, type, tostring, getmetatable
local getinfo = debug.getinfo
local function where()
  for level = 3, 50 do
    local info = getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and info.currentline > 0 then
      return info.short_src .. ":" .. info.currentline .. ": "
    end
  end
  return ""
end
return function(main, ...)
  return xpcall(main, function(e)
    if type(e) == "string" then return e end
    local mt = getmetatable(e)
    if mt and mt.__tostring then return tostring(e) end
    return where() .. "(error object is a " .. type(e) .. " value)"
  end, ...)
end
"""

_FLUSH = b"""
local out = io.stdout
return function() out:flush() end
"""

# os.exit runs the Python clean-up (finish the run record, close the workspace) first.
_EXIT = b"""
local exit, flush, cleanup = os.exit, ...
return function(code, close)
  flush()
  if code == nil or code == true then code = 0 elseif code == false then code = 1 end
  cleanup(code)
  return exit(code, close)
end
"""


class ScriptError(SpellError):
    """A script failed: syntax error or uncaught Lua error; the message names file and line."""


class LuaRaised(Exception):
    """A Lua error raised in Lua code that Python called; carried through Python unchanged."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        v = self.value
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _no_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Lua scripts may not access Python attributes")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "replace")


class Runtime:
    """One Lua state with the spellfs globals bound to ``ws``."""

    def __init__(
        self,
        ws: "Workspace",
        sandbox: bool = False,
        max_memory: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self.ws = ws
        self.sandbox = sandbox
        self.max_memory = max_memory or None  # Lua bytes (lupa's allocator limit); None: no limit
        self.timeout = timeout or None  # wall-clock seconds; None: no limit
        self.timed_out = False
        self.clear_hook: Callable[[], Any] | None = None
        self.lua = lua54.LuaRuntime(
            encoding=None,
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_no_attributes,
            max_memory=self.max_memory,
        )
        self.globals = self.lua.globals()
        self.globals.python = None
        self._wrap = self.lua.execute(_WRAP)
        self._pcall = self.lua.execute(_PCALL)
        self._main = self.lua.execute(_MAIN)
        self.flush = self.lua.execute(_FLUSH)
        self.on_exit: Callable[[int], None] | None = None
        self.table_from = self.lua.table_from

    # -- conversion ----------------------------------------------------------------
    def out(self, value: Any) -> Any:
        """A Python value as a Lua value (str -> UTF-8 string, dict -> table, ...)."""
        return to_lua(self.lua, value)

    @staticmethod
    def py(value: Any, binary: bool = False) -> Any:
        """A Lua value as plain Python data (see :mod:`spellfs.lua.values`)."""
        return to_python(value, binary=binary)

    @staticmethod
    def lua_type(value: Any) -> str:
        """The Lua type name of a value received from Lua."""
        kind = _lua_type(value)
        if kind is not None:
            return kind
        if value is None:
            return "nil"
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, (int, float)):
            return "number"
        if isinstance(value, (bytes, str)):
            return "string"
        return type(value).__name__

    def text(self, value: Any, what: str, optional: bool = False) -> str | None:
        """A Lua string argument as str; anything else is a UsageError naming ``what``."""
        if value is None and optional:
            return None
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{what}: not valid UTF-8") from None
        if isinstance(value, str):
            return value
        raise UsageError(f"{what}: expected a string, got {self.lua_type(value)}")

    # -- building globals ---------------------------------------------------------------
    def function(self, name: str, fn: Callable[..., Any]) -> Any:
        """``fn`` as a Lua function whose failures are Lua errors (see module doc).

        Arguments follow Lua's rules: missing ones are nil, extra ones are dropped.
        """
        code = getattr(fn, "__code__", None)
        arity = (
            None if code is None or code.co_flags & 0x04 else code.co_argcount
        )  # 0x04: takes *args

        def shim(*args: Any) -> tuple:
            if arity is not None and len(args) != arity:
                args = args[:arity] + (None,) * (arity - len(args))
            try:
                return True, fn(*args), 0
            except LuaRaised as e:
                return False, e.value, 0
            except SpellError as e:
                return False, _encode(str(e)), 2
            except RecursionError:
                return False, _encode(f"{name}: value nested too deeply"), 2
            except Exception as e:  # a bug of ours: still a Lua error, never a traceback
                return False, _encode(f"{name}: internal error: {type(e).__name__}: {e}"), 2

        return self._wrap(shim)

    def table(
        self,
        name: str,
        functions: dict[str, Callable[..., Any]],
        fields: dict[str, Any] | None = None,
    ) -> Any:
        """A Lua table of functions named ``name.key`` in error messages, plus plain ``fields``."""
        t = self.table_from(
            {k.encode(): self.function(f"{name}.{k}", f) for k, f in functions.items()}
        )
        for key, value in (fields or {}).items():
            t[key.encode()] = self.out(value)
        return t

    def set_global(self, name: str, value: Any) -> None:
        self.globals[name.encode()] = value

    def call(self, fn: Any, *args: Any) -> Any:
        """Call a Lua function; its first result, or :class:`LuaRaised` carrying its error."""
        result = self._pcall(fn, *args)
        if not isinstance(result, tuple):
            result = (result,)
        if not result[0]:
            raise LuaRaised(result[1] if len(result) > 1 else None)
        return result[1] if len(result) > 1 else None

    def install(self) -> None:
        """The SPEC §2 globals, then :data:`EXTRA_GLOBALS`; ``--sandbox`` last."""
        for name in BUILTIN_GLOBALS:
            importlib.import_module(f"spellfs.lua.{name}").install(self, self.ws)
        for installer in EXTRA_GLOBALS:
            if isinstance(installer, str):
                module, _, attr = installer.partition(":")
                installer = getattr(importlib.import_module(module), attr or "install")
            installer(self, self.ws)
        if self.timeout:
            from .sandbox import install_time_limit

            install_time_limit(self, self.timeout)
        if not self.sandbox:
            self.globals.os.exit = self.lua.execute(_EXIT, self.flush, self._exit)
        else:
            from .sandbox import apply

            apply(self)

    def _exit(self, code: Any) -> None:
        if self.on_exit is not None:
            self.on_exit(code if isinstance(code, int) else 1)

    # -- running ----------------------------------------------------------------------
    def run(self, path: str, code: bytes, args: list[str] | tuple = ()) -> None:
        """Run ``code`` as the script at ``path``; raise ScriptError when it fails."""
        if code.startswith(b"\xef\xbb\xbf"):
            code = code[3:]
        if code.startswith(b"#"):  # a '#!' line, skipped as lua does; line numbers kept
            nl = code.find(b"\n")
            code = b"" if nl < 0 else code[nl:]
        load = self.lua.eval("load")
        name = path.encode("utf-8", "surrogateescape")
        chunk = load(code, b"@" + name, b"t")
        if isinstance(chunk, tuple):
            chunk, err = chunk[0], chunk[1]
        else:
            err = None
        if chunk is None:
            raise ScriptError(_decode(err) if err else f"{path}: cannot load the script")
        raw_args = [a.encode("utf-8", "surrogateescape") if isinstance(a, str) else a for a in args]
        self.globals.arg = self.table_from({0: name, **{i: a for i, a in enumerate(raw_args, 1)}})
        try:
            result = self._main(chunk, *raw_args)
        except LuaMemoryError:
            result = (False, b"not enough memory")
        if self.clear_hook is not None:
            self.clear_hook()
        ok = result[0] if isinstance(result, tuple) else result
        self.flush()
        if self.timed_out:
            raise ScriptError(
                f"{path}: stopped: ran longer than its time limit of {self.timeout:g} s (--timeout)"
            )
        if (
            not ok
            and self.max_memory
            and b"not enough memory"
            in (result[1] if isinstance(result[1], bytes) else str(result[1]).encode())
        ):
            raise ScriptError(
                f"{path}: stopped: used more than its memory limit of "
                f"{self.max_memory >> 20} MiB (--max-memory)"
            )
        if not ok:
            message = _decode(result[1])
            if "global 'Agent'" in message:  # Agent is nil: say how to configure a provider
                from .agent_api import NO_PROVIDER_HINT

                message += " " + NO_PROVIDER_HINT  # one line: the error, then how to fix it
            elif re.search(
                r"field '(migrate|migration_status|schema_versions|rollback_migration)'", message
            ):
                from .state_backup import MIGRATIONS

                message += " " + MIGRATIONS
            raise ScriptError(message)


def _decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def run_script(
    ws: "Workspace",
    path: str | Path,
    code: bytes,
    args: list[str] | tuple = (),
    sandbox: bool = False,
    on_exit: Callable[[int], None] | None = None,
    max_memory: int | None = None,
    timeout: float | None = None,
) -> Runtime:
    """Run a script against ``ws``: make the runtime, install the globals, run it (within the
    limits)."""
    rt = Runtime(ws, sandbox=sandbox, max_memory=max_memory, timeout=timeout)
    rt.on_exit = on_exit
    rt.install()
    rt.run(str(path), code, args)
    return rt
