"""Provider clients against a real HTTP server (tests/fakeprovider.py)."""

from __future__ import annotations

import threading
import time

import pytest

from spellfs.errors import ConfigError, ProviderError
from spellfs.agent import Client, Provider, providers_from_config, request_hash

try:
    from fakeprovider import FakeProvider, fake_provider  # noqa: F401  (fixture)
except ImportError:  # tests/ became a package
    from tests.fakeprovider import FakeProvider, fake_provider  # noqa: F401

KEY = "sk-test-SECRET-1234"
ENV = {"FAKE_KEY": KEY}


def openai(fake, key_env="FAKE_KEY"):
    return Provider("local", "openai", fake.url + "/v1", key_env=key_env)


def anthropic(fake):
    return Provider("claude", "anthropic", fake.url, key_env="FAKE_KEY")


def ask(text="hello there", model="m-1", **extra):
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def client():
    with Client(max_attempts=3, backoff=0.01, environ=ENV) as c:
        yield c


@pytest.fixture
def keyed():
    with FakeProvider(api_key=KEY) as fake:
        yield fake


# --- success: shape and wire format -------------------------------------------------


def test_openai_answer_is_normalised(keyed, client):
    out = client.complete(openai(keyed), ask("hello there"), timeout=5)
    assert out == {
        "text": "echo: hello there",
        "model": "m-1",
        "usage": {"input_tokens": 2, "output_tokens": 3},
        "finish_reason": "stop",
    }


def test_anthropic_answer_is_normalised(keyed, client):
    out = client.complete(anthropic(keyed), ask("hello there", model="claude-x"), timeout=5)
    assert out == {
        "text": "echo: hello there",
        "model": "claude-x",
        "usage": {"input_tokens": 2, "output_tokens": 3},
        "finish_reason": "stop",
    }


def test_openai_request_body(keyed, client):
    client.complete(
        openai(keyed),
        ask("hi", model="gpt-4o-mini", system="be brief", temperature=0.5, max_tokens=7),
        timeout=5,
    )
    (req,) = keyed.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    assert req["json"] == {
        "model": "gpt-4o-mini",
        "temperature": 0.5,
        "max_tokens": 7,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
    }


def test_openai_without_key_sends_no_authorization(fake_provider, client):
    out = client.complete(openai(fake_provider, key_env=None), ask(), timeout=5)
    assert out["text"] == "echo: hello there"
    assert "authorization" not in fake_provider.requests[0]["headers"]


def test_anthropic_request_body(keyed, client):
    client.complete(
        anthropic(keyed), ask("hi", model="claude-x", system="be brief", temperature=0.0), timeout=5
    )
    (req,) = keyed.requests
    assert req["path"] == "/v1/messages"
    assert req["headers"]["x-api-key"] == KEY
    assert req["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in req["headers"]
    assert req["json"] == {
        "model": "claude-x",
        "system": "be brief",
        "max_tokens": 1024,
        "temperature": 0.0,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_anthropic_system_turns_move_to_top_level(keyed, client):
    messages = [{"role": "system", "content": "rule"}, {"role": "user", "content": "hi"}]
    client.complete(
        anthropic(keyed), {"model": "c", "messages": messages, "max_tokens": 5}, timeout=5
    )
    body = keyed.requests[0]["json"]
    assert body["system"] == "rule" and body["max_tokens"] == 5
    assert body["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("make", [openai, anthropic])
def test_max_tokens_cut_reports_length(keyed, client, make):
    out = client.complete(make(keyed), ask("one two three four", max_tokens=2), timeout=5)
    assert out["text"] == "echo: one" and out["finish_reason"] == "length"


def test_connections_are_reused(keyed, client):
    for _ in range(5):
        client.complete(openai(keyed), ask(), timeout=5)
    assert len({r["peer"] for r in keyed.requests}) == 1  # one kept-alive connection served all


# --- failures -------------------------------------------------------------------------


def fails(client, provider, request=None, timeout=5.0) -> str:
    with pytest.raises(ProviderError) as info:
        client.complete(provider, request or ask(), timeout=timeout)
    msg = str(info.value)
    assert KEY not in msg and "\n" not in msg
    return msg


@pytest.mark.parametrize("make", [openai, anthropic])
@pytest.mark.parametrize("status", [401, 403])
def test_bad_key_names_the_env_var_and_hides_the_key(keyed, client, make, status):
    keyed.inject(status=status)  # the fake echoes the key back in its error body
    msg = fails(client, make(keyed))
    assert msg.startswith(f"{make(keyed).name}/m-1: authentication failed (HTTP {status})")
    assert "$FAKE_KEY" in msg and "***" in msg
    assert len(keyed.requests) == 1  # not retried


def test_wrong_key_is_rejected_by_server(keyed):
    with Client(environ={"FAKE_KEY": "sk-wrong-key-999"}) as c:
        msg = fails(c, openai(keyed))
    assert "authentication failed (HTTP 401)" in msg and "sk-wrong-key-999" not in msg


def test_keyless_provider_refused_says_to_configure_a_key(keyed, client):
    msg = fails(client, openai(keyed, key_env=None))
    assert "authentication failed (HTTP 401)" in msg
    assert msg.endswith("no key configured (set agents.providers.local.key_env in spell.yaml)")


def test_missing_env_key_fails_before_sending(keyed):
    with Client(environ={}) as c:
        msg = fails(c, openai(keyed))
    assert msg == "local/m-1: no API key: $FAKE_KEY is not set"
    assert keyed.requests == []


@pytest.mark.parametrize("make", [openai, anthropic])
def test_model_not_found(keyed, client, make):
    keyed.inject(status=404)
    msg = fails(client, make(keyed), ask(model="nope-7"))
    assert msg.startswith(f"{make(keyed).name}/nope-7: model not found (HTTP 404)")
    assert "nope-7` does not exist" in msg


@pytest.mark.parametrize("status,word", [(429, "rate limited"), (500, "server error")])
def test_retryable_status_fails_after_attempts(keyed, client, status, word):
    keyed.inject(status=status, times=3)
    msg = fails(client, openai(keyed))
    assert msg.startswith(f"local/m-1: {word} (HTTP {status})") and msg.endswith("after 3 attempts")
    assert len(keyed.requests) == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_status_then_success(keyed, client, status):
    keyed.inject(status=status, times=2)
    assert client.complete(anthropic(keyed), ask(), timeout=5)["text"] == "echo: hello there"
    assert len(keyed.requests) == 3


def test_retry_after_is_honoured(keyed, client):
    keyed.inject(status=429, retry_after=1)
    start = time.monotonic()
    out = client.complete(openai(keyed), ask(), timeout=5)
    assert out["text"] == "echo: hello there"
    assert time.monotonic() - start >= 0.9  # waited for the server, not our 10 ms backoff


def test_retry_after_is_capped(keyed):
    keyed.inject(status=429, retry_after=3600)
    with Client(backoff=0.01, retry_after_cap=0.05, environ=ENV) as c:
        start = time.monotonic()
        c.complete(openai(keyed), ask(), timeout=5)
    assert time.monotonic() - start < 60  # far below the hour asked for, with room for load


@pytest.mark.parametrize("make", [openai, anthropic])
def test_timeout(keyed, client, make):
    keyed.inject(delay=2)
    start = time.monotonic()
    msg = fails(client, make(keyed), timeout=0.2)
    assert msg == f"{make(keyed).name}/m-1: timed out after 0.2s"
    deadline = time.monotonic() + 30  # the server's thread may record it late on a busy machine
    while not keyed.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(keyed.requests) == 1  # not retried (a retry is sent before `fails` returns)
    assert time.monotonic() - start < 60  # a hang guard only: load can stretch any wall time


@pytest.mark.parametrize("make", [openai, anthropic])
def test_dropped_connection_fails_after_attempts(keyed, client, make):
    keyed.inject(drop=True, times=3)
    msg = fails(client, make(keyed))
    assert msg == f"{make(keyed).name}/m-1: connection dropped before a response after 3 attempts"


def test_dropped_connection_is_retried(keyed, client):
    keyed.inject(drop=True)
    assert client.complete(openai(keyed), ask(), timeout=5)["text"] == "echo: hello there"


def test_nothing_listening(client):
    with FakeProvider() as fake:
        dead = openai(fake)
    msg = fails(client, dead)
    assert msg.startswith(f"local/m-1: cannot connect to {fake.url}/v1")


def test_credentials_in_a_base_url_are_never_shown(client):
    """A base_url carrying a password or a key in its query (some gateways want them there)
    is shown with those as *** in every error (red-team 2 M4: echoed in full)."""
    with FakeProvider() as fake:
        port = fake.url.rsplit(":", 1)[1]
    url = f"http://user:hunter2secret@127.0.0.1:{port}/v1?api-key=sk-query-secret&x=1"
    msg = fails(client, Provider("local", "openai", url, key_env="FAKE_KEY"))
    assert msg.startswith(
        f"local/m-1: cannot connect to http://user:***@127.0.0.1:{port}/v1?api-key=***&x=1"
    ), msg
    assert "hunter2secret" not in msg and "sk-query-secret" not in msg


@pytest.mark.parametrize("make", [openai, anthropic])
def test_malformed_json(keyed, client, make):
    keyed.inject(malformed=True)
    assert (
        fails(client, make(keyed))
        == f"{make(keyed).name}/m-1: malformed JSON in response (HTTP 200)"
    )


@pytest.mark.parametrize("make,cause", [(openai, "no choices"), (anthropic, "no content")])
def test_empty_answer(keyed, client, make, cause):
    keyed.inject(empty=True)
    assert fails(client, make(keyed)) == f"{make(keyed).name}/m-1: empty response: {cause}"


def test_bad_request_carries_server_message_and_is_not_retried(keyed, client):
    keyed.inject(status=400, message="max_tokens: 99999 > 4096")
    assert (
        fails(client, openai(keyed))
        == "local/m-1: request rejected (HTTP 400): max_tokens: 99999 > 4096"
    )
    assert len(keyed.requests) == 1


def test_key_file_is_read_at_call_time(keyed, tmp_path):
    (tmp_path / "key.txt").write_text("wrong\n")
    provider = providers_from_config(
        {
            "providers": {
                "f": {"kind": "openai", "base_url": keyed.url + "/v1", "key_file": "key.txt"}
            }
        },
        tmp_path,
    )["f"]
    with Client(max_attempts=1) as c:
        assert "authentication failed" in fails(c, provider)
        (tmp_path / "key.txt").write_text(KEY + "\n")
        assert c.complete(provider, ask(), timeout=5)["text"] == "echo: hello there"


def test_server_shuts_down_without_leaking_threads():
    before = set(threading.enumerate())
    with FakeProvider() as fake, Client(environ=ENV) as c:
        c.complete(openai(fake), ask(), timeout=5)
        fake.inject(delay=30)
        fails(c, openai(fake), timeout=0.1)
    assert set(threading.enumerate()) <= before


# --- configuration ----------------------------------------------------------------------


def test_providers_from_environment(tmp_path):
    env = {
        "OPENAI_API_KEY": KEY,
        "ANTHROPIC_API_KEY": "sk-ant",
        "ANTHROPIC_BASE_URL": "http://h:1/",
    }
    found = providers_from_config(None, tmp_path, environ=env)
    assert found == {
        "openai": Provider(
            "openai", "openai", "https://api.openai.com/v1", key_env="OPENAI_API_KEY"
        ),
        "anthropic": Provider("anthropic", "anthropic", "http://h:1", key_env="ANTHROPIC_API_KEY"),
    }
    # a URL alone is a local OpenAI-compatible server that needs no key; ANTHROPIC_BASE_URL alone
    # is nothing
    assert providers_from_config({}, tmp_path, environ={"OPENAI_BASE_URL": "http://x/v1/"}) == {
        "openai": Provider("openai", "openai", "http://x/v1")
    }
    assert providers_from_config({}, tmp_path, environ={"ANTHROPIC_BASE_URL": "http://x"}) == {}
    assert KEY not in repr(found)


def test_providers_from_config_add_to_the_environment(tmp_path):
    cfg = {
        "providers": {
            "ollama": {"kind": "openai", "base_url": "http://localhost:11434/v1"},
            "claude": {"kind": "anthropic", "key_file": "secrets/claude.key"},
        }
    }
    found = providers_from_config(cfg, tmp_path, environ={"OPENAI_API_KEY": KEY})
    assert found == {
        "openai": Provider(
            "openai", "openai", "https://api.openai.com/v1", key_env="OPENAI_API_KEY"
        ),
        "ollama": Provider("ollama", "openai", "http://localhost:11434/v1"),
        "claude": Provider(
            "claude",
            "anthropic",
            "https://api.anthropic.com",
            key_file=str(tmp_path / "secrets/claude.key"),
        ),
    }
    assert found["ollama"].api_key() is None


@pytest.mark.parametrize(
    "entry,where",
    [
        ({"kind": "gemini"}, "agents.providers.x.kind: must be openai or anthropic"),
        ({"base_url": "http://h"}, "agents.providers.x.kind: must be openai or anthropic"),
        ({"kind": "openai", "base_url": "ftp://h"}, "agents.providers.x.base_url:"),
        ({"kind": "openai", "key_env": "NOT A NAME"}, "agents.providers.x.key_env:"),
        ({"kind": "openai", "key_env": "A", "key_file": "k"}, "not both"),
        ({"kind": "openai", "api_key": "sk-inline"}, "agents.providers.x.api_key: unknown key"),
        ({"kind": "anthropic"}, "anthropic needs key_env or key_file"),
        ("openai", "agents.providers.x: must be a mapping"),
    ],
)
def test_bad_provider_config(tmp_path, entry, where):
    with pytest.raises(ConfigError) as info:
        providers_from_config({"providers": {"x": entry}}, tmp_path, environ={})
    assert str(info.value).startswith("spell.yaml: ") and where in str(info.value)


def test_bad_providers_map(tmp_path):
    with pytest.raises(ConfigError, match="agents.providers: must be a mapping"):
        providers_from_config({"providers": ["openai"]}, tmp_path, environ={})


# --- request hash ---------------------------------------------------------------------------


def test_request_hash_ignores_key_order_and_unset_fields():
    a = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1}
    b = {
        "temperature": 1.0,
        "system": None,
        "messages": [{"content": "hi", "role": "user"}],
        "model": "m",
    }
    assert request_hash("openai", a) == request_hash("openai", b)
    assert len(request_hash("openai", a)) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"model": "m2"},
        {"system": "s"},
        {"temperature": 0.5},
        {"max_tokens": 9},
        {"messages": [{"role": "user", "content": "hi!"}]},
    ],
)
def test_request_hash_differs_for_different_requests(change):
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert request_hash("openai", base) != request_hash("openai", {**base, **change})
    assert request_hash("openai", base) != request_hash("anthropic", base)


@pytest.mark.parametrize("key", [KEY + "\n# a comment line", "sk-test-SÉCRET-1234", KEY + " extra"])
def test_key_a_header_cannot_carry_fails_without_showing_it(keyed, key):
    """A second line or a non-ASCII character: a ProviderError without the key, sent nowhere."""
    with Client(max_attempts=1, environ={"FAKE_KEY": key}) as c:
        with pytest.raises(ProviderError) as info:
            c.complete(openai(keyed), ask(), timeout=5)
    msg = str(info.value)
    assert "$FAKE_KEY" in msg and "SECRET" not in msg and "SÉCRET" not in msg
    assert keyed.requests == []


def test_key_file_not_utf8_is_a_provider_error(keyed, tmp_path):
    (tmp_path / "key.txt").write_bytes(b"\xff\xfe")
    provider = providers_from_config(
        {
            "providers": {
                "f": {"kind": "openai", "base_url": keyed.url + "/v1", "key_file": "key.txt"}
            }
        },
        tmp_path,
    )["f"]
    with pytest.raises(ProviderError, match="cannot read key file .*not UTF-8"):
        provider.api_key()
