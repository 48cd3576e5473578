"""What the workspace reaches (history/reach.py): every object gc keeps and push sends, and
where each is named from (what gc and fsck print). Real workspaces, real runs, real markers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SIGNALS_BLOCKED, loose, pending_signals
from spellfs import ObjectNotFound, Workspace
from spellfs.history import begin_run
from spellfs.history.reach import reachable, session_dirs
from spellfs.history.runs import MARKERS


@pytest.fixture
def two(ws: Workspace) -> tuple[str, str]:
    a = ws.sessions.create(name="alpha")
    b = ws.sessions.create(name="beta")
    ws.artifacts.store(a, "note", "a.txt", "alpha one")
    ws.artifacts.store(b, "note", "b.txt", "beta one")
    return ws.sessions.resolve(a), ws.sessions.resolve(b)


def test_each_object_is_named_with_where_it_is_referenced(ws: Workspace) -> None:
    sid = ws.sessions.create(name="s")
    dir = ws.sessions.resolve(sid)
    script = b"-- a script\n"
    run = begin_run(ws, Path("make.lua"), script, ["x"])
    ws.artifacts.store(sid, "note", "a.txt", "one")
    run.finish(0)
    ws.run = None
    ws.history.save(sid, "first")
    ws.artifacts.store(sid, "note", "b.txt", "two")
    ws.history.save(sid, "second")
    a = ws.log(dir).latest("a.txt")["hash"]
    b = ws.log(dir).latest("b.txt")["hash"]
    cp, cp2 = ws.history.records(dir)
    [rec] = [json.loads(json.dumps(r)) for r in _runs(ws, dir)]
    refs = reachable(ws, deep=False)
    assert refs[a] == f"sessions/{dir}/artifacts.yaml#1"
    assert refs[cp["tree"]] == f"sessions/{dir}/checkpoints.yaml#1"
    where = f"sessions/{dir}/runs.yaml#{rec['run'][:8]}"
    assert refs[rec["script_hash"]] == where and refs[rec["world"]] == where
    assert refs[b] == f"sessions/{dir}/artifacts.yaml#2"
    assert refs[cp2["tree"]] == f"sessions/{dir}/checkpoints.yaml#2"
    assert len(refs) == 6  # deep=False reads no object: the trees' insides are not listed
    deep = reachable(ws)
    assert deep[cp["tree"]] == f"sessions/{dir}/checkpoints.yaml#1"
    assert deep[a] == f"sessions/{dir}/artifacts.yaml#1"  # the first place it was seen
    inside = set(deep) - set(refs)
    assert inside and all(deep[o] in (f"sessions/{dir}/checkpoints.yaml#1", where) for o in inside)


def _runs(ws: Workspace, dir: str) -> list[dict]:
    from spellfs.history.runs import read_runs

    return read_runs(ws, dir)


def test_a_hand_written_run_line_without_an_id_or_a_world_is_reached_by_its_script(
    ws: Workspace,
) -> None:
    sid = ws.sessions.create(name="s")
    dir = ws.sessions.resolve(sid)
    script = ws.objects.put_bytes(b"-- an old run")
    (ws.root / "sessions" / dir / "runs.yaml").write_text(f'- {{"script_hash": "{script}"}}\n')
    refs = reachable(ws)
    assert refs == {script: f"sessions/{dir}/runs.yaml#?"}  # no world: nothing else, no None


def test_named_sessions_reach_only_their_own_objects(ws: Workspace, two: tuple) -> None:
    a, b = two
    only_a = reachable(ws, ["alpha", "alpha"], deep=False)
    assert set(only_a) == {ws.log(a).latest("a.txt")["hash"]}
    assert session_dirs(ws, ["beta", "alpha", "beta"]) == [b, a]  # in order, once each
    assert session_dirs(ws, None) == sorted([a, b])


def test_hidden_folders_under_sessions_are_no_sessions(ws: Workspace, two: tuple) -> None:
    (ws.root / "sessions" / ".trash").mkdir()
    assert session_dirs(ws, []) == sorted(two)


def test_a_tree_that_cannot_be_read_raises_or_is_noted(ws: Workspace) -> None:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "note", "a.txt", "one")
    ws.history.save(sid, "first")
    dir = ws.sessions.resolve(sid)
    [cp] = ws.history.records(dir)
    loose(ws)
    path = ws.objects.path(cp["tree"])
    os.chmod(path, 0o644)
    path.unlink()
    with Workspace.open(ws.root) as fresh:  # (this process keeps trees it read in memory)
        with pytest.raises(ObjectNotFound):
            reachable(fresh)
        noted: dict[str, str] = {}
        refs = reachable(fresh, unreadable=noted)
        assert list(noted) == [cp["tree"]]
        assert noted[cp["tree"]].startswith(f"sessions/{dir}/checkpoints.yaml: ")
        assert fresh.log(dir).latest("a.txt")["hash"] in refs  # the walk went on


def _marker(ws: Workspace, name: str, pid: int, oid: str) -> Path:
    path = ws.root / MARKERS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": name, "pid": pid, "script_hash": oid}))
    return path


def test_an_in_flight_run_keeps_its_script_and_a_dead_ones_marker_goes(ws: Workspace) -> None:
    live = ws.objects.put_bytes(b"-- running now")
    other = ws.objects.put_bytes(b"-- running in another process")
    dead = ws.objects.put_bytes(b"-- killed long ago")
    child = subprocess.Popen(
        [sys.executable, "-c", SIGNALS_BLOCKED], stdout=subprocess.PIPE, text=True
    )  # (every signal but KILL and STOP blocked: one sent to it stays pending, to be seen)
    assert child.stdout.readline() == "ready\n"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        mine = _marker(ws, "mine", os.getpid(), live)
        theirs = _marker(ws, "theirs", child.pid, other)
        stale = _marker(ws, "stale", gone.pid, dead)
        broken = ws.root / MARKERS / "broken.json"
        broken.write_text("{not json")
        refs = reachable(ws)
        assert refs[live] == f"{MARKERS}/mine.json" and refs[other] == f"{MARKERS}/theirs.json"
        assert dead not in refs
        assert mine.exists() and theirs.exists() and broken.exists()
        assert not stale.exists()  # its process is gone: the marker is dropped
        assert pending_signals(child.pid) == 0  # asking whether a process lives sends it no signal
        assert reachable(ws, deep=False).get(live) is None  # markers: for a deep walk of all
    finally:
        child.kill()
        child.wait()


def test_the_running_script_and_registered_roots_are_reached(ws: Workspace) -> None:
    from spellfs.history import reach

    import functools

    kept = ws.objects.put_bytes(b"kept by a root")
    other = ws.objects.put_bytes(b"kept by a nameless root")

    def cache_root(seen: Workspace) -> list[str]:
        return [kept] if seen.root == ws.root else []

    nameless = functools.partial(lambda oid, _ws: [oid], other)
    reach.ROOTS.extend([cache_root, nameless])
    try:
        run = begin_run(ws, Path("make.lua"), b"-- now", [])
        refs = reachable(ws)
        assert refs[kept] == "cache_root" and refs[other] == "a registered root"
        assert refs[run.script_hash] == f"{MARKERS}/{run.id}.json"
        (ws.root / MARKERS / f"{run.id}.json").unlink()  # (say, removed by hand)
        assert reachable(ws)[run.script_hash] == "the running script"
        assert kept not in reachable(ws, deep=False)  # roots are for a deep walk of all
    finally:
        reach.ROOTS.remove(cache_root)
        reach.ROOTS.remove(nameless)
        ws.run = None
