"""``service_checker`` (a machine tool, off by default): is a TCP port or an HTTP URL answering?

``{check_type = "tcp", target = "host:port", timeout_ms = 5000}`` -> ``{target,
available, response_time_ms, error?}``; ``check_type = "http"`` with a URL target uses
httpx (HEAD, following no redirects) and adds ``status_code``.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]


def _service_checker(params: dict, ctx: Any) -> dict:
    kind = text(params, "check_type", "type", default="tcp")
    target = text(params, "target", "url", "host")
    timeout = params.get("timeout_ms", 5000)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError("parameter 'timeout_ms' must be a positive number")
    started = time.monotonic()
    result: dict[str, Any] = {"target": target, "check_type": kind}
    if kind == "tcp":
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"target must be host:port, got {target!r}")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout / 1000):
                result["available"] = True
        except OSError as e:
            result.update(available=False, error=e.strerror or str(e))
    elif kind in ("http", "https"):
        import httpx

        try:
            answer = httpx.head(target, timeout=timeout / 1000)
            result.update(available=answer.status_code < 500, status_code=answer.status_code)
        except httpx.HTTPError as e:
            result.update(available=False, error=str(e))
    else:
        raise UsageError(f"unknown check_type: {kind} (use tcp or http)")
    result["response_time_ms"] = (time.monotonic() - started) * 1000
    return result


TOOL = Tool(
    "service_checker",
    "Check whether a TCP port or HTTP URL answers",
    _service_checker,
    category="system",
    machine=True,
    operations=("check",),
    parameters={
        "check_type": "tcp or http",
        "target": "host:port or URL",
        "timeout_ms": "milliseconds",
    },
)
