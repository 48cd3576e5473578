"""The ``Hook`` global: Lua functions registered in ``ws.hooks``.

``Hook.register(point, fn, priority?)`` returns a handle with ``handle:unregister()``
(also ``Hook.unregister(handle)``), ``handle:id()`` and ``handle:hook_point()``;
``Hook.list(point?)`` lists what is registered, as rs-llmspell's does. The function gets a table
``{point, session_id, correlation_id, data}`` and returns ``"continue"`` (or nothing),
``"cancel"``, or a table of replacement ``data`` fields. A replaced ``content``
is taken as the raw bytes of the Lua string, so binary content stays binary.
An error raised in the hook propagates to the script unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]


def _result(rt: "Runtime", value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if rt.lua_type(value) == "table":
        data = rt.py(value)
        if isinstance(data, dict) and "content" in data:
            data["content"] = value[b"content"]  # the raw bytes, not a decoded str
        if (
            isinstance(data, dict)
            and isinstance(data.get("data"), dict)
            and "content" in data["data"]
        ):
            data["data"]["content"] = value[b"data"][
                b"content"
            ]  # rs-llmspell's {type = "modified", data = ...}
        return data
    return value


#: rs-llmspell's priority order is the reverse of spellfs's (lower runs first); its names.
_RS_PRIORITY = {1000.0: -2147483648, 100.0: -100, 0.0: 0, -100.0: 100, -1000.0: 2147483647}


def _rs_number(priority: Any) -> Any:
    """A number from Lua is rs-llmspell's ``Priority(n)``: lower runs first (-100 is "high"),
    so it is spellfs's (higher first) negated; names are the same in both."""
    if isinstance(priority, (int, float)) and not isinstance(priority, bool):
        return -priority
    return priority


def _listed(hook: dict, language: str) -> dict:
    """A Hook.list entry as rs-llmspell gives it: name, point, "Priority(n)", language."""
    prio = hook["priority"]
    rs = _RS_PRIORITY.get(prio, int(-prio))
    return {
        **hook,
        "name": f"{language}_hook_{hook['hook_point']}_{hook['id']}",
        "point": hook["hook_point"],
        "priority": f"Priority({rs})",
        "priority_value": prio,
        "language": language,
    }


def install(rt: "Runtime", ws: "Workspace") -> None:
    handles: dict[int, tuple[str, int]] = {}

    def make_handle(handle: tuple[str, int]) -> Any:
        handles[handle[1]] = handle
        return rt.table(
            "handle",
            {
                "unregister": lambda *_: ws.hooks.unregister(handle),
                "id": lambda *_: handle[1],
                "hook_point": lambda *_: rt.out(handle[0]),
            },
            {"point": handle[0], "hook_id": handle[1]},
        )

    def register(point: Any, fn: Any = None, priority: Any = None) -> Any:
        name = rt.text(point, "Hook.register: hook point")
        if rt.lua_type(fn) != "function":
            raise UsageError(f"Hook.register: expected a function, got {rt.lua_type(fn)}")
        prio = rt.py(priority)

        def call(ctx: dict) -> Any:
            return _result(rt, rt.call(fn, rt.out(ctx)))

        return make_handle(
            ws.hooks.register(name, call, "normal" if prio is None else _rs_number(prio))
        )

    def unregister(handle: Any = None) -> bool:
        key = handle[b"hook_id"] if rt.lua_type(handle) == "table" else None
        if key not in handles:
            raise UsageError("Hook.unregister: expected a handle from Hook.register")
        return ws.hooks.unregister(handles[key])

    def list_(point: Any = None) -> Any:
        which, priority = rt.py(point), None
        if isinstance(which, dict):  # rs-llmspell's filter table
            which, priority = which.get("hook_point"), which.get("priority")
        if which is not None and not isinstance(which, str):
            raise UsageError(
                "Hook.list: expected a hook point name or {hook_point = ..., priority = ...}"
            )
        language = None
        if isinstance(point, tuple) or rt.lua_type(point) == "table":
            language = rt.py(point).get("language")
        found = [
            _listed(h, "lua" if h["id"] in handles else "python")
            for h in ws.hooks.list(which, _rs_number(priority))
        ]
        return rt.out([h for h in found if language in (None, h["language"])])

    rt.set_global(
        "Hook", rt.table("Hook", {"register": register, "unregister": unregister, "list": list_})
    )
