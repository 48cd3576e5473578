"""The HTTP client that sends a request to a provider and returns its answer.

:class:`Client` sends one request shape (:mod:`.request`) to either kind (:mod:`.wire`)
and returns one answer shape. 429, 5xx and connection failures are retried with jittered
exponential backoff, honouring ``Retry-After`` (seconds or an HTTP date); connecting
takes at most 10 s whatever the read timeout; every failure that remains is a
:class:`ProviderError` whose one-line message names provider, model and cause, never
the key. Only this module imports httpx, and only when a call is made.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Mapping

from ..errors import ProviderError
from .providers import KINDS, Failure, Provider
from .request import normalize_request
from .wire import build, parse_anthropic, parse_openai

__all__ = ["CONNECT_TIMEOUT", "Client"]


class Client:
    """Sends requests to providers, one pooled ``httpx.Client`` per provider (thread-safe).

    ``max_attempts`` counts the first try; retry *n* waits ``backoff * 2**(n-1)``
    seconds, jittered (between half and all of it), or the server's ``Retry-After``
    (seconds or an HTTP date) capped at ``retry_after_cap``. Each attempt may take
    ``timeout`` seconds for the answer but at most :data:`CONNECT_TIMEOUT` to connect.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 4,
        backoff: float = 0.5,
        retry_after_cap: float = 30.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.retry_after_cap = retry_after_cap
        self._environ = environ
        self._http: dict[Provider, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            clients, self._http = list(self._http.values()), {}
        for c in clients:
            c.close()

    def _client_for(self, provider: Provider) -> Any:
        with self._lock:
            client = self._http.get(provider)
            if client is None:
                import httpx

                client = self._http[provider] = httpx.Client(follow_redirects=False)
            return client

    def complete(
        self, provider: Provider, request: Mapping[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Ask the provider; the normalised answer or a :class:`ProviderError`."""
        if provider.kind not in KINDS:
            raise ProviderError(f"{provider.name}: unknown provider kind {provider.kind!r}")
        req = normalize_request(request)
        key = None
        try:
            key = provider.read_key(self._environ)
            url, headers, body = build(provider, req, key)
            data = self._post(provider, url, headers, body, timeout, key)
            return (parse_openai if provider.kind == "openai" else parse_anthropic)(
                data, req["model"]
            )
        except Failure as f:
            raise ProviderError(
                _scrub(f"{provider.name}/{req['model']}: {f.args[0]}", key)
            ) from None

    def _post(
        self,
        provider: Provider,
        url: str,
        headers: dict,
        body: dict,
        timeout: float,
        key: str | None,
    ) -> dict:
        import httpx

        client = self._client_for(provider)
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            tries = f" after {attempt} attempt{'s' if attempt > 1 else ''}"
            wait = _jittered(self.backoff * 2 ** (attempt - 1))
            try:
                resp = client.post(url, json=body, headers=headers, timeout=_timeouts(timeout))
            except httpx.ConnectTimeout:
                cause = f"cannot connect to {shown_url(provider.base_url)} (timed out)"
            except httpx.TimeoutException:
                raise Failure(f"timed out after {timeout:g}s") from None
            except httpx.ConnectError as exc:
                cause = (
                    f"cannot connect to {shown_url(provider.base_url)} "
                    f"({_hide(_one_line(exc), provider.base_url)})"
                )
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                cause = "connection dropped before a response"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise Failure(
                    f"request failed: {_hide(_one_line(exc), provider.base_url)}"
                ) from None
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    try:
                        data = resp.json()
                    except ValueError:
                        data = None
                    if not isinstance(data, dict):
                        raise Failure(f"malformed JSON in response (HTTP {status})")
                    return data
                detail = _server_message(resp, key)
                if status == 429 or status >= 500:
                    word = "rate limited" if status == 429 else "server error"
                    cause = f"{word} (HTTP {status}){detail}"
                    asked = _retry_after(resp.headers.get("retry-after"))
                    if asked is not None:
                        wait = min(asked, self.retry_after_cap)
                elif status in (401, 403):
                    raise Failure(
                        f"authentication failed (HTTP {status}){detail}; {provider.key_hint()}"
                    )
                elif status == 404:
                    raise Failure(
                        f"model not found (HTTP 404){detail}; "
                        f"check the model name and base_url {shown_url(provider.base_url)}"
                    )
                else:
                    raise Failure(f"request rejected (HTTP {status}){detail}")
            if last:
                raise Failure(cause + tries)
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


CONNECT_TIMEOUT = 10.0


def _timeouts(read: float) -> Any:
    """``read`` for the answer, at most :data:`CONNECT_TIMEOUT` to connect: a dead host fails in
    seconds, not ``max_attempts`` × the time a model may take to answer."""
    import httpx

    return httpx.Timeout(read, connect=min(CONNECT_TIMEOUT, read))


def _jittered(base: float) -> float:
    """Half fixed, half random, so clients that failed together do not retry together."""
    return base / 2 + random.uniform(0, base / 2)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    import datetime

    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _server_message(resp: Any, key: str | None) -> str:
    """``": <the server's error message>"``, one line, short, without the key; or ``""``."""
    try:
        data = resp.json()
        err = data.get("error") if isinstance(data, dict) else None
        msg = err.get("message") if isinstance(err, dict) else err if isinstance(err, str) else None
    except ValueError:
        msg = resp.text
    msg = _one_line(_scrub(str(msg or ""), key))
    return f": {msg[:200]}" if msg else ""


def _url_secrets(url: str) -> list[str]:
    """What a ``base_url`` may carry that is no one's business: a password, query values."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
    except ValueError:
        return []
    found += [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    return sorted({f for f in found if len(f) >= 3}, key=len, reverse=True)


def _hide(text: str, url: str) -> str:
    for secret in _url_secrets(url):
        text = text.replace(secret, "***")
    return text


def shown_url(url: str) -> str:
    """``url`` as an error shows it: a password in it and its query's values as ``***``."""
    return _hide(url, url)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _scrub(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text
