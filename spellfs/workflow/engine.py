"""The workflow engine: sequential, parallel, conditional and loop workflows of steps.

A step calls a tool, an agent, another workflow, or a function of the host. The engine
knows nothing of Lua: the host (:class:`Host`, implemented by ``lua/workflow_api.py``)
prepares each call. What a workflow is comes from :mod:`.spec`, what a step's input
refers to from :mod:`.references`, and where each call runs (this thread, or a pool for
parallel branches) from :mod:`.scheduler`; here is what each kind of workflow and step
does, its conditions, and the run's result.

Error strategies: ``fail_fast`` (default: the first failed step fails the workflow),
``continue`` (failures are recorded, the workflow goes on and succeeds), ``retry``
(each step up to ``max_retries`` + 1 times, waiting 0.05 s, 0.1 s, … between).
"""

from __future__ import annotations

import json
import time
from typing import Any, Generator, Protocol

from ..errors import HookCancelled, SpellError, UsageError
from .references import Context, lookup, render, resolve
from .scheduler import Call, drive_inline, drive_parallel
from .spec import Spec, Step, collection

__all__ = ["Host", "Work", "execute"]

MAX_DEPTH = 32


class Work(Protocol):
    """What a host prepares for one tool or agent call."""

    def run(self) -> Any: ...  # thread-safe: runs in the pool

    def finish(
        self, raw: Any
    ) -> tuple[bool, Any, str | None]: ...  # (ok, output, error); main thread


class Host(Protocol):
    def tool(self, name: str, params: Any) -> Work: ...

    def agent(self, name: Any, params: Any) -> Work: ...

    def workflow(self, ref: Any) -> "Spec": ...

    def call(self, fn: Any, *args: Any) -> Any: ...  # a host function (condition, step function)

    def hook(self, point: str, data: dict) -> dict: ...  # may raise HookCancelled

    def publish(self, event: str, data: dict) -> None: ...


class _Failed(Exception):
    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"step {step!r} failed: {error}")
        self.step, self.error = step, error


class _Engine:
    def __init__(self, host: Host, record: list) -> None:
        self.host = host
        self.record = record  # every step run, in completion order

    # conditions -----------------------------------------------------------------------
    def condition(self, cond: Any, ctx: Context) -> Generator[Call, Any, bool]:
        if cond is None or cond is True or cond == "always":
            return True
        if cond is False or cond == "never":
            return False
        if isinstance(cond, str):
            return bool(
                ctx.shared.get(cond) or (isinstance(ctx.input, dict) and ctx.input.get(cond))
            )
        if not isinstance(cond, dict):  # a host function: condition(context)
            return bool(
                self.host.call(
                    cond,
                    {
                        "input": ctx.input,
                        "steps": ctx.outputs,
                        "shared": ctx.shared,
                        "loop": ctx.loop,
                    },
                )
            )
        if cond.get("tool") is not None:
            work = self.host.tool(cond["tool"], resolve(cond.get("input") or {}, ctx))
            ok, out, _ = work.finish((yield Call(work.run)))
            return ok and out not in (False, None, "", "false", "null", 0)
        kind = cond.get("type", "always")
        if kind in ("always", "never"):
            return kind == "always"
        if kind in ("and", "or"):
            results = []
            for sub in cond.get("conditions") or []:
                results.append((yield from self.condition(sub, ctx)))
            return all(results) if kind == "and" else any(results)
        if kind == "not":
            return not (yield from self.condition(cond.get("condition"), ctx))
        expected = cond.get("expected", cond.get("value", cond.get("expected_value")))
        if kind == "custom":
            from .conditions import custom

            def step(name: str) -> dict | None:
                for key in (ctx.prefix + name, name):
                    if key in ctx.outputs:
                        return ctx.outputs[key]
                return None

            return custom(cond, ctx.shared, ctx.input, step)
        if kind == "shared_data_exists":
            data = ctx.input if isinstance(ctx.input, dict) else {}
            return cond.get("key") in ctx.shared or cond.get("key") in data
        if kind == "shared_data_equals":
            key = cond.get("key")
            data = ctx.input if isinstance(ctx.input, dict) else {}
            return ctx.shared.get(key, data.get(key)) == expected
        if kind in ("step_output_equals", "step_output_contains"):
            found, got = lookup(ctx, "step", f"{cond.get('step', '')}:output")
            if not found:
                return False
            if kind == "step_output_equals":
                return got == expected or render(got) == render(expected)
            return render(expected) in render(got)
        raise UsageError(
            f"unknown condition type: {kind} (use always, never, and, or, not, "
            "shared_data_equals, shared_data_exists, step_output_equals, "
            "step_output_contains, custom, a tool condition or a function)"
        )

    # steps ---------------------------------------------------------------------------
    def steps(self, steps: list[Step], ctx: Context, spec: Spec) -> Generator[Call, Any, dict]:
        errors, last = [], None
        for i, step in enumerate(steps):
            rec = yield from self.step(step, ctx, spec, i)
            if rec["status"] == "failed":
                errors.append(f"{step.name}: {rec['error']}")
                if spec.error_strategy != "continue":
                    raise _Failed(step.name, rec["error"])
            elif rec["status"] == "completed":
                last = rec["output"]
        return {"final_output": last, "errors": errors}

    def step(
        self, step: Step, ctx: Context, spec: Spec, index: int = 0
    ) -> Generator[Call, Any, dict]:
        key = ctx.prefix + step.name
        started, clock = time.time(), time.perf_counter()
        rec: dict[str, Any] = {
            "name": key,
            "type": step.kind,
            "workflow": spec.name,
            "target": step.target if isinstance(step.target, str) else step.kind,
            "started_at": started,
            "position": ctx.pos + (index,),
        }
        if ctx.loop:
            rec["iteration"] = ctx.loop.get("index")
        if step.skip_condition is not None and (
            yield from self.condition(step.skip_condition, ctx)
        ):
            rec.update(status="skipped", duration_ms=0.0)
            self.record.append(rec)
            return rec
        params = resolve(step.input, ctx)
        event = {
            "workflow": spec.name,
            "workflow_id": spec.id,
            "step": key,
            "step_type": step.kind,
            "input": params,
        }
        try:
            for point in ("BeforeWorkflowStep", "BeforeWorkflowStage"):
                params = self.host.hook(point, {**event, "input": params}).get("input", params)
            self.host.publish("workflow.step.started", event)
            attempts = 1 + (spec.max_retries if spec.error_strategy == "retry" else 0)
            for attempt in range(attempts):
                ok, output, error = yield from self.attempt(step, params, ctx, spec, index)
                if ok or attempt == attempts - 1:
                    break
                time.sleep(min(0.05 * 2**attempt, 2.0))  # (at most 2 s between tries)
        except HookCancelled as e:
            ok, output, error = False, None, str(e)
        except _Failed as e:  # a nested workflow's failure
            ok, output, error = False, None, str(e)
        except SpellError as e:
            ok, output, error = False, None, str(e)
        rec.update(
            input=params,
            output=output,
            status="completed" if ok else "failed",
            duration_ms=round((time.perf_counter() - clock) * 1000, 3),
        )
        if error:
            rec["error"] = error
        ctx.outputs[key] = {"output": output, "success": ok, "error": error}
        if key != step.name:
            ctx.outputs.setdefault(step.name, ctx.outputs[key])
        self.record.append(rec)
        done = {
            **event,
            "output": output,
            "success": ok,
            "error": error,
            "duration_ms": rec["duration_ms"],
        }
        self.host.publish("workflow.step.completed" if ok else "workflow.step.failed", done)
        for point in ("AfterWorkflowStep", "AfterWorkflowStage"):
            self.host.hook(point, done)
        return rec

    def attempt(
        self, step: Step, params: Any, ctx: Context, spec: Spec, index: int = 0
    ) -> Generator[Call, Any, tuple[bool, Any, str | None]]:
        if step.kind in ("tool", "agent"):
            work = (self.host.tool if step.kind == "tool" else self.host.agent)(step.target, params)
            return work.finish((yield Call(work.run)))
        if step.kind == "function":
            return (
                True,
                self.host.call(step.target, params, {"steps": ctx.outputs, "input": ctx.input}),
                None,
            )
        if ctx.depth >= MAX_DEPTH:
            raise UsageError(f"workflows nested more than {MAX_DEPTH} deep")
        sub = self.host.workflow(step.target)
        child = Context(
            params if params is not None else ctx.input,
            ctx.outputs,
            ctx.shared,
            dict(ctx.loop),
            f"{ctx.prefix}{step.name}:",
            ctx.depth + 1,
            ctx.pos + (index,),
        )
        data = yield from self.run(sub, child)
        return True, data.get("final_output"), None

    # workflows -----------------------------------------------------------------------
    def run(self, spec: Spec, ctx: Context) -> Generator[Call, Any, dict]:
        if spec.kind == "sequential":
            return (yield from self.steps(spec.steps, ctx, spec))
        if spec.kind == "conditional":
            matched = []
            for branch in spec.branches:
                if (yield from self.condition(branch["condition"], ctx)):
                    matched.append(branch)
                    break
            chosen = matched[0]["steps"] if matched else (spec.default_branch or [])
            data = yield from self.steps(chosen, ctx, spec)
            names = [b["name"] for b in matched] or (["default"] if spec.default_branch else [])
            return {
                **data,
                "executed_branches": len(names),
                "matched_branches": len(matched),
                "branch": names[0] if names else None,
            }
        if spec.kind == "loop":
            return (yield from self.loop(spec, ctx))
        return self.parallel(spec, ctx)

    def loop(self, spec: Spec, ctx: Context) -> Generator[Call, Any, dict]:
        it, done, last, errors = spec.iterator, 0, None, []
        outer = ctx.pos
        values = it.get("values", [])
        if "ref" in it:
            values = resolve(it["ref"], ctx)
            if isinstance(values, str):
                try:
                    values = json.loads(values)
                except ValueError:
                    raise UsageError(f"loop collection {it['ref']!r} is not a list") from None
            values = collection(values)
        while done < spec.max_iterations:
            if it["kind"] == "while":
                if not (yield from self.condition(it.get("condition"), ctx)):
                    break
                value = done + 1
            elif done >= len(values):
                break
            else:
                value = values[done]
            ctx.pos = outer + (done,)
            ctx.loop = {
                "index": done + 1,
                "iteration": done + 1,
                "current_value": value,
                "current_item": value,
                "value": value,
                "item": value,
            }
            data = yield from self.steps(spec.steps, ctx, spec)
            errors += data["errors"]
            last = data["final_output"] if data["final_output"] is not None else last
            done += 1
        ctx.pos = outer
        return {
            "final_output": last,
            "completed_iterations": done,
            "iterations": done,
            "errors": errors,
        }

    def parallel(self, spec: Spec, ctx: Context) -> dict:
        branches = spec.branches
        outcomes: dict[str, Any] = {}

        def branch_gen(branch: dict) -> Generator[Call, Any, dict]:
            child = Context(
                ctx.input,
                ctx.outputs,
                ctx.shared,
                dict(ctx.loop),
                f"{ctx.prefix}{branch['name']}:",
                ctx.depth,
                ctx.pos + (branches.index(branch),),
            )
            return (yield from self.steps(branch["steps"], child, spec))

        gens = [(b["name"], branch_gen(b)) for b in branches]
        drive_parallel(gens, spec.max_concurrency, outcomes)
        ok = [n for n, o in outcomes.items() if not isinstance(o, BaseException)]
        failed = {n: str(o) for n, o in outcomes.items() if isinstance(o, BaseException)}
        if failed and spec.error_strategy == "fail_fast":
            name, error = next(iter(failed.items()))
            raise _Failed(name, error)
        results = {n: outcomes[n]["final_output"] for n in ok}
        return {
            "final_output": results,
            "branch_results": results,
            "successful_branches": len(ok),
            "failed_branches": len(failed),
            "total_branches": len(branches),
            "errors": [f"{n}: {e}" for n, e in failed.items()],
        }


def execute(spec: Spec, host: Host, input: Any = None, shared: dict | None = None) -> dict:
    """Run ``spec``; rs-llmspell's ``{success, data = {final_output, …}, error}`` plus ``steps``."""
    record: list[dict] = []
    engine = _Engine(host, record)
    started, clock = time.time(), time.perf_counter()
    info = {"workflow": spec.name, "workflow_id": spec.id, "type": spec.kind, "input": input}
    error = None
    data: dict = {}
    try:
        input = host.hook("BeforeWorkflowStart", info).get("input", input)
        host.publish("workflow.started", info)
        ctx = Context(input, {}, shared if shared is not None else {})
        data = drive_inline(engine.run(spec, ctx))
    except (_Failed, SpellError) as e:
        error = str(e)
    duration = round((time.perf_counter() - clock) * 1000, 3)
    ok = error is None
    data = {
        **data,
        "steps": {
            r["name"]: {k: r.get(k) for k in ("output", "status", "duration_ms", "error")}
            for r in record
        },
        "duration_ms": duration,
    }
    result = {
        "success": ok,
        "data": data,
        "error": error,
        "workflow_id": spec.id,
        "name": spec.name,
        "type": spec.kind,
        "started_at": started,
        "duration_ms": duration,
        "step_records": record,
    }
    if ok:
        host.publish("workflow.completed", {**info, "duration_ms": duration})
        host.hook(
            "AfterWorkflowComplete", {**info, "success": True, "output": data.get("final_output")}
        )
    else:
        host.publish("workflow.failed", {**info, "error": error})
        host.hook("WorkflowError", {**info, "error": error})
    return result
