"""Model calls against hosts that do not answer, Retry-After dates, and providers from the
environment merged with spell.yaml's: real sockets, the local stand-in server."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from pathlib import Path

import pytest

from spellfs import ProviderError
from spellfs.agent import Client, Provider

from conftest import run_spell
from fakeprovider import FakeProvider

PRELUDE = 'Session.setCurrent(Session.create({name = "t"}))\n'
ASK = {"model": "m-1", "messages": [{"role": "user", "content": "hello there"}]}


class Silent:
    """Accepts every connection, reads the request, never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.sock.getsockname()[1]

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()


class Unreachable:
    """A port whose accept queue is full: connecting hangs as on a dead host (SYNs dropped)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.fillers = []
        for _ in range(4):  # fill the backlog; later connects get no SYN-ACK
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(self.sock.getsockname())
            self.fillers.append(s)
        time.sleep(0.2)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.sock.getsockname()[1]

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.sock.close()


def test_a_server_that_accepts_and_never_answers_fails_fast_in_a_script(root: Path) -> None:
    server = Silent()
    try:
        (root / "spell.yaml").write_text("agents:\n  timeout_seconds: 2\n")
        (root / "t.lua").write_text(
            PRELUDE + 'local a = Agent.create({name = "a", model = "openai/m"})\n'
            'local ok, err = pcall(a.invoke, a, "hi")\nprint(ok, err)\n'
        )
        start = time.monotonic()
        r = run_spell(
            "run", "t.lua", cwd=root, env={"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": server.url}
        )
        took = time.monotonic() - start
    finally:
        server.close()
    out = r.stdout.decode()
    assert out.startswith("false") and "timed out after 2s" in out, (out, r.stderr)
    assert took < 15


def test_connecting_is_bounded_apart_from_the_read_timeout() -> None:
    """A generous read timeout (models are slow) must not make a dead host take as long."""
    dead = Unreachable()
    try:
        with socket.create_connection(dead.sock.getsockname(), timeout=1):
            pytest.skip("this kernel accepts past a full backlog: cannot simulate a dead host")
    except OSError:
        pass
    try:
        provider = Provider("dead", "openai", dead.url + "/v1")
        start = time.monotonic()
        with Client(max_attempts=1) as c, pytest.raises(ProviderError, match="cannot connect"):
            c.complete(provider, ASK, timeout=120)
        took = time.monotonic() - start
    finally:
        dead.close()
    assert 5 < took < 30  # the 10 s connect timeout, not the 120 s read timeout


def test_retry_after_as_an_http_date_is_honoured() -> None:
    with FakeProvider() as fake, Client(max_attempts=2, backoff=0.01) as c:
        when = email.utils.formatdate(
            time.time() + 3, usegmt=True
        )  # whole seconds: 2 to 3 s from now
        fake.inject(status=503, retry_after=when)
        start = time.monotonic()
        out = c.complete(Provider("local", "openai", fake.url + "/v1"), ASK, timeout=10)
        took = time.monotonic() - start
    assert out["text"] == "echo: hello there"
    assert took >= 1.5  # waited for the date, not our 10 ms backoff


def test_backoff_is_jittered() -> None:
    from spellfs.agent.client import _jittered

    waits = {_jittered(1.0) for _ in range(50)}
    assert len(waits) > 40 and all(0.5 <= w <= 1.0 for w in waits)


def test_environment_providers_stay_when_spell_yaml_names_another(root: Path) -> None:
    with FakeProvider() as fake:
        (root / "spell.yaml").write_text(
            "agents:\n  providers:\n    anthropic:\n      kind: anthropic\n"
            f"      base_url: {fake.url}\n      key_env: ANTHROPIC_API_KEY\n"
        )
        (root / "t.lua").write_text(
            PRELUDE + 'print(Agent.create({name = "o", model = "openai/gpt-x"})'
            ':invoke("from openai").text)\n'
            'print(Agent.create({name = "c", model = "anthropic/claude-x"})'
            ':invoke("from claude").text)\n'
        )
        env = {
            "OPENAI_API_KEY": "sk-o",
            "OPENAI_BASE_URL": fake.url + "/v1",
            "ANTHROPIC_API_KEY": "sk-a",
        }
        r = run_spell("run", "t.lua", cwd=root, env=env)
        paths = [q["path"] for q in fake.requests]
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines() == ["echo: from openai", "echo: from claude"]
    assert paths == ["/v1/chat/completions", "/v1/messages"]


def test_spell_yaml_overrides_an_environment_provider_by_name(root: Path) -> None:
    with FakeProvider() as fake:
        (root / "spell.yaml").write_text(
            "agents:\n  providers:\n    openai:\n      kind: openai\n      base_url: "
            f"{fake.url}/v1\n"
        )
        (root / "t.lua").write_text(
            PRELUDE + 'print(Agent.create({name = "o", model = "openai/g"}):invoke("x").text)\n'
        )
        r = run_spell(
            "run",
            "t.lua",
            cwd=root,
            env={"OPENAI_API_KEY": "sk-o", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
        )
        assert r.returncode == 0, r.stderr.decode()
        assert "authorization" not in fake.requests[0]["headers"]  # spell.yaml's keyless entry won
