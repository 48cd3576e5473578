"""Lua values <-> Python values, and the JSON the ``JSON`` global speaks.

Written for a runtime made as
``lupa.lua54.LuaRuntime(encoding=None, unpack_returned_tuples=True, register_eval=False)``:
with ``encoding=None`` Lua strings reach Python as :class:`bytes`, so binary content
passes unchanged, and Python :class:`str` must be encoded before it reaches Lua.

What a caller may rely on:

* ``to_python``: a table whose keys are exactly ``1..n`` (n >= 1) becomes a list; every
  other non-empty table a dict with str keys. Integer and float keys become their
  decimal text (``t[5]`` -> ``"5"``), as rs-llmspell's JSON does, so every result is
  JSON-able. An empty table becomes ``{}``; callers that want ``[]`` may treat an
  empty dict as either. Strings become str when they are valid UTF-8, else stay
  bytes; ``binary=True`` keeps every string *value* bytes (keys are still decoded).
* ``to_lua``: dict -> table, list/tuple -> sequence (``None`` items leave holes),
  str -> UTF-8 string, bytes -> string unchanged, float -> float (``math.type`` says
  ``float``, ``tostring(5.0) == "5.0"``), int -> integer; an int outside int64 becomes
  a float, as Lua itself reads a too-large integer literal. Lua objects pass through.
* ``json_stringify``: compact, keys sorted (stable output for files and diffs), an
  empty table is ``[]`` (rs-llmspell treats a table with no non-integer keys as an
  array). NaN and infinities are refused.
* ``json_parse``: arrays -> sequences, objects -> tables, ``null`` -> nil (so an
  object key with ``null`` is absent); integers outside int64 become floats; NaN,
  ``Infinity`` and numbers too large for a float are refused.

Nesting deeper than :data:`MAX_DEPTH` and cyclic tables raise
:class:`~spellfs.errors.UsageError`. Cycles are found by the table's address, which
lupa's ``repr`` shows whatever its metatable says; shared (non-cyclic) subtables are
converted once per occurrence.
"""

from __future__ import annotations

import json
import math
from typing import Any

from lupa import lua54

from spellfs.errors import UsageError

__all__ = ["MAX_DEPTH", "json_parse", "json_stringify", "to_lua", "to_python"]

MAX_DEPTH = 100
INT64_MIN = lua54.LUA_MININTEGER
INT64_MAX = lua54.LUA_MAXINTEGER

_lua_type = lua54.lua_type
_TOO_DEEP = "value nested too deeply (more than %d levels, or cyclic)" % MAX_DEPTH


# -- Lua -> Python ---------------------------------------------------------------


def to_python(value: Any, *, binary: bool = False) -> Any:
    """Convert a value received from Lua into plain Python data (see module doc)."""
    return _py(value, binary, dict, 0, set())


def _py(value: Any, binary: bool, empty: type, depth: int, path: set) -> Any:
    cls = value.__class__
    if value is None or cls is bool or cls is int or cls is float:
        return value
    if cls is bytes:
        if binary:
            return value
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if cls is str:  # a Python str handed to Lua and back unchanged
        return value
    kind = _lua_type(value)
    if kind != "table":
        if kind is None:
            raise UsageError(f"cannot convert a Python {cls.__name__} to a value")
        raise UsageError(f"cannot convert a Lua {kind} to a value")
    if depth >= MAX_DEPTH:
        raise UsageError(_TOO_DEEP)
    address = repr(value)
    if address in path:
        raise UsageError(f"cannot convert a cyclic table: {address}")
    path.add(address)
    try:
        items = list(value.items())
        n = len(items)
        if n == 0:
            return empty()
        depth += 1
        keys = [k for k, _ in items]
        if all(k.__class__ is int for k in keys) and min(keys) == 1 and max(keys) == n:
            if keys != list(range(1, n + 1)):  # 1..n, though not in traversal order
                items.sort(key=lambda kv: kv[0])
            return [_py(v, binary, empty, depth, path) for _, v in items]
        return {_key(k): _py(v, binary, empty, depth, path) for k, v in items}
    finally:
        path.discard(address)


def _key(key: Any) -> Any:
    cls = key.__class__
    if cls is bytes:
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            return key
    if cls is int or cls is str:
        return str(key)
    if cls is float:  # Lua keeps integral float keys as integers, so this is e.g. 1.5
        return repr(key)
    kind = _lua_type(key) or ("boolean" if cls is bool else cls.__name__)
    raise UsageError(f"cannot convert a table with a {kind} key")


# -- Python -> Lua ---------------------------------------------------------------


def to_lua(runtime: lua54.LuaRuntime, value: Any) -> Any:
    """Convert plain Python data into a Lua value of ``runtime`` (see module doc)."""
    return _lua(value, runtime.table_from, 0)


def _lua(value: Any, table_from: Any, depth: int) -> Any:
    cls = value.__class__
    if cls is str:
        return _encode(value)
    if value is None or cls is bytes or cls is float or cls is bool:
        return value
    if cls is int:
        return value if INT64_MIN <= value <= INT64_MAX else float(value)
    if cls is dict:
        if depth >= MAX_DEPTH:
            raise UsageError(_TOO_DEEP)
        depth += 1
        return table_from({_lua_key(k): _lua(v, table_from, depth) for k, v in value.items()})
    if cls is list or cls is tuple:
        if depth >= MAX_DEPTH:
            raise UsageError(_TOO_DEEP)
        depth += 1
        return table_from([_lua(v, table_from, depth) for v in value])
    return _lua_other(value, table_from, depth)


def _lua_other(value: Any, table_from: Any, depth: int) -> Any:
    """Subclasses (ruamel's CommentedMap, ScalarFloat, ...) and Lua objects."""
    if _lua_type(value) is not None:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _lua(int(value), table_from, depth)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return _encode(str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return _lua(dict(value), table_from, depth)
    if isinstance(value, (list, tuple)):
        return _lua(list(value), table_from, depth)
    raise UsageError(f"cannot convert a Python {type(value).__name__} to a Lua value")


def _lua_key(key: Any) -> Any:
    cls = key.__class__
    if cls is str:
        return _encode(key)
    if cls is bytes or cls is bool:
        return key
    if cls is int:
        return key if INT64_MIN <= key <= INT64_MAX else float(key)
    if cls is float and not math.isnan(key):
        return key
    raise UsageError(f"cannot use {key!r} as a Lua table key")


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UsageError(f"string is not valid Unicode: {e.reason} at {e.start}") from None


# -- JSON ------------------------------------------------------------------------


def json_stringify(value: Any) -> str:
    """Serialise a Lua (or plain Python) value as compact JSON with sorted keys."""
    data = _py(value, False, list, 0, set())
    try:
        return json.dumps(
            data, ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
        )
    except ValueError:
        raise UsageError("JSON.stringify: NaN and infinity are not valid JSON") from None
    except TypeError:
        raise UsageError("JSON.stringify: a string or key is not valid UTF-8") from None


def json_parse(runtime: lua54.LuaRuntime, text: str | bytes) -> Any:
    """Parse JSON text into a Lua value of ``runtime``."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(f"JSON parse error: invalid UTF-8 at byte {e.start}") from None
    if not isinstance(text, str):
        raise UsageError(f"JSON.parse expects a string, got {type(text).__name__}")
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"JSON parse error: {e.msg} at line {e.lineno} column {e.colno} (char {e.pos})"
        ) from None
    except RecursionError:
        raise UsageError(_TOO_DEEP) from None
    return _lua(data, runtime.table_from, 0)


def _no_constant(name: str) -> Any:
    raise UsageError(f"JSON parse error: {name} is not valid JSON")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise UsageError(f"JSON parse error: number out of range: {text}")
    return number
