"""The workflow engine: sequential, parallel, conditional and loop workflows of steps.

A step calls a tool, an agent, another workflow, or a function of the host. The engine
knows nothing of Lua: the host (:class:`Host`, implemented by ``lua/workflow_api.py``)
prepares each call. Lua is single-threaded, so everything that touches the host's
interpreter (hooks, conditions written as functions, events, recording) runs on the
calling thread; only the prepared *work* of tool and agent steps (a plain Python
callable) runs in a thread pool, which is how parallel branches overlap: each branch is
a generator that yields the work it needs done, and :func:`_parallel` keeps up to
``max_concurrency`` of them in flight.

References in step inputs: ``{{step:NAME:output}}`` (a step's output text; nested
steps also as ``{{step:PARENT:NAME:output}}``), ``{{loop:current_value}}``,
``{{loop:current_item}}`` / ``{{loop:current_item.field}}``, ``{{loop:index}}``,
``{{input:KEY}}``. A string that is exactly one reference takes the value itself
(a table stays a table); inside longer text a value is rendered as text. An unknown
reference is left as written.

Error strategies: ``fail_fast`` (default: the first failed step fails the workflow),
``continue`` (failures are recorded, the workflow goes on and succeeds), ``retry``
(each step up to ``max_retries`` + 1 times, waiting 0.05 s, 0.1 s, … between).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Protocol

from ..errors import HookCancelled, SpellError, UsageError

__all__ = ["KINDS", "Host", "Spec", "Step", "Work", "execute", "parse_spec", "step_text"]

KINDS = ("sequential", "parallel", "conditional", "loop")
STRATEGIES = ("fail_fast", "continue", "retry")
MAX_ITERATIONS = 10000
MAX_DEPTH = 32
_REF = re.compile(r"\{\{\s*(step|loop|input)\s*:\s*([^{}]+?)\s*\}\}")
#: Where a tool's main value lives in its result, in the order rs-llmspell's scripts look.
_OUTPUT_KEYS = (
    "output",
    "result",
    "rendered",
    "content",
    "text",
    "uuid",
    "hash",
    "datetime",
    "formatted",
    "encoded",
    "decoded",
    "value",
    "diff",
    "data",
    "valid",
)


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


@dataclass
class Step:
    name: str
    kind: str  # tool, agent, workflow, function
    target: Any
    input: Any = None
    skip_condition: Any = None


@dataclass
class Spec:
    kind: str
    name: str
    description: str = ""
    steps: list[Step] = field(default_factory=list)
    branches: list[dict] = field(default_factory=list)  # {name, condition, steps}
    default_branch: list[Step] | None = None
    iterator: dict = field(default_factory=dict)  # {kind, values | condition}
    max_iterations: int = 100
    max_concurrency: int = 4
    error_strategy: str = "fail_fast"
    max_retries: int = 2
    id: str = field(default_factory=lambda: f"workflow_{uuid.uuid4().hex[:12]}")


# -- building ------------------------------------------------------------------------------


def _name(raw: dict, fallback: str) -> str:
    name = raw.get("name", fallback)
    if not isinstance(name, str) or not name:
        raise UsageError(f"{fallback}: name must be a non-empty string")
    return name


def parse_steps(raw: Any, where: str, functions: Callable[[Any], bool]) -> list[Step]:
    """rs-llmspell's step tables; ``functions(value)`` says whether a value is a host function."""
    if raw is None:
        return []
    if isinstance(raw, dict) and not raw:
        return []
    if not isinstance(raw, list):
        raise UsageError(f"{where}: steps must be a list of step tables")
    steps = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise UsageError(f"{where}: step {i} must be a table")
        name = _name(item, f"step_{i}")
        kind = item.get("type")
        if kind is None:
            kind = next(
                (k for k in ("tool", "agent", "workflow") if item.get(k) is not None),
                "function" if functions(item.get("func") or item.get("fn")) else None,
            )
        if kind not in (None, "tool", "agent", "workflow"):  # custom, or a workflow kind
            kind = (
                "function"
                if functions(item.get("func") or item.get("fn"))
                else "workflow"
                if item.get("workflow") is not None
                else kind
            )
        if kind not in ("tool", "agent", "workflow", "function"):
            raise UsageError(f"{where}: step {name!r} needs tool, agent, workflow or func")
        target = item.get("func") or item.get("fn") if kind == "function" else item.get(kind)
        if target is None:
            raise UsageError(f"{where}: step {name!r} of type {kind} names no {kind}")
        steps.append(
            Step(
                name,
                kind,
                target,
                item.get("input", item.get("parameters")),
                item.get("skip_condition"),
            )
        )
    return steps


def parse_spec(kind: str, raw: Any, functions: Callable[[Any], bool]) -> Spec:
    where = f"Workflow.{kind}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected a table of options")
    spec = Spec(kind, _name(raw, f"{kind}_workflow"), str(raw.get("description") or ""))
    strategy = raw.get("error_strategy", "fail_fast")
    if isinstance(strategy, dict):  # {type = "retry", max_attempts = 3}
        spec.max_retries = int(strategy.get("max_attempts", 3)) - 1
        strategy = strategy.get("type", "retry")
    if strategy not in STRATEGIES:
        raise UsageError(f"{where}: error_strategy must be one of {', '.join(STRATEGIES)}")
    spec.error_strategy = strategy
    if isinstance(raw.get("max_retries"), int):
        spec.max_retries = max(0, min(10, raw["max_retries"]))
    concurrency = raw.get("max_concurrency", 4)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise UsageError(f"{where}: max_concurrency must be a positive integer")
    spec.max_concurrency = min(concurrency, 32)
    spec.steps = parse_steps(raw.get("steps"), where, functions)
    if kind in ("parallel", "conditional"):
        for i, branch in enumerate(raw.get("branches") or [], 1):
            if not isinstance(branch, dict):
                raise UsageError(f"{where}: branch {i} must be a table")
            bname = _name(branch, f"branch_{i}")
            spec.branches.append(
                {
                    "name": bname,
                    "condition": branch.get("condition"),
                    "steps": parse_steps(branch.get("steps"), f"{where} {bname}", functions),
                }
            )
        if kind == "parallel" and not spec.branches and spec.steps:  # steps: one branch each
            spec.branches = [{"name": s.name, "condition": None, "steps": [s]} for s in spec.steps]
        default = raw.get("default_branch")
        if isinstance(default, dict):
            spec.default_branch = parse_steps(default.get("steps"), f"{where} default", functions)
        elif isinstance(raw.get("else_steps"), list):
            spec.default_branch = parse_steps(raw["else_steps"], f"{where} default", functions)
    if kind == "loop":
        spec.iterator = _iterator(raw, where)
        spec.steps = parse_steps(raw.get("body", raw.get("steps")), where, functions)
        cap = raw.get("max_iterations", 100)
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
            raise UsageError(f"{where}: max_iterations must be a non-negative integer")
        spec.max_iterations = min(cap, MAX_ITERATIONS)
    return spec


def _iterator(raw: dict, where: str) -> dict:
    it = raw.get("iterator")
    if isinstance(it, dict):
        if isinstance(it.get("range"), dict):
            return _range(it["range"], where)
        if "collection" in it or "items" in it:
            values = it.get("collection", it.get("items"))
            if isinstance(values, str):  # a reference, resolved when the loop starts
                return {"kind": "collection", "ref": values}
            return {"kind": "collection", "values": _collection(values)}
        if "while_condition" in it or "condition" in it:
            return {"kind": "while", "condition": it.get("while_condition", it.get("condition"))}
    if it == "range":
        return _range(raw, where)
    if it == "collection":
        return {
            "kind": "collection",
            "values": _collection(raw.get("items", raw.get("collection"))),
        }
    if it == "while":
        return {"kind": "while", "condition": raw.get("condition")}
    raise UsageError(
        f"{where}: iterator must be range, collection or while "
        "(or {range = {start, end, step}}, {collection = {...}})"
    )


def _range(r: dict, where: str) -> dict:
    start, end, step = r.get("start", 1), r.get("end", r.get("stop")), r.get("step", 1)
    if (
        not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, end, step))
        or step == 0
    ):
        raise UsageError(f"{where}: a range needs numeric start, end and a non-zero step")
    values, v = [], start
    while (v <= end if step > 0 else v >= end) and len(values) <= MAX_ITERATIONS:
        values.append(v)
        v += step
    return {"kind": "range", "values": values}


def _collection(values: Any) -> list:
    if isinstance(values, dict) and not values:
        return []
    if isinstance(values, dict):
        return [{"key": k, "value": v} for k, v in values.items()]
    if not isinstance(values, list):
        raise UsageError("a loop collection must be a list")
    return values


# -- running -------------------------------------------------------------------------------


@dataclass
class _Call:
    """A piece of work a step generator needs run (in the pool when parallel)."""

    fn: Callable[[], Any]


class _Failed(Exception):
    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"step {step!r} failed: {error}")
        self.step, self.error = step, error


@dataclass
class _Context:
    input: Any
    outputs: dict
    shared: dict
    loop: dict = field(default_factory=dict)
    prefix: str = ""
    depth: int = 0
    pos: tuple = ()  # where in the definition: branch, step and iteration indices


def step_text(value: Any) -> Any:
    """A tool result's main value (see :data:`_OUTPUT_KEYS`); tables stay tables."""
    if isinstance(value, dict):
        for key in _OUTPUT_KEYS:
            if key in value and value[key] is not None:
                return value[key]
    return value


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _lookup(ctx: _Context, kind: str, path: str) -> tuple[bool, Any]:
    if kind == "step":
        name, _, what = path.rpartition(":")
        if not name:
            name, what = path, "output"
        for key in (ctx.prefix + name, name):
            if key in ctx.outputs:
                record = ctx.outputs[key]
                return True, record.get(what.strip(), record.get("output"))
        return False, None
    if kind == "loop":
        head, _, rest = path.partition(".")
        if head not in ctx.loop:
            return False, None
        value = ctx.loop[head]
        for part in filter(None, rest.split(".")):
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return False, None
        return True, value
    data = ctx.input if isinstance(ctx.input, dict) else {}
    if path in ("input", "data") and not isinstance(ctx.input, dict):
        return True, ctx.input
    return (path in data), data.get(path)


def resolve(value: Any, ctx: _Context) -> Any:
    """``value`` with every reference of the module docstring filled in."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            found, got = _lookup(ctx, whole.group(1), whole.group(2))
            return got if found else value

        def one(m: re.Match) -> str:
            found, got = _lookup(ctx, m.group(1), m.group(2))
            return _render(got) if found else m.group(0)

        return _REF.sub(one, value)
    if isinstance(value, dict):
        return {k: resolve(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    return value


class _Engine:
    def __init__(self, host: Host, record: list) -> None:
        self.host = host
        self.record = record  # every step run, in completion order

    # conditions -----------------------------------------------------------------------
    def condition(self, cond: Any, ctx: _Context) -> Generator[_Call, Any, bool]:
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
            ok, out, _ = work.finish((yield _Call(work.run)))
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
            found, got = _lookup(ctx, "step", f"{cond.get('step', '')}:output")
            if not found:
                return False
            if kind == "step_output_equals":
                return got == expected or _render(got) == _render(expected)
            return _render(expected) in _render(got)
        raise UsageError(
            f"unknown condition type: {kind} (use always, never, and, or, not, "
            "shared_data_equals, shared_data_exists, step_output_equals, "
            "step_output_contains, custom, a tool condition or a function)"
        )

    # steps ---------------------------------------------------------------------------
    def steps(self, steps: list[Step], ctx: _Context, spec: Spec) -> Generator[_Call, Any, dict]:
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
        self, step: Step, ctx: _Context, spec: Spec, index: int = 0
    ) -> Generator[_Call, Any, dict]:
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
                time.sleep(0.05 * 2**attempt)
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
        self, step: Step, params: Any, ctx: _Context, spec: Spec, index: int = 0
    ) -> Generator[_Call, Any, tuple[bool, Any, str | None]]:
        if step.kind in ("tool", "agent"):
            work = (self.host.tool if step.kind == "tool" else self.host.agent)(step.target, params)
            return work.finish((yield _Call(work.run)))
        if step.kind == "function":
            return (
                True,
                self.host.call(step.target, params, {"steps": ctx.outputs, "input": ctx.input}),
                None,
            )
        if ctx.depth >= MAX_DEPTH:
            raise UsageError(f"workflows nested more than {MAX_DEPTH} deep")
        sub = self.host.workflow(step.target)
        child = _Context(
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
    def run(self, spec: Spec, ctx: _Context) -> Generator[_Call, Any, dict]:
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

    def loop(self, spec: Spec, ctx: _Context) -> Generator[_Call, Any, dict]:
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
            values = _collection(values)
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

    def parallel(self, spec: Spec, ctx: _Context) -> dict:
        branches = spec.branches
        outcomes: dict[str, Any] = {}

        def branch_gen(branch: dict) -> Generator[_Call, Any, dict]:
            child = _Context(
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
        _drive_parallel(gens, spec.max_concurrency, outcomes)
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


def _drive_inline(gen: Generator[_Call, Any, Any]) -> Any:
    """Run a step generator on this thread, doing each call it asks for here too."""
    try:
        call = next(gen)
        while True:
            try:
                result = call.fn()
            except BaseException as e:  # the work's own failure goes back into the step
                call = gen.throw(e)
                continue
            call = gen.send(result)
    except StopIteration as stop:
        return stop.value


def _drive_parallel(gens: list[tuple[str, Generator]], limit: int, outcomes: dict) -> None:
    """Advance every branch on this thread; their calls run in a pool, ``limit`` at a time."""
    waiting = list(gens)
    running: dict[Future, tuple[str, Generator]] = {}

    def advance(
        name: str, gen: Generator, send: Any = None, error: BaseException | None = None
    ) -> None:
        try:
            call = gen.throw(error) if error is not None else gen.send(send)
        except StopIteration as stop:
            outcomes[name] = stop.value
            return
        except Exception as e:  # the branch failed (fail_fast): its outcome is the error
            outcomes[name] = e
            return
        running[pool.submit(call.fn)] = (name, gen)

    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="workflow") as pool:
        while waiting or running:
            while waiting and len(running) < limit:
                name, gen = waiting.pop(0)
                advance(name, gen)
            if not running:
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                name, gen = running.pop(future)
                error = future.exception()
                advance(name, gen, None if error else future.result(), error)


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
        ctx = _Context(input, {}, shared if shared is not None else {})
        data = _drive_inline(engine.run(spec, ctx))
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
