"""`spell log --graph`: checkpoints, forks and restores of a real workspace, drawn exactly;
a replay leaves no record, so it draws nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spellfs import Workspace
from spellfs.history import history_graph, render_graph

SCRIPT = b"""
local sid = Session.getCurrent() or os.getenv("SPELL_SESSION")
Artifact.store(sid, "tool_result", "out.txt", "value " .. (arg[1] or "none"))
Artifact.store(sid, "tool_result", "double.txt", tostring(2 * tonumber(arg[1] or "0")))
"""


@pytest.fixture
def family(root: Path, spell) -> dict[str, str]:
    """main: checkpoint 1, a recorded run, checkpoint 2, a restore to 1; a fork of it at 1 with a
    checkpoint of its own; a child made with a parent; and a fork at 1 where the user ran the
    same script with the same arguments again (what a replay used to look like)."""
    (root / "det.lua").write_bytes(SCRIPT)
    with Workspace.open(root) as ws:
        main = ws.sessions.create(name="main")
        ws.artifacts.store(main, "user_input", "a.txt", "one\n")
        ws.history.save(main, "first")
    r = spell("-w", str(root), "run", str(root / "det.lua"), "21", env={"SPELL_SESSION": main})
    assert r.returncode == 0, r.stderr
    with Workspace.open(root) as ws:
        ws.history.save(main, "second")
        ws.history.restore(main, 1)
        branch = ws.history.fork(main, 1, {"name": "branch"})
        ws.artifacts.store(branch, "user_input", "b.txt", "bee\n")
        ws.history.save(branch, "on branch")
        child = ws.sessions.create(name="child", parent_session_id=main)
        rerun = ws.history.fork(main, 1, {"name": "rerun"})
    r = spell("-w", str(root), "run", str(root / "det.lua"), "21", env={"SPELL_SESSION": rerun})
    assert r.returncode == 0, r.stderr
    with Workspace.open(root) as ws:
        other = ws.sessions.create(name="unrelated")
    return {"main": main, "branch": branch, "child": child, "rerun": rerun, "other": other}


def test_log_graph_draws_forks_and_restores_exactly_and_a_replay_changes_nothing(
    root: Path, spell, family: dict
) -> None:
    m, b, c, r = (family[k][:8] for k in ("main", "branch", "child", "rerun"))
    out = spell(
        "-w", str(root), "log", "--graph", family["branch"]
    )  # any member shows the whole family
    assert out.returncode == 0, out.stderr
    assert (
        out.stdout.decode()
        == f"""\
  o  {r} forked from {m} at checkpoint 1 "rerun"
|-/
| o  {c} child of {m} "child"
|-/
| *  {b} checkpoint 1: on branch (+2 ~0 -0)
| o  {b} forked from {m} at checkpoint 1 "branch"
|-/
<    {m} restored to checkpoint 1
*    {m} checkpoint 2: second (+2 ~0 -0)
*    {m} checkpoint 1: first (+1 ~0 -0)
o    {m} created "main"
"""
    )
    assert family["other"][:8] not in out.stdout.decode()  # not of the family
    every = spell("-w", str(root), "log", "--graph", "--all", "--ascii").stdout.decode()
    assert every.splitlines()[0] == f'o    {family["other"][:8]} created "unrelated"'
    assert every.splitlines()[1:] == out.stdout.decode().splitlines()
    # `spell replay` re-runs main's run in a scratch world: it reproduces it, and the
    # workspace's history, hence the graph, is exactly as it was
    rep = spell("-w", str(root), "replay", family["main"], "--json")
    assert rep.returncode == 0, rep.stderr
    assert json.loads(rep.stdout)["same"] is True
    again = spell("-w", str(root), "log", "--graph", "--all", "--ascii").stdout.decode()
    assert again == every


def test_graph_data_and_unicode_drawing(root: Path, family: dict) -> None:
    with Workspace.open(root) as ws:
        g = history_graph(ws, [family["main"]])
        s = g.sessions
        assert s[family["branch"]].fork_point == 1
        assert s[family["rerun"]].fork_point == 1  # re-ran main's script: still just a fork
        assert (s[family["child"]].fork_point, s[family["child"]].parent) == (None, family["main"])
        kinds = {(a.split(":")[1], b.split(":")[1], k) for a, b, k in g.edges if k != "next"}
        assert kinds == {
            ("r1", "c1", "restore"),
            ("c1", "start", "fork"),
            ("start", "start", "fork"),
        }
        rerun = [e for e in g.edges if e[1] == f"{family['rerun']}:start"]
        assert rerun == [(f"{family['main']}:c1", f"{family['rerun']}:start", "fork")]
        lines = render_graph(g, ascii=False)
        assert lines[1] == "├─╯" and lines[0].startswith("  ○  ") and "↺    " in lines[7]


def test_log_graph_json_and_bad_usage(root: Path, spell, family: dict) -> None:
    data = json.loads(spell("-w", str(root), "log", "--graph", "--json", family["main"]).stdout)
    assert {n["kind"] for n in data["nodes"]} == {"start", "checkpoint", "restore"}
    assert {
        "from": f"{family['main']}:r1",
        "to": f"{family['main']}:c1",
        "kind": "restore",
    } in data["edges"]
    for args, needle in (
        (["log", "--graph"], "give SESSION... or --all"),
        (["log", "--graph", "--all", family["main"]], "give SESSION... or --all"),
        (["log", family["main"], family["branch"]], "give one SESSION"),
        (["log", "--all"], "--all and --ascii go with --graph"),
        (["log", "--graph", "nosuchsession"], "session not found"),
    ):
        r = spell("-w", str(root), *args)
        err = r.stderr.decode()
        assert r.returncode == 2 and needle in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    plain = spell("-w", str(root), "log", family["main"])  # without --graph: the table, as before
    assert plain.returncode == 0 and "second" in plain.stdout.decode()


def test_graph_text_is_one_clean_line(ws: Workspace) -> None:
    """A checkpoint message cannot move the cursor or break the drawing."""
    sid = ws.sessions.create(name="evil")
    ws.sessions.set_manifest_fields(sid, name="evil\x1b[2Jname")  # as a hand edit: create refuses
    ws.history.save(sid, "red \x1b[31mtext\x1b[0m\nsecond line")
    lines = render_graph(history_graph(ws, [sid]))
    assert lines == [
        f"*  {sid[:8]} checkpoint 1: red  [31mtext [0m second line (+0 ~0 -0)",
        f'o  {sid[:8]} created "evil [2Jname"',
    ]
