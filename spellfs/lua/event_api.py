"""The ``Event`` global: a thin binding over ``ws.events``.

``Event.subscribe(pattern)`` returns a subscription id (a number);
``Event.receive(sub, timeout_ms)`` returns ``{event_type, data, timestamp, metadata =
{source_language, timestamp, event_id}}`` or nil (an empty pattern matches nothing)
(``timeout_ms`` defaults to 0: look, don't wait). Session and artifact operations
publish their own events (``session.created``, ``artifact.stored``, …). As in
rs-llmspell, ``Event.list_subscriptions()`` gives ``{id, pattern, queued}`` per
subscription and ``Event.get_stats()`` gives ``{event_bus_stats = {published,
delivered, subscriptions, queued}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]


def _sub(rt: "Runtime", value: Any, fn: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(
            f"Event.{fn}: expected a subscription from Event.subscribe, got {rt.lua_type(value)}"
        )
    return value


def install(rt: "Runtime", ws: "Workspace") -> None:
    py, out = rt.py, rt.out

    def publish(name: Any, data: Any = None) -> bool:
        event_type = rt.text(name, "Event.publish: event name")
        if not event_type:
            raise UsageError("Event.publish: event name is empty")
        ws.events.publish(event_type, py(data), language="lua")
        return True

    def subscribe(pattern: Any) -> int:
        return ws.events.subscribe(rt.text(pattern, "Event.subscribe: pattern"))

    def receive(sub: Any, timeout_ms: Any = None) -> Any:
        if timeout_ms is not None and (
            isinstance(timeout_ms, bool)
            or not isinstance(timeout_ms, (int, float))
            or timeout_ms < 0
        ):
            raise UsageError(
                f"Event.receive: timeout_ms must be a non-negative number, got {timeout_ms!r}"
            )
        return out(ws.events.receive(_sub(rt, sub, "receive"), timeout_ms or 0))

    def unsubscribe(sub: Any) -> bool:
        return ws.events.unsubscribe(_sub(rt, sub, "unsubscribe"))

    def list_subscriptions() -> Any:
        return out(ws.events.subscriptions())

    def get_stats() -> Any:
        return out({"event_bus_stats": ws.events.stats()})

    rt.set_global(
        "Event",
        rt.table(
            "Event",
            {
                "publish": publish,
                "subscribe": subscribe,
                "receive": receive,
                "unsubscribe": unsubscribe,
                "list_subscriptions": list_subscriptions,
                "get_stats": get_stats,
            },
        ),
    )
