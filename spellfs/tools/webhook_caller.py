"""``webhook_caller`` (``webhook-caller``; a machine tool, off by default): send a payload to a
webhook, retrying failures.

``{input (or url), method = "POST", payload?, headers?, retry_count (or max_retries) = 0,
retry_delay = 1000 (ms), timeout?}`` -> ``{status_code, success, attempts, body}``.
A connection failure or a 5xx/429 answer is retried up to ``retry_count`` times (at most
5, waits at most 10 s); ``success`` is a 2xx answer.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import UsageError
from .base import Tool, text
from .net import exchange, seconds, url_of

__all__ = ["TOOL"]


def _count(params: dict, *names: str, default: int, most: int) -> int:
    for name in names:
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"parameter '{name}' must be a non-negative integer")
        return min(value, most)
    return default


def _webhook(params: dict, ctx: Any) -> dict:
    url = url_of(params, "input", "url")
    method = text(params, "method", default="POST")
    payload = params.get("payload", {})
    retries = _count(params, "retry_count", "max_retries", default=0, most=5)
    delay = _count(params, "retry_delay", default=1000, most=10_000) / 1000
    attempts = 0
    while True:
        attempts += 1
        try:
            answer = exchange(
                method, url, timeout=seconds(params), headers=params.get("headers"), payload=payload
            )
        except UsageError:
            if attempts > retries:
                raise
        else:
            code = answer.status_code
            if not (code >= 500 or code == 429) or attempts > retries:
                return {
                    "status_code": code,
                    "success": 200 <= code < 300,
                    "attempts": attempts,
                    "body": answer.text,
                }
        time.sleep(delay)


TOOL = Tool(
    "webhook_caller",
    "Send a payload to a webhook, with retries",
    _webhook,
    category="web",
    machine=True,
    operations=("call", "call_with_retry"),
    parameters={
        "input": "the webhook URL",
        "payload": "table (sent as JSON)",
        "retry_count": "retries on failure",
        "retry_delay": "milliseconds",
    },
)
