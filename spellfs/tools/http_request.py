"""``http_request`` (a machine tool, off by default): one HTTP request through httpx.

``{method = "GET", url (or input), headers?, body?, json?, timeout_ms = 30000}`` ->
``{status_code, headers, body, json?}``. Timeouts always apply (connect, read, write,
pool); redirects are followed up to httpx's limit; bodies over 10 MiB are cut off and
``truncated`` set, so a script cannot exhaust memory.
"""

from __future__ import annotations

from typing import Any

from .base import Tool, text
from .net import exchange, seconds, url_of

__all__ = ["TOOL"]


def _http_request(params: dict, ctx: Any) -> dict:
    operation = params.get("operation")
    method = text(params, "method", default=operation if isinstance(operation, str) else "GET")
    url = url_of(params, "url", "input")
    body = params.get("body")
    payload = params.get("json")
    if isinstance(body, dict):
        payload, body = body, None
    answer = exchange(
        method,
        url,
        timeout=seconds(params),
        headers=params.get("headers") or {},
        payload=payload,
        content=body if isinstance(body, str) else None,
    )
    result: dict[str, Any] = {
        "status_code": answer.status_code,
        "headers": answer.headers,
        "body": answer.text,
        "truncated": answer.truncated,
    }
    data = answer.json()
    if data is not None or answer.text.strip() == "null":
        result["json"] = data
    return result


TOOL = Tool(
    "http_request",
    "Make an HTTP request (httpx, with timeouts)",
    _http_request,
    category="web",
    machine=True,
    operations=("get", "post", "put", "delete", "head"),
    parameters={
        "url": "the URL",
        "method": "GET, POST, …",
        "headers": "table",
        "body": "text or table (sent as JSON)",
        "timeout_ms": "milliseconds",
    },
)
