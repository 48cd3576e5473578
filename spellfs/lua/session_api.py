"""The ``Session`` global: a thin binding over ``ws.sessions`` (and ``ws.history``).

Where a function takes a session id, ``nil`` or ``""`` means the current session
(``Session.setCurrent``). The checkpoint and replay functions call
``ws.history`` by name; until a Workspace has one they raise a Lua error saying
they are not available yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["CREATE_OPTIONS", "HISTORY", "install"]

CREATE_OPTIONS = ("name", "description", "tags", "metadata", "parent_session_id", "template")

#: Lua name -> method of ``ws.history``.
HISTORY = {
    "save": "save",
    "load": "load",
    "checkpoints": "checkpoints",
    "diff": "diff",
    "restore": "restore",
    "fork": "fork",
    "canReplay": "can_replay",
    "replay": "replay",
    "getReplayMetadata": "replay_metadata",
    "listReplayable": "list_replayable",
}


def _options(rt: "Runtime", opts: Any) -> dict:
    if opts is None:
        return {}
    data = rt.py(opts)
    if not isinstance(data, dict):
        raise UsageError(f"Session.create: expected a table of options, got {rt.lua_type(opts)}")
    unknown = sorted(set(data) - set(CREATE_OPTIONS))
    if unknown:
        raise UsageError(
            f"Session.create: unknown option: {unknown[0]} (known: {', '.join(CREATE_OPTIONS)})"
        )
    return data


def _history_call(rt: "Runtime", ws: "Workspace", lua_name: str, attr: str):
    def call(*args: Any) -> Any:
        try:
            history = ws.history
        except (AttributeError, ImportError):
            history = None
        method = getattr(history, attr, None)
        if method is None:
            raise UsageError(
                f"Session.{lua_name}: not available yet (this spellfs has no checkpoint history)"
            )
        values = [rt.py(a) for a in args]
        while values and values[-1] is None:
            values.pop()
        if lua_name == "listReplayable":
            if values:
                raise UsageError("Session.listReplayable: takes no arguments")
        elif not values:
            values = [None]  # (Lua drops a trailing nil) the current session, as Session.get()
        return rt.out(method(*values))

    return call


def install(rt: "Runtime", ws: "Workspace") -> None:
    py, out = rt.py, rt.out

    def create(opts: Any = None) -> Any:
        return out(ws.sessions.create(**_options(rt, opts)))

    def get(ref: Any = None) -> Any:
        return out(ws.sessions.get(py(ref)))

    def list_(query: Any = None) -> Any:
        q = py(query) if query is not None else None
        if q is not None and not isinstance(q, dict):
            raise UsageError(f"Session.list: expected a query table, got {rt.lua_type(query)}")
        found = ws.sessions.list(q)
        if ws.run is not None:  # a recorded run: the listed sessions are part of the world it saw
            for s in found:
                ws.run.note_dir(s["path"].rpartition("/")[2])
        return out(found)

    def transition(verb: str):
        def change(ref: Any = None) -> bool:
            getattr(ws.sessions, verb)(py(ref))
            return True

        return change

    def delete(ref: Any = None) -> bool:
        ws.sessions.delete(py(ref))
        return True

    def update_metadata(ref: Any, metadata: Any = None) -> bool:
        ws.sessions.update_metadata(py(ref), py(metadata))
        return True

    def get_current() -> Any:
        return out(ws.sessions.get_current())

    def set_current(ref: Any = None) -> bool:
        ws.sessions.set_current(py(ref))
        return True

    functions = {
        "create": create,
        "get": get,
        "list": list_,
        "delete": delete,
        "suspend": transition("suspend"),
        "resume": transition("resume"),
        "complete": transition("complete"),
        "fail": transition("fail"),
        "update_metadata": update_metadata,
        "getCurrent": get_current,
        "setCurrent": set_current,
    }
    for lua_name, attr in HISTORY.items():
        functions[lua_name] = _history_call(rt, ws, lua_name, attr)
    rt.set_global("Session", rt.table("Session", functions))
