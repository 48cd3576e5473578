"""Hermetic replay (spellfs.history.replays, .worlds): a recorded run re-run in the world it saw.

Every test that replays also checks the promise that matters most: the original
workspace (everything outside .spell/) is byte-for-byte what it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SPELL
from spellfs import ReplayError, UsageError, Workspace
from spellfs.history.runs import begin_run, read_runs, starting_point


def tree(root: Path) -> dict[str, str]:
    """Every file outside .spell/, by path, with a hash of its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] == ".spell" or not p.is_file():
            continue
        out[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def worlds(root: Path) -> list[str]:
    base = root / ".spell" / "replay"
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def run(spell, root: Path, name: str, code: str, *args: str, env: dict | None = None):
    (root / name).write_text(code)
    r = spell("-w", str(root), "run", name, *args, cwd=root, env=env)
    assert r.returncode == 0, r.stderr.decode()
    return r


def replay(
    spell, root: Path, sid: str, *opts: str, env: dict | None = None
) -> tuple[int, dict, dict]:
    """Replay with --json; return (exit code, report, tree before == tree after asserted)."""
    before = tree(root)
    r = spell("-w", str(root), "replay", sid, *opts, "--json", env=env)
    assert r.stderr.decode().count("\n") <= 1, r.stderr.decode()
    assert tree(root) == before, "a replay changed the original workspace"
    return r.returncode, json.loads(r.stdout) if r.stdout else {}, before


def results(report: dict) -> dict[str, str]:
    return {
        a["name"]: a["result"]
        for run in report["runs"]
        for s in run["sessions"]
        for a in s["artifacts"]
    }


# -- the starting point ------------------------------------------------------------------------
def test_a_run_records_each_session_as_it_was_when_first_touched(ws, tmp_path):
    a = ws.sessions.create(name="a", tags=["t"])
    ws.artifacts.store(a, "text", "old.txt", "old")
    ws.state.set("k", 1)
    ws.state.set(f"session:{a}:s", "x")
    before = (Path(ws.root) / "sessions" / ws.sessions.resolve(a) / "session.yaml").read_bytes()
    run = begin_run(ws, tmp_path / "x.lua", b"-- x", ["arg"], env_session=a)
    ws.run.note_state("k")
    ws.artifacts.store(a, "text", "new.txt", "new")
    ws.sessions.update_metadata(a, {"m": 1})
    made = ws.sessions.create(name="made")
    ws.run.note_state("w", written=True)
    ws.state.set("w", "done")
    [rec, _] = run.finish(0)
    world = json.loads(ws.objects.get(rec["world"]))
    dir = ws.sessions.resolve(a)
    start = world["sessions"][dir]["start"]
    assert ws.objects.get(start["manifest"]) == before  # the manifest before update_metadata
    assert (
        start["artifacts"]
        == len(ws.storage.read(f"sessions/{dir}/artifacts.yaml").split(b"\n", 1)[0]) + 1
    )
    assert b"s: x" in ws.objects.get(start["state"])
    assert (
        world["created"] == [ws.sessions.resolve(made)]
        and world["sessions"][world["created"][0]]["start"] is None
    )
    assert world["state_start"] == {"k": 1, "w": None} and world["state_written"] == {"w": "done"}
    assert world["env_session"] == a and world["args"] == ["arg"]
    assert [x["name"] for x in world["sessions"][dir]["artifacts"]] == ["new.txt"]


def test_a_starting_point_reads_only_its_session(ws):
    sid = ws.sessions.create(name="only")
    for i in range(20):
        ws.sessions.create(name=f"other {i}")
    dir = ws.sessions.resolve(sid)
    point = starting_point(ws, dir)
    assert set(point) == {"id", "manifest", "state", "artifacts", "checkpoints", "calls", "runs"}
    assert point["id"] == sid and point["state"] is None and point["artifacts"] == 0


# -- the three cases of the issue --------------------------------------------------------------
FIND_BY_TAG = """
local s = Session.list({tags = {"t"}})[1]
Artifact.store(s.id, "text", "out.txt", "found " .. s.name .. " with " .. #Artifact.list(s.id) .. " artifacts")
"""  # noqa: E501


def test_a_session_found_by_tag_replays_the_same_and_the_original_gets_no_new_version(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="tagged", tags=["t"])
        ws.sessions.create(name="untagged")
    run(spell, root, "find.lua", FIND_BY_TAG)
    code, rep, _ = replay(spell, root, sid)
    assert code == 0 and rep["same"], rep
    assert results(rep) == {"out.txt": "same"}
    with Workspace.open(root) as ws:
        log = ws.log(ws.sessions.resolve(sid))
        log.refresh()
        assert [r["name"] for r in log.records] == ["out.txt"]  # no version 2
    assert worlds(root) == []


NOTES = """
local sid = os.getenv("SPELL_SESSION")
local n = select(2, Artifact.get(sid, "notes.md").content:gsub("\\n", ""))
Artifact.store(sid, "text", "count.txt", tostring(n))
"""


def test_restore_then_run_replays_from_what_the_run_saw(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="notes")
        ws.artifacts.store(sid, "text", "notes.md", "one\n")
        ws.history.save(sid)
        ws.artifacts.store(sid, "text", "notes.md", "one\ntwo\n")
        ws.history.save(sid)
        ws.history.restore(sid, 1)
    run(spell, root, "count.lua", NOTES, env={"SPELL_SESSION": sid})
    with Workspace.open(root) as ws:
        ws.artifacts.store(
            sid, "text", "notes.md", "one\ntwo\nthree\n"
        )  # later work must not matter
    code, rep, _ = replay(spell, root, sid)
    assert code == 0 and results(rep) == {"count.txt": "same"}, rep


def test_a_run_without_any_checkpoint_replays(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="notes")
        ws.artifacts.store(sid, "text", "notes.md", "a\nb\nc\n")
    run(spell, root, "count.lua", NOTES, env={"SPELL_SESSION": sid})
    code, rep, _ = replay(spell, root, sid)
    assert code == 0 and results(rep) == {"count.txt": "same"}, rep


CREATES = """
local keep = Session.create({name = "made " .. arg[1], tags = {"new"}})
Artifact.store(keep, "text", "a.txt", "made by " .. arg[1])
State.set("last", arg[1])
local tmp = Session.create({name = "scratch"})
Artifact.store(tmp, "text", "tmp.txt", "tmp")
Session.complete(keep)
Session.delete(tmp)
local old = Session.list({tags = {"old"}})[1]
Artifact.store(old.id, "text", "seen.txt", tostring(State.get("seed")))
Session.complete(old.id)
local gone = Session.list({tags = {"doomed"}})[1]
Session.delete(gone.id)
"""


def test_a_script_that_creates_completes_and_deletes_sessions_replays_the_same(root, spell):
    with Workspace.open(root) as ws:
        old = ws.sessions.create(name="old", tags=["old"])
        ws.sessions.create(name="doomed", tags=["doomed"])
        ws.state.set("seed", 7)
    run(spell, root, "creates.lua", CREATES, "x")
    with Workspace.open(root) as ws:
        made = ws.sessions.list({"tags": ["new"], "status": "all"})[0]["id"]
        ws.state.set("seed", 8)  # changed since: the replay reads what the run read
    code, rep, _ = replay(spell, root, made)
    assert code == 0 and rep["same"], json.dumps(rep, indent=1)
    [r] = rep["runs"]
    by_name = {s["name"] or s["session_id"][:8]: s for s in r["sessions"]}
    assert by_name["made x"]["created"] and by_name["made x"]["result"] == "same"
    assert by_name["made x"]["replay_session_id"] != made  # matched by creation order, not by id
    assert by_name["old"]["artifacts"] == [{**by_name["old"]["artifacts"][0], "result": "same"}]
    assert [s["result"] for s in r["sessions"] if s["deleted"]] == ["same", "same"]
    assert r["state"] == [
        {"key": "last", "original": "x", "replay": "x", "result": "same", "same": True}
    ]
    with Workspace.open(root) as ws:  # replayable from the pre-existing session too
        assert ws.history.can_replay(old)
        assert ws.artifacts.get(old, "seen.txt")["content"] == b"7"
    code, rep, _ = replay(spell, root, old)
    assert code == 0 and rep["same"], rep


def test_the_examples_replay_the_same(root, spell):
    examples = Path(__file__).resolve().parent.parent / "examples"
    r = spell("-w", str(root), "run", str(examples / "basic.lua"), cwd=root)
    assert r.returncode == 0, r.stderr.decode()
    with Workspace.open(root) as ws:
        sessions = [s["id"] for s in ws.sessions.list({"status": "all"})]
    assert sessions
    for sid in sessions:
        code, rep, _ = replay(spell, root, sid)
        assert code == 0 and rep["same"], rep


CLOCK = """
local sid = Session.create({name = "clock"})
Artifact.store(sid, "text", "now.txt", "stable\\n" .. tostring(os.time()) .. " " .. tostring(os.clock()) .. "\\n")
"""  # noqa: E501


def test_a_clock_in_an_artifact_differs_with_a_diff_and_exit_1(root, spell):
    run(spell, root, "clock.lua", CLOCK)
    with Workspace.open(root) as ws:
        [sid] = [s["id"] for s in ws.sessions.list()]
    time.sleep(1.05)
    code, rep, _ = replay(spell, root, sid)
    assert code == 1 and not rep["same"]
    [a] = rep["runs"][0]["artifacts"]
    assert a["result"] == "differs" and a["diff"].startswith(
        "--- original/now.txt\n+++ replay/now.txt\n"
    )
    assert " stable\n" in a["diff"]
    text = spell("-w", str(root), "replay", sid).stdout.decode()
    assert (
        "differs  now.txt" in text
        and "--- original/now.txt" in text
        and "0 same, 1 different" in text
    )


# -- the original is never touched -------------------------------------------------------------
def test_a_failing_replay_leaves_everything_and_reports_the_exit_status(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="f")
        ws.state.set("x", 1)
    run(
        spell,
        root,
        "f.lua",
        'Artifact.store(os.getenv("SPELL_SESSION"), "t", "a.txt", "a")\n'
        'State.set("x", 2)\n'
        'if os.getenv("SPELL_REPLAY") then Session.delete(os.getenv("SPELL_SESSION")); '
        'error("boom") end\n',
        env={"SPELL_SESSION": sid},
    )
    (root / "f.lua").write_text("-- edited since: the recorded bytes replay\n")
    code, rep, _ = replay(spell, root, sid)
    [r] = rep["runs"]
    assert code == 1 and (r["exit_status"], r["original_exit_status"]) == (1, 0)
    assert "f.lua:3: boom" in r["stderr"] and ".spell" not in r["stderr"]
    assert r["sessions"][0]["result"] == "deleted"
    with Workspace.open(root) as ws:
        assert ws.state.get("x") == 2 and ws.artifacts.get(sid, "a.txt")["content"] == b"a"


HOLD = """
local sid = os.getenv("SPELL_SESSION")
Artifact.store(sid, "t", "first.txt", "1")
State.set("k", "v")
local hold = os.getenv("HOLD_FILE")
if os.getenv("SPELL_REPLAY") and hold then
  while io.open(hold) do end
end
Artifact.store(sid, "t", "second.txt", "2")
"""


def test_killing_a_replay_mid_run_leaves_the_original_and_the_next_replay_sweeps_the_world(
    root, tmp_path
):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="k")
    (root / "hold.lua").write_text(HOLD)
    env = {**os.environ, "SPELL_SESSION": sid}
    env.pop("SPELL_WORKSPACE", None)
    assert (
        subprocess.run([*SPELL, "-w", str(root), "run", "hold.lua"], cwd=root, env=env).returncode
        == 0
    )
    before = tree(root)
    hold = tmp_path / "hold"
    hold.write_text("")
    env = {**env, "HOLD_FILE": str(hold)}
    env.pop("SPELL_SESSION")
    p = subprocess.Popen(
        [*SPELL, "-w", str(root), "replay", sid],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # the replayed script has stored first.txt in the world
            if list((root / ".spell" / "replay").glob("*/sessions/*/files/first.txt")):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the replay never started")
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        hold.unlink()
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
    assert tree(root) == before
    assert len(worlds(root)) == 1  # left by the killed replay ...
    r = subprocess.run([*SPELL, "-w", str(root), "replay", sid], env=env, capture_output=True)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert worlds(root) == []  # ... and swept by the next one
    assert tree(root) == before


def test_keep_keeps_the_world_as_a_workspace_and_marks_it(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="kept")
    run(
        spell,
        root,
        "k.lua",
        'Artifact.store(os.getenv("SPELL_SESSION"), "t", "a.txt", "a")\n',
        env={"SPELL_SESSION": sid},
    )
    code, rep, _ = replay(spell, root, sid, "--keep")
    [world] = rep["worlds"]
    assert code == 0 and world.startswith(".spell/replay/") and rep["runs"][0]["world"] == world
    with Workspace.open(root / world) as wws:
        assert wws.artifacts.get(sid, "a.txt")["content"] == b"a"
    assert json.loads((root / world / ".spell" / "replay.json").read_bytes())["kept"] is True
    code, _, _ = replay(spell, root, sid)  # a later replay does not sweep a kept world
    assert (root / world).is_dir() and worlds(root) == [world.rsplit("/", 1)[1]]
    text = spell("-w", str(root), "replay", sid, "--keep").stdout.decode()
    assert "world kept: .spell/replay/" in text


def test_the_world_shares_the_object_store_and_writes_only_its_own(root, spell):
    big = "x" * 200_000
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="big")
        ws.artifacts.store(sid, "t", "big.txt", big)
        objects_before = sorted(
            p.name for p in (root / ".spell" / "objects").rglob("*") if p.is_file()
        )
    run(
        spell,
        root,
        "b.lua",
        'local s = os.getenv("SPELL_SESSION")\n'
        'Artifact.store(s, "t", "len.txt", tostring(#Artifact.get(s, "big.txt").content))\n',
        env={"SPELL_SESSION": sid},
    )
    objects_run = sorted(p.name for p in (root / ".spell" / "objects").rglob("*") if p.is_file())
    assert len(objects_run) > len(objects_before)
    code, rep, _ = replay(spell, root, sid, "--keep")
    assert code == 0
    assert (
        sorted(p.name for p in (root / ".spell" / "objects").rglob("*") if p.is_file())
        == objects_run
    )
    world = root / rep["worlds"][0]
    assert (world / ".spell" / "alternates").read_text() == str(root / ".spell" / "objects")
    with Workspace.open(root) as ws:
        [oid] = [a["content_hash"] for a in ws.artifacts.list(sid) if a["name"] == "big.txt"]
    mine = world / ".spell" / "objects" / oid[:2] / oid[2:]
    assert not mine.exists() or os.path.samefile(
        mine, root / ".spell" / "objects" / oid[:2] / oid[2:]
    )
    assert (world / "sessions").is_dir() and len(list((world / "sessions").iterdir())) == 1


# -- queries answer as they did ----------------------------------------------------------------
QUERIES = """
local sid = os.getenv("SPELL_SESSION")
local n = #Session.list({tags = {"q"}})
local hits = #Artifact.query({type = "note"})
local ref = Artifact.get(arg[1], "ref.txt").content  -- a session named by id, only read
Artifact.store(sid, "t", "answers.txt", n .. " " .. hits .. " " .. tostring(State.get("limit")) .. " " .. ref)
"""  # noqa: E501


def test_queries_and_state_answer_as_they_did_even_after_the_workspace_moved_on(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="asker")
        for i in range(3):
            other = ws.sessions.create(name=f"q{i}", tags=["q"])
            ws.artifacts.store(other, "note", "n.txt", str(i))
        ws.state.set("limit", 3)
        ws.state.set("unrelated", "x")
        ref = ws.sessions.create(name="ref")
        ws.artifacts.store(ref, "text", "ref.txt", "r1")
    run(spell, root, "q.lua", QUERIES, ref, env={"SPELL_SESSION": sid})
    with Workspace.open(root) as ws:
        assert ws.artifacts.get(sid, "answers.txt")["content"] == b"3 3 3 r1"
        ws.artifacts.store(ref, "text", "ref.txt", "r2")
        more = ws.sessions.create(name="q9", tags=["q"])
        ws.artifacts.store(more, "note", "n.txt", "9")
        ws.state.set("limit", 10)
    code, rep, _ = replay(spell, root, sid, "--keep")
    assert code == 0 and results(rep) == {"answers.txt": "same"}, rep
    world = root / rep["worlds"][0]
    assert (
        len(list((world / "sessions").iterdir())) == 5
    )  # the asker, the three it found and ref, no more
    assert "unrelated" not in (world / "state.yaml").read_text()


# -- choosing runs ----------------------------------------------------------------------------
DET = """
local sid = os.getenv("SPELL_SESSION")
Artifact.store(sid, "t", "out-" .. arg[1] .. ".txt", "value " .. arg[1])
if arg[2] then Session.save(sid, "after " .. arg[1]) end
"""


def test_run_and_from_choose_what_is_replayed(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="d")
    for args in (("1", "save"), ("2",), ("3",)):
        run(spell, root, "d.lua", DET, *args, env={"SPELL_SESSION": sid})
    with Workspace.open(root) as ws:
        runs = read_runs(ws, ws.sessions.resolve(sid))
        assert all(r.get("world") for r in runs)
    code, rep, _ = replay(spell, root, sid)
    assert code == 0 and [len(r["artifacts"]) for r in rep["runs"]] == [1, 1, 1]
    code, rep, _ = replay(spell, root, sid, "--run", runs[1]["run"][:8])
    assert code == 0 and [r["run"] for r in rep["runs"]] == [runs[1]["run"]]
    code, rep, _ = replay(spell, root, sid, "--from", "1")
    assert (
        code == 0
        and rep["from_checkpoint"] == 1
        and [r["run"] for r in rep["runs"]] == [runs[1]["run"], runs[2]["run"]]
    )
    r = spell("-w", str(root), "replay", sid, "--run", "zzzz")
    assert r.returncode != 0 and r.stderr.decode().startswith("Error: run not found: zzzz")
    r = spell("-w", str(root), "replay", sid, "--from", "9")
    assert r.returncode != 0 and r.stderr.decode().count("\n") == 1 and "9" in r.stderr.decode()


def test_a_run_recorded_before_starting_points_replays_from_its_session(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="legacy")
        ws.artifacts.store(sid, "t", "in.txt", "in")
        ws.history.save(sid)
    run(
        spell,
        root,
        "l.lua",
        'local s = os.getenv("SPELL_SESSION")\n'
        'Artifact.store(s, "t", "out.txt", Artifact.get(s, "in.txt").content .. "!")\n',
        env={"SPELL_SESSION": sid},
    )
    runs_file = next((root / "sessions").glob("legacy-*/runs.yaml"))
    lines = [json.loads(x[2:]) for x in runs_file.read_text().splitlines() if x.startswith("- ")]
    for x in lines:
        x.pop("world")
    runs_file.write_text("".join("- " + json.dumps(x) + "\n" for x in lines))
    code, rep, _ = replay(spell, root, sid)
    assert (
        code == 0
        and results(rep) == {"out.txt": "same"}
        and rep["runs"][0]["starting_point"] == "session only"
    )


# -- errors and the Lua API --------------------------------------------------------------------
def test_replay_errors(root, tmp_path):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="none")
        with pytest.raises(ReplayError, match="no recorded runs"):
            ws.history.replay(sid)
        assert not ws.history.can_replay(sid)
        r = begin_run(ws, tmp_path / "z.lua", b"-- gone soon", [])
        ws.artifacts.store(sid, "t", "a.txt", "a")
        r.finish(0)
        assert ws.history.can_replay(sid)
        with pytest.raises(UsageError, match="unknown replay option"):
            ws.history.replay(sid, {"speed": 2})
        ws.objects.remove(r.script_hash)
        assert not ws.history.can_replay(sid)
        assert ws.history.replay_metadata(sid)["scripts"][0]["available"] is False
        assert ws.history.list_replayable() == []
        with pytest.raises(ReplayError, match="no longer in the store"):
            ws.history.replay(sid)
    assert worlds(root) == []


def test_memory_workspace_cannot_replay(tmp_path):
    with Workspace.in_memory() as ws:
        sid = ws.sessions.create(name="m")
        r = begin_run(ws, tmp_path / "m.lua", b"--", [])
        ws.artifacts.store(sid, "t", "a.txt", "a")
        r.finish(0)
        with pytest.raises(ReplayError, match="memory workspace"):
            ws.history.replay(sid)


LUA_REPLAY = """
local sid = Session.list({tags = {"lua"}})[1].id
assert(Session.canReplay(sid))
local meta = Session.getReplayMetadata(sid)
assert(meta.run_count == 1 and meta.with_starting_point == 1, "metadata")
assert(#Session.listReplayable() == 1)
local r = Session.replay(sid)
assert(r.same and r.runs[1].artifacts[1].result == "same", "replay")
print("ok " .. r.artifacts_same)
"""


def test_lua_session_replay_functions_follow_the_same_model(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="l", tags=["lua"])
    run(
        spell,
        root,
        "w.lua",
        'Artifact.store(os.getenv("SPELL_SESSION"), "t", "a.txt", "a")\n',
        env={"SPELL_SESSION": sid},
    )
    before = tree(root)
    (root / "r.lua").write_text(LUA_REPLAY)
    r = spell("-w", str(root), "run", "r.lua", cwd=root)
    assert r.returncode == 0 and r.stdout.decode().strip() == "ok 1", r.stderr.decode()
    after = tree(root)
    assert {k: v for k, v in after.items() if k != "r.lua"} == {k: v for k, v in before.items()}


def test_gc_keeps_what_a_replay_needs(root, spell):
    from spellfs.maintenance.garbage import gc

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="g", metadata={"v": 1})
        ws.state.set(f"session:{sid}:k", "before")
    run(
        spell,
        root,
        "g.lua",
        'local s = os.getenv("SPELL_SESSION")\n'
        "Session.update_metadata(s, {v = 2})\n"
        'State.set("session:" .. s .. ":k", "after")\n'
        'Artifact.store(s, "t", "m.txt", tostring(Session.get(s).custom_metadata.v))\n',
        env={"SPELL_SESSION": sid},
    )
    with Workspace.open(root) as ws:
        [rec] = read_runs(ws, ws.sessions.resolve(sid))
        world = json.loads(ws.objects.get(rec["world"]))
        start = world["sessions"][ws.sessions.resolve(sid)]["start"]
        gc(ws, grace=0)
        # the session's manifest and state as the run found them are no longer anywhere else
        assert b"v: 1" in ws.objects.get(start["manifest"])
        assert b"before" in ws.objects.get(start["state"])
    code, rep, _ = replay(spell, root, sid)
    assert code == 0 and results(rep) == {"m.txt": "same"}, rep
    [s] = rep["runs"][0]["sessions"]
    assert s["state"] == [
        {"key": "k", "original": "after", "replay": "after", "result": "same", "same": True}
    ]
    assert rep["state_same"] == 1


def test_session_state_written_is_compared(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="st")
    code_text = (
        'local s = os.getenv("SPELL_SESSION")\n'
        'State.set("session:" .. s .. ":when", os.getenv("SPELL_REPLAY") and "now" or "then")\n'
    )
    run(spell, root, "st.lua", code_text, env={"SPELL_SESSION": sid})
    code, rep, _ = replay(spell, root, sid)
    [s] = rep["runs"][0]["sessions"]
    assert code == 1 and s["state"][0]["result"] == "differs" and not s["same"]
    assert (s["state"][0]["original"], s["state"][0]["replay"]) == ("then", "now")
    text = spell("-w", str(root), "replay", sid).stdout.decode()
    assert "state differs  when" in text and "state: 0 same, 1 different" in text
