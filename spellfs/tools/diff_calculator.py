"""``diff_calculator``: unified text diffs and JSON diffs.

``text_diff`` (``text``): ``{old_text, new_text, format = "unified"|"context"}`` ->
``{diff, changes, additions, deletions}``. ``json_diff`` (``json``): ``{old_json,
new_json}`` (tables or JSON text) -> ``{added, removed, changed, diff}`` keyed by dotted path.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]


def _json(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise UsageError(f"{name} is not JSON: {e.msg}") from None
    if value is None:
        raise UsageError(f"missing parameter '{name}'")
    return value


def _walk(old: Any, new: Any, path: str, out: dict) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out["removed"][sub] = old[key]
            elif key not in old:
                out["added"][sub] = new[key]
            else:
                _walk(old[key], new[key], sub, out)
    elif old != new:
        out["changed"][path or "."] = {"old": old, "new": new}


def _diff_calculator(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="text_diff")
    if operation in ("text_diff", "text"):
        old = text(params, "old_text", "old").splitlines(keepends=True)
        new = text(params, "new_text", "new").splitlines(keepends=True)
        style = text(params, "format", default="unified")
        made = (difflib.context_diff if style == "context" else difflib.unified_diff)(
            old, new, "old", "new"
        )
        lines = list(made)
        adds = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
        dels = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
        diff = "".join(lines)
        return {
            "operation": operation,
            "diff": diff,
            "output": diff,
            "additions": adds,
            "deletions": dels,
            "changes": adds + dels,
        }
    if operation in ("json_diff", "json"):
        out: dict = {"added": {}, "removed": {}, "changed": {}}
        _walk(
            _json(params.get("old_json", params.get("old")), "old_json"),
            _json(params.get("new_json", params.get("new")), "new_json"),
            "",
            out,
        )
        return {
            "operation": operation,
            **out,
            "diff": out,
            "output": out,
            "changes": sum(len(v) for v in out.values()),
        }
    raise UsageError(f"unknown operation: {operation} (use text_diff or json_diff)")


TOOL = Tool(
    "diff_calculator",
    "Compare texts (unified diff) and JSON values",
    _diff_calculator,
    operations=("text_diff", "json_diff"),
    parameters={"old_text": "before", "new_text": "after", "format": "unified or context"},
)
