"""The ``Workflow`` global: rs-llmspell's workflows over :mod:`spellfs.workflow`.

``Workflow.sequential|parallel|conditional|loop(opts)`` return a workflow table;
``workflow:execute(input)`` runs it and returns ``{success, data = {final_output,
steps, …}, error}`` (``data`` also has ``successful_branches``/``failed_branches``
for parallel, ``executed_branches``/``matched_branches`` for conditional and
``completed_iterations`` for loop). Steps: ``{name, tool = "…", input = {…}}``,
``{name, type = "agent", agent = "name" or an agent table, input = "…" or {text,
prompt, …}}``, ``{name, type = "workflow", workflow = <workflow table>}``, and
``{name, type = "custom", func = function(input, context) … end}``.

Each top-level run is recorded in the current session (or the run's automatic
session, as for agent calls) as the artifact ``workflow-<name>.json``
(:mod:`spellfs.workflow.record`). Tool and agent steps of parallel branches run in a
thread pool (``max_concurrency`` at a time); hooks, Lua functions and records stay on
the script's thread. Also: ``getInfo``, ``validate``, ``debug``, ``getMetrics``,
``setState``/``getState`` on a workflow, and ``Workflow.list/get/remove/types/
enableDebug/isDebugEnabled/setDefaultErrorHandler``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, UsageError

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]


class _Work:
    def __init__(self, run: Any, finish: Any, shape: Any) -> None:
        self.run, self._finish, self._shape = run, finish, shape

    def finish(self, raw: Any) -> tuple[bool, Any, str | None]:
        return self._shape(self._finish(raw))


def _tool_outcome(result: dict) -> tuple[bool, Any, str | None]:
    from ..workflow import step_text

    if result.get("success"):
        return True, step_text(result.get("result")), None
    return False, None, str(result.get("error") or "tool failed")


class _Host:
    """What the engine asks of the Lua side (see :class:`spellfs.workflow.engine.Host`)."""

    def __init__(self, rt: "Runtime", ws: "Workspace", specs: dict) -> None:
        self.rt, self.ws, self.specs = rt, ws, specs

    def tool(self, name: Any, params: Any) -> _Work:
        if not isinstance(name, str):
            raise UsageError("a tool step names its tool with a string")
        args = params if isinstance(params, dict) else {} if params is None else {"input": params}
        run, finish = self.rt.tool_prepare(name, args)  # type: ignore[attr-defined]
        return _Work(run, finish, _tool_outcome)

    def agent(self, ref: Any, params: Any) -> _Work:
        name = ref.get("name") if isinstance(ref, dict) else ref
        preparers = getattr(self.rt, "agent_preparers", None)
        if preparers is None:
            from .agent_api import NO_PROVIDER_HINT

            raise UsageError(f"agent step: no Agent here {NO_PROVIDER_HINT}")
        prepared = preparers.get(name)
        if prepared is None:
            raise NotFound(
                f"agent not found: {name} (create it with Agent.create or Agent.register)"
            )
        run, finish = prepared(self.rt.out(params if params is not None else ""))
        return _Work(run, finish, lambda answer: (True, answer.get("text", ""), None))

    def workflow(self, ref: Any) -> Any:
        key = ref.get("id") if isinstance(ref, dict) else ref
        spec = self.specs.get(key) or next((s for s in self.specs.values() if s.name == key), None)
        if spec is None:
            raise NotFound(f"workflow not found: {key}")
        return spec

    def call(self, fn: Any, *args: Any) -> Any:
        rt = self.rt
        return rt.py(rt.call(fn, *(rt.out(a) for a in args)))

    def hook(self, point: str, data: dict) -> dict:
        hooks = self.ws.hooks
        if not hooks.active(point):
            return data
        return hooks.run(
            point,
            self.ws.current_session,
            data,
            {"name": data.get("workflow"), "component_type": "workflow"},
        )

    def publish(self, event: str, data: dict) -> None:
        self.ws.events.publish(event, data)


def _plain(rt: "Runtime", value: Any, depth: int = 0) -> Any:
    """A Lua value as Python data, keeping Lua functions as they are (conditions, steps)."""
    kind = rt.lua_type(value)
    if kind == "function":
        return value
    if kind != "table":
        return rt.py(value)
    if depth > 64:
        raise UsageError("workflow definition nested too deeply")
    items = list(value.items())
    if (
        items
        and all(isinstance(k, int) for k, _ in items)
        and sorted(k for k, _ in items) == list(range(1, len(items) + 1))
    ):
        return [_plain(rt, v, depth + 1) for _, v in sorted(items, key=lambda kv: kv[0])]
    return {
        (k.decode("utf-8", "replace") if isinstance(k, bytes) else k): _plain(rt, v, depth + 1)
        for k, v in items
    }


def _ref(key: Any, verb: str) -> Any:
    if key is not None and not isinstance(key, str):
        raise UsageError(f"Workflow.{verb}: expected a workflow id or name (a string)")
    return key


def install(rt: "Runtime", ws: "Workspace") -> None:
    from ..workflow import KINDS

    specs: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    host = _Host(rt, ws, specs)
    settings: dict[str, Any] = {"debug": False, "handler": None}
    depth = [0]

    as_error = rt.lua.execute(b"""
local setmetatable, tostring = setmetatable, tostring
local mt = {__tostring = function(e) return e.message end,
            __concat = function(a, b) return tostring(a) .. tostring(b) end}
return function(e) return setmetatable(e, mt) end
""")

    def is_function(value: Any) -> bool:
        return rt.lua_type(value) == "function"

    def build(kind: str, opts: Any) -> Any:
        from ..workflow import parse_spec

        spec = parse_spec(kind, _plain(rt, opts), is_function)
        specs[spec.id] = spec
        metrics = {
            "total_executions": 0,
            "successful_executions": 0,
            "failed_executions": 0,
            "total_duration_ms": 0.0,
        }
        state: dict[str, Any] = {}
        created = time.time()

        def execute(_self: Any = None, input: Any = None) -> Any:
            from ..workflow import execute as run_workflow
            from ..workflow import record_run

            data = _plain(rt, input) if input is not None else None
            depth[0] += 1
            try:
                result = run_workflow(spec, host, data, state)
            finally:
                depth[0] -= 1
                calls = getattr(rt, "agent_calls", None)
                if depth[0] == 0 and calls is not None:
                    calls.flush(everything=True)
            metrics["total_executions"] += 1
            metrics["successful_executions" if result["success"] else "failed_executions"] += 1
            metrics["total_duration_ms"] += result["duration_ms"]
            if depth[0] == 0:  # a top-level run: one record in the session
                from .recording import recording_session

                record_run(ws, recording_session(ws), result, data)
            if not result["success"] and settings["handler"] is not None:
                host.call(
                    settings["handler"],
                    result["error"],
                    {"workflow_id": spec.id, "phase": "execute", "name": spec.name},
                )
            if settings["debug"]:
                import sys

                print(
                    f"spell: workflow {spec.name}: {'ok' if result['success'] else 'failed'} "
                    f"in {result['duration_ms']:.1f} ms",
                    file=sys.stderr,
                )
            shown = rt.out({k: v for k, v in result.items() if k not in ("step_records", "error")})
            if result["error"] is not None:  # rs-llmspell's {message = …}, printable as text too
                shown[b"error"] = as_error(
                    rt.out({"message": result["error"], "workflow": spec.name})
                )
            return shown

        def info(_self: Any = None) -> Any:
            return rt.out(
                {
                    "id": spec.id,
                    "name": spec.name,
                    "type": kind,
                    "description": spec.description,
                    "step_count": len(spec.steps),
                    "branch_count": len(spec.branches),
                }
            )

        def validate(_self: Any = None) -> Any:
            errors = []
            if kind in ("sequential", "loop") and not spec.steps:
                errors.append("no steps")
            if kind in ("parallel", "conditional") and not spec.branches:
                errors.append("no branches")
            return rt.out({"valid": not errors, "errors": errors})

        def get_metrics(_self: Any = None) -> Any:
            runs = metrics["total_executions"]
            return rt.out(
                {
                    "execution": {
                        **metrics,
                        "average_duration_ms": metrics["total_duration_ms"] / runs if runs else 0.0,
                    }
                }
            )

        def debug(_self: Any = None) -> Any:
            return rt.out(
                {
                    "id": spec.id,
                    "name": spec.name,
                    "type": kind,
                    "runtime": {"created_at": created, "executions": metrics["total_executions"]},
                }
            )

        def set_state(_self: Any = None, key: Any = None, value: Any = None) -> bool:
            state[rt.text(key, "workflow:setState: key")] = rt.py(value)
            return True

        def get_state(_self: Any = None, key: Any = None) -> Any:
            return rt.out(state.get(rt.text(key, "workflow:getState: key")))

        table = rt.table(
            f"workflow {spec.name}",
            {
                "execute": execute,
                "run": execute,
                "getInfo": info,
                "validate": validate,
                "getMetrics": get_metrics,
                "debug": debug,
                "setState": set_state,
                "getState": get_state,
                "getId": lambda *_: spec.id,
            },
            {"id": spec.id, "name": spec.name, "type": kind},
        )
        tables[spec.id] = table
        return table

    def list_() -> Any:
        return rt.out(
            [
                {"id": s.id, "name": s.name, "type": s.kind, "description": s.description}
                for s in specs.values()
            ]
        )

    def get(ref: Any = None) -> Any:
        key = _ref(rt.py(ref), "get")
        if key in tables:
            return tables[key]
        return next((tables[s.id] for s in specs.values() if s.name == key), None)

    def remove(ref: Any = None) -> bool:
        key = _ref(rt.py(ref), "remove")
        found = key if key in specs else next((s.id for s in specs.values() if s.name == key), None)
        if found is None:
            return False
        specs.pop(found)
        tables.pop(found)
        return True

    def enable_debug(on: Any = None) -> bool:
        settings["debug"] = on is not False
        return True

    def set_handler(fn: Any = None) -> bool:
        if fn is not None and not is_function(fn):
            raise UsageError("Workflow.setDefaultErrorHandler: expected a function")
        settings["handler"] = fn
        return True

    def maker(kind: str) -> Any:
        def make(opts: Any = None) -> Any:
            return build(kind, opts)

        return make

    functions = {kind: maker(kind) for kind in KINDS}
    rt.set_global(
        "Workflow",
        rt.table(
            "Workflow",
            {
                **functions,
                "list": list_,
                "get": get,
                "remove": remove,
                "types": lambda: rt.out(list(KINDS)),
                "enableDebug": enable_debug,
                "isDebugEnabled": lambda: settings["debug"],
                "setDefaultErrorHandler": set_handler,
            },
        ),
    )
