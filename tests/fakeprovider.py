"""A fake model provider on 127.0.0.1 speaking both OpenAI chat completions and Anthropic messages.

Answers are deterministic: the text is ``"echo: " + <last user message>``, cut to
``max_tokens`` words (then the finish reason says so), and token counts are word
counts. Every request is logged in ``requests`` as ``{path, headers, json, peer}`` (header
names lower-case; ``peer`` is the client's address, one per connection). Faults queued with
:meth:`FakeProvider.inject` apply to the next requests, one per request, in order::

    fake.inject(status=429, retry_after=1)   # also 401, 403, 404, 500, 503, ...
    fake.inject(status=400, message="...")   # any status, with the error message to send
    fake.inject(delay=2.0)                   # answer late (client timeouts)
    fake.inject(drop=True, times=3)          # close the connection without answering
    fake.inject(malformed=True)              # 200 with a body that is not JSON
    fake.inject(empty=True)                  # 200 with no choices / no content

Error bodies echo the credentials the request carried, as careless servers do, so
tests can check the client scrubs them. Use as ``with FakeProvider() as fake:`` or
through the ``fake_provider`` fixture (conftest.py imports it from here). Closing
stops the server and joins every thread it started, including handlers mid-delay.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


__all__ = ["FakeProvider", "fake_provider"]

OPENAI_PATHS = ("/v1/chat/completions", "/chat/completions")
ANTHROPIC_PATH = "/v1/messages"


class FakeProvider:
    def __init__(self, api_key: str | None = None) -> None:
        """With ``api_key``, requests must carry it (Bearer or x-api-key) or get a 401."""
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.faults: collections.deque[dict[str, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def inject(
        self,
        *,
        status: int | None = None,
        retry_after: float | str | None = None,
        delay: float | None = None,
        drop: bool = False,
        malformed: bool = False,
        empty: bool = False,
        message: str | None = None,
        times: int = 1,
    ) -> None:
        fault = {
            "status": status,
            "retry_after": retry_after,
            "delay": delay,
            "message": message,
            "drop": drop,
            "malformed": malformed,
            "empty": empty,
        }
        with self._lock:
            self.faults.extend(dict(fault) for _ in range(times))

    def start(self) -> FakeProvider:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fakeprovider",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # wake handlers blocked reading a kept-alive connection
            _shutdown(conn)
        self._server.server_close()  # joins the handler threads

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_fault(self) -> dict[str, Any] | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins them: no thread outlives the fake
    block_on_close = True
    fake: FakeProvider


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = (
        True  # with wbufsize, each answer leaves in one segment, no delayed-ACK stall
    )
    wbufsize = 1 << 16
    server: _Server

    def setup(self) -> None:
        super().setup()
        fake = self.server.fake
        with fake._lock:
            fake._conns.add(self.connection)
            if fake._stopping.is_set():  # accepted as close() began: do not wait for a request
                _shutdown(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        with self.server.fake._lock:
            self.server.fake._conns.discard(self.connection)

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        with fake._lock:
            fake.requests.append(
                {"path": self.path, "headers": headers, "json": body, "peer": self.client_address}
            )
        fault = fake._next_fault() or {}
        if fault.get("delay"):
            if fake._stopping.wait(fault["delay"]):
                self.close_connection = True
                return
        if fault.get("drop"):
            self.close_connection = True
            _shutdown(self.connection)
            return
        if self.path in OPENAI_PATHS:
            kind = "openai"
        elif self.path == ANTHROPIC_PATH:
            kind = "anthropic"
        else:
            return self._json(404, _error(kind="openai", message=f"no route {self.path}"))
        credential = headers.get("x-api-key") or headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        status = fault.get("status")
        if status is None and fake.api_key is not None and credential != fake.api_key:
            status = 401
        if status is not None:
            extra = (
                {"Retry-After": str(fault["retry_after"])}
                if fault.get("retry_after") is not None
                else {}
            )
            message = fault.get("message") or {
                401: f"Incorrect API key provided: {credential}",
                403: f"Key {credential} may not use this model",
                404: f"The model `{(body or {}).get('model')}` does not exist",
                429: "Rate limit reached, slow down",
            }.get(status, "The server had an error")
            return self._json(status, _error(kind, message), extra)
        if fault.get("malformed"):
            return self._send(200, b'{"choices": [ this is not json', "application/json")
        problem = _check(kind, body, headers)
        if problem:
            return self._json(400, _error(kind, problem))
        answer = _openai_answer if kind == "openai" else _anthropic_answer
        self._json(200, answer(body, empty=bool(fault.get("empty")), n=len(fake.requests)))

    def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", extra)

    def _send(
        self, status: int, data: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout) before we answered
            self.close_connection = True


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _check(kind: str, body: Any, headers: dict[str, str]) -> str | None:
    """What the real API would reject with a 400, in the fake's words."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return "model: field required"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages: field required"
    if kind == "anthropic":
        if "anthropic-version" not in headers:
            return "anthropic-version: header is required"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: field required"
        if any(m.get("role") == "system" for m in body["messages"]):
            return "messages: system role not allowed; use the top-level system parameter"
    return None


def _reply(body: dict[str, Any]) -> tuple[str, int, int, bool]:
    users = [m.get("content", "") for m in body["messages"] if m.get("role") == "user"]
    words = ("echo: " + (users[-1] if users else "")).split(" ")
    cut = isinstance(body.get("max_tokens"), int) and len(words) > body["max_tokens"]
    if cut:
        words = words[: body["max_tokens"]]
    prompt = [str(body.get("system") or "")] + [str(m.get("content", "")) for m in body["messages"]]
    return " ".join(words), sum(len(p.split()) for p in prompt), len(words), cut


def _openai_answer(body: dict[str, Any], *, empty: bool, n: int) -> dict[str, Any]:
    text, tokens_in, tokens_out, cut = _reply(body)
    choices = (
        []
        if empty
        else [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length" if cut else "stop",
            }
        ]
    )
    return {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": 1700000000,
        "model": body["model"],
        "choices": choices,
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
    }


def _anthropic_answer(body: dict[str, Any], *, empty: bool, n: int) -> dict[str, Any]:
    text, tokens_in, tokens_out, cut = _reply(body)
    return {
        "id": f"msg_fake_{n}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [] if empty else [{"type": "text", "text": text}],
        "stop_reason": "max_tokens" if cut else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


def _error(kind: str, message: str) -> dict[str, Any]:
    if kind == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": message}}
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


def _fixture(fn):
    try:
        import pytest
    except ImportError:  # `python tests/fakeprovider.py` runs without the test extras
        return fn
    return pytest.fixture(fn)


@_fixture
def fake_provider():
    """A running :class:`FakeProvider` (no key required); closed after the test."""
    with FakeProvider() as fake:
        yield fake


if __name__ == "__main__":  # a stand-in provider for trying examples/agent.lua by hand
    import sys

    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill %1` stops it cleanly too
    with FakeProvider(api_key=None) as server:
        print(f"OPENAI_BASE_URL={server.url}/v1   (Ctrl-C stops it)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
