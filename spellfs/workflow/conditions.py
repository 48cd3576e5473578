"""``{type = "custom", expression = "…"}`` workflow conditions, as rs-llmspell evaluates them.

rs-llmspell's workflow guide shows a Lua-looking expression (``data.temperature > 100 and
data.pressure < 50``), but its evaluator (llmspell-workflows, ``conditions.rs``)
understands only these forms, and reports any other as an unsupported expression:

* ``true`` and ``false``;
* ``shared_data.KEY == VALUE``, VALUE a double-quoted string, ``true``, ``false`` or an
  integer: the workflow's shared data (here also the workflow's input table) at KEY;
* ``step_result.STEP.success`` and ``step_result.STEP.failed``: how step STEP ended
  (rs-llmspell looks at the first step result whatever STEP says; here STEP is the step's
  name, and a step that has not run makes the condition false).

spellfs evaluates exactly those, and refuses anything else with a one-line error naming the
forms (a function condition, ``condition = function(ctx) … end``, takes any Lua), rather
than guess what ``data`` means or treat the condition as always true.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ..errors import UsageError

__all__ = ["FORMS", "custom"]

FORMS = (
    'true, false, shared_data.KEY == VALUE (VALUE: "text", true, false or an integer), '
    "step_result.STEP.success, step_result.STEP.failed"
)
_SHARED = re.compile(r"shared_data\.([A-Za-z_][\w.-]*)\s*==\s*(.+)\Z", re.S)
_STEP = re.compile(r"step_result\.(.+)\.(success|failed)\Z", re.S)


def custom(cond: dict, shared: dict, input: Any, step: Callable[[str], dict | None]) -> bool:
    """Whether a custom condition holds; ``step(name)`` gives ``{success, …}`` of a step run."""
    expression = cond.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise UsageError('custom condition: expression must be a non-empty string, e.g. "true"')
    expr = expression.strip()
    if expr in ("true", "false"):
        return expr == "true"
    m = _SHARED.match(expr)
    if m:
        key, raw = m.group(1), m.group(2).strip()
        expected = _value(raw, expr)
        data = input if isinstance(input, dict) else {}
        if key in shared:
            return shared[key] == expected and type(shared[key]) is type(expected)
        return key in data and data[key] == expected and type(data[key]) is type(expected)
    m = _STEP.match(expr)
    if m:
        found = step(m.group(1))
        if found is None:
            return False
        return bool(found.get("success")) == (m.group(2) == "success")
    raise UsageError(
        f"custom condition: unsupported expression {expr[:80]!r} (rs-llmspell evaluates only "
        f"{FORMS}; use a function condition for anything else)"
    )


def _value(raw: str, expr: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    raise UsageError(
        f"custom condition: cannot read the value in {expr[:80]!r} (a double-quoted string, "
        "true, false or an integer)"
    )
