"""Hook points: functions that see, change or cancel an operation before it happens.

A hook gets ``{point, session_id, correlation_id, data}`` and returns
``"continue"`` (or nothing), ``"cancel"``, or a table of replacement ``data``
fields; rs-llmspell's ``{type = "cancel" | "modified" (with ``data``) | "continue" |
...}`` tables mean the same. Hooks run by priority (highest first), then in
registration order.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any, Callable

from .errors import HookCancelled, UsageError

__all__ = ["POINTS", "QUIET_POINTS", "HookRegistry", "PRIORITIES"]

POINTS = (
    "SessionStart",
    "SessionEnd",
    "SessionSave",
    "SessionResume",
    "SessionSuspend",
    "BeforeArtifactStore",
    "AfterArtifactStore",
    "BeforeArtifactDelete",
    "AfterArtifactDelete",
    "BeforeToolExecution",
    "AfterToolExecution",
    "BeforeAgentExecution",
    "AfterAgentExecution",
    "BeforeWorkflowStart",
    "AfterWorkflowComplete",
    "WorkflowError",
    "BeforeWorkflowStep",
    "AfterWorkflowStep",
    "BeforeWorkflowStage",
    "AfterWorkflowStage",
)
#: rs-llmspell's other hook points: a hook registers on them (so its scripts run unchanged)
#: and is listed, but spellfs has no such event to run it on.
QUIET_POINTS = (
    "SystemStartup",
    "SystemShutdown",
    "BeforeAgentInit",
    "AfterAgentInit",
    "BeforeAgentShutdown",
    "AfterAgentShutdown",
    "BeforeToolDiscovery",
    "AfterToolDiscovery",
    "ToolValidation",
    "ToolError",
    "AgentError",
    "WorkflowStageTransition",
    "WorkflowCheckpoint",
    "WorkflowRollback",
)
PRIORITIES = {"highest": 1000, "high": 100, "normal": 0, "low": -100, "lowest": -1000}
#: rs-llmspell's result tables ``{type = ...}``: cancel cancels, modified/replace replace ``data``
#: with their ``data`` field, the rest (continue, skipped, redirect, retry) go on.
_RESULT_KINDS = frozenset(
    {"continue", "cancel", "modified", "replace", "skipped", "redirect", "retry"}
)


def _priority(priority: object) -> float:
    if isinstance(priority, str):
        if priority.lower() not in PRIORITIES:
            raise UsageError(
                f"unknown hook priority: {priority!r} (a number or one of {', '.join(PRIORITIES)})"
            )
        return float(PRIORITIES[priority.lower()])
    if isinstance(priority, (int, float)) and not isinstance(priority, bool):
        return float(priority)
    if priority is None:
        return 0.0
    raise UsageError(f"invalid hook priority: {priority!r}")


def _plain_result(result: dict) -> Any:
    """rs-llmspell's ``{type = ...}`` result as the plain form: "cancel", replacement data, or
    None."""
    if result["type"] == "cancel":
        return "cancel"
    if result["type"] in ("modified", "replace") and isinstance(result.get("data"), dict):
        return result["data"]
    return None


class HookRegistry:
    def __init__(self) -> None:
        self._hooks: dict[str, list[tuple[float, int, Callable]]] = {}
        self._order = itertools.count()

    def register(
        self, point: str, fn: Callable[[dict], Any], priority: object = "normal"
    ) -> tuple[str, int]:
        if point not in POINTS and point not in QUIET_POINTS:
            raise UsageError(
                f"unknown hook point: {point!r} (known: {', '.join(POINTS)}; and rs-llmspell's "
                f"{', '.join(QUIET_POINTS)}, which spellfs never runs)"
            )
        prio = _priority(priority)
        order = next(self._order)
        hooks = self._hooks.setdefault(point, [])
        hooks.append((-prio, order, fn))
        hooks.sort(key=lambda h: (h[0], h[1]))
        return (point, order)

    def unregister(self, handle: tuple[str, int]) -> bool:
        point, order = handle
        hooks = self._hooks.get(point, [])
        before = len(hooks)
        hooks[:] = [h for h in hooks if h[1] != order]
        return len(hooks) != before

    def list(self, point: str | None = None, priority: object = None) -> list[dict[str, Any]]:
        """The registered hooks (of ``point``, of ``priority``), in the order each point runs
        them."""
        want = None if priority is None else _priority(priority)
        return [
            {"id": order, "hook_point": p, "priority": -neg}
            for p, hooks in self._hooks.items()
            if point in (None, p)
            for neg, order, _ in hooks
            if want is None or -neg == want
        ]

    def active(self, point: str) -> bool:
        return bool(self._hooks.get(point))

    def run(
        self,
        point: str,
        session_id: str | None,
        data: dict[str, Any],
        component: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run the hooks of ``point``; return the (possibly replaced) data or raise on cancel.

        ``component`` is rs-llmspell's ``component_id`` (``{name, component_type}``) of the
        agent, tool or workflow the hook is about.
        """
        hooks = self._hooks.get(point)
        if not hooks:
            return data
        ctx = {
            "point": point,
            "session_id": session_id,
            "correlation_id": str(uuid.uuid4()),
            "data": data,
            "component_id": component or {"name": point, "component_type": "system"},
            "metadata": {},
        }
        for _, _, fn in list(hooks):
            result = fn(ctx)
            if isinstance(result, dict) and result.get("type") in _RESULT_KINDS:
                result = _plain_result(result)
            if result is None or result == "continue":
                continue
            if result == "cancel":
                what = data.get("name") or data.get("tool") or session_id or ""
                raise HookCancelled(f"cancelled by a {point} hook: {what}")
            if isinstance(result, dict):
                data = {**data, **result}
                ctx["data"] = data
                continue
            raise UsageError(
                f"{point} hook returned {result!r}; expected 'continue', 'cancel' or a table"
            )
        return data
