"""``json_processor``: parse, stringify, and jq queries (the real jq language, via ``jq``).

``{operation, input, query?, pretty?}``: ``parse`` -> ``{output}`` (the value),
``stringify`` -> ``{output}`` (text, indented when ``pretty``), ``query``/``transform``
-> ``{output}`` (one result, or a list when the query yields several, as jaq does in
rs-llmspell), ``validate`` -> ``{valid, error?}``. ``input`` may be JSON text or a table.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]

OPERATIONS = ("parse", "stringify", "query", "transform", "validate")


def _value(params: dict) -> Any:
    value = params.get("input", params.get("data", params.get("content")))
    if value is None:
        raise UsageError("missing parameter 'input'")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise UsageError(f"input is not JSON: {e.msg} at line {e.lineno}") from None
    return value


def _json_processor(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="query")
    if operation not in OPERATIONS:
        raise UsageError(f"unknown operation: {operation} (use {', '.join(OPERATIONS)})")
    if operation == "validate":
        try:
            _value(params)
        except UsageError as e:
            return {"operation": operation, "valid": False, "error": str(e)}
        return {"operation": operation, "valid": True}
    value = _value(params)
    if operation == "parse":
        return {"operation": operation, "output": value, "result": value}
    if operation == "stringify":
        indent = 2 if params.get("pretty") else None
        out = json.dumps(value, indent=indent, ensure_ascii=False, sort_keys=bool(indent))
        return {"operation": operation, "output": out, "result": out}
    query = text(params, "query", "filter", default=".")
    import jq  # lazy: a C extension, only for scripts that query

    try:
        found = jq.compile(query).input_value(value).all()
    except ValueError as e:
        raise UsageError(f"jq query {query!r}: {str(e).splitlines()[0]}") from None
    output = found[0] if len(found) == 1 else found
    return {"operation": operation, "query": query, "output": output, "result": output}


TOOL = Tool(
    "json_processor",
    "Parse, stringify and query JSON with jq expressions",
    _json_processor,
    category="data",
    operations=OPERATIONS,
    parameters={
        "input": "JSON text or a table",
        "query": "a jq expression",
        "pretty": "indent stringify's output",
    },
)
