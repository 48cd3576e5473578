"""The ``State`` global: a thin binding over ``ws.state``.

Values are any JSON-able Lua value and come back with the same shape: integers
stay integers, floats floats, sequences sequences. Keys ``session:<id>:…`` live in
that session's ``state.yaml``, others in the workspace's; both persist across runs.

rs-llmspell's scoped calls work too: ``State.save(scope, key, value)``,
``State.load(scope, key)``, ``State.delete(scope, key)`` (and ``State.get(scope, key)``,
``State.set(scope, key, value)``, ``State.scope.Global`` …) use the key ``key`` for
the scope ``global`` and ``<scope>:<key>`` for any other (so ``session:<id>`` scopes
land in that session's file). The bare scope ``session`` means the current session
(``State.save("session", "abc", 1)``), or the workspace key ``session.abc`` when no
session is current.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]


def install(rt: "Runtime", ws: "Workspace") -> None:
    py, out = rt.py, rt.out

    def note(key: Any, written: bool = False) -> Any:
        """Tell a recorded run of a workspace key it reads or writes (its replay starting point)."""
        if ws.run is None or not isinstance(key, str) or not key:
            return key
        if not key.startswith("session:"):
            ws.run.note_state(key, written)
        elif written:  # the session's state.yaml is in its starting point; report what was written
            try:
                rel, inner, sid = ws.state._place(key)
            except Exception:
                return key  # the call itself reports the bad key
            ws.run.note_session_state(rel.split("/")[1], sid, inner)
        return key

    def get(key: Any, scoped_key: Any = None) -> Any:
        if scoped_key is not None:  # rs-llmspell's State.get(scope, key)
            return load(key, scoped_key)
        return out(ws.state.get(note(py(key))))

    def set_(key: Any, value: Any = None, *scoped: Any) -> bool:
        if scoped:  # rs-llmspell's State.set(scope, key, value)
            return save(key, value, scoped[0])
        ws.state.set(note(py(key), True), py(value))
        return True

    def delete(key: Any, scoped_key: Any = None) -> bool:
        if scoped_key is not None:  # rs-llmspell's State.delete(scope, key)
            return ws.state.delete(note(_scoped(rt, key, scoped_key, "delete"), True))
        return ws.state.delete(note(py(key), True))

    def list_(prefix: Any = None) -> Any:
        keys = ws.state.list(py(prefix))
        for k in keys:
            note(k)
        return out(keys)

    def save(scope: Any, key: Any, value: Any = None) -> bool:
        ws.state.set(note(_scoped(rt, scope, key, "save"), True), py(value))
        return True

    def load(scope: Any, key: Any) -> Any:
        return out(ws.state.get(note(_scoped(rt, scope, key, "load"))))

    rt.set_global(
        "State",
        rt.table(
            "State",
            {"get": get, "set": set_, "delete": delete, "list": list_, "save": save, "load": load},
            {"scope": SCOPES},
        ),
    )


#: rs-llmspell's ``State.scope`` names, as the scope strings the scoped calls take.
SCOPES = {
    "Global": "global",
    "Session": "session",
    "Agent": "agent",
    "Workflow": "workflow",
    "Tool": "tool",
    "Hook": "hook",
}


def _scoped(rt: "Runtime", scope: Any, key: Any, verb: str) -> str:
    """The State key of rs-llmspell's ``(scope, key)``: ``key`` when global, else ``scope:key``."""
    from ..errors import UsageError

    s, k = rt.py(scope), rt.py(key)
    if not isinstance(s, str) or not s:
        raise UsageError(
            f'State.{verb}: scope must be a non-empty string such as "global" or "agent:name"'
        )
    if not isinstance(k, str) or not k:
        raise UsageError(f"State.{verb}: key must be a non-empty string")
    if s == "session":  # rs-llmspell's bare session scope: the current session's state
        current = rt.ws.current_session
        return f"session:{current}:{k}" if current else f"session.{k}"
    return k if s == "global" else f"{s}:{k}"
