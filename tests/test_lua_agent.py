"""The Agent global: calls recorded as history, replayed offline, faults as catchable errors, keys
never written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fakeprovider
from fakeprovider import FakeProvider
from spellfs import ConfigError, Workspace
from spellfs.agent import read_calls, usage_summary
from spellfs.lua import agent_api, agent_calls
from spellfs.lua.runtime import run_script
from spellfs.store.yamlio import load_yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEY = "sk-test-SECRET-9f8e7d6c5b4a"

ASK = """
local sid = Session.getCurrent() or os.getenv("SPELL_SESSION")
if sid == nil then sid = Session.create({name = "asker"}) end
Session.setCurrent(sid)
local agent = Agent.create({name = "helper", model = "openai/m1", system_prompt = "Be brief.", max_tokens = 50})
local a = agent:invoke({text = "first question"})
local b = agent:invoke({text = "second question " .. (arg[1] or "")})
Artifact.store(sid, "agent_output", "answers.txt", a.text .. "\\n" .. b.text)
print("sid=" .. sid)
"""  # noqa: E501


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_calls, "CLIENT_OPTIONS", {"backoff": 0.0, "max_attempts": 3})


def _env(fake: FakeProvider, key: str = KEY) -> dict:
    return {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": fake.url + "/v1"}


def _lua(ws: Workspace, code: str, args: tuple = ()) -> dict:
    """Run ``code`` in-process; return the global ``result`` as Python data."""
    rt = run_script(ws, "t.lua", code.encode(), args)
    return rt.py(rt.globals[b"result"])


def _session_dir(root: Path, sid: str) -> Path:
    [d] = [p for p in (root / "sessions").iterdir() if p.name.endswith(sid[:8])]
    return d


def _grep_tree(root: Path, needle: str) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file() and needle.encode() in p.read_bytes():
            hits.append(str(p.relative_to(root)))
    return hits


# -- presence -------------------------------------------------------------------------------
def test_agent_is_nil_without_a_provider_and_using_it_says_how_to_configure(
    spell, root: Path
) -> None:
    (root / "check.lua").write_text("print(Agent == nil)\n")
    r = spell("-w", str(root), "run", str(root / "check.lua"))
    assert r.returncode == 0 and r.stdout.decode().strip() == "true"
    (root / "use.lua").write_text('local a = Agent.create({model = "openai/x"})\n')
    r = spell("-w", str(root), "run", str(root / "use.lua"))
    err = r.stderr.decode()
    assert r.returncode == 1
    assert "use.lua:1:" in err and "global 'Agent'" in err
    assert "OPENAI_API_KEY" in err and "OPENAI_BASE_URL" in err and "agents.providers" in err
    assert err.count("\n") == 1 and err.startswith("Error: ")  # one line, with its hint


def test_integration_example_takes_its_agent_branch(
    spell, tmp_path: Path, fake_provider: FakeProvider
) -> None:
    ws = tmp_path / "demo"
    ws.mkdir()
    r = spell("run", str(EXAMPLES / "integration.lua"), cwd=ws, env=_env(fake_provider))
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "Available: State, Event, Hook, Tool, Agent" in out
    assert "the model answered: echo: What is 42 * 10 + 7?" in out
    [d] = [p for p in (ws / "sessions").iterdir() if p.name.startswith("integration-demo-")]
    assert (d / "files" / "agent_answer.txt").read_text() == "echo: What is 42 * 10 + 7?"
    [call] = load_yaml((d / "calls.yaml").read_bytes(), "calls.yaml")
    assert call["agent"] == "integration_assistant" and call["model"] == "gpt-4o-mini"
    assert (d / "files" / call["response_artifact"]).is_file()
    assert len(fake_provider.requests) == 1
    system = {"role": "system", "content": "Answer with the number only."}
    assert fake_provider.requests[0]["json"]["messages"][0] == system


def test_example_agent_lua_runs_against_the_fake(
    spell, tmp_path: Path, fake_provider: FakeProvider
) -> None:
    ws = tmp_path / "demo"
    ws.mkdir()
    env = {**_env(fake_provider), "SPELL_EXAMPLE_MODEL": "openai/fake-1"}
    r = spell("run", str(EXAMPLES / "agent.lua"), cwd=ws, env=env)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert out.strip().splitlines()[-1] == "Agent Completed!"
    assert "fake-1 said: echo: Name three primary colours." in out
    assert "provider not configured: no-such-provider" in out
    assert re.search(r"^  2 calls, [0-9]+ input and [0-9]+ output tokens$", out, re.M), out
    [d] = [p for p in (ws / "sessions").iterdir() if p.name.startswith("agent-demo-")]
    assert {p.name for p in (d / "files").iterdir()} == {
        "answer.md",
        "assistant-0001.request.json",
        "assistant-0001.response.json",
        "assistant-0002.request.json",
        "assistant-0002.response.json",
    }
    # and without a provider it says so and still completes
    r = spell("run", str(EXAMPLES / "agent.lua"), cwd=ws)
    assert r.returncode == 0 and "Agent is nil" in r.stdout.decode()


# -- what a call records ---------------------------------------------------------------------------
def test_call_records_request_response_and_record(
    ws: Workspace, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in _env(fake_provider).items():
        monkeypatch.setenv(k, v)
    sid = ws.sessions.create(name="rec")
    result = _lua(
        ws,
        f"""
local agent = Agent.create({{name = "writer", model = "openai/gpt-x", system_prompt = "sys", temperature = 1,
  max_tokens = 3, session_id = "{sid}"}})
local a = agent:invoke({{messages = {{{{role = "user", content = "one two three four"}}}}}})
result = {{answer = a, list = Agent.list(), usage = Session.get("{sid}").usage, agent_model = agent.model}}
""",  # noqa: E501
    )
    assert result["answer"] == {
        "text": "echo: one two",
        "model": "gpt-x",
        "finish_reason": "length",
        "usage": {"input_tokens": 5, "output_tokens": 3},
        "content": "echo: one two",
    }  # rs-llmspell's name for the text too
    assert result["list"] == [
        {
            "name": "writer",
            "model": "openai/gpt-x",
            "provider": "openai",
            "session_id": sid,
            "description": "",
        }
    ]
    assert result["agent_model"] == "openai/gpt-x"
    [rec] = read_calls(ws, ws.sessions.resolve(sid))
    assert rec["seq"] == 1 and rec["call"] == 1 and rec["agent"] == "writer"
    assert rec["provider"] == rec["kind"] == "openai" and rec["model"] == "gpt-x"
    assert rec["source"] == "live" and rec["latency_ms"] > 0
    assert (
        rec["input_tokens"] == 5 and rec["output_tokens"] == 3 and rec["finish_reason"] == "length"
    )
    assert len(rec["request_hash"]) == 64 and "run" not in rec  # no `spell run` here
    req = json.loads(ws.artifacts.get(sid, "writer-0001.request.json")["content"])
    assert req == {
        "agent": "writer",
        "provider": "openai",
        "kind": "openai",
        "model": "gpt-x",
        "system": "sys",
        "messages": [{"role": "user", "content": "one two three four"}],
        "temperature": 1.0,
        "max_tokens": 3,
    }
    resp = ws.artifacts.get(sid, "writer-0001.response.json")
    assert {**json.loads(resp["content"]), "content": "echo: one two"} == result["answer"]
    assert resp["metadata"]["artifact_type"] == "agent_output"
    assert resp["metadata"]["content_hash"] == rec["response"]
    assert (
        ws.artifacts.get(sid, "writer-0001.request.json")["metadata"]["content_hash"]
        == rec["request"]
    )
    from spellfs.agent import request_hash

    assert rec["request_hash"] == request_hash(
        "openai", {k: req[k] for k in ("model", "system", "messages", "temperature", "max_tokens")}
    )
    usage = usage_summary(ws, sid)
    per_model = {"openai/gpt-x": {"calls": 1, "input_tokens": 5, "output_tokens": 3}}
    assert (
        usage
        == result["usage"]
        == {
            "calls": 1,
            "input_tokens": 5,
            "output_tokens": 3,
            "replayed": 0,
            "cached": 0,
            "by_model": per_model,
        }
    )
    body = fake_provider.requests[0]["json"]
    assert body == {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "one two three four"},
        ],
        "temperature": 1.0,
        "max_tokens": 3,
    }


def test_calls_number_on_across_runs_and_show_sums_usage(
    spell, root: Path, fake_provider: FakeProvider
) -> None:
    (root / "ask.lua").write_text(ASK)
    r = spell("-w", str(root), "run", str(root / "ask.lua"), env=_env(fake_provider))
    assert r.returncode == 0, r.stderr.decode()
    sid = r.stdout.decode().split("sid=")[1].strip()
    r = spell(
        "-w",
        str(root),
        "run",
        str(root / "ask.lua"),
        "again",
        env={**_env(fake_provider), "SPELL_SESSION": sid},
    )
    assert r.returncode == 0, r.stderr.decode()
    d = _session_dir(root, sid)
    calls = load_yaml((d / "calls.yaml").read_bytes(), "calls.yaml")
    assert [c["seq"] for c in calls] == [1, 2, 3, 4] and [c["call"] for c in calls] == [1, 2, 3, 4]
    assert calls[0]["run"] == calls[1]["run"] != calls[2]["run"] == calls[3]["run"]
    runs = load_yaml((d / "runs.yaml").read_bytes(), "runs.yaml")
    assert {a["name"] for a in runs[0]["artifacts"]} >= {
        "helper-0001.request.json",
        "helper-0002.response.json",
    }
    r = spell("-w", str(root), "show", sid, "--json")
    info = json.loads(r.stdout)
    assert info["usage"]["calls"] == 4
    assert info["usage"]["by_model"]["openai/m1"]["calls"] == 4
    assert info["usage"]["input_tokens"] == sum(c["input_tokens"] for c in calls)
    r = spell("-w", str(root), "show", sid)
    text = r.stdout.decode()
    assert "model calls:       4 (0 replayed, 0 cached)" in text and "openai/m1: 4 calls" in text


def test_anthropic_provider_from_spell_yaml(
    root: Path, monkeypatch: pytest.MonkeyPatch, fake_provider: FakeProvider
) -> None:
    (root / "spell.yaml").write_text(
        f"agents:\n  providers:\n    claude:\n      kind: anthropic\n"
        f"      base_url: {fake_provider.url}\n      key_env: MY_CLAUDE_KEY\n"
    )
    monkeypatch.setenv("MY_CLAUDE_KEY", KEY)
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="c")
        ws.current_session = sid
        result = _lua(
            ws,
            'result = Agent.create({model = "claude/claude-x", system_prompt = '
            '"s"}):invoke("hi there")',
        )
        assert result["text"] == "echo: hi there" and result["finish_reason"] == "stop"
        [rec] = read_calls(ws, ws.sessions.resolve(sid))
        assert (
            rec["provider"] == "claude" and rec["kind"] == "anthropic" and rec["agent"] == "agent"
        )
    assert fake_provider.requests[0]["headers"]["x-api-key"] == KEY
    assert not _grep_tree(root, KEY)


# -- keys -------------------------------------------------------------------------------------
def test_key_never_reaches_the_workspace_or_any_output(spell, root: Path, tmp_path: Path) -> None:
    with FakeProvider(api_key=KEY) as fake:
        (root / "ask.lua").write_text(ASK)
        outputs = []
        r = spell("-w", str(root), "run", str(root / "ask.lua"), env=_env(fake))
        outputs.append(r)
        assert r.returncode == 0, r.stderr.decode()
        sid = r.stdout.decode().split("sid=")[1].strip()
        # a wrong key: the fake echoes it in its 401 body; the error must not carry it
        wrong = "sk-WRONG-" + KEY[::-1]
        (root / "bad.lua").write_text(
            'Session.setCurrent(Session.create({name = "b"}))\n'
            'Agent.create({model = "openai/m1"}):invoke("x")\n'
        )
        r = spell("-w", str(root), "run", str(root / "bad.lua"), env=_env(fake, wrong))
        outputs.append(r)
        assert r.returncode == 1 and "authentication failed (HTTP 401)" in r.stderr.decode()
        # a key file outside the workspace
        keyfile = tmp_path / "openai.key"
        keyfile.write_text(KEY + "\n")
        (root / "spell.yaml").write_text(
            f"agents:\n  providers:\n    openai:\n      kind: openai\n"
            f"      base_url: {fake.url}/v1\n      key_file: {keyfile}\n"
        )
        r = spell("-w", str(root), "run", str(root / "ask.lua"), env={"SPELL_SESSION": sid})
        outputs.append(r)
        assert r.returncode == 0, r.stderr.decode()
        for args in (
            ("show", sid, "--json"),
            ("show", sid),
            ("ls", "--all", "--json"),
            ("log", sid),
            ("replay", sid, "--json"),
            ("fsck",),
        ):
            outputs.append(spell("-w", str(root), *args, env=_env(fake)))
        assert outputs[-2].returncode == 0, (
            outputs[-2].stdout.decode() + outputs[-2].stderr.decode()
        )
    assert len(fake.requests) >= 5
    for r in outputs:
        for needle in (KEY, wrong):
            assert needle not in r.stdout.decode() and needle not in r.stderr.decode()
    (root / "spell.yaml").write_text("")
    assert _grep_tree(root, KEY) == [] and _grep_tree(root, wrong) == []
    assert _grep_tree(root, KEY[-12:]) == []


# -- replay -------------------------------------------------------------------------------------
def _record(spell, root: Path, fake: FakeProvider) -> str:
    (root / "ask.lua").write_text(ASK)
    r = spell("-w", str(root), "run", str(root / "ask.lua"), env=_env(fake))
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().split("sid=")[1].strip()


def test_replay_answers_from_records_offline(spell, root: Path) -> None:
    with FakeProvider() as fake:
        sid = _record(spell, root, fake)
        env = _env(fake)
    assert len(fake.requests) == 2
    # the server is gone: a replay that called it would fail
    r = spell("-w", str(root), "replay", sid, "--json", env=env)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    rep = json.loads(r.stdout)
    assert rep["same"] and rep["calls_same"] == 2 and rep["calls_differ"] == 0
    assert {a["name"]: a["result"] for a in rep["runs"][0]["artifacts"]} == {
        "answers.txt": "same",
        "helper-0001.request.json": "same",
        "helper-0001.response.json": "same",
        "helper-0002.request.json": "same",
        "helper-0002.response.json": "same",
    }
    assert (
        rep["worlds"] == [] and list((root / ".spell" / "replay").glob("*")) == []
    )  # the world is gone
    r = spell("-w", str(root), "replay", sid, "--keep", "--json", env=env)
    rep = json.loads(r.stdout)
    [world] = rep["worlds"]
    [replayed] = rep["runs"][0]["sessions"]
    with Workspace.open(root / world) as wws:
        fork_calls = read_calls(wws, replayed["replay_path"].split("/", 1)[1])
        assert [c["source"] for c in fork_calls] == ["replay", "replay"]
        assert fork_calls[0]["latency_ms"] is None
        assert usage_summary(wws, replayed["replay_session_id"])["replayed"] == 2
    with Workspace.open(root) as ws:
        assert [c["source"] for c in read_calls(ws, _session_dir(root, sid).name)] == [
            "live",
            "live",
        ]
    r = spell("-w", str(root), "replay", sid, env=env)
    assert "call 1 helper (openai/m1, replay): same" in r.stdout.decode()
    assert "model calls: 2 same, 0 different (answered from records)" in r.stdout.decode()
    # without any provider configured, the replay still has Agent and still answers
    r = spell("-w", str(root), "replay", sid, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["same"], r.stdout.decode() + r.stderr.decode()


def test_replay_without_a_recording_is_an_error_naming_the_call(
    root: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in _env(fake_provider).items():
        monkeypatch.setenv(k, v)
    with Workspace.open(root) as ws:
        orig = ws.sessions.create(name="orig")
        ws.current_session = orig
        _lua(ws, 'result = Agent.create({name = "a1", model = "openai/m"}):invoke("recorded")')
        fork = ws.history.fork(orig, None, {"name": "fork"})
    monkeypatch.setenv("SPELL_REPLAY", "1")
    monkeypatch.setenv("SPELL_SESSION", fork)
    before = len(fake_provider.requests)
    with Workspace.open(root) as ws:
        ws.current_session = fork
        result = _lua(
            ws,
            """
local agent = Agent.create({name = "a1", model = "openai/m"})
local a = agent:invoke("recorded")
local ok, err = pcall(agent.invoke, agent, "never asked")
result = {text = a.text, ok = ok, err = err}
""",
        )
        assert result["text"] == "echo: recorded" and result["ok"] is False
        assert "agent a1" in result["err"] and "openai/m" in result["err"]
        assert "no recorded answer" in result["err"] and "--live" in result["err"]
        from spellfs.agent import request_hash

        h = request_hash(
            "openai", {"model": "m", "messages": [{"role": "user", "content": "never asked"}]}
        )
        assert h[:12] in result["err"]
        assert [c["source"] for c in read_calls(ws, ws.sessions.resolve(fork))] == ["replay"]
    assert len(fake_provider.requests) == before


def test_replay_live_reports_what_differs(
    spell, root: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = _record(spell, root, fake_provider)
    original = fakeprovider._reply

    def changed(body):  # the model now answers the second question differently
        text, tin, tout, cut = original(body)
        return (text.upper() if "second" in text else text), tin, tout, cut

    monkeypatch.setattr(fakeprovider, "_reply", changed)
    r = spell("-w", str(root), "replay", sid, "--live", "--json", env=_env(fake_provider))
    assert r.returncode == 1, r.stdout.decode() + r.stderr.decode()
    rep = json.loads(r.stdout)
    assert len(fake_provider.requests) == 4
    calls = rep["runs"][0]["calls"]
    assert [c["result"] for c in calls] == ["same", "differs"] and rep["calls_differ"] == 1
    assert (
        calls[1]["original_text"] == "echo: second question "
        and calls[1]["replay_text"] == "ECHO: SECOND QUESTION "
    )
    assert (
        calls[1]["agent"] == "helper"
        and calls[1]["model"] == "openai/m1"
        and calls[1]["source"] == "live"
    )
    results = {a["name"]: a["result"] for a in rep["runs"][0]["artifacts"]}
    assert (
        results["helper-0002.response.json"] == "differs"
        and results["helper-0001.response.json"] == "same"
    )
    assert results["answers.txt"] == "differs"
    r = spell("-w", str(root), "replay", sid, "--live", env=_env(fake_provider))
    text = r.stdout.decode()
    assert "differs  helper-0002.response.json" in text
    assert "call 2 helper (openai/m1, live): differs" in text
    assert "model calls: 1 same, 1 different (asked again)" in text


# -- faults -------------------------------------------------------------------------------------
FAULTS = [
    (dict(status=401), "authentication failed (HTTP 401)"),
    (dict(status=404), "model not found (HTTP 404)"),
    (dict(status=429, retry_after=0, times=3), "rate limited (HTTP 429)"),
    (dict(status=500, times=3), "server error (HTTP 500)"),
    (dict(drop=True, times=3), "connection dropped"),
    (dict(malformed=True), "malformed JSON"),
    (dict(empty=True), "empty response: no choices"),
    (dict(delay=3.0), "timed out after 1s"),
]


@pytest.mark.parametrize("fault,cause", FAULTS, ids=[c.split(" (")[0] for _, c in FAULTS])
def test_provider_faults_are_catchable_errors_and_record_nothing(
    root: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch, fault, cause
) -> None:
    for k, v in _env(fake_provider).items():
        monkeypatch.setenv(k, v)
    (root / "spell.yaml").write_text("agents:\n  timeout_seconds: 1\n")
    fake_provider.inject(**fault)
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="f")
        ws.current_session = sid
        result = _lua(
            ws,
            """
local agent = Agent.create({name = "faulty", model = "openai/gpt-fault"})
local ok, err = pcall(agent.invoke, agent, {text = "hello"})
result = {ok = ok, err = err}
""",
        )
        assert result["ok"] is False
        err = result["err"]
        # pcall calls invoke directly, so Lua has no script line to put first
        assert err.startswith("agent faulty: openai/gpt-fault: ") and cause in err, err
        assert KEY not in err
        d = ws.sessions.resolve(sid)
        assert read_calls(ws, d) == [] and ws.artifacts.list(sid) == []
        assert not (root / "sessions" / d / "calls.yaml").exists()
        # the next call works and is the first recorded
        result = _lua(
            ws,
            'result = Agent.create({name = "faulty", model = "openai/gpt-fault"}):invoke("hello")',
        )
        assert result["text"] == "echo: hello"
        assert [c["call"] for c in read_calls(ws, d)] == [1]
    assert _grep_tree(root, KEY) == []


def test_uncaught_fault_fails_the_run_naming_provider_model_and_cause(
    spell, root: Path, fake_provider: FakeProvider
) -> None:
    fake_provider.inject(status=404)
    (root / "ask.lua").write_text(ASK)
    r = spell("-w", str(root), "run", str(root / "ask.lua"), env=_env(fake_provider))
    err = r.stderr.decode()
    assert r.returncode == 1
    assert "ask.lua:6: agent helper: openai/m1: model not found (HTTP 404)" in err
    for d in (root / "sessions").iterdir():
        assert (
            not (d / "calls.yaml").exists()
            and not (d / "files").exists()
            or not any((d / "files").iterdir())
        )


# -- cache, options -----------------------------------------------------------------------------
def test_workspace_cache_answers_identical_requests(
    root: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in _env(fake_provider).items():
        monkeypatch.setenv(k, v)
    (root / "spell.yaml").write_text("agents:\n  cache: true\n")
    with Workspace.open(root) as ws:
        a, b = ws.sessions.create(name="a"), ws.sessions.create(name="b")
        result = _lua(
            ws,
            f"""
local x = Agent.create({{model = "openai/m", session_id = "{a}"}}):invoke("same")
local y = Agent.create({{model = "openai/m", session_id = "{b}"}}):invoke("same")
local z = Agent.create({{model = "openai/m", session_id = "{b}"}}):invoke("other")
result = {{x.text, y.text, z.text}}
""",
        )
        assert result == ["echo: same", "echo: same", "echo: other"]
        assert len(fake_provider.requests) == 2
        assert [c["source"] for c in read_calls(ws, ws.sessions.resolve(b))] == ["cache", "live"]
        assert usage_summary(ws, b)["cached"] == 1


def test_create_checks_its_options(
    root: Path,
    fake_provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    for k, v in _env(fake_provider).items():
        monkeypatch.setenv(k, v)
    with Workspace.open(root) as ws:
        result = _lua(
            ws,
            """
local function err(opts) local ok, e = pcall(Agent.create, opts) return e end
result = {
  unknown = Agent.create({model = "openai/m", temprature = 1, tools = {}}).model,
  again = Agent.create({model = "openai/m", temprature = 1}).model,
  nomodel = err({name = "x"}),
  provider = err({model = "mistral/m"}),
  name = err({name = "a/b", model = "openai/m"}),
  temp = err({model = "openai/m", temperature = "hot"}),
  session = err({model = "openai/m", session_id = "ffffffff"}),
  nosession = Agent.create({model = "openai/m"}):execute("x").text,
  badinput = select(2, pcall(function() local a = Agent.create({model = "openai/m"}) return a:invoke(42) end)),
  bare = Agent.create({model = "m"}).model,
}
""",  # noqa: E501
        )
    assert result["unknown"] == result["again"] == "openai/m"  # rs-llmspell accepts any option
    noted = capsys.readouterr().err
    assert noted.count("ignoring options spellfs does not use: temprature, tools") == 1
    assert "model is required" in result["nomodel"]
    assert "provider not configured: mistral (configured: openai" in result["provider"]
    assert "invalid name 'a/b'" in result["name"]
    assert "temperature must be a number" in result["temp"]
    assert "session not found" in result["session"]
    assert result["nosession"] == "echo: x"  # recorded in the run's automatic session
    assert "in automatic session" in noted
    assert "expected {text = ...}" in result["badinput"]
    assert result["bare"] == "openai/m"
    assert len(fake_provider.requests) == 1
    with Workspace.open(root) as ws:
        [auto] = [s for s in ws.sessions.list() if "automatic" in (s.get("tags") or [])]
        assert auto["name"] == "script"


def test_a_bad_providers_entry_is_a_configuration_error_before_anything_runs(
    spell, root: Path
) -> None:
    (root / "spell.yaml").write_text("agents:\n  providers:\n    x:\n      kind: nope\n")
    (root / "t.lua").write_text('Session.create({name = "never"})\nAgent.create({model = "x/m"})\n')
    for args in (["ls"], ["run", str(root / "t.lua")]):
        r = spell("-w", str(root), *args)
        assert r.returncode == 2, r.stderr.decode()
        assert (
            r.stderr.decode().strip()
            == "Error: spell.yaml: agents.providers.x.kind: must be openai or anthropic"
        )
    assert not list((root / "sessions").iterdir())
    with pytest.raises(ConfigError, match=r"agents.providers.x.kind"):
        Workspace.open(root)


def test_session_full_refuses_before_calling(
    root: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in _env(fake_provider).items():
        monkeypatch.setenv(k, v)
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 3\n")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="full")
        ws.current_session = sid
        result = _lua(
            ws,
            """
local a = Agent.create({model = "openai/m"})
a:invoke("one")
local ok, err = pcall(a.invoke, a, "two")
result = err
""",
        )
    assert "max_artifacts_per_session is 3" in result
    assert len(fake_provider.requests) == 1


def test_replay_from_a_checkpoint_answers_each_call_with_its_own_recording(
    spell, root: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = iter(range(1, 100))
    original = fakeprovider._reply

    def numbered(body):  # a model that answers the same question differently every time
        text, tin, tout, cut = original(body)
        return f"{text} #{next(counter)}", tin, tout, cut

    monkeypatch.setattr(fakeprovider, "_reply", numbered)
    (root / "once.lua").write_text("""
local sid = Session.getCurrent() or os.getenv("SPELL_SESSION")
Session.setCurrent(sid)
local a = Agent.create({name = "dice", model = "openai/m"}):invoke("roll")
Artifact.store(sid, "agent_output", "roll-" .. arg[1] .. ".txt", a.text)
if arg[2] then Session.save(sid, "after " .. arg[1]) end
""")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="dice")
    env = {**_env(fake_provider), "SPELL_SESSION": sid}
    for args in (("1", "save"), ("2",), ("3",)):
        r = spell("-w", str(root), "run", str(root / "once.lua"), *args, env=env)
        assert r.returncode == 0, r.stderr.decode()
    assert [c["call"] for c in read_calls(Workspace.open(root), _session_dir(root, sid).name)] == [
        1,
        2,
        3,
    ]
    sent = len(fake_provider.requests)
    r = spell(
        "-w", str(root), "replay", sid, "--from", "1", "--keep", "--json", env=_env(fake_provider)
    )
    rep = json.loads(r.stdout)
    assert r.returncode == 0 and rep["same"], r.stdout.decode()
    assert [c["result"] for run in rep["runs"] for c in run["calls"]] == ["same", "same"]
    fork = root / rep["worlds"][0] / "sessions" / _session_dir(root, sid).name
    assert (fork / "files" / "roll-2.txt").read_text() == "echo: roll #2"
    assert (fork / "files" / "roll-3.txt").read_text() == "echo: roll #3"
    assert len(fake_provider.requests) == sent


def test_provider_env_names_match_the_providers_module() -> None:
    from spellfs.agent.providers import ENV_KEY

    assert set(agent_api._PROVIDER_ENV) == set(ENV_KEY.values()) | {"OPENAI_BASE_URL"}


def test_openai_base_url_alone_gives_a_keyless_provider(
    spell, root: Path, fake_provider: FakeProvider
) -> None:
    """A local OpenAI-compatible server (Ollama, llama.cpp) needs a URL and no key."""
    (root / "ask.lua").write_text(
        'Session.setCurrent(Session.create({name = "local"}))\n'
        'print(Agent.create({model = "openai/llama3"}):invoke("hi").text)\n'
    )
    r = spell(
        "-w",
        str(root),
        "run",
        str(root / "ask.lua"),
        env={"OPENAI_BASE_URL": fake_provider.url + "/v1"},
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == "echo: hi"
    assert "authorization" not in {k.lower() for k in fake_provider.requests[-1]["headers"]}


def test_a_run_that_can_have_no_agent_imports_no_provider_code(root: Path) -> None:
    """No provider configured, none in the environment, no replay: `spell run` stays lean."""
    import os
    import subprocess
    import sys

    (root / "s.lua").write_text("assert(Agent == nil)\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*agent_api._PROVIDER_ENV, "SPELL_REPLAY", "SPELL_WORKSPACE", "SPELL_SESSION")
    }
    code = (
        "import sys; from spellfs.cli import main; rc = main(['run', 's.lua']); "
        "print(rc, sorted(m for m in ('spellfs.agent.providers', 'spellfs.agent.client', "
        "'spellfs.agent.request', 'spellfs.agent.wire', 'spellfs.agent.calls') if m "
        "in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == "0 []", proc.stderr


def test_request_and_response_files_read_a_key_and_a_message_per_line(
    ws: Workspace, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in _env(fake_provider).items():
        monkeypatch.setenv(k, v)
    ws.current_session = sid = ws.sessions.create(name="readable")
    _lua(
        ws,
        """local a = Agent.create({name = "w", model = "openai/m"})
result = a:invoke({messages = {{role = "user", content = "hi"}, {role = "assistant", content = "yes?"},
                               {role = "user", content = "line one\\nline two"}}})""",  # noqa: E501
    )
    files = _session_dir(ws.root, sid) / "files"
    request = (files / "w-0001.request.json").read_text()
    assert '\n    {"role": "assistant", "content": "yes?"},\n' in request
    assert '\n  "model": "m",\n' in request and request.endswith("\n}\n")
    assert json.loads(request)["messages"][2]["content"] == "line one\nline two"
    response = (files / "w-0001.response.json").read_text()
    assert '\n  "finish_reason": "stop"\n' in response and json.loads(response)["text"].startswith(
        "echo:"
    )


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=6,
    )
)
def test_call_documents_round_trip_through_json(doc: dict) -> None:
    from spellfs.agent.calls import _json_bytes

    assert json.loads(_json_bytes(doc)) == doc


def test_a_replay_stores_the_recorded_response_bytes_unchanged(
    root: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recording whose response file was laid out otherwise (by hand, or by an older
    spellfs) is served as it is, so the fork's artifact is the original's."""
    for k, v in _env(fake_provider).items():
        monkeypatch.setenv(k, v)
    raw = (
        b'{"text": "by hand",\n "model": "m", "usage": {"input_tokens": 1, "output_tokens": '
        b'2},\n "finish_reason": "stop"}'
    )
    with Workspace.open(root) as ws:
        ws.current_session = orig = ws.sessions.create(name="orig")
        _lua(ws, 'result = Agent.create({name = "a1", model = "openai/m"}):invoke("q")')
        odir = ws.sessions.resolve(orig)
        oid = ws.objects.put_bytes(raw)
        calls = root / "sessions" / odir / "calls.yaml"
        [rec] = read_calls(ws, odir)
        calls.write_text(calls.read_text().replace(rec["response"], oid))
        fork = ws.history.fork(orig, None, {"name": "fork"})
    monkeypatch.setenv("SPELL_REPLAY", "1")
    monkeypatch.setenv("SPELL_SESSION", fork)
    with Workspace.open(root) as ws:
        ws.current_session = fork
        result = _lua(ws, 'result = Agent.create({name = "a1", model = "openai/m"}):invoke("q")')
        assert result["text"] == "by hand" and result["usage"] == {
            "input_tokens": 1,
            "output_tokens": 2,
        }
        [replayed] = read_calls(ws, ws.sessions.resolve(fork))
        assert replayed["source"] == "replay" and replayed["response"] == oid
        assert ws.artifacts.get(fork, replayed["response_artifact"])["content"] == raw


def test_replay_live_with_another_model_names_both(
    spell, root: Path, fake_provider: FakeProvider
) -> None:
    (root / "m.lua").write_text(
        'Session.setCurrent(Session.getCurrent() or Session.create({name = "m"}))\n'
        'Agent.create({name = "a", model = os.getenv("MODEL")}):invoke("q")\n'
    )
    r = spell(
        "-w",
        str(root),
        "run",
        str(root / "m.lua"),
        env={**_env(fake_provider), "MODEL": "openai/m1"},
    )
    assert r.returncode == 0, r.stderr.decode()
    with Workspace.open(root) as ws:
        [sid] = [s["id"] for s in ws.sessions.list()]
    r = spell(
        "-w",
        str(root),
        "replay",
        sid,
        "--live",
        "--json",
        env={**_env(fake_provider), "MODEL": "openai/m2"},
    )
    [call] = json.loads(r.stdout)["runs"][0]["calls"]
    assert (call["result"], call["model"], call["replay_model"]) == (
        "request differs",
        "openai/m1",
        "openai/m2",
    )
    r = spell(
        "-w", str(root), "replay", sid, "--live", env={**_env(fake_provider), "MODEL": "openai/m2"}
    )
    assert (
        r.returncode == 1
        and "call 1 a (openai/m1 -> openai/m2, live): request differs" in r.stdout.decode()
    )


def test_replay_live_without_a_provider_says_so_and_makes_no_fork(
    spell, root: Path, fake_provider: FakeProvider
) -> None:
    sid = _record(spell, root, fake_provider)
    sessions = sorted(p.name for p in (root / "sessions").iterdir())
    r = spell("-w", str(root), "replay", sid, "--live")  # no key, no URL, no agents.providers
    err = r.stderr.decode()
    assert r.returncode == 2 and err.count("\n") == 1
    assert err.startswith(
        "Error: replay --live calls the models again, but no model provider is configured "
        "(the runs made 2 model calls;"
    )
    assert sorted(p.name for p in (root / "sessions").iterdir()) == sessions
    r = spell("-w", str(root), "replay", sid)  # answered from the records: no provider needed
    assert (
        r.returncode == 0
        and "model calls: 2 same, 0 different (answered from records)" in r.stdout.decode()
    )
    assert sorted(p.name for p in (root / "sessions").iterdir()) == sessions


def test_rs_llmspell_agent_leniency_register_get_hooks(
    root: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        **_env(fake_provider),
        "ANTHROPIC_API_KEY": "sk-ant",
        "ANTHROPIC_BASE_URL": fake_provider.url,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with Workspace.open(root) as ws:
        result = _lua(
            ws,
            """
local seen = {}
Hook.register("BeforeAgentExecution", function(ctx) seen[#seen + 1] = "before " .. ctx.data.agent end)
Hook.register("AfterAgentExecution", function(ctx) seen[#seen + 1] = "after " .. ctx.data.output.text end)
local name = Agent.register({name = "analyst", model = {provider = "openai", model_id = "gpt-4o-mini"},
                             custom_config = {system_prompt = "Be brief."}, allowed_tools = {}})
local bare = Agent.create({model = "gpt-4o-mini", prompt = "p"})
result = {name = name, bare = bare.model, got = Agent.get(name):invoke({text = "hi"}).text,
          missing = Agent.get("nope") == nil, seen = seen}
""",  # noqa: E501
        )
    assert result["name"] == "analyst" and result["bare"] == "openai/gpt-4o-mini"
    assert result["got"] == "echo: hi" and result["missing"] is True
    assert result["seen"] == ["before analyst", "after echo: hi"]
    assert fake_provider.requests[0]["json"]["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }
