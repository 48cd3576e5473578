"""Model providers: OpenAI-compatible chat completions and Anthropic messages over HTTP.

A :class:`Provider` says where a model lives (``kind``, ``base_url``) and where its key
comes from (``key_env`` or ``key_file``); the key itself is read at call time and is
never stored, logged or put in an error message. :class:`Client` sends one request
shape to either kind and returns one answer shape::

    request  {model, messages: [{role, content}], system, temperature, max_tokens}
    answer   {text, model, usage: {input_tokens, output_tokens}, finish_reason}

``finish_reason`` uses OpenAI's words: ``stop``, ``length``, ``tool_calls``,
``content_filter`` (Anthropic's ``end_turn``/``max_tokens``/... are mapped onto them).
429, 5xx and connection failures are retried with jittered exponential backoff, honouring
``Retry-After`` (seconds or an HTTP date); connecting takes at most 10 s whatever the read
timeout; every failure that remains is a :class:`ProviderError` whose one-line
message names provider, model and cause. :func:`request_hash` names a request so a
replay can answer it from the records without the network.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, ProviderError, UsageError

__all__ = [
    "KINDS",
    "Client",
    "Provider",
    "normalize_request",
    "providers_from_config",
    "request_hash",
    "workspace_providers",
]

KINDS = ("openai", "anthropic")
DEFAULT_BASE_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
ENV_KEY = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
ENV_BASE_URL = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# What an HTTP header can carry as a key: printable ASCII without spaces. Anything else
# (a second line in a key file, a non-ASCII character) fails in the HTTP library with
# an error that quotes the header, key included, or with a UnicodeEncodeError.
_KEY_CHARS = re.compile(r"[\x21-\x7e]+\Z")
_REQUEST_KEYS = ("model", "messages", "system", "temperature", "max_tokens")


@dataclass(frozen=True)
class Provider:
    """Where a model lives and where its key comes from (never the key itself).

    ``key_file`` is absolute; :func:`providers_from_config` resolves a relative one
    against the workspace root.
    """

    name: str
    kind: str  # "openai" | "anthropic"
    base_url: str
    key_env: str | None = None
    key_file: str | None = None

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key, read now from the environment or the key file; None when none is configured.

        A configured source that yields nothing, or a key no HTTP header can carry, is a
        :class:`ProviderError` (not a 401 later); its message never holds the key.
        """
        try:
            return self._read_key(environ)
        except _Failure as f:
            raise ProviderError(f"{self.name}: {f.args[0]}") from None

    def _read_key(self, environ: Mapping[str, str] | None) -> str | None:
        env = os.environ if environ is None else environ
        if self.key_env:
            key = (env.get(self.key_env) or "").strip()
            if not key:
                raise _Failure(f"no API key: ${self.key_env} is not set")
            return _checked_key(key, f"${self.key_env}")
        if self.key_file:
            try:
                key = Path(self.key_file).expanduser().read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise _Failure(f"cannot read key file {self.key_file}: {reason}") from None
            if not key:
                raise _Failure(f"key file is empty: {self.key_file}")
            return _checked_key(key, f"key file {self.key_file}")
        return None

    def key_hint(self) -> str:
        if self.key_env:
            return f"check ${self.key_env}"
        if self.key_file:
            return f"check the key in {self.key_file}"
        return f"no key configured (set agents.providers.{self.name}.key_env in spell.yaml)"


def _checked_key(key: str, source: str) -> str:
    if not _KEY_CHARS.match(key):
        raise _Failure(
            f"the API key in {source} holds spaces, more than one line or non-ASCII characters "
            "(an HTTP header cannot carry it)"
        )
    return key


def providers_from_config(
    agents_cfg: Mapping[str, Any] | None, root: Path, environ: Mapping[str, str] = os.environ
) -> dict[str, Provider]:
    """Providers from the environment, added to or overridden by name by spell.yaml's
    ``agents.providers``: with ``OPENAI_API_KEY`` set and only ``anthropic`` configured,
    both ``openai`` and ``anthropic`` are there.

    From the environment: ``OPENAI_API_KEY`` gives ``openai`` (``OPENAI_BASE_URL``
    overrides the URL; set alone, it gives a keyless ``openai`` for a local server)
    and ``ANTHROPIC_API_KEY`` gives ``anthropic``
    (``ANTHROPIC_BASE_URL``). A configured ``openai`` provider may have no key (local
    servers such as Ollama need none). Bad entries raise :class:`ConfigError` naming
    the key.
    """
    if agents_cfg is not None and not isinstance(agents_cfg, Mapping):
        raise ConfigError("spell.yaml: agents: must be a mapping")
    configured = (agents_cfg or {}).get("providers")
    found = {}
    for kind in KINDS:
        has_key = bool((environ.get(ENV_KEY[kind]) or "").strip())
        base = (environ.get(ENV_BASE_URL[kind]) or "").strip()
        if has_key or (
            base and kind == "openai"
        ):  # a local server (Ollama, llama.cpp) needs no key
            found[kind] = Provider(
                kind,
                kind,
                (base or DEFAULT_BASE_URL[kind]).rstrip("/"),
                key_env=ENV_KEY[kind] if has_key else None,
            )
    if configured is None:
        return found
    if not isinstance(configured, Mapping):
        raise ConfigError("spell.yaml: agents.providers: must be a mapping of name to provider")
    found.update(
        {str(name): _provider_entry(name, entry, Path(root)) for name, entry in configured.items()}
    )
    return found


def workspace_providers(ws: Any) -> dict[str, Provider]:
    """The providers a workspace's scripts get: the environment's, then ``agents.providers``
    in spell.yaml adding to or overriding them by name."""
    return providers_from_config(
        {"providers": ws.config.get("agents.providers")}, ws.root or Path(".")
    )


def _provider_entry(name: Any, entry: Any, root: Path) -> Provider:
    where = f"spell.yaml: agents.providers.{name}"
    if not isinstance(name, str) or not name or "/" in name or name != name.strip():
        raise ConfigError(f"{where}: provider names are words without '/'")
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: must be a mapping with kind and base_url")
    unknown = sorted(set(entry) - {"kind", "base_url", "key_env", "key_file"})
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key (expected kind, base_url, key_env, key_file)"
        )
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: must be openai or anthropic")
    base_url = entry.get("base_url", DEFAULT_BASE_URL[kind])
    if not isinstance(base_url, str) or not re.match(r"https?://[^/\s]+", base_url):
        raise ConfigError(f"{where}.base_url: must be an http:// or https:// URL")
    key_env, key_file = entry.get("key_env"), entry.get("key_file")
    if key_env is not None and key_file is not None:
        raise ConfigError(f"{where}: give key_env or key_file, not both")
    if key_env is not None and not (isinstance(key_env, str) and _ENV_NAME.match(key_env)):
        raise ConfigError(f"{where}.key_env: must be an environment variable name")
    if key_file is not None:
        if not isinstance(key_file, str) or not key_file:
            raise ConfigError(f"{where}.key_file: must be a path")
        path = Path(key_file).expanduser()
        key_file = str(path if path.is_absolute() else root / path)
    if kind == "anthropic" and key_env is None and key_file is None:
        raise ConfigError(f"{where}: anthropic needs key_env or key_file")
    return Provider(name, kind, base_url.rstrip("/"), key_env=key_env, key_file=key_file)


def normalize_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request with every known key present (None when unset) and checked.

    ``temperature`` becomes a float so 1 and 1.0 are one request; unknown keys are
    kept as given (they take part in :func:`request_hash`, not in the call).
    """
    if not isinstance(request, Mapping):
        raise UsageError("agent request: must be a table")
    out = dict(request)
    for key in _REQUEST_KEYS:
        out.setdefault(key, None)
    if not isinstance(out["model"], str) or not out["model"]:
        raise UsageError("agent request: model must be a non-empty string")
    messages = out["messages"]
    if not isinstance(messages, list) or not messages:
        raise UsageError("agent request: messages must be a non-empty list")
    for i, m in enumerate(messages):
        if not (
            isinstance(m, Mapping)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
        ):
            raise UsageError(f"agent request: messages[{i}] needs string role and content")
    out["messages"] = [{"role": m["role"], "content": m["content"]} for m in messages]
    if out["system"] is not None and not isinstance(out["system"], str):
        raise UsageError("agent request: system must be a string")
    if out["temperature"] is not None:
        if type(out["temperature"]) not in (int, float):
            raise UsageError("agent request: temperature must be a number")
        out["temperature"] = float(out["temperature"])
    mt = out["max_tokens"]
    if mt is not None and (type(mt) is not int or mt < 1):
        raise UsageError("agent request: max_tokens must be a positive integer")
    return out


def request_hash(provider_kind: str, request: Mapping[str, Any]) -> str:
    """BLAKE3 hex of the canonical JSON of kind + normalised request (key order is irrelevant)."""
    from blake3 import blake3

    canon = json.dumps(
        {"kind": provider_kind, "request": normalize_request(request)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return blake3(canon.encode("utf-8")).hexdigest()


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
            key = provider._read_key(self._environ)
            url, headers, body = _build(provider, req, key)
            data = self._post(provider, url, headers, body, timeout, key)
            return (_parse_openai if provider.kind == "openai" else _parse_anthropic)(
                data, req["model"]
            )
        except _Failure as f:
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
                cause = f"cannot connect to {provider.base_url} (timed out)"
            except httpx.TimeoutException:
                raise _Failure(f"timed out after {timeout:g}s") from None
            except httpx.ConnectError as exc:
                cause = f"cannot connect to {provider.base_url} ({_one_line(exc)})"
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                cause = "connection dropped before a response"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise _Failure(f"request failed: {_one_line(exc)}") from None
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    try:
                        data = resp.json()
                    except ValueError:
                        data = None
                    if not isinstance(data, dict):
                        raise _Failure(f"malformed JSON in response (HTTP {status})")
                    return data
                detail = _server_message(resp, key)
                if status == 429 or status >= 500:
                    word = "rate limited" if status == 429 else "server error"
                    cause = f"{word} (HTTP {status}){detail}"
                    asked = _retry_after(resp.headers.get("retry-after"))
                    if asked is not None:
                        wait = min(asked, self.retry_after_cap)
                elif status in (401, 403):
                    raise _Failure(
                        f"authentication failed (HTTP {status}){detail}; {provider.key_hint()}"
                    )
                elif status == 404:
                    raise _Failure(
                        f"model not found (HTTP 404){detail}; "
                        f"check the model name and base_url {provider.base_url}"
                    )
                else:
                    raise _Failure(f"request rejected (HTTP {status}){detail}")
            if last:
                raise _Failure(cause + tries)
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


class _Failure(Exception):
    """A cause, before provider/model and key scrubbing are added by :meth:`Client.complete`."""


def _build(provider: Provider, req: dict, key: str | None) -> tuple[str, dict, dict]:
    headers = {"content-type": "application/json"}
    if provider.kind == "openai":
        messages = (
            [{"role": "system", "content": req["system"]}] if req["system"] is not None else []
        )
        body: dict[str, Any] = {"model": req["model"], "messages": messages + req["messages"]}
        if key:
            headers["authorization"] = f"Bearer {key}"
        url = f"{provider.base_url}/chat/completions"
    else:
        # Anthropic takes the system prompt top-level only; system turns are folded into it.
        system = [req["system"]] if req["system"] is not None else []
        system += [m["content"] for m in req["messages"] if m["role"] == "system"]
        body = {
            "model": req["model"],
            "messages": [m for m in req["messages"] if m["role"] != "system"],
            "max_tokens": req["max_tokens"] or DEFAULT_MAX_TOKENS,
        }
        if system:
            body["system"] = "\n\n".join(system)
        if key:
            headers["x-api-key"] = key
        headers["anthropic-version"] = ANTHROPIC_VERSION
        url = f"{provider.base_url}/v1/messages"
    if req["temperature"] is not None:
        body["temperature"] = req["temperature"]
    if provider.kind == "openai" and req["max_tokens"] is not None:
        body["max_tokens"] = req["max_tokens"]
    return url, headers, body


def _parse_openai(data: dict, model: str) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Failure("empty response: no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    text = message.get("content")
    if not isinstance(text, str):
        raise _Failure("empty response: no message content")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return _answer(
        text,
        data.get("model") or model,
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        choice.get("finish_reason"),
    )


def _parse_anthropic(data: dict, model: str) -> dict[str, Any]:
    content = data.get("content")
    if not isinstance(content, list) or not content:
        raise _Failure("empty response: no content")
    texts = [
        b["text"]
        for b in content
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    ]
    if not texts:
        raise _Failure("empty response: no text content")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    reason = data.get("stop_reason")
    return _answer(
        "".join(texts),
        data.get("model") or model,
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        _FINISH.get(reason, reason),
    )


def _answer(text: str, model: Any, tokens_in: Any, tokens_out: Any, finish: Any) -> dict[str, Any]:
    usage = {
        k: n if type(n) is int else 0
        for k, n in (("input_tokens", tokens_in), ("output_tokens", tokens_out))
    }
    return {
        "text": text,
        "model": str(model),
        "usage": usage,
        "finish_reason": str(finish) if finish is not None else None,
    }


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


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _scrub(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text
