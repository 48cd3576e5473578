"""What a step's input may refer to, and how the reference is filled in during a run.

References in step inputs: ``{{step:NAME:output}}`` (a step's output text; nested
steps also as ``{{step:PARENT:NAME:output}}``), ``{{loop:current_value}}``,
``{{loop:current_item}}`` / ``{{loop:current_item.field}}``, ``{{loop:index}}``,
``{{input:KEY}}``. A string that is exactly one reference takes the value itself
(a table stays a table); inside longer text a value is rendered as text. An unknown
reference is left as written.

The :class:`Context` a run carries (its input, the outputs of the steps so far, the
shared data, the loop's current value) lives here with the lookup, apart from the engine
(:mod:`.engine`), because references are a small language of their own: what a
``{{...}}`` means does not depend on how steps are scheduled.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Context", "lookup", "render", "resolve", "step_text"]

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


@dataclass
class Context:
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


def render(value: Any) -> str:
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


def lookup(ctx: Context, kind: str, path: str) -> tuple[bool, Any]:
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


def resolve(value: Any, ctx: Context) -> Any:
    """``value`` with every reference of the module docstring filled in."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            found, got = lookup(ctx, whole.group(1), whole.group(2))
            return got if found else value

        def one(m: re.Match) -> str:
            found, got = lookup(ctx, m.group(1), m.group(2))
            return render(got) if found else m.group(0)

        return _REF.sub(one, value)
    if isinstance(value, dict):
        return {k: resolve(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    return value
