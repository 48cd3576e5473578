"""The ``Replay`` global (rs-llmspell's replay objects; ``Replay.session`` is spellfs's replay)
and the ``Provider`` global."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakeprovider import FakeProvider
from spellfs import Workspace
from spellfs.lua.runtime import Runtime


@pytest.fixture
def lua(ws: Workspace):
    rt = Runtime(ws)
    rt.install()
    return lambda code: rt.lua.execute(code.encode())


def test_modes_configs_modifications_and_schedules_keep_what_they_are_given(lua) -> None:
    out = lua("""
    local c = Replay.create_config(Replay.modes.modified)
    c:add_modification("context.data.a", 42.5, true):add_modification("context.data.b", "x", false)
    local mods = c:get_modifications()
    mods[1]:set_enabled(false)
    local m = Replay.create_modification("p.q", 7, true)
    return c:get_mode():name(), Replay.modes.exact:name(), c:should_compare_results(),
           c:get_timeout_seconds(), #mods, mods[1]:is_enabled(), mods[2]:get_value(),
           m:get_path(), m:get_value(), m:is_enabled(),
           Replay.schedules.once(5):type_name(), Replay.schedules.interval(1, 2, 3).max_executions,
           Replay.schedules.cron("hourly").expression,
           Replay.create_config():get_mode():name()
    """)
    assert out == (
        b"modified", b"exact", True, 30, 2, False, b"x", b"p.q", 7, True,
        b"once", 3, b"hourly", b"exact",
    )  # fmt: skip


def test_the_comparator_names_every_difference_and_scores_equal_leaves(lua) -> None:
    out = lua("""
    local cmp = Replay.create_comparator()
    local a = {status = "ok", value = 42, items = {1, 2, 3}, meta = {user = "u", t = 1}}
    local b = {status = "ok", value = 43, items = {1, 2, 3, 4}, meta = {user = "u", t = 2}}
    local r = cmp:compare_json(a, b)
    local same = cmp:compare_json(a, a)
    local paths = {}
    for i, d in ipairs(r.differences) do paths[i] = d.path .. "=" .. d.description end
    return r.identical, r.similarity_score, r.summary, table.concat(paths, ";"),
           same.identical, same.similarity_score, same.summary
    """)
    assert out == (
        False,
        5 / 8,  # equal leaves: status, items 1-3, meta.user; differing: value, meta.t, items.4
        b"3 differences",
        b"items.4=added in the second;meta.t=1 -> 2;value=42 -> 43",
        True,
        1.0,
        b"identical",
    )


def test_replay_session_is_spellfs_replay(spell, root: Path) -> None:
    (root / "s.lua").write_text(
        'Session.setCurrent(Session.create({name = "s"}))\n'
        'Artifact.store(Session.getCurrent(), "tool_result", "a.txt", "same every time")\n'
    )
    r = spell("-w", str(root), "run", "s.lua", cwd=root)
    assert r.returncode == 0, r.stderr.decode()
    with Workspace.open(root) as ws:
        [sid] = [s["id"] for s in ws.sessions.list()]
    (root / "r.lua").write_text(
        f'local r = Replay.session("{sid}")\n'
        "print(r.same, r.artifacts_same, r.artifacts_differ, #r.runs)\n"
    )
    r = spell("-w", str(root), "run", "r.lua", cwd=root)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == ["true", "1", "0", "1"]


def test_provider_list_names_configured_providers_and_mock_never_a_key(
    spell, root: Path, fake_provider: FakeProvider
) -> None:
    code = (
        "local out = {}\n"
        "for _, p in ipairs(Provider.list()) do\n"
        '  out[#out + 1] = p.name .. ":" .. p.kind .. ":" .. tostring(p.capabilities.supports_streaming)\n'  # noqa: E501
        "end\n"
        'print(table.concat(out, ","), Provider.get("mock").kind, Provider.get("nope"))\n'
    )
    (root / "p.lua").write_text(code)
    r = spell("-w", str(root), "run", "p.lua", cwd=root)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == ["mock:mock:false", "mock", "nil"]
    env = {"OPENAI_API_KEY": "sk-secret-1234", "OPENAI_BASE_URL": fake_provider.url + "/v1"}
    r = spell("-w", str(root), "run", "p.lua", cwd=root, env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split()[0] == "openai:openai:false,mock:mock:false"
    assert b"sk-secret" not in r.stdout


def test_the_mock_provider_answers_locally_is_recorded_and_replays(
    spell, root: Path, fake_provider: FakeProvider
) -> None:
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_provider.url + "/v1"}
    (root / "m.lua").write_text(
        'Session.setCurrent(Session.create({name = "m"}))\n'
        'local a = Agent.create({name = "t", model = "mock/test", max_tokens = 3})\n'
        'print(a:invoke({text = "hello there"}).text)\n'
        'print(a:invoke("one two three four").finish_reason)\n'
        "a:destroy()\n"
        'print(Agent.get("t"))\n'
    )
    r = spell("-w", str(root), "run", "m.lua", cwd=root, env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines() == ["mock: hello there", "length", "nil"]
    assert fake_provider.requests == []  # never the network
    with Workspace.open(root) as ws:
        from spellfs.agent import read_calls

        [sid] = [s["id"] for s in ws.sessions.list()]
        recs = read_calls(ws, ws.sessions.resolve(sid))
    assert [(c["provider"], c["kind"], c["model"], c["source"]) for c in recs] == [
        ("mock", "mock", "test", "live")
    ] * 2
    r = spell("-w", str(root), "replay", sid, "--json")  # no provider at all now
    report = json.loads(r.stdout)
    assert r.returncode == 0 and [c["result"] for c in report["runs"][0]["calls"]] == [
        "same",
        "same",
    ]


def test_state_scope_and_the_scoped_get_and_set(lua, ws: Workspace) -> None:
    out = lua("""
    State.set(State.scope.Global, "g", 1)
    State.set(State.scope.Agent, "k", {v = 2})
    return State.get(State.scope.Global, "g"), State.get("g"), State.get(State.scope.Agent, "k").v,
           State.get("agent:k").v, State.scope.Session
    """)
    assert out == (1, 1, 2, 2, b"session")
    assert ws.state.get("agent:k") == {"v": 2}
