"""spell gc: unreached objects go, reached ones never do — also while another process stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import loose
from spellfs import IntegrityError, Workspace
from spellfs.maintenance.checks import fsck
from spellfs.history import ROOTS, reachable
from spellfs.maintenance.garbage import gc
from spellfs.history.runs import begin_run


def _populated(ws, tmp_path):
    sid = ws.sessions.create(name="g")
    ws.artifacts.store(sid, "t", "a.txt", "version one")
    ws.history.save(sid, "one")
    ws.artifacts.store(sid, "t", "a.txt", "version two")
    ws.artifacts.store(sid, "t", "b.txt", "bee")
    ws.artifacts.delete(sid, "b.txt")  # its version stays reachable through the record
    ws.state.set(f"session:{sid}:k", "v")
    ws.history.save(sid, "two")
    run = begin_run(ws, tmp_path / "s.lua", b"-- the script", [])
    ws.artifacts.store(sid, "t", "c.txt", "made by a run")
    run.finish(0)
    return sid, run.script_hash


def test_gc_removes_only_unreached(anyws, tmp_path):
    ws = anyws
    sid, script = _populated(ws, tmp_path)
    junk = [ws.objects.put_bytes(f"junk {i}".encode()) for i in range(3)]
    reached = set(ws.objects) - set(junk)
    assert script in reachable(ws)
    dry = gc(ws, dry_run=True, grace=0)
    assert sorted(r["oid"] for r in dry.removed) == sorted(junk) and all(
        r["size"] == 6 for r in dry.removed
    )
    assert set(junk) <= set(ws.objects)  # nothing removed by a dry run
    report = gc(ws, grace=0)
    assert sorted(r["oid"] for r in report.removed) == sorted(junk)
    assert report.bytes == 18 and report.kept == len(reached)
    assert set(ws.objects) == reached
    # every checkpoint still reads back, every version still opens
    ws.history.trees._tables.clear()
    ws.history.trees._trees.clear()
    ws.history.trees._pages.clear()
    assert ws.history.diff(sid, 1, 2)["summary"]["changed"] == 1
    assert ws.artifacts.get(sid, "b.txt@1")["content"] == b"bee"
    assert ws.artifacts.get(sid, "a.txt@1")["content"] == b"version one"
    assert ws.history.can_replay(sid)
    assert gc(ws, grace=0).removed == []


def test_gc_after_session_removal_collects_its_history(ws, tmp_path):
    sid, _ = _populated(ws, tmp_path)
    keep = ws.sessions.create(name="keep")
    ws.artifacts.store(keep, "t", "a.txt", "version one")  # shared content survives
    ws.sessions.delete(sid)
    report = gc(ws, grace=0)
    assert report.removed and ws.objects.has(ws.artifacts.list(keep)[0]["content_hash"])
    assert fsck(ws).ok


def test_grace_spares_recent_objects(ws, tmp_path):
    oid = ws.objects.put_bytes(b"fresh garbage")
    report = gc(ws)  # default grace: 15 minutes
    assert report.removed == [] and report.spared == 1 and ws.objects.has(oid)
    loose(ws)
    old = time.time() - 3600
    os.utime(ws.objects.path(oid), (old, old))
    assert [r["oid"] for r in gc(ws).removed] == [oid]


def test_default_grace_is_fifteen_minutes(ws):
    """An unreached object written 16 s or 14 min ago is spared by default; 16 min ago it goes."""
    ages = {"16 s": 16, "14 min": 14 * 60, "16 min": 16 * 60}
    oids = {label: ws.objects.put_bytes(f"garbage {label}".encode()) for label in ages}
    loose(ws)
    now = time.time()
    for label, age in ages.items():
        os.utime(ws.objects.path(oids[label]), (now - age, now - age))
    report = gc(ws)
    assert [r["oid"] for r in report.removed] == [oids["16 min"]]
    assert report.spared == 2
    assert ws.objects.has(oids["16 s"]) and ws.objects.has(oids["14 min"])
    assert not ws.objects.has(oids["16 min"])


def test_in_flight_run_script_is_kept(ws, tmp_path):
    run = begin_run(ws, tmp_path / "long.lua", b"-- still running", [])
    ws.run = None  # as seen from another process: only the marker says so
    assert gc(ws, grace=0).removed == []
    assert ws.objects.has(run.script_hash)
    run.finish(0)  # touched nothing: no record, so now it is garbage
    assert [r["oid"] for r in gc(ws, grace=0).removed] == [run.script_hash]


def test_registered_roots_are_kept(anyws):
    ws = anyws
    oid = ws.objects.put_bytes(b"cached model answer")

    def model_cache(w):
        return [oid]

    ROOTS.append(model_cache)
    try:
        assert gc(ws, grace=0).removed == []
    finally:
        ROOTS.remove(model_cache)
    assert len(gc(ws, grace=0).removed) == 1


def test_unreadable_tree_stops_gc(ws, tmp_path):
    sid, _ = _populated(ws, tmp_path)
    junk = ws.objects.put_bytes(b"junk")
    tree = ws.history.checkpoints(sid)[-1]["tree"]
    loose(ws)
    path = ws.objects.path(tree)
    os.chmod(path, 0o644)
    path.write_bytes(b"garbage")
    ws.history.trees._trees.clear()
    with pytest.raises(IntegrityError, match=tree):
        gc(ws, grace=0)
    assert ws.objects.has(junk)


STORER = r"""
import os, sys
from spellfs import Workspace
n, stop = int(sys.argv[2]), sys.argv[3]
with Workspace.open(sys.argv[1]) as ws:
    sid = ws.sessions.create(name="racer")
    i = 0
    while i < n or not os.path.exists(stop):  # at least n rounds, then on until told to stop
        # old content first (already in the store, unreferenced), then new content
        ws.artifacts.store(sid, "t", f"old-{i}.txt", f"garbage {i % n}")
        ws.artifacts.store(sid, "t", f"new-{i}.txt", f"new {i}")
        if i % 10 == 0:
            ws.history.save(sid)
        i += 1
"""


def test_gc_racing_a_store_in_another_process(root, tmp_path):
    n, stop = 150, tmp_path / "stop"
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 1000000\n")
    with Workspace.open(root) as ws:
        garbage = [ws.objects.put_bytes(f"garbage {i}".encode()) for i in range(n)]
        loose(ws)
        old = time.time() - 3600
        for oid in garbage:
            os.utime(ws.objects.path(oid), (old, old))
    proc = subprocess.Popen(
        [sys.executable, "-c", STORER, str(root), str(n), str(stop)], stderr=subprocess.PIPE
    )
    rounds = 0  # gc rounds that ran while the storer was storing
    removed: set[str] = set()
    with Workspace.open(root) as ws:
        while proc.poll() is None:
            racing = bool(ws.sessions.list())  # the storer has begun
            removed |= {r["oid"] for r in gc(ws, grace=0).removed}
            rounds += racing and proc.poll() is None
            if rounds >= 3:  # the race happened: let the storer finish
                stop.touch()
    assert proc.wait() == 0, proc.stderr.read()
    with Workspace.open(root) as ws:
        report = fsck(ws)
        assert [p for p in report.problems if p.kind == "missing-object"] == []
        sid = ws.sessions.list()[0]["id"]
        for a in ws.artifacts.list(sid):
            assert ws.objects.has(a["content_hash"]), a["name"]
        for cp in ws.history.checkpoints(sid):
            ws.history.snapshot(ws.sessions.resolve(sid), cp["number"])
    # the race happened: gc ran again and again while stores went on, and took only garbage
    assert rounds >= 3, rounds
    assert removed and removed <= set(garbage), removed - set(garbage)


def test_cli_gc(root, spell):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="c")
        ws.artifacts.store(sid, "t", "a.txt", "a")
        junk = ws.objects.put_bytes(b"junk!")
    r = spell("-w", str(root), "gc", "--dry-run", "--grace", "0")
    assert r.returncode == 0 and f"would remove {junk} 5".encode() in r.stdout and r.stderr == b""
    r = spell("-w", str(root), "gc", "--grace", "0", "--json")
    data = json.loads(r.stdout)
    assert (
        data["removed"] == [{"oid": junk, "size": 5}] and data["count"] == 1 and not data["dry_run"]
    )
    r = spell("-w", str(root), "gc")
    assert r.returncode == 0 and b"removed 0 objects" in r.stdout


# -- the report, the progress, the clean-up and the limits (found by mutation testing) ------


def test_the_report_says_what_gc_did(ws):
    sid = ws.sessions.create(name="r")
    ws.artifacts.store(sid, "t", "a.txt", "kept")
    kept = len(list(ws.objects))
    junk = ws.objects.put_bytes(b"junk!")
    young = ws.objects.put_bytes(b"young junk")
    loose(ws)
    old = time.time() - 3600
    os.utime(ws.objects.path(junk), (old, old))
    stray = ws.root / ".spell" / "tmp" / ".state.yaml.1.2.tmp"
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"half a write")
    os.utime(stray, (old, old))
    sub = ws.events.subscribe("workspace.*")
    dry = gc(ws, dry_run=True)
    assert dry.as_dict() == {
        "dry_run": True,
        "removed": [{"oid": junk, "size": 5}],
        "bytes": 5,
        "count": 1,
        "kept": kept,
        "spared": 1,
        "temps_removed": [],
        "packs_merged": 0,
    }
    assert stray.exists() and ws.objects.has(junk)
    assert ws.events.receive(sub) is None  # a dry run changes nothing, so says nothing
    assert gc(ws).as_dict() == {
        "dry_run": False,
        "removed": [{"oid": junk, "size": 5}],
        "bytes": 5,
        "count": 1,
        "kept": kept,
        "spared": 1,
        "temps_removed": [".spell/tmp/.state.yaml.1.2.tmp"],
        "packs_merged": 0,
    }
    assert not stray.exists() and not ws.objects.has(junk) and ws.objects.has(young)
    event = ws.events.receive(sub)
    assert (event["event_type"], event["data"]) == ("workspace.gc", {"removed": 1, "bytes": 5})


def test_progress_counts_every_object_once(ws):
    oids = [ws.objects.put_bytes(f"junk {i}".encode()) for i in range(5)]
    totals: list[int] = []
    steps: list[int] = []
    gc(ws, grace=0, advance=steps.append, total=totals.append)
    assert totals == [5] and steps == [1] * 5
    assert not any(ws.objects.has(o) for o in oids)


def test_a_memory_workspace_has_no_ages_so_nothing_is_spared():
    with Workspace.in_memory() as ws:
        junk = ws.objects.put_bytes(b"junk")
        report = gc(ws)  # the default grace: objects in memory have no age to spare them by
        assert [r["oid"] for r in report.removed] == [junk] and report.spared == 0


def test_an_unreadable_record_file_stops_gc_with_its_name(ws):
    from spellfs import ManifestError

    sid = ws.sessions.create(name="bad")
    ws.artifacts.store(sid, "t", "a.txt", "reached only through the record file")
    rel = f"{ws.sessions.get(sid)['path']}/artifacts.yaml"
    junk = ws.objects.put_bytes(b"junk")
    with open(ws.root / rel, "ab") as f:
        f.write(b"- [not a record]\n")
    with pytest.raises(ManifestError) as info:
        gc(ws, grace=0)
    assert str(info.value) == (
        f"cannot collect garbage: {rel}:2: not a record (expected `- {{key: value, ...}}`)"
        " (fix it first; `spell fsck` names the line)"
    )
    assert ws.objects.has(junk)


def test_gc_holds_every_session_lock_even_past_the_open_file_limit(ws):
    """The removal phase locks all sessions at once, one open lock file each: gc raises its
    own soft limit on open files to the number of sessions plus a margin."""
    import resource

    for i in range(90):
        ws.sessions.create(name=f"s{i}")
    junk = ws.objects.put_bytes(b"junk")
    loose(ws)
    old = time.time() - 3600
    os.utime(ws.objects.path(junk), (old, old))
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert saved[1] == resource.RLIM_INFINITY or saved[1] >= 90 + 256
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 40, saved[1]))  # fewer than 90 locks
    try:
        report = gc(ws)
        raised = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)
    assert [r["oid"] for r in report.removed] == [junk]
    assert raised == 90 + 256


def test_objects_another_gc_removes_meanwhile_are_skipped_not_errors(ws):
    """Two gcs at once: an object the other one removed between the listing, the age check and
    the removal is neither an error nor counted twice."""
    junk = sorted(ws.objects.put_bytes(f"junk {i}".encode()) for i in range(4))
    loose(ws)
    old = time.time() - 3600
    for oid in junk:
        os.utime(ws.objects.path(oid), (old, old))
    calls = 0

    def other_gc_after_listing(n: int) -> None:  # listed, not yet looked at
        os.unlink(ws.objects.path(junk[3]))

    def other_gc_after_the_age_check(step: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # junk[0] and junk[1] are candidates already
            os.unlink(ws.objects.path(junk[0]))

    report = gc(ws, grace=0, total=other_gc_after_listing, advance=other_gc_after_the_age_check)
    assert sorted(r["oid"] for r in report.removed) == [junk[1], junk[2]]
    assert report.bytes == 12 and report.spared == 1  # the vanished one has no age: spared
    assert not any(ws.objects.has(oid) for oid in junk)


def test_an_object_a_store_reuses_during_gc_is_kept(ws):
    """The race the removal phase's locks are for: content stored again (a no-op put of an
    object that exists) after gc judged it unreached is reached when gc looks again."""
    sid = ws.sessions.create(name="r")
    ws.artifacts.store(sid, "t", "a.txt", "kept")
    reached = len(list(ws.objects))
    contents = {ws.objects.put_bytes(b"junk %d" % i): b"junk %d" % i for i in range(3)}
    junk = sorted(contents)
    loose(ws)
    old = time.time() - 3600
    for oid in junk:
        os.utime(ws.objects.path(oid), (old, old))
    steps = 0

    def store_meanwhile(step: int) -> None:
        nonlocal steps
        steps += 1
        if steps == len(junk) + reached:  # every junk object judged unreached by now
            ws.artifacts.store(sid, "t", "again.txt", contents[junk[0]])

    report = gc(ws, grace=0, advance=store_meanwhile)
    assert sorted(r["oid"] for r in report.removed) == junk[1:]
    assert report.kept == reached + 1 and ws.objects.has(junk[0])
    assert ws.artifacts.get(sid, "again.txt")["content"] == contents[junk[0]]


# -- packed objects (store/packs.py) -------------------------------------------------------
def _packs(root) -> list:
    return sorted((root / ".spell" / "objects" / "pack").glob("*.pack"))


def _bulk(ws, sid: str, contents: dict[str, bytes]) -> None:
    """A bulk store (as `spell add S DIR` makes): 16 or more new objects go into one pack."""
    ws.artifacts.store_many(sid, [("user_input", n, c, None) for n, c in contents.items()])


def test_gc_of_packed_objects_removes_old_unreached_keeps_reached_and_young(ws):
    from spellfs.store.objects import hash_bytes

    root = ws.root
    shared = {f"shared{i:02}.txt": f"kept by both {i:02}\n".encode() for i in range(10)}
    scratch = {f"scratch{i:02}.txt": f"only in scratch {i:02}\n".encode() for i in range(10)}
    young = {f"young{i:02}.txt": f"written just now {i:02}\n".encode() for i in range(16)}
    gone = ws.sessions.create(name="scratch")
    _bulk(ws, gone, {**shared, **scratch})
    [old_pack] = _packs(root)
    packed = old_pack.read_bytes()
    for content in [*shared.values(), *scratch.values()]:
        assert not ws.objects.path(hash_bytes(content)).exists() and content in packed
    keep = ws.sessions.create(name="keep")
    _bulk(ws, keep, shared)  # all stored already: nothing new is written
    assert _packs(root) == [old_pack]
    hour_ago = time.time() - 3600
    os.utime(old_pack, (hour_ago, hour_ago))
    fresh = ws.sessions.create(name="fresh")
    _bulk(ws, fresh, young)
    assert len(_packs(root)) == 2
    ws.sessions.delete(gone)
    ws.sessions.delete(fresh)

    report = gc(ws)  # the default grace: 15 minutes
    assert sorted(r["oid"] for r in report.removed) == sorted(map(hash_bytes, scratch.values()))
    assert report.bytes == sum(map(len, scratch.values())) and report.spared == len(young)
    with Workspace.open(root) as again:
        for content in [*shared.values(), *young.values()]:
            assert again.objects.get(hash_bytes(content)) == content
        assert not any(again.objects.has(hash_bytes(c)) for c in scratch.values())
        assert [a["name"] for a in again.artifacts.list(keep)] == sorted(shared)
        assert fsck(again).ok
    stored = b"".join(
        p.read_bytes() for p in (root / ".spell" / "objects").rglob("*") if p.is_file()
    )
    assert not any(content in stored for content in scratch.values())  # the space is given back
    assert not old_pack.exists()


def test_a_store_after_another_process_gcd_a_packed_object_writes_it_again(root):
    """A long-lived process (the watcher, `spell ui`, a long `spell run`) saw a pack; a `spell gc`
    elsewhere then removed an unreached object from it. Storing that same content again must
    write the object again: the record must never point at nothing."""
    from spellfs.store.objects import hash_bytes

    contents = {f"f{i:02}.txt": f"content {i:02}\n".encode() for i in range(20)}
    with Workspace.open(root) as daemon:
        old = daemon.sessions.create(name="old")
        _bulk(daemon, old, contents)
        [pack] = _packs(root)
        oid = hash_bytes(contents["f03.txt"])
        assert not daemon.objects.path(oid).exists() and contents["f03.txt"] in pack.read_bytes()
        daemon.sessions.delete(old)
        hour_ago = time.time() - 3600
        os.utime(pack, (hour_ago, hour_ago))
        r = subprocess.run(
            [sys.executable, "-m", "spellfs", "-w", str(root), "gc", "--json"],
            capture_output=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr.decode()
        assert oid in [x["oid"] for x in json.loads(r.stdout)["removed"]]
        new = daemon.sessions.create(name="new")
        daemon.artifacts.store(new, "user_input", "again.txt", contents["f03.txt"])
    with Workspace.open(root) as ws:
        assert ws.artifacts.get(new, "again.txt")["content"] == contents["f03.txt"]
        assert ws.objects.get(oid) == contents["f03.txt"]
        assert fsck(ws).ok
