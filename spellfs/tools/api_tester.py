"""``api_tester`` (``api-tester``; a machine tool, off by default): call an HTTP API and check it.

``{input (or url), method = "GET", headers?, body?, expected_status?, timeout?}`` ->
``{status_code, passed, expected_status, response_time_ms, headers, body, json?}``.
``passed`` is whether the status is ``expected_status`` (default: any 2xx).
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .base import Tool, text
from .net import exchange, seconds, url_of

__all__ = ["TOOL"]


def _api_tester(params: dict, ctx: Any) -> dict:
    url = url_of(params, "input", "url")
    method = text(params, "method", default="GET")
    body = params.get("body")
    expected = params.get("expected_status")
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise UsageError("parameter 'expected_status' must be an integer")
    answer = exchange(
        method,
        url,
        timeout=seconds(params),
        headers=params.get("headers"),
        payload=body if isinstance(body, (dict, list)) else None,
        content=body if isinstance(body, str) else None,
    )
    code = answer.status_code
    result: dict[str, Any] = {
        "status_code": code,
        "passed": code == expected if expected is not None else 200 <= code < 300,
        "expected_status": expected,
        "response_time_ms": answer.elapsed_ms,
        "headers": answer.headers,
        "body": answer.text,
    }
    doc = answer.json()
    if doc is not None:
        result["json"] = doc
    return result


TOOL = Tool(
    "api_tester",
    "Call an HTTP API and check its status",
    _api_tester,
    category="web",
    machine=True,
    operations=("test",),
    parameters={
        "input": "the URL",
        "method": "GET, POST, …",
        "body": "table (JSON) or text",
        "expected_status": "integer",
    },
)
