"""``http_request`` (a machine tool, off by default): one HTTP request through httpx.

``{method = "GET", url (or input), headers?, body?, json?, timeout_ms = 30000}`` ->
``{status_code, headers, body, json?}``. Timeouts always apply (connect, read, write,
pool); redirects are followed up to httpx's limit; bodies over 10 MiB are cut off and
``truncated`` set, so a script cannot exhaust memory.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]

MAX_BODY = 10 * 1024 * 1024


def _http_request(params: dict, ctx: Any) -> dict:
    import httpx

    operation = params.get("operation")
    method = text(params, "method", default=operation if isinstance(operation, str) else "GET")
    url = text(params, "url", "input")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"url must start with http:// or https://: {url}")
    timeout = params.get("timeout_ms", 30000)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError("parameter 'timeout_ms' must be a positive number")
    headers = params.get("headers") or {}
    body = params.get("body")
    payload = params.get("json")
    if isinstance(body, dict):
        payload, body = body, None
    try:
        with httpx.Client(timeout=timeout / 1000, follow_redirects=True) as client:
            with client.stream(
                method.upper(),
                url,
                headers={str(k): str(v) for k, v in headers.items()},
                content=body if isinstance(body, str) else None,
                json=payload,
            ) as answer:
                data = b""
                for chunk in answer.iter_bytes():
                    data += chunk
                    if len(data) > MAX_BODY:
                        break
    except httpx.HTTPError as e:
        raise UsageError(f"{method.upper()} {url}: {e}") from None
    shown = data[:MAX_BODY].decode("utf-8", "replace")
    result: dict[str, Any] = {
        "status_code": answer.status_code,
        "headers": dict(answer.headers),
        "body": shown,
        "truncated": len(data) > MAX_BODY,
    }
    try:
        result["json"] = json.loads(shown)
    except ValueError:
        pass
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
