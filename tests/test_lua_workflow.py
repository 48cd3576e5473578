"""The ``Workflow`` global (rs-llmspell's API) and the State backup API, over a real workspace."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from fakeprovider import FakeProvider
from spellfs import Workspace
from spellfs.lua.runtime import Runtime

CHAIN = """
wf = Workflow.sequential({
  name = "chain",
  steps = {
    {name = "calc1", tool = "calculator", input = {input = "100 * 2 + 50"}},
    {name = "calc2", tool = "calculator", input = {input = "{{step:calc1:output}} / 5"}},
    {name = "msg", tool = "template_engine",
     input = {input = "got {{v}}", context = {v = "{{step:calc2:output}}"}}},
  }
})
"""


@pytest.fixture
def lua(ws: Workspace):
    rt = Runtime(ws)
    rt.install()
    return lambda code: rt.lua.execute(code.encode())


def _record(root: Path, name: str) -> dict:
    [path] = list(root.glob(f"sessions/*/files/workflow-{name}.json"))
    return json.loads(path.read_text())


def test_sequential_chains_step_outputs_and_is_recorded_in_the_session(lua, root: Path) -> None:
    ok, final, steps = lua(
        CHAIN
        + """
    local r = wf:execute({x = 1})
    return r.success, r.data.final_output, r.data.steps.calc2.output"""
    )
    assert (ok, final, steps) == (True, b"got 50.0", 50.0)
    rec = _record(root, "chain")  # an automatic session: no session was current
    assert rec["success"] is True and rec["input"] == {"x": 1}
    assert [(s["name"], s["status"], s["output"]) for s in rec["steps"]] == [
        ("calc1", "completed", 250),
        ("calc2", "completed", 50.0),
        ("msg", "completed", "got 50.0"),
    ]
    assert rec["steps"][1]["input"] == {"input": "250 / 5"}


def test_a_run_in_the_current_session_stores_a_new_version_each_time(lua, ws: Workspace) -> None:
    sid = lua('local s = Session.create({name = "mine"}); Session.setCurrent(s); return s').decode()
    lua(CHAIN + "wf:execute(); wf:execute()")
    versions = ws.artifacts.list(sid)
    assert [a["name"] for a in versions] == ["workflow-chain.json"]
    assert versions[0]["version"] == 2
    timings = versions[0]["metadata"]["custom"]["timings"]  # when and how long: in the metadata
    assert (
        list(timings) == ["1:calc1", "2:calc2", "3:msg"] and timings["1:calc1"]["duration_ms"] >= 0
    )


def test_fail_fast_stops_continue_goes_on(lua) -> None:
    out = lua("""
    local steps = {{name = "bad", tool = "calculator", input = {input = "1/0"}},
                   {name = "good", tool = "calculator", input = {input = "6*7"}}}
    local a = Workflow.sequential({name = "a", steps = steps}):execute()
    local b = Workflow.sequential({name = "b", steps = steps, error_strategy = "continue"}):execute()
    return a.success, tostring(a.error), a.error.message, a.data.steps.good,
           b.success, b.data.final_output""")  # noqa: E501
    assert out[0] is False and b"division by zero" in out[1] and out[1] == out[2]
    assert out[3] is None  # never ran
    assert out[4:] == (True, 42)


def test_conditional_loop_nested_and_function_steps(lua) -> None:
    out = lua(
        CHAIN
        + """
    local cond = Workflow.conditional({name = "c", branches = {
      {name = "hi", condition = {tool = "json_processor",
        input = {operation = "query", input = '{"v": 20}', query = ".v > 50"}},
       steps = {{name = "h", tool = "text_manipulator", input = {input = "high", operation = "uppercase"}}}},
      {name = "lo", condition = function(ctx) return true end,
       steps = {{name = "l", tool = "text_manipulator", input = {input = "low", operation = "uppercase"}}}},
    }}):execute()
    local loop = Workflow.loop({name = "l", iterator = {collection = {{n = 2}, {n = 3}}},
      body = {{name = "sq", tool = "calculator", input = {input = "{{loop:current_item.n}} ^ 2"}}}}):execute()
    local nest = Workflow.sequential({name = "n", steps = {
      {name = "fn", type = "custom", func = function(input) return "fn ran" end},
      {name = "inner", type = "workflow", workflow = wf}}}):execute()
    return cond.data.final_output, cond.data.branch, loop.data.completed_iterations,
           loop.data.final_output, nest.success, nest.data.final_output, nest.data.steps.fn.output"""  # noqa: E501
    )
    assert out == (b"LOW", b"lo", 2, 9.0, True, b"got 50.0", b"fn ran")


def test_hooks_and_events_see_every_step(lua) -> None:
    out = lua(
        CHAIN
        + """
    local seen = {}
    Hook.register("BeforeWorkflowStart", function(ctx) seen[#seen + 1] = "start " .. ctx.data.workflow end)
    Hook.register("BeforeWorkflowStep", function(ctx) seen[#seen + 1] = "step " .. ctx.data.step end)
    Hook.register("AfterWorkflowComplete", function(ctx) seen[#seen + 1] = "done" end)
    local sub = Event.subscribe("workflow.*")
    wf:execute()
    local events = {}
    while true do
      local e = Event.receive(sub, 0)
      if not e then break end
      events[#events + 1] = e.event_type
    end
    return table.concat(seen, ","), table.concat(events, ",")"""  # noqa: E501
    )
    assert out[0] == b"start chain,step calc1,step calc2,step msg,done"
    assert out[1] == (
        b"workflow.started,"
        + b"workflow.step.started,workflow.step.completed," * 3
        + b"workflow.completed"
    )


def test_a_step_hook_can_cancel_the_step(lua) -> None:
    out = lua(
        CHAIN
        + """
    Hook.register("BeforeWorkflowStep", function(ctx)
      if ctx.data.step == "calc2" then return "cancel" end end)
    local r = wf:execute()
    return r.success, tostring(r.error)"""
    )
    assert out[0] is False and b"calc2" in out[1] and b"cancel" in out[1]


def test_parallel_branches_run_their_tools_concurrently_and_bounded(
    lua, ws: Workspace, monkeypatch
) -> None:
    """Two branches of a 0.3 s tool take ~0.3 s together with max_concurrency 2, ~0.6 s with 1."""
    from spellfs.tools import TOOLS
    from spellfs.tools.base import Tool

    active, peak = [0], [0]
    lock = threading.Lock()

    def slow(params: dict, ctx) -> dict:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return {"output": params["input"]}

    monkeypatch.setitem(TOOLS, "slow", Tool("slow", "sleeps", slow))
    code = """
    local branches = {}
    for i = 1, 4 do
      branches[i] = {name = "b" .. i, steps = {{name = "s" .. i, tool = "slow", input = {input = "x" .. i}}}}
    end
    local r = Workflow.parallel({name = "p", max_concurrency = %d, branches = branches}):execute()
    return r.success, r.data.successful_branches, r.data.final_output.b3"""  # noqa: E501
    assert lua(code % 2) == (True, 4, b"x3")
    assert peak[0] == 2  # bounded: never more than max_concurrency at once
    peak[0] = 0
    assert lua(code % 1)[0] is True and peak[0] == 1


def test_agent_steps_call_the_model_and_replay_from_records(
    root: Path, fake_provider: FakeProvider, spell, tmp_path: Path
) -> None:
    script = tmp_path / "wf.lua"
    script.write_text("""
    Agent.create({name = "writer", model = "gpt-4o-mini"})
    local r = Workflow.parallel({name = "ask", branches = {
      {name = "a", steps = {{name = "one", type = "agent", agent = "writer", input = {text = "alpha"}}}},
      {name = "b", steps = {{name = "two", type = "agent", agent = "writer", input = "beta"}}},
    }}):execute()
    print(r.success, r.data.final_output.a, r.data.final_output.b)
    """)  # noqa: E501
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="wf")
    env = {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake_provider.url + "/v1",
        "SPELL_SESSION": sid,
    }
    r = spell("-w", str(root), "run", str(script), env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["true", "echo:", "alpha", "echo:", "beta"]
    assert len(fake_provider.requests) == 2
    rec = _record(root, "ask")
    assert sorted(s["output"] for s in rec["steps"]) == ["echo: alpha", "echo: beta"]
    replay = spell(
        "-w",
        str(root),
        "replay",
        sid[:8],
        env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
    )
    assert replay.returncode == 0, replay.stdout  # answered from records: the dead URL never used
    assert len(fake_provider.requests) == 2
    report = replay.stdout.decode()
    assert "5 same, 0 different; model calls: 2 same, 0 different" in report, report


def test_bad_definitions_are_one_line_errors(lua) -> None:
    def err(code: str) -> str:
        ok, message = lua(f"return pcall(function() {code} end)")
        assert ok is False
        return message.decode()

    assert "needs tool, agent, workflow or func" in err(
        "Workflow.sequential({steps = {{name = 'x'}}})"
    )
    assert "error_strategy must be one of" in err(
        "Workflow.sequential({steps = {}, error_strategy = 'x'})"
    )
    assert "iterator must be range" in err("Workflow.loop({body = {}})")
    assert lua("return Workflow.types()[4]") == b"loop"
    for bad in ("'abc'", "0", "2.5", "1e400"):  # red-team 2 W1: an internal ValueError
        assert "max_attempts must be a positive integer" in err(
            "Workflow.sequential({steps = {}, error_strategy = {type = 'retry', "
            f"max_attempts = {bad}}}}})"
        )


def test_retries_are_capped_at_eleven_attempts(lua, monkeypatch) -> None:
    """`max_attempts = 40` ran a failing step 40 times with a doubling wait (years of sleep,
    red-team 2 W1): a step runs at most 11 times, at most 2 s apart."""

    from spellfs.workflow import engine

    slept: list[float] = []
    monkeypatch.setattr(engine.time, "sleep", slept.append)  # (the waits are recorded, not slept)
    out = lua("""
    local r = Workflow.sequential({name = "w", error_strategy = {type = "retry", max_attempts = 40},
      steps = {{name = "s", tool = "calculator", input = {input = "1/0"}}}}):execute({})
    return r.success""")  # noqa: E501
    assert out is False
    assert len(slept) == 10 and max(slept) == 2.0 and slept[0] == 0.05  # 11 tries


def test_state_backups_are_checkpoints_and_restore(lua, ws: Workspace) -> None:
    out = lua("""
    State.set("a", 1); State.set("b", {x = 2})
    local b1 = State.create_backup(false)
    State.set("a", 99); State.set("c", 3)
    local b2 = State.create_backup(true)
    local listed = State.list_backups()
    local r = State.restore_backup(b1.backup_id)
    return b1.backup_id, b2.parent_id, #listed, r.success, State.get("a"), State.get("c"), State.get("b").x,
           #State.list_backups()""")  # noqa: E501
    assert out == (
        b"backup-1",
        b"backup-1",
        2,
        True,
        1,
        None,
        2,
        3,
    )  # the restore kept the present too
    [backups] = [s for s in ws.sessions.list() if "state-backup" in s["tags"]]
    assert [c["number"] for c in ws.history.checkpoints(backups["id"])] == [1, 2, 3]
    assert lua("return State.migrate, State.restore_backup('day2').success") == (None, False)


def test_each_state_backup_is_a_new_id_even_with_nothing_changed(lua, ws: Workspace) -> None:
    out = lua("""
    State.set("k", "v")
    local a = State.create_backup(false)
    local b = State.create_backup(false)
    return a.backup_id, b.backup_id, #State.list_backups()""")
    assert out == (b"backup-1", b"backup-2", 2)


def test_calling_the_missing_migration_api_says_why(spell, root: Path, tmp_path: Path) -> None:
    (tmp_path / "m.lua").write_text("State.migrate(2)\n")
    r = spell("-w", str(root), "run", str(tmp_path / "m.lua"))
    assert r.returncode == 1 and "spellfs has no State schema migrations" in r.stderr.decode()


def test_runs_outside_any_session_leave_their_automatic_sessions_finished(
    spell, root: Path
) -> None:
    """Each run's automatic session stayed active: after max_sessions runs every such script
    failed with "too many live sessions" (red-team F21)."""
    (root / "spell.yaml").write_text("sessions:\n  max_sessions: 3\n")
    (root / "w.lua").write_text(
        'local w = Workflow.sequential({name = "w", steps = {{name = "a", type = "tool", '
        'tool = "calculator", input = {operation = "evaluate", expression = "1+1"}}}})\n'
        "print(w:execute({}).success)\n"
    )
    (root / "bad.lua").write_text(
        'Workflow.sequential({name = "b", steps = {{name = "a", type = "tool", '
        'tool = "calculator", input = {operation = "evaluate", expression = "1+1"}}}})'
        ':execute({})\nerror("the script fails")\n'
    )
    for _ in range(4):
        r = spell("-w", str(root), "run", str(root / "w.lua"))
        assert r.returncode == 0 and r.stdout == b"true\n", r.stderr.decode()
    assert spell("-w", str(root), "run", str(root / "bad.lua")).returncode == 1
    with Workspace.open(root) as ws:
        autos = ws.sessions.list({"status": "all"})
        assert sorted(s["status"] for s in autos) == ["completed"] * 4 + ["failed"]
        assert all("automatic" in s["tags"] for s in autos)
        assert ws.sessions.list() == []  # none left live
