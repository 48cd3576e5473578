"""Replay worlds (spellfs.history.worlds), built in process: what a replayed script finds.

A replay runs the recorded script in a scratch workspace rebuilt from the run's starting
point; these tests build that workspace directly and read it back, so a world that holds
the wrong sessions, the wrong bytes or the wrong State values fails here, not only as a
"differs" in a replay report. test_history_replays.py drives whole replays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SIGNALS_BLOCKED, pending_signals
from spellfs import ReplayError, Workspace
from spellfs.history.runs import begin_run
from spellfs.history.tree import Snapshot
from spellfs.history.worlds import (
    REPLAY_DIR,
    build_world,
    mark_kept,
    remove_world,
    sweep_worlds,
)
from spellfs.store import dump_yaml, parse_records

STATE_HEADER = b"# spellfs State values (JSON-able); edit by hand if you like\n"


def outside_spell(root: Path) -> dict[str, bytes]:
    """Every file of the workspace outside .spell/, by path (a world writes only inside it)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != ".spell"
    }


def session_bytes(root: Path, dir: str) -> dict[str, bytes]:
    base = root / "sessions" / dir
    return {p.name: p.read_bytes() for p in base.iterdir() if p.is_file()}


def recorded_world(ws, run) -> dict:
    [rec, *_] = run.finish(0)
    return json.loads(ws.objects.get(rec["world"]))


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def small_limit(root: Path) -> Path:
    """Files of more than 10 bytes are not materialized into files/ (watch config)."""
    with open(root / "spell.yaml", "a") as f:
        f.write("watch:\n  materialize_max_bytes: 10\n")
    (root / "templates" / "mine.yaml").write_text("name: mine\n")
    (root / "templates" / ".hidden").write_text("not a template\n")
    return root


def test_a_world_holds_the_touched_sessions_as_the_run_first_saw_them(small_limit, tmp_path):
    root = small_limit
    with Workspace.open(root) as ws:
        a = ws.sessions.create(name="a", tags=["t"])
        ws.artifacts.store(a, "t", "small.txt", "0123456789")  # exactly the limit
        ws.artifacts.store(a, "t", "big.txt", "0123456789A")  # one byte over it
        ws.artifacts.store(a, "t", "gone.txt", "g")
        ws.artifacts.delete(a, "gone.txt")
        ws.state.set(f"session:{a}:s", "x")
        ws.history.save(a, "one")
        untouched = ws.sessions.create(name="untouched")
        ws.state.set("limit", 3)
        ws.state.set("unrelated", "u")
        dir = ws.sessions.resolve(a)
        before = session_bytes(root, dir)
        run = begin_run(ws, tmp_path / "s.lua", b"-- s", [])
        ws.run.note_state("limit")
        ws.run.note_state("absent")
        ws.artifacts.store(a, "t", "new.txt", "new")
        ws.sessions.create(name="made")
        world_rec = recorded_world(ws, run)
        # the workspace moves on after the run
        ws.artifacts.store(a, "t", "later.txt", "later")
        ws.sessions.update_metadata(a, {"m": 2})
        ws.state.set("limit", 10)
        original = outside_spell(root)

        world = build_world(ws, world_rec, {}, a)

        assert outside_spell(root) == original
        assert world.parent == root / REPLAY_DIR and len(world.name) == 12
        info = json.loads((world / ".spell" / "replay.json").read_bytes())
        assert info["pid"] == os.getpid() and info["source"] == a and info["kept"] is False
        assert isinstance(info["started_at"], str) and info["started_at"]
        assert (world / ".spell" / "alternates").read_bytes() == os.fsencode(
            root / ".spell" / "objects"
        )
        assert (world / ".spell" / ".gitignore").read_bytes() == b"*\n"
        assert (world / ".spell" / "objects").is_dir()
        for name in ("spell.yaml", ".spellignore"):
            assert (world / name).read_bytes() == (root / name).read_bytes()
        assert (world / "templates" / "mine.yaml").read_text() == "name: mine\n"
        assert not (world / "templates" / ".hidden").exists()
        assert sorted(p.name for p in (world / "templates").iterdir()) == sorted(
            p.name for p in (root / "templates").iterdir() if not p.name.startswith(".")
        )
        # only the session the run touched and existed then; not the one it created
        assert [p.name for p in (world / "sessions").iterdir()] == [dir]
        # its files as they were when the run first touched it (append-only prefixes,
        # session.yaml and state.yaml from their objects); no empty runs/calls files
        assert session_bytes(world, dir) == before
        assert "runs.yaml" not in before and "calls.yaml" not in before
        files = world / "sessions" / dir / "files"
        assert sorted(p.name for p in files.iterdir()) == ["small.txt"]
        assert (files / "small.txt").read_bytes() == b"0123456789"
        # the State keys the run read, with the values it read; none it did not read
        assert (world / "state.yaml").read_bytes() == STATE_HEADER + dump_yaml({"limit": 3})
        with Workspace.open(world) as wws:
            assert [s["id"] for s in wws.sessions.list()] == [a]
            assert wws.state.get("limit") == 3 and wws.state.get("unrelated") is None
            assert [x["name"] for x in wws.artifacts.list(a)] == ["small.txt", "big.txt"]
            assert wws.artifacts.get(a, "big.txt")["content"] == b"0123456789A"
            assert wws.sessions.get(a)["custom_metadata"] == {}
            assert wws.state.get(f"session:{a}:s") == "x"
            assert wws.history.latest_number(dir) == 1
            assert untouched not in [s["id"] for s in wws.sessions.list()]


def test_a_world_without_templates_or_state_still_is_a_workspace(root, tmp_path):
    import shutil

    shutil.rmtree(root / "templates")
    (root / ".spellignore").unlink()
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="plain")
        run = begin_run(ws, tmp_path / "p.lua", b"--", [])
        ws.run.note_state("never")  # read, absent: nothing to write
        ws.artifacts.store(sid, "t", "a.txt", "a")
        world = build_world(ws, recorded_world(ws, run), {}, sid)
        assert (world / "templates").is_dir() and list((world / "templates").iterdir()) == []
        assert not (world / ".spellignore").exists() and not (world / "state.yaml").exists()
        assert (world / "spell.yaml").read_bytes() == (root / "spell.yaml").read_bytes()
        base = world / "sessions" / ws.sessions.resolve(sid)
        assert sorted(p.name for p in base.iterdir()) == ["files", "session.yaml"]
        assert list((base / "files").iterdir()) == []
        with Workspace.open(world) as wws:
            assert wws.artifacts.list(sid) == [] and wws.sessions.get(sid)["name"] == "plain"


def test_a_world_builds_every_recorded_session_and_skips_what_it_cannot(ws, root, tmp_path):
    before = ws.sessions.create(name="before")
    ws.artifacts.store(before, "t", "b.txt", "b")
    run = begin_run(ws, tmp_path / "c.lua", b"--", [])
    made = ws.sessions.create(name="made in run")
    ws.artifacts.store(made, "t", "m.txt", "m")
    ws.artifacts.store(before, "t", "b2.txt", "b2")
    world_rec = recorded_world(ws, run)
    sessions = world_rec["sessions"]
    made_dir, before_dir = ws.sessions.resolve(made), ws.sessions.resolve(before)
    assert sessions[made_dir]["start"] is None
    # whatever their order in the record: the created one, something unreadable, then one to build
    world_rec["sessions"] = {
        made_dir: sessions[made_dir],
        "junk": "not a session",
        before_dir: sessions[before_dir],
    }
    world = build_world(ws, world_rec, {}, before)
    assert [p.name for p in (world / "sessions").iterdir()] == [before_dir]
    with Workspace.open(world) as wws:
        assert [a["name"] for a in wws.artifacts.list(before)] == ["b.txt"]
    # a run that only created sessions: an empty world, still a workspace
    empty = build_world(ws, {"sessions": {}}, {}, before)
    assert (empty / "sessions").is_dir() and list((empty / "sessions").iterdir()) == []
    with Workspace.open(empty) as wws:
        assert wws.sessions.list() == []


def test_a_linked_template_is_copied_as_its_content(ws, root, tmp_path):
    (tmp_path / "elsewhere.yaml").write_text("name: elsewhere\n")
    os.symlink(tmp_path / "elsewhere.yaml", root / "templates" / "linked.yaml")
    world = build_world(ws, None, {}, "x")
    copy = world / "templates" / "linked.yaml"
    assert not copy.is_symlink() and copy.read_text() == "name: elsewhere\n"


def test_a_session_the_run_deleted_is_rebuilt_from_the_prefixes_it_kept(ws, root, tmp_path):
    sid = ws.sessions.create(name="doomed")
    ws.artifacts.store(sid, "t", "kept.txt", "k")
    ws.history.save(sid)
    dir = ws.sessions.resolve(sid)
    before = session_bytes(root, dir)
    other = ws.sessions.create(name="witness")
    run = begin_run(ws, tmp_path / "d.lua", b"--", [])
    ws.artifacts.store(sid, "t", "more.txt", "m")
    ws.artifacts.store(other, "t", "w.txt", "w")
    ws.sessions.delete(sid)
    assert not (root / "sessions" / dir).exists()
    rec = run.finish(0)[0]
    world_rec = json.loads(ws.objects.get(rec["world"]))
    item = world_rec["sessions"][dir]
    assert item["deleted"] is True and item["id"] == sid
    start = item["start"]
    assert ws.objects.get(start["artifacts_object"]) == before["artifacts.yaml"]
    assert ws.objects.get(start["checkpoints_object"]) == before["checkpoints.yaml"]
    assert "runs_object" not in start and "calls_object" not in start  # empty then

    world = build_world(ws, world_rec, {}, sid)
    assert session_bytes(world, dir) == before
    with Workspace.open(world) as wws:
        assert [x["name"] for x in wws.artifacts.list(sid)] == ["kept.txt"]


def test_a_record_file_shorter_than_the_run_saw_is_refused_by_name(ws, root, tmp_path):
    sid = ws.sessions.create(name="short")
    ws.artifacts.store(sid, "t", "a.txt", "a")
    dir = ws.sessions.resolve(sid)
    run = begin_run(ws, tmp_path / "s.lua", b"--", [])
    ws.artifacts.store(sid, "t", "b.txt", "b")
    world_rec = recorded_world(ws, run)
    length = world_rec["sessions"][dir]["start"]["artifacts"]
    path = root / "sessions" / dir / "artifacts.yaml"
    path.write_bytes(path.read_bytes()[: length - 1])
    with pytest.raises(ReplayError) as e:
        build_world(ws, world_rec, {}, sid)
    assert str(e.value) == (
        f"cannot rebuild the replay's world: sessions/{dir}/artifacts.yaml is shorter than when "
        f"the run read it ({length - 1} < {length} bytes; was the session removed?)"
    )
    assert list((root / REPLAY_DIR).iterdir()) == []  # the half-built world is not left
    path.unlink()
    with pytest.raises(ReplayError, match=rf"\(0 < {length} bytes; was the session removed"):
        build_world(ws, world_rec, {}, sid)
    assert list((root / REPLAY_DIR).iterdir()) == []


def test_a_world_at_a_checkpoint_holds_the_session_as_it_was_then(ws, root):
    sid = ws.sessions.create(name="then", tags=["x"])
    ws.artifacts.store(sid, "t", "b.txt", "bee")
    ws.artifacts.store(sid, "t", "a.txt", "0123")
    ws.artifacts.store(sid, "t", "a.txt", "01234")  # a second version: seq 3
    ws.artifacts.store(sid, "t", "c.txt", "c")
    ws.artifacts.delete(sid, "c.txt")
    ws.state.set(f"session:{sid}:k", "then")
    assert ws.history.save(sid, "one") == 1
    ws.artifacts.store(sid, "t", "later.txt", "l")
    ws.state.set(f"session:{sid}:k", "now")
    ws.sessions.update_metadata(sid, {"m": "now"})
    assert ws.history.save(sid, "two") == 2
    dir = ws.sessions.resolve(sid)
    original = outside_spell(root)

    world = build_world(ws, None, {dir: (ws.history.snapshot(dir, 1), 1)}, sid)

    assert outside_spell(root) == original
    base = world / "sessions" / dir
    records = [r for _, r in parse_records((base / "artifacts.yaml").read_bytes(), "a")]
    # one record per live artifact, in their order, numbered from 1 again
    assert [(r["seq"], r["name"]) for r in records] == [(1, "b.txt"), (2, "a.txt")]
    assert ws.objects.get(records[1]["hash"]) == b"01234"
    assert all("restored_from" not in r for r in records)
    checkpoints = [r for _, r in parse_records((base / "checkpoints.yaml").read_bytes(), "c")]
    assert [r["number"] for r in checkpoints] == [1]
    assert (base / "state.yaml").read_bytes().startswith(STATE_HEADER)
    # files/ from the records; only content within the limit (100 MB by default: all)
    assert {p.name: p.read_bytes() for p in (base / "files").iterdir()} == {
        "b.txt": b"bee",
        "a.txt": b"01234",
    }
    with Workspace.open(world) as wws:
        s = wws.sessions.get(sid)
        assert s["id"] == sid and s["name"] == "then" and s["tags"] == ["x"]
        assert s["custom_metadata"] == {}
        assert wws.state.get(f"session:{sid}:k") == "then"
        assert wws.history.latest_number(dir) == 1
        assert wws.artifacts.get(sid, "a.txt")["content"] == b"01234"
    # at a checkpoint made after a restore: fresh records, every checkpoint up to it
    ws.artifacts.store(sid, "t", "a.txt", "changed")
    assert ws.history.save(sid, "three") == 3
    ws.history.restore(sid, 1)
    assert ws.history.save(sid, "four") == 4
    snap = ws.history.snapshot(dir, 4)
    assert any("restored_from" in r for r in snap.table.values())
    world = build_world(ws, None, {dir: (snap, 4)}, sid)
    base = world / "sessions" / dir
    records = [r for _, r in parse_records((base / "artifacts.yaml").read_bytes(), "a")]
    assert [(r["seq"], r["name"]) for r in records] == [(1, "b.txt"), (2, "a.txt")]
    assert all("restored_from" not in r for r in records)
    checkpoints = [r for _, r in parse_records((base / "checkpoints.yaml").read_bytes(), "c")]
    assert [r["number"] for r in checkpoints] == [1, 2, 3, 4]
    with Workspace.open(world) as wws:
        assert wws.artifacts.get(sid, "a.txt")["content"] == b"01234"


def test_a_world_at_a_sessions_creation_is_empty_but_keeps_its_id(ws, root):
    sid = ws.sessions.create(name="fresh")
    ws.artifacts.store(sid, "t", "a.txt", "a")
    ws.state.set(f"session:{sid}:k", 1)
    ws.history.save(sid)
    dir = ws.sessions.resolve(sid)
    m = ws.sessions.manifest(dir)
    world = build_world(ws, None, {dir: (Snapshot("creation", dict(m), {}, {}), None)}, sid)
    base = world / "sessions" / dir
    assert sorted(p.name for p in base.iterdir()) == ["files", "session.yaml"]
    assert list((base / "files").iterdir()) == []
    with Workspace.open(world) as wws:
        assert wws.sessions.get(sid)["name"] == "fresh" and wws.artifacts.list(sid) == []
        assert wws.history.latest_number(dir) is None


def test_a_memory_workspace_has_no_world(tmp_path):
    with Workspace.in_memory() as ws:
        with pytest.raises(ReplayError) as e:
            build_world(ws, None, {}, "x")
        assert str(e.value) == (
            "cannot replay in a memory workspace: a replay rebuilds the run's world on disk"
        )


def _world_dir(root: Path, name: str, info: bytes | None) -> Path:
    d = root / REPLAY_DIR / name
    (d / ".spell").mkdir(parents=True)
    if info is not None:
        (d / ".spell" / "replay.json").write_bytes(info)
    return d


def test_the_sweep_removes_only_worlds_of_gone_replays_that_were_not_kept(root):
    with Workspace.open(root) as ws:
        assert sweep_worlds(ws) == []  # no replay folder yet
        gone = dead_pid()
        # another replay, still running, with every signal blocked: one sent stays pending
        child = subprocess.Popen([sys.executable, "-c", SIGNALS_BLOCKED], stdout=subprocess.PIPE)
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        cases = {
            "b-child": {"pid": child.pid},
            "a-dead": {"pid": gone, "kept": False},
            "b-dead-kept": {"pid": gone, "kept": True},
            "c-alive": {"pid": os.getpid(), "kept": False},
            "d-init": {"pid": 1},  # alive, whoever may signal it
            "e-zero": {"pid": 0},
            "f-negative": {"pid": -1},
            "g-text": {"pid": str(os.getpid())},
            "h-none": {},
        }
        for name, info in cases.items():
            _world_dir(root, name, json.dumps(info).encode())
        _world_dir(root, "i-garbage", b"{not json")
        _world_dir(root, "j-no-info", None)
        (root / REPLAY_DIR / "0-file").write_bytes(b"not a world")  # before the worlds
        original = outside_spell(root)

        try:
            removed = sweep_worlds(ws)
            assert pending_signals(child.pid) == 0  # asked whether it lives, not signalled
        finally:
            child.kill()
            child.wait()

        assert removed == ["a-dead", "e-zero", "f-negative", "g-text", "h-none", "i-garbage"] + [
            "j-no-info"
        ]
        assert sorted(p.name for p in (root / REPLAY_DIR).iterdir()) == [
            "0-file",
            "b-child",
            "b-dead-kept",
            "c-alive",
            "d-init",
        ]
        assert outside_spell(root) == original


def test_a_world_of_another_users_replay_counts_as_alive(root, monkeypatch):
    """os.kill(pid, 0) on another user's process answers EPERM: it exists."""

    def kill(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    with Workspace.open(root) as ws:
        _world_dir(root, "theirs", json.dumps({"pid": 4242}).encode())
        monkeypatch.setattr(os, "kill", kill)
        assert sweep_worlds(ws) == []
        assert (root / REPLAY_DIR / "theirs").is_dir()


def test_a_kept_world_is_marked_and_survives_the_sweep_then_can_be_removed(root, tmp_path):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="k")
        run = begin_run(ws, tmp_path / "k.lua", b"--", [])
        ws.artifacts.store(sid, "t", "a.txt", "a")
        world = build_world(ws, recorded_world(ws, run), {}, sid)
        before = json.loads((world / ".spell" / "replay.json").read_bytes())
        mark_kept(world)
        after = json.loads((world / ".spell" / "replay.json").read_bytes())
        assert after == {**before, "kept": True}
        after["pid"] = dead_pid()  # its replay is gone
        (world / ".spell" / "replay.json").write_text(json.dumps(after))
        assert sweep_worlds(ws) == [] and world.is_dir()
        remove_world(world)
        assert not world.exists()
        remove_world(world)  # gone already: nothing to do, no error
