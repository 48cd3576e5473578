"""A workflow's definition: its steps and options, read from rs-llmspell's tables.

:func:`parse_spec` turns the table a script passes to ``Workflow.sequential`` (and the
other kinds) into a :class:`Spec` (its options and :class:`Step` list), refusing a
malformed table with a one-line error before anything runs. It is separate from the engine
(:mod:`.engine`) because reading a definition needs no host, no thread and no run:
what a workflow *is* can be checked and read without running it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import UsageError

__all__ = ["KINDS", "STRATEGIES", "Spec", "Step", "collection", "parse_spec", "parse_steps"]

KINDS = ("sequential", "parallel", "conditional", "loop")
STRATEGIES = ("fail_fast", "continue", "retry")
MAX_ITERATIONS = 10000


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


#: A step runs at most this many times (retries wait 0.05 s, 0.1 s, ... at most 2 s between;
#: an uncapped count with a doubling wait slept for years)
MAX_ATTEMPTS = 11


def parse_spec(kind: str, raw: Any, functions: Callable[[Any], bool]) -> Spec:
    where = f"Workflow.{kind}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected a table of options")
    spec = Spec(kind, _name(raw, f"{kind}_workflow"), str(raw.get("description") or ""))
    strategy = raw.get("error_strategy", "fail_fast")
    if isinstance(strategy, dict):  # {type = "retry", max_attempts = 3}
        attempts = strategy.get("max_attempts", 3)
        if isinstance(attempts, float) and attempts.is_integer():
            attempts = int(attempts)  # (Lua 3.0)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise UsageError(f"{where}: max_attempts must be a positive integer, got {attempts!r}")
        spec.max_retries = min(attempts, MAX_ATTEMPTS) - 1  # (as max_retries: at most 10)
        strategy = strategy.get("type", "retry")
    if strategy not in STRATEGIES:
        raise UsageError(f"{where}: error_strategy must be one of {', '.join(STRATEGIES)}")
    spec.error_strategy = strategy
    if isinstance(raw.get("max_retries"), int):
        spec.max_retries = max(0, min(MAX_ATTEMPTS - 1, raw["max_retries"]))
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
            return {"kind": "collection", "values": collection(values)}
        if "while_condition" in it or "condition" in it:
            return {"kind": "while", "condition": it.get("while_condition", it.get("condition"))}
    if it == "range":
        return _range(raw, where)
    if it == "collection":
        return {
            "kind": "collection",
            "values": collection(raw.get("items", raw.get("collection"))),
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


def collection(values: Any) -> list:
    if isinstance(values, dict) and not values:
        return []
    if isinstance(values, dict):
        return [{"key": k, "value": v} for k, v in values.items()]
    if not isinstance(values, list):
        raise UsageError("a loop collection must be a list")
    return values
