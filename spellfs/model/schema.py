"""The types of every field of every record file, checked where records are read.

Record files are outside data: a hand edit, a merge or a hostile clone may put
``"hash": 7`` or ``"tags": 5`` on a line that parses. :func:`record_problem`
says which field is wrong (or None); the artifact log skips such a record so no
reader meets it, and ``spell fsck`` reports it with file, line and field.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ..names import check_artifact_name
from ..errors import UsageError

__all__ = ["SCHEMAS", "record_problem"]

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)\Z")

Check = Callable[[Any], bool]


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _count(v: Any) -> bool:
    return _int(v) and v >= 0


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _oid(v: Any) -> bool:
    return isinstance(v, str) and bool(_HEX64.match(v))


def _time(v: Any) -> bool:
    return isinstance(v, str) and bool(_TIME.match(v))


def _name(v: Any) -> bool:
    try:
        check_artifact_name(v)
    except UsageError:
        return False
    return isinstance(v, str)


def _strs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(t, str) for t in v)


def _dict(v: Any) -> bool:
    return isinstance(v, dict)


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _opt(check: Check) -> Check:
    return lambda v: v is None or check(v)


_DESCRIBE = {
    _int: "an integer",
    _count: "a non-negative integer",
    _str: "a string",
    _oid: "a 64-hex object id",
    _time: "an RFC 3339 time",
    _name: "a valid artifact name",
    _strs: "a list of strings",
    _dict: "a mapping",
    _bool: "true or false",
    _number: "a number",
}

#: For each record file: (required fields, optional fields), each field -> its check.
SCHEMAS: dict[str, tuple[dict[str, Check], dict[str, Check]]] = {
    "artifacts.yaml": (
        {"seq": _int, "name": _name, "hash": _oid, "size": _count, "created_at": _time},
        {
            "version": _count,
            "type": _str,
            "mime_type": _str,
            "created_by": _str,
            "tags": _strs,
            "custom": _dict,
            "description": _str,
            "compressed": _bool,
        },
    ),
    "artifacts.yaml#delete": (
        {"seq": _int, "name": _name, "op": _str, "created_at": _time},
        {"created_by": _str},
    ),
    "checkpoints.yaml": (
        {"number": _count, "tree": _oid},
        {
            "time": _time,
            "message": _str,
            "parent": _opt(_count),
            "added": _count,
            "changed": _count,
            "removed": _count,
            "artifacts": _count,
            "by": _str,
        },
    ),
    "runs.yaml": (
        {"run": _str, "script_hash": _oid},
        {
            "script": _str,
            "args": _strs,
            "started_at": _time,
            "ended_at": _time,
            "exit_status": _int,
            "checkpoint": _opt(_count),
            "artifacts": lambda v: isinstance(v, list),
            "error": _str,
        },
    ),
    "calls.yaml": (
        {"agent": _str, "call": _count, "request": _oid, "response": _oid},
        {
            "seq": _int,
            "provider": _str,
            "kind": _str,
            "model": _str,
            "request_hash": _str,
            "request_artifact": _name,
            "response_artifact": _name,
            "source": _str,
            "latency_ms": _number,
            "input_tokens": _count,
            "output_tokens": _count,
            "finish_reason": _opt(_str),
            "query": _str,
            "results": _count,
            "run": _str,
            "created_at": _time,
        },
    ),
}


def record_problem(file: str, rec: dict) -> str | None:
    """What is wrong with ``rec`` as a record of ``file`` (``artifacts.yaml``, …): ``field: why``,
    or None."""
    if file == "artifacts.yaml" and rec.get("op") == "delete":
        file = "artifacts.yaml#delete"
    schema = SCHEMAS.get(file)
    if schema is None:
        return None
    required, optional = schema
    for key, check in required.items():
        if key not in rec:
            return f"{key}: missing"
        if not check(rec[key]):
            return f"{key}: {str(rec[key])[:40]!r} is not {_DESCRIBE.get(check, 'valid')}"
    for key, check in optional.items():
        if key in rec and not check(rec[key]):
            return f"{key}: {str(rec[key])[:40]!r} is not {_DESCRIBE.get(check, 'valid')}"
    return None
