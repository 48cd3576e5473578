"""The ``State`` global: a thin binding over ``ws.state``.

Values are any JSON-able Lua value and come back with the same shape: integers
stay integers, floats floats, sequences sequences. Keys ``session:<id>:…`` live in
that session's ``state.yaml``, others in the workspace's; both persist across runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]


def install(rt: "Runtime", ws: "Workspace") -> None:
    py, out = rt.py, rt.out

    def get(key: Any) -> Any:
        return out(ws.state.get(py(key)))

    def set_(key: Any, value: Any = None) -> bool:
        ws.state.set(py(key), py(value))
        return True

    def delete(key: Any) -> bool:
        return ws.state.delete(py(key))

    def list_(prefix: Any = None) -> Any:
        return out(ws.state.list(py(prefix)))

    rt.set_global("State", rt.table("State", {"get": get, "set": set_, "delete": delete, "list": list_}))
