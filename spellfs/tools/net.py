"""The network part the web tools share: one bounded HTTP exchange through httpx.

Every call has a timeout (connect, read, write, pool), only ``http://``/``https://`` URLs are
taken, and a body is read up to :data:`MAX_BODY` (then cut, and ``truncated`` says so), so
no script can hang on or exhaust memory through a web tool. Failures are
:class:`~spellfs.errors.UsageError` naming method and URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

__all__ = ["MAX_BODY", "Answer", "exchange", "seconds", "url_of"]

MAX_BODY = 10 * 1024 * 1024


@dataclass
class Answer:
    status_code: int
    headers: dict
    text: str
    truncated: bool
    elapsed_ms: float

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def url_of(params: dict, *names: str) -> str:
    for name in names or ("url", "input", "endpoint"):
        value = params.get(name)
        if isinstance(value, str):
            if not value.startswith(("http://", "https://")):
                raise UsageError(f"url must start with http:// or https://: {value[:200]}")
            return value
    raise UsageError(f"missing parameter '{(names or ('url',))[0]}'")


def seconds(params: dict, default: float = 30.0) -> float:
    """The timeout a call asked for: ``timeout_ms``, or ``timeout`` in seconds (rs-llmspell's
    examples use both), at most 300 s."""
    if "timeout_ms" in params:
        value, scale = params["timeout_ms"], 1000.0
    elif "timeout" in params:
        value, scale = params["timeout"], 1.0
    else:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise UsageError("the timeout must be a positive number")
    return min(value / scale, 300.0)


def exchange(
    method: str,
    url: str,
    *,
    timeout: float,
    headers: Any = None,
    payload: Any = None,
    content: str | bytes | None = None,
) -> Answer:
    import time

    import httpx

    if headers is not None and not isinstance(headers, dict):
        raise UsageError("parameter 'headers' must be a table")
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            with client.stream(
                method.upper(),
                url,
                headers={str(k): str(v) for k, v in (headers or {}).items()},
                json=payload,
                content=content,
            ) as answer:
                data = bytearray()
                for chunk in answer.iter_bytes():
                    data += chunk
                    if len(data) > MAX_BODY:
                        break
    except httpx.HTTPError as e:
        raise UsageError(f"{method.upper()} {url}: {e or type(e).__name__}") from None
    return Answer(
        answer.status_code,
        dict(answer.headers),
        data[:MAX_BODY].decode("utf-8", "replace"),
        len(data) > MAX_BODY,
        round((time.perf_counter() - started) * 1000, 2),
    )
