"""Run records (spellfs.history.runs); replay itself is tested in test_history_replays.py."""

from __future__ import annotations

import os
import signal
import subprocess
import json
import time
import uuid
from pathlib import Path

import pytest

from spellfs import Workspace
from spellfs.store.objects import hash_bytes
from spellfs.history.runs import MARKERS, begin_run, read_runs

DETERMINISTIC = b"""
local sid = Session.getCurrent() or os.getenv("SPELL_SESSION")
Artifact.store(sid, "tool_result", "out.txt", "value " .. (arg[1] or "none"))
Artifact.store(sid, "tool_result", "double.txt", tostring(2 * tonumber(arg[1] or "0")))
"""


def _dir(ws, sid):
    return ws.sessions.resolve(sid)


# -- the recorder, in process ------------------------------------------------------
def test_begin_and_finish_record_one_line_per_touched_session(anyws, tmp_path):
    ws = anyws
    a = ws.sessions.create(name="a")
    b = ws.sessions.create(name="b")
    ws.history.save(a)
    script = tmp_path / "s.lua"
    script.write_bytes(b"-- script")
    run = begin_run(ws, script, b"-- script", ["x", 1])
    assert ws.run is run and ws.objects.get(run.script_hash) == b"-- script"
    assert ws.storage.exists(f"{MARKERS}/{run.id}.json")
    r1 = ws.artifacts.store(a, "t", "one.txt", "1")
    ws.artifacts.delete(a, "one.txt")
    ws.artifacts.store(b, "t", "two.txt", "2")
    c = ws.sessions.create(name="c")
    records = run.finish(0)
    assert ws.run is None and not ws.storage.exists(f"{MARKERS}/{run.id}.json")
    assert {r["session_id"] for r in records} == {a, b, c}
    [ra] = read_runs(ws, _dir(ws, a))
    assert ra["script"] == "s.lua" and ra["args"] == ["x", "1"] and ra["exit_status"] == 0
    assert ra["run"] == run.id and str(uuid.UUID(run.id)) == run.id  # a fresh id per run
    assert ra["checkpoint"] == 1 and ra["script_hash"] == hash_bytes(b"-- script")
    assert ra["artifacts"] == [
        {"seq": r1["sequence"], "name": "one.txt", "hash": r1["content_hash"]},
        {"seq": r1["sequence"] + 1, "name": "one.txt", "op": "delete"},
    ]
    assert ra["started_at"] <= ra["ended_at"] and "error" not in ra
    [rb] = read_runs(ws, _dir(ws, b))
    assert rb["checkpoint"] is None and [x["name"] for x in rb["artifacts"]] == ["two.txt"]
    assert run.finish(1) == records  # finishing twice appends nothing more
    assert len(read_runs(ws, _dir(ws, a))) == 1


def test_failed_run_records_status_and_error(anyws, tmp_path):
    ws = anyws
    sid = ws.sessions.create(name="f")
    run = begin_run(ws, tmp_path / "bad.lua", b"error('x')", [])
    ws.artifacts.store(sid, "t", "partial.txt", "p")
    run.finish(1, "bad.lua:1: x")
    [rec] = read_runs(ws, _dir(ws, sid))
    assert rec["exit_status"] == 1 and rec["error"] == "bad.lua:1: x"


def test_script_inside_workspace_is_workspace_relative(ws, root):
    (root / "scripts").mkdir()
    script = root / "scripts" / "job.lua"
    script.write_bytes(b"--")
    sid = ws.sessions.create(name="rel")
    run = begin_run(ws, script, b"--", [])
    ws.history.save(sid)
    run.finish(0)
    assert read_runs(ws, _dir(ws, sid))[0]["script"] == "scripts/job.lua"


def test_run_that_touches_nothing_records_nothing(ws, tmp_path):
    sid = ws.sessions.create(name="quiet")
    run = begin_run(ws, tmp_path / "q.lua", b"print(1)", [])
    ws.artifacts.list(sid)
    assert run.finish(0) == []
    assert not ws.storage.exists(f"sessions/{_dir(ws, sid)}/runs.yaml")


# -- spell run, for real -----------------------------------------------------------
def _new_session(root, name="replay"):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name=name)
        ws.history.save(sid, "start")
    return sid


def test_spell_run_records_the_run(root, spell):
    sid = _new_session(root)
    (root / "det.lua").write_bytes(DETERMINISTIC)
    r = spell("-w", str(root), "run", str(root / "det.lua"), "21", env={"SPELL_SESSION": sid})
    assert r.returncode == 0, r.stderr
    with Workspace.open(root) as ws:
        [rec] = read_runs(ws, _dir(ws, sid))
        assert rec["script"] == "det.lua" and rec["args"] == ["21"] and rec["exit_status"] == 0
        assert [a["name"] for a in rec["artifacts"]] == ["out.txt", "double.txt"]
        assert ws.artifacts.get(sid, "double.txt")["content"] == b"42"
        assert ws.storage.listdir(MARKERS) == []


def test_killed_run_leaves_no_record(root, spell):
    sid = _new_session(root)
    (root / "slow.lua").write_bytes(b"""
local sid = os.getenv("SPELL_SESSION")
Artifact.store(sid, "t", "before.txt", "b")
local t = os.time() while os.time() - t < 30 do end
""")
    env = {**os.environ, "SPELL_SESSION": sid}
    p = subprocess.Popen(
        [*__import__("conftest").SPELL, "-w", str(root), "run", str(root / "slow.lua")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 20
    records = root / "sessions" / next(d for d in os.listdir(root / "sessions")) / "artifacts.yaml"
    while (
        not (records.exists() and b"before.txt" in records.read_bytes()) and time.time() < deadline
    ):
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    with Workspace.open(root) as ws:
        assert read_runs(ws, _dir(ws, sid)) == []
        assert "before.txt" in [a["name"] for a in ws.artifacts.list(sid)]
        # the marker of the dead run protects nothing: gc drops it
        from spellfs.history import reachable

        reachable(ws)
        assert ws.storage.listdir(MARKERS) == []


def test_replay_of_a_session_without_runs_is_a_one_line_usage_error(root, spell):
    sid = _new_session(root)
    r = spell("-w", str(root), "replay", sid)
    assert r.returncode == 2 and r.stdout == b""
    assert (
        r.stderr.decode() == f"Error: nothing to replay: session {sid[:8]} has no recorded runs "
        "(runs are recorded by `spell run`)\n"
    )
    assert len(list((root / "sessions").iterdir())) == 1  # no fork was made


def test_lua_binding_names_exist(ws):
    for name in (
        "save",
        "load",
        "checkpoints",
        "diff",
        "restore",
        "fork",
        "can_replay",
        "replay",
        "replay_metadata",
        "list_replayable",
    ):
        assert callable(getattr(ws.history, name))
    assert Path(__file__).exists()


LUA_HISTORY = b"""
local sid = Session.create({name = "luahist"})
Artifact.store(sid, "t", "a.txt", "one\\n")
assert(Session.save(sid, "first") == 1)
Artifact.store(sid, "t", "a.txt", "two\\n")
assert(Session.save(sid) == 2 and #Session.checkpoints(sid) == 2)
local d = Session.diff(sid, 1, 2)
assert(d.summary.changed == 1 and d.artifacts.changed[1].diff:find("+two", 1, true))
Session.restore(sid, 1)
assert(Artifact.get(sid, "a.txt").content == "one\\n")
local f = Session.fork(sid, 2, {name = "forked"})
assert(Session.get(f).parent_session_id == sid and Artifact.get(f, "a.txt").content == "two\\n")
assert(Session.load(sid) == sid and Artifact.get(sid, "a.txt").content == "two\\n")
local ok, err = pcall(Session.restore, sid, 99)
assert(not ok and tostring(err):find("checkpoint not found: 99", 1, true))
print("ok")
"""


def test_lua_session_history_functions(root, spell):
    (root / "hist.lua").write_bytes(LUA_HISTORY)
    r = spell("-w", str(root), "run", str(root / "hist.lua"))
    assert r.returncode == 0 and r.stdout.strip() == b"ok", r.stderr
    with Workspace.open(root) as ws:
        sid = ws.sessions.list({"parent_session_id": None, "sort_by": "created_at"})[0]["id"]
        [rec] = read_runs(ws, ws.sessions.resolve(sid))
        assert rec["script"] == "hist.lua" and rec["exit_status"] == 0


# -- the world a run records (what `spell replay` rebuilds), in process ---------------------
def _world(ws, records) -> dict:
    import json

    worlds = {r["world"] for r in records}
    assert len(worlds) == 1  # one world object, named by every record of the run
    return json.loads(ws.objects.get(worlds.pop()))


def s_tmp(world: dict, dir: str) -> dict:
    item = world["sessions"][dir]
    return {k: item[k] for k in ("id", "deleted", "start")}


def test_the_world_names_every_session_the_run_read_changed_created_or_deleted(ws, tmp_path):
    import json

    read = ws.sessions.create(name="read")
    changed = ws.sessions.create(name="changed")
    doomed = ws.sessions.create(name="doomed")
    ws.artifacts.store(doomed, "t", "d.txt", "d")
    ws.state.set("k", "v")
    run = begin_run(ws, tmp_path / "w.lua", b"-- w", ["1"], env_session="")
    ws.sessions.resolve(read)  # only read
    ws.artifacts.store(changed, "t", "c.txt", "c")
    ws.run.note_session_state(ws.sessions.resolve(changed), changed, "s")
    ws.state.set(f"session:{changed}:s", "session value")
    ws.run.note_state("k")
    ws.run.note_state("k", written=True)  # first value kept: the one read
    ws.state.set("k", "new")
    ws.run.note_state("gone", written=True)
    made = ws.sessions.create(name="made")
    ws.sessions.delete(doomed)
    tmp = ws.sessions.create(name="tmp")
    ws.artifacts.store(tmp, "t", "t.txt", "t")
    tmp_dir = ws.sessions.resolve(tmp)
    ws.sessions.delete(tmp)
    records = run.finish(3, "x" * 5000)
    assert {r["session_id"] for r in records} == {changed, made}
    assert all(r["error"] == "x" * 2000 and r["exit_status"] == 3 for r in records)
    world = _world(ws, records)
    d = {sid: ws.sessions.resolve(sid) for sid in (read, changed, made)}
    d[doomed] = next(k for k, v in world["sessions"].items() if v["id"] == doomed)
    assert world["version"] == 1 and world["run"] == run.id and world["exit_status"] == 3
    assert (world["script"], world["args"], world["env_session"]) == ("w.lua", ["1"], None)
    assert world["script_hash"] == run.script_hash and world["started_at"] == run.started_at
    assert world["created"] == [d[made], tmp_dir]
    assert s_tmp(world, tmp_dir) == {"id": tmp, "deleted": True, "start": None}
    del world["sessions"][tmp_dir]
    assert world["state_start"] == {"k": "v", "gone": None}
    assert world["state_written"] == {"gone": None, "k": "new"}
    s = world["sessions"]
    assert set(s) == set(d.values())
    assert s[d[read]] == {
        "id": read,
        "name": "read",
        "start": s[d[read]]["start"],
        "artifacts": [],
        "deleted": False,
    }
    assert s[d[read]]["start"]["id"] == read
    assert s[d[changed]]["name"] == "changed" and not s[d[changed]]["deleted"]
    assert s[d[changed]]["state_written"] == {"s": "session value"}
    assert [a["name"] for a in s[d[changed]]["artifacts"]] == ["c.txt"]
    assert s[d[made]]["start"] is None and s[d[made]]["id"] == made
    assert s[d[made]]["name"] == "made"
    assert s[d[doomed]]["deleted"] is True and "name" not in s[d[doomed]]
    assert s[d[doomed]]["start"]["artifacts_object"]
    assert list(json.loads(ws.objects.get(records[0]["world"]))) == sorted(world)
    assert run.sessions.get(d[doomed]) is None  # only deleted: its id came from its start


def test_a_replayed_run_says_which_world_it_recorded(ws, tmp_path, monkeypatch):
    import json

    result = tmp_path / "result.json"
    monkeypatch.setenv("SPELL_RUN_RESULT", str(result))
    sid = ws.sessions.create(name="gone soon")
    run = begin_run(ws, tmp_path / "r.lua", b"-- r", [])
    ws.artifacts.store(sid, "t", "a.txt", "a")
    ws.sessions.delete(sid)
    # nothing is left to carry a run record, but the replay still learns the world
    assert run.finish(0) == []
    assert json.loads(ws.objects.get(run.world))["state_written"] == {}  # none written
    said = json.loads(result.read_bytes())
    assert said == {"run": run.id, "world": run.world} and run.world
    world = json.loads(ws.objects.get(run.world))
    assert [v["deleted"] for v in world["sessions"].values()] == [True]


def test_a_run_whose_sessions_are_all_gone_records_no_world(ws, tmp_path, monkeypatch):
    monkeypatch.delenv("SPELL_RUN_RESULT", raising=False)
    sid = ws.sessions.create(name="x")
    run = begin_run(ws, tmp_path / "x.lua", b"-- x", [])
    ws.artifacts.store(sid, "t", "a.txt", "a")
    ws.sessions.delete(sid)
    assert run.finish(0) == [] and run.world is None
    assert not ws.storage.exists(f"{MARKERS}/{run.id}.json")


def test_broken_session_files_do_not_break_the_recording_run(ws, root, tmp_path):
    sid = ws.sessions.create(name="b")
    ws.history.save(sid)
    other = ws.sessions.create(name="other")
    dir = ws.sessions.resolve(sid)
    odir = ws.sessions.resolve(other)
    odd = ws.sessions.create(name="odd")
    odd_dir = ws.sessions.resolve(odd)
    (root / "sessions" / odd_dir / "state.yaml").mkdir()  # its starting point cannot be read
    run = begin_run(ws, tmp_path / "b.lua", b"-- b", [])
    (root / "state.yaml").write_text("k: [\n")  # State unreadable
    ws.run.note_state("k", written=True)
    assert run.state_start == {"k": None}
    run.note_session(odd_dir, odd)
    assert odd_dir not in run.start
    (root / "sessions" / dir / "checkpoints.yaml").write_text("- {not json\n")
    run.note_session(dir, sid)  # checkpoint unknown, not an error
    assert run.checkpoint[dir] is None
    assert run.start[dir]["id"] == sid  # changed without being resolved first: still kept
    (root / "sessions" / odir / "session.yaml").unlink()
    run.note_dir(odir)  # no starting point for it, not an error
    assert odir not in run.start
    run.note_session_state(dir, sid, "s")
    (root / "sessions" / dir / "state.yaml").write_text("s: [\n")  # unreadable at the end
    by_id = {r["session_id"]: r for r in run.finish(0)}
    assert set(by_id) == {sid, odd}
    rec = by_id[sid]
    assert rec["checkpoint"] is None
    # the world is still recorded, with what could not be read as null
    world = json.loads(ws.objects.get(rec["world"]))
    assert world["state_written"] == {"k": None}
    assert world["sessions"][dir]["state_written"] == {"s": None}
    assert world["sessions"][odd_dir]["id"] == odd and world["sessions"][odd_dir]["start"] is None
    assert world["sessions"][odd_dir]["name"] == "odd"


def test_read_runs_skips_lines_that_are_not_run_records(ws, tmp_path):
    sid = ws.sessions.create(name="r")
    dir = ws.sessions.resolve(sid)
    assert read_runs(ws, dir) == [] and read_runs(ws, "no-such-dir") == []
    run = begin_run(ws, tmp_path / "r.lua", b"--", [])
    ws.artifacts.store(sid, "t", "a.txt", "a")
    run.finish(0)
    ws.storage.append(f"sessions/{dir}/runs.yaml", b'- {"run": "x", "script_hash": 7}\n')
    assert [r["run"] for r in read_runs(ws, dir)] == [run.id]


def test_the_script_is_named_relative_to_the_workspace_else_by_file_name(ws, root, tmp_path):
    from spellfs.history.runs import _script_name

    (root / "scripts").mkdir()
    (root / "scripts" / "in.lua").write_text("--")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "away.lua").write_text("--")
    os.symlink(root / "scripts", tmp_path / "link")
    assert _script_name(ws, root / "scripts" / "in.lua") == "scripts/in.lua"
    assert _script_name(ws, tmp_path / "link" / "in.lua") == "scripts/in.lua"
    assert _script_name(ws, tmp_path / "out" / "away.lua") == "away.lua"
    with Workspace.in_memory() as mem:
        assert _script_name(mem, root / "scripts" / "in.lua") == "in.lua"


def test_the_in_flight_marker_names_the_script_object(ws, tmp_path):
    import json

    run = begin_run(ws, tmp_path / "m.lua", bytearray(b"-- m"), ("a",))
    marker = json.loads(ws.storage.read(f"{MARKERS}/{run.id}.json"))
    assert marker == {
        "run": run.id,
        "pid": os.getpid(),
        "script_hash": hash_bytes(b"-- m"),
        "started_at": run.started_at,
    }
    assert run.args == ["a"] and run.env_session is None
    run.finish(0)


def test_world_oids_names_the_objects_a_world_keeps(ws, tmp_path):
    from spellfs.history.runs import world_oids

    assert world_oids({}) == [] and world_oids({"sessions": {"d": "junk", "e": {"start": 1}}}) == []
    start = {
        "manifest": "m",
        "state": None,
        "artifacts": 10,
        "artifacts_object": "ao",
        "checkpoints_object": "co",
        "calls_object": 5,
        "runs_object": "ro",
    }
    assert world_oids({"sessions": {"d": {"start": start}}}) == ["m", "ao", "co", "ro"]


def test_a_session_deleted_before_another_is_written_costs_the_other_nothing(ws, tmp_path):
    first = ws.sessions.create(name="first")
    second = ws.sessions.create(name="second")
    run = begin_run(ws, tmp_path / "d.lua", b"-- d", [])
    ws.artifacts.store(first, "t", "a.txt", "a")  # touched first ...
    ws.artifacts.store(second, "t", "b.txt", "b")
    ws.sessions.delete(first)  # ... and deleted
    [rec] = run.finish(0)
    assert rec["session_id"] == second and [a["name"] for a in rec["artifacts"]] == ["b.txt"]


def test_a_world_that_cannot_be_recorded_costs_the_run_nothing(ws, root, tmp_path, monkeypatch):
    import json

    result = tmp_path / "result.json"
    monkeypatch.setenv("SPELL_RUN_RESULT", str(result))
    sid = ws.sessions.create(name="m")
    run = begin_run(ws, tmp_path / "m.lua", b"-- m", [])
    ws.artifacts.store(sid, "t", "a.txt", "a")
    (root / "sessions" / ws.sessions.resolve(sid) / "session.yaml").write_text("[\n")
    [rec] = run.finish(0)
    assert "world" not in rec and run.world is None
    assert [r["run"] for r in read_runs(ws, ws.sessions.resolve(sid))] == [run.id]
    assert json.loads(result.read_bytes()) == {"run": run.id, "world": None}


def test_a_broken_run_record_is_named_by_file_and_line(ws, tmp_path):
    from spellfs import SpellError

    sid = ws.sessions.create(name="r")
    dir = ws.sessions.resolve(sid)
    ws.storage.append(f"sessions/{dir}/runs.yaml", b"- [not a record]\n")
    with pytest.raises(SpellError) as e:
        read_runs(ws, dir)
    assert str(e.value).startswith(f"sessions/{dir}/runs.yaml:1: ")


def test_a_run_that_only_sets_a_sessions_state_records_a_run_for_that_session(ws, tmp_path):
    sid = ws.sessions.create(name="state only")
    dir = ws.sessions.resolve(sid)
    run = begin_run(ws, tmp_path / "s.lua", b"-- s", [])
    run.note_session_state(dir, sid, "k")  # as State.set("session:<id>:k", ...) does first
    ws.state.set(f"session:{sid}:k", 1)
    [rec] = run.finish(0)
    assert rec["session_id"] == sid and rec["artifacts"] == []
    assert [r["run"] for r in read_runs(ws, dir)] == [run.id]


def test_a_run_records_whether_it_was_sandboxed_and_the_tree_of_its_checkpoint(anyws, tmp_path):
    """`replay` runs a `--sandbox` run sandboxed again (X1) and `replay --from N` picks runs by
    the checkpoint they started on, told apart by its tree after a merge (R1): each run record
    says both, and a session without a checkpoint names no tree."""
    ws = anyws
    a = ws.sessions.create(name="a")
    b = ws.sessions.create(name="b")
    ws.history.save(a)
    ws.artifacts.store(a, "t", "x.txt", "x")
    ws.history.save(a)
    [_, cp2] = ws.history.checkpoints(a)
    run = begin_run(ws, tmp_path / "boxed.lua", b"-- boxed", [], sandbox=True)
    assert run.sandbox is True
    ws.artifacts.store(a, "t", "one.txt", "1")
    ws.artifacts.store(b, "t", "two.txt", "2")
    run.finish(0)
    [ra] = read_runs(ws, _dir(ws, a))
    [rb] = read_runs(ws, _dir(ws, b))
    assert ra["sandbox"] is True and rb["sandbox"] is True
    assert ra["checkpoint"] == 2 and ra["checkpoint_tree"] == cp2["tree"]
    assert rb["checkpoint"] is None and "checkpoint_tree" not in rb
    free = begin_run(ws, tmp_path / "free.lua", b"-- free", [])
    assert free.sandbox is False
    ws.artifacts.store(a, "t", "three.txt", "3")
    free.finish(0)
    last = read_runs(ws, _dir(ws, a))[-1]
    assert last["run"] == free.id and "sandbox" not in last
    assert last["checkpoint_tree"] == cp2["tree"]
