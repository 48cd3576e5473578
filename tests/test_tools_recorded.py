"""web_search is recorded and replayed like a model call (spellfs.tools.recorded): real `spell run`
and `spell replay` subprocesses against a local fake SearXNG server (tests/fakesearch.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakeprovider import FakeProvider
from fakesearch import FakeSearch
from spellfs import Workspace
from spellfs.agent import read_calls

SEARCH = """
Session.setCurrent(Session.getCurrent() or Session.create({name = "s"}))
local r = Tool.invoke("web_search", {input = os.getenv("TOPIC") or "lua", max_results = 2})
if not r.success then error(r.error) end
local lines = {}
for i, hit in ipairs(r.result.results) do lines[i] = hit.title .. " " .. hit.url end
Artifact.store(Session.getCurrent(), "tool_result", "hits.txt", table.concat(lines, "\\n"))
"""


def configure(root: Path, url: str) -> None:
    with (root / "spell.yaml").open("a") as f:
        f.write(
            f"tools:\n  allow: [web_search]\n  web_search: {{provider: searxng, url: '{url}'}}\n"
        )


def run(spell, root: Path, code: str, env: dict | None = None):
    (root / "s.lua").write_text(code)
    r = spell("-w", str(root), "run", "s.lua", cwd=root, env=env)
    assert r.returncode == 0, r.stderr.decode()
    with Workspace.open(root) as ws:
        sessions = ws.sessions.list({"status": "all"})  # (a run's automatic one is finished)
        dirs = {s["id"]: ws.sessions.resolve(s["id"]) for s in sessions}
        return {sid: read_calls(ws, d) for sid, d in dirs.items()}


def replay(spell, root: Path, sid: str, *opts: str, env: dict | None = None):
    r = spell("-w", str(root), "replay", sid, *opts, "--json", env=env)
    return r.returncode, json.loads(r.stdout)


def test_a_search_is_recorded_with_query_provider_and_results(spell, root: Path) -> None:
    with FakeSearch() as search:
        configure(root, search.url)
        calls = run(spell, root, SEARCH, env={"TOPIC": "rust lua"})
    [(sid, [rec])] = calls.items()
    assert search.queries == ["rust lua"]
    assert (rec["kind"], rec["provider"], rec["query"], rec["results"], rec["source"]) == (
        "search",
        "searxng",
        "rust lua",
        2,
        "live",
    )
    assert rec["agent"] == "web_search" and rec["call"] == 1 and rec["run"]
    with Workspace.open(root) as ws:
        asked = json.loads(ws.artifacts.get(sid, rec["request_artifact"])["content"])
        answer = json.loads(ws.artifacts.get(sid, rec["response_artifact"])["content"])
        assert asked == {
            "tool": "web_search",
            "provider": "searxng",
            "query": "rust lua",
            "max_results": 2,
        }
        assert [h["title"] for h in answer["results"]] == ["rust lua result 1", "rust lua result 2"]
        # not a model call: `spell show`'s usage counts it apart, with no tokens
        from spellfs.agent import usage_summary

        usage = usage_summary(ws, sid)
        assert usage is not None and usage["calls"] == 0 and usage["searches"] == 1
    shown = spell("-w", str(root), "show", sid).stdout.decode()
    assert "web searches:      1" in shown and "model calls" not in shown


def test_replay_answers_the_search_from_the_record_offline(spell, root: Path) -> None:
    with FakeSearch() as search:
        configure(root, search.url)
        [sid] = run(spell, root, SEARCH)
    # the server is gone: a replay that searched would fail
    code, report = replay(spell, root, sid)
    assert code == 0, report
    [run_report] = report["runs"]
    [call] = run_report["calls"]
    assert (call["agent"], call["kind"], call["source"], call["result"]) == (
        "web_search",
        "search",
        "replay",
        "same",
    )
    assert report["artifacts_same"] >= 1 and report["artifacts_differ"] == 0
    r = spell("-w", str(root), "replay", sid)
    out = r.stdout.decode()
    assert r.returncode == 0
    assert "call 1 web_search (searxng, replay): same" in out
    assert "calls (models and searches): 1 same, 0 different (answered from records)" in out


def test_a_replay_asking_something_else_reports_the_difference(spell, root: Path) -> None:
    with FakeSearch() as search:
        configure(root, search.url)
        [sid] = run(spell, root, SEARCH, env={"TOPIC": "first topic"})
        code, report = replay(spell, root, sid, env={"TOPIC": "second topic"})
        assert search.queries == ["first topic"]  # the replay never searched
    assert code == 1
    [run_report] = report["runs"]
    [call] = run_report["calls"]
    assert call["result"] == "request differs" and call["source"] == "unanswered"
    assert (call["original_query"], call["replay_query"]) == ("first topic", "second topic")
    assert (
        run_report["exit_status"] == 1
        and "no recorded answer for this search" in (run_report["stderr"])
    )
    r = spell("-w", str(root), "replay", sid, env={"TOPIC": "second topic"})
    out = r.stdout.decode()
    assert r.returncode == 1
    assert "call 1 web_search (searxng, unanswered): request differs" in out
    assert "asked 'second topic', recorded 'first topic'" in out


def test_replay_live_searches_again(spell, root: Path) -> None:
    with FakeSearch() as search:
        configure(root, search.url)
        [sid] = run(spell, root, SEARCH)
        code, report = replay(spell, root, sid, "--live")
        assert search.queries == ["lua", "lua"]
    assert code == 0
    [call] = report["runs"][0]["calls"]
    assert (call["source"], call["result"]) == ("live", "same")


def test_a_search_outside_any_session_is_recorded_in_the_runs_automatic_session(
    spell, root: Path
) -> None:
    code = 'local r = Tool.invoke("web_search", {query = "x"})\nassert(r.success, r.error)\n'
    with FakeSearch() as search:
        configure(root, search.url)
        calls = run(spell, root, code)
    [(sid, [rec])] = calls.items()
    with Workspace.open(root) as ws:
        assert "automatic" in ws.sessions.get(sid)["tags"]
    assert rec["query"] == "x" and rec["results"] == 3
    code_, report = replay(spell, root, sid)
    assert code_ == 0 and report["runs"][0]["calls"][0]["result"] == "same"


def test_refused_or_failed_searches_record_nothing(spell, root: Path) -> None:
    code = """
Session.setCurrent(Session.create({name = "s"}))
local r = Tool.invoke("web_search", {query = "x"})
assert(not r.success, "searched")
print(r.error)
"""
    (root / "s.lua").write_text(code)
    r = spell("-w", str(root), "run", "s.lua", cwd=root)  # not in tools.allow
    assert r.returncode == 0 and "web_search is off" in r.stdout.decode()
    configure(root, "http://127.0.0.1:9")  # allowed, but nothing listens there
    r = spell("-w", str(root), "run", "s.lua", cwd=root)
    assert r.returncode == 0 and "search failed (searxng)" in r.stdout.decode()
    r = spell("-w", str(root), "run", "--sandbox", "s.lua", cwd=root)
    assert r.returncode == 0 and "not available under --sandbox" in r.stdout.decode()
    with Workspace.open(root) as ws:
        assert all(read_calls(ws, ws.sessions.resolve(s["id"])) == [] for s in ws.sessions.list())


@pytest.mark.parametrize("workflow", [False, True])
def test_searches_and_model_calls_replay_together_in_the_order_asked(
    spell, root: Path, fake_provider: FakeProvider, workflow: bool
) -> None:
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_provider.url + "/v1"}
    if workflow:
        body = """
local a = Agent.create({name = "a", model = "openai/m"})
local wf = Workflow.parallel({name = "both", max_concurrency = 2, steps = {
  {name = "s1", tool = "web_search", input = {input = "one"}},
  {name = "ask", type = "agent", agent = "a", input = "question"},
  {name = "s2", tool = "web_search", input = {input = "two"}},
}})
local r = wf:execute({})
assert(r.success, tostring(r.error))
"""
    else:
        body = """
local a = Agent.create({name = "a", model = "openai/m"})
local hit = Tool.invoke("web_search", {input = "one"}).result.results[1].title
a:invoke("what about " .. hit)
Tool.invoke("web_search", {input = "two"})
"""
    code = 'Session.setCurrent(Session.create({name = "s"}))\n' + body
    with FakeSearch() as search:
        configure(root, search.url)
        calls = run(spell, root, code, env=env)
    [(sid, recs)] = calls.items()
    kinds = [(r["agent"], r.get("query")) for r in recs]
    assert kinds == [("web_search", "one"), ("a", None), ("web_search", "two")]
    assert [r["seq"] for r in recs] == [1, 2, 3]
    dead = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    code_, report = replay(spell, root, sid, env=dead)  # no provider, no search server
    assert code_ == 0, report
    calls_ = report["runs"][0]["calls"]
    assert [(c["agent"], c["result"], c["source"]) for c in calls_] == [
        ("web_search", "same", "replay"),
        ("a", "same", "replay"),
        ("web_search", "same", "replay"),
    ]
