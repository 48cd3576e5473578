"""``template_engine``: ``{{name}}`` placeholders filled from variables."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL", "render"]

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")


def _template_engine(params: dict, ctx: Any) -> dict:
    template = text(params, "template", "input")
    variables = params.get("variables", params.get("context")) or {}
    if not isinstance(variables, dict):
        raise UsageError("parameter 'variables' must be a table")

    def lookup(match: re.Match) -> str:
        value: Any = variables
        for part in match.group(1).split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and 0 < int(part) <= len(value):
                value = value[int(part) - 1]  # Lua-style 1-based index
            else:
                raise UsageError(f"missing variable: {match.group(1)}")
        return render(value)

    return {"rendered": _PLACEHOLDER.sub(lookup, template)}


def render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # 5.0 stays "5.0", as Lua's tostring
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None:
        return "nil"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


TOOL = Tool(
    "template_engine",
    "Fill {{name}} placeholders in a template",
    _template_engine,
    operations=("render",),
    parameters={"input": "the template", "context": "the variables"},
)
