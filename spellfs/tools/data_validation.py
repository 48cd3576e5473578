"""``data_validation``: check a value against rules or a JSON-Schema subset.

``{input, rules = {rules = {{type = "required"|"type"|"length"|"range"|"pattern"|"email"|
"url"|"enum", ...}}}}`` or ``{input, schema = {type, required, properties = {name =
{type, minimum, maximum, minLength, maxLength, pattern, enum}}}}`` -> ``{valid, errors}``
(``errors`` a list of ``{field, message}``). A failed check is a result, not an error.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import UsageError
from .base import Tool

__all__ = ["TOOL"]

_TYPES = {
    "string": str,
    "number": (int, float),
    "integer": int,
    "boolean": bool,
    "object": dict,
    "array": list,
    "null": type(None),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^\s/]+", re.I)


def _is(value: Any, kind: str) -> bool:
    if kind not in _TYPES:
        raise UsageError(f"unknown type: {kind} (use {', '.join(_TYPES)})")
    if kind in ("number", "integer") and isinstance(value, bool):
        return False
    if kind == "array" and isinstance(value, dict) and not value:
        return True  # an empty Lua table is both
    return isinstance(value, _TYPES[kind])


def _rule(value: Any, rule: dict, field: str, errors: list) -> None:
    kind = rule.get("type")
    fail = None
    if kind == "required":
        fail = value is None and "value is required"
    elif kind == "type":
        expected = rule.get("expected", rule.get("value", "string"))
        fail = not _is(value, expected) and f"expected {expected}"
    elif kind == "length":
        size = len(value) if isinstance(value, (str, list, dict)) else 0
        lo, hi = rule.get("min", 0), rule.get("max", float("inf"))
        fail = not lo <= size <= hi and f"length {size} outside {lo}..{hi}"
    elif kind == "range":
        lo, hi = rule.get("min", float("-inf")), rule.get("max", float("inf"))
        fail = not (isinstance(value, (int, float)) and lo <= value <= hi) and f"not in {lo}..{hi}"
    elif kind == "pattern":
        fail = (
            not (
                isinstance(value, str)
                and re.search(rule.get("pattern", rule.get("value", "")), value)
            )
            and "does not match pattern"
        )
    elif kind == "email":
        fail = not (isinstance(value, str) and _EMAIL.match(value)) and "not an email address"
    elif kind == "url":
        fail = not (isinstance(value, str) and _URL.match(value)) and "not a URL"
    elif kind == "enum":
        fail = value not in (rule.get("values") or []) and "not one of the allowed values"
    else:
        raise UsageError(f"unknown rule type: {kind}")
    if fail:
        errors.append({"field": field, "message": fail})


def _schema(value: Any, schema: dict, field: str, errors: list) -> None:
    kind = schema.get("type")
    if isinstance(kind, str) and not _is(value, kind):
        errors.append({"field": field, "message": f"expected {kind}"})
        return
    if isinstance(value, dict):
        for name in schema.get("required") or []:
            if name not in value:
                errors.append({"field": f"{field}.{name}".lstrip("."), "message": "is required"})
        for name, sub in (schema.get("properties") or {}).items():
            if name in value and isinstance(sub, dict):
                _schema(value[name], sub, f"{field}.{name}".lstrip("."), errors)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append({"field": field, "message": f"less than {schema['minimum']}"})
        if "maximum" in schema and value > schema["maximum"]:
            errors.append({"field": field, "message": f"more than {schema['maximum']}"})
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append({"field": field, "message": "too short"})
        if len(value) > schema.get("maxLength", float("inf")):
            errors.append({"field": field, "message": "too long"})
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append({"field": field, "message": "does not match pattern"})
    if "enum" in schema and value not in (schema["enum"] or []):
        errors.append({"field": field, "message": "not one of the allowed values"})


def _data_validation(params: dict, ctx: Any) -> dict:
    value = params.get("input", params.get("data"))
    errors: list[dict] = []
    rules = params.get("rules")
    if isinstance(rules, dict):
        rules = rules.get("rules", [])
    if isinstance(params.get("schema"), dict):
        _schema(value, params["schema"], "", errors)
    elif isinstance(rules, list):
        for rule in rules:
            if not isinstance(rule, dict):
                raise UsageError("each rule must be a table with a 'type'")
            _rule(value, rule, rule.get("field", ""), errors)
    else:
        raise UsageError("give 'rules' (a list of rule tables) or 'schema'")
    return {"valid": not errors, "errors": errors}


TOOL = Tool(
    "data_validation",
    "Validate data against rules or a JSON-Schema subset",
    _data_validation,
    category="data",
    operations=("validate",),
    parameters={"input": "the value", "rules": "rule tables", "schema": "a schema"},
)
