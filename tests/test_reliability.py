"""Reliability: concurrent writers, corrupt data and repair, a full disk."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spellfs import SpellError, Workspace
from spellfs.maintenance.checks import fsck
from spellfs.maintenance.repairs import repair

from conftest import loose
from test_watch_watcher import wait_for

WRITER = r"""
import sys
from spellfs import Workspace
root, session, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with Workspace.open(root) as ws:
    for i in range(n):
        ws.artifacts.store(session, "tool_result", f"{tag}-{i}.txt", f"{tag} {i}".encode())
        ws.artifacts.store(session, "tool_result", "shared.txt", f"{tag} {i}".encode())
"""


def test_four_writers_with_the_daemon_running_lose_nothing(root: Path, spell) -> None:
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 10000\n")
    with Workspace.open(root) as ws:
        shared = ws.sessions.create(name="shared")
        own = [ws.sessions.create(name=f"own{i}") for i in range(2)]
        marker = ws.sessions.create(name="marker")
        marker_files = root / "sessions" / ws.sessions.resolve(marker) / "files"
    assert spell("-w", str(root), "daemon", "start").returncode == 0
    try:
        n = 150
        jobs = [(shared, "a"), (shared, "b"), (own[0], "c"), (own[1], "d")]
        procs = [
            subprocess.Popen([sys.executable, "-c", WRITER, str(root), sid, tag, str(n)])
            for sid, tag in jobs
        ]
        assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
        # The daemon must record none of the writers' files/ writes. It handles events in
        # order, so once it has recorded a file written after them, it has seen them all.
        (marker_files / "marker.txt").write_text("written by hand after the writers")

        def marker_recorded() -> bool:
            with Workspace.open(root) as ws:
                return [a["name"] for a in ws.artifacts.list(marker)] == ["marker.txt"]

        wait_for(marker_recorded, timeout=60)
    finally:
        assert spell("-w", str(root), "daemon", "stop").returncode == 0
    with Workspace.open(root) as ws:
        log = ws.log(ws.sessions.resolve(shared))
        log.refresh()
        seqs = [r["seq"] for r in log.records]
        by_watcher = [
            (r["seq"], r["name"], r.get("op"))
            for r in log.records
            if r.get("created_by") == "watch"
        ]
        assert by_watcher == [], f"the daemon recorded library writes as hand edits: {by_watcher}"
        assert len(seqs) == 4 * n and len(set(seqs)) == len(seqs)
        assert sorted(seqs) == list(range(1, 4 * n + 1))
        versions = [r["version"] for r in log.versions["shared.txt"]]
        assert versions == list(range(1, 2 * n + 1))
        names = {a["name"] for a in ws.artifacts.list(shared)}
        assert {f"a-{i}.txt" for i in range(n)} | {f"b-{i}.txt" for i in range(n)} <= names
        for sid in own:
            assert ws.sessions.get(sid)["artifact_count"] == n + 1
        assert fsck(ws).ok


def test_flipped_bit_is_named_and_repaired_from_files_copy(ws: Workspace) -> None:
    sid = ws.sessions.create(name="c")
    aid = ws.artifacts.store(sid, "user_input", "notes.md", b"precious words")
    loose(ws)
    path = ws.objects.path(aid["content_hash"])
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SpellError, match=aid["content_hash"]):
        ws.artifacts.get(sid, "notes.md")
    report = fsck(ws)
    assert [p.kind for p in report.problems] == ["corrupt-object"]
    fixed, left = repair(ws, report)
    assert not left and fixed
    assert ws.artifacts.get(sid, "notes.md")["content"] == b"precious words"
    assert fsck(ws).ok


def test_deleted_object_without_copy_is_listed_as_lost(ws: Workspace) -> None:
    sid = ws.sessions.create(name="c")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v2")
    old = ws.artifacts.get(sid, "a.txt@1")["metadata"]["content_hash"]
    loose(ws)
    ws.objects.path(old).unlink()
    report = fsck(ws)
    assert [(p.kind, p.oid) for p in report.problems] == [("missing-object", old)]
    fixed, left = repair(ws, report)
    assert [p.oid for p in left] == [old]  # v1 has no files/ copy: cannot be restored, and says so
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"v2"


def test_truncated_and_garbled_records_are_set_aside(ws: Workspace) -> None:
    sid = ws.sessions.create(name="c")
    for i in range(3):
        ws.artifacts.store(sid, "user_input", f"f{i}.txt", b"x%d" % i)
    rel = ws.root / ws.sessions.get(sid)["path"] / "artifacts.yaml"
    lines = rel.read_bytes().split(b"\n")
    lines[1] = b"- {this is: [not, closed"
    rel.write_bytes(b"\n".join(lines) + b'- {"seq": 9, "na')  # plus an unfinished write
    fresh = Workspace.open(ws.root)
    with pytest.raises(SpellError, match=r"artifacts.yaml:2"):
        fresh.artifacts.list(sid)
    report = fsck(fresh)
    kinds = sorted(p.kind for p in report.problems)
    assert kinds == ["bad-record", "partial-record"]
    fixed, left = repair(fresh, report)
    assert not left
    names = [a["name"] for a in fresh.artifacts.list(sid)]
    assert names == ["f0.txt", "f2.txt"]
    kept = list((ws.root / ".spell" / "repair").iterdir())
    assert len(kept) == 1 and b"not, closed" in kept[0].read_bytes()
    assert fsck(fresh).ok
    fresh.close()


def test_disk_full_fails_clearly_and_keeps_what_was_stored(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = ws.sessions.create(name="d")
    for i in range(5):
        ws.artifacts.store(sid, "user_input", f"ok{i}.txt", b"fine %d" % i)
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(SpellError, match="No space left") as info:
        ws.artifacts.store(sid, "user_input", "big.txt", b"y" * 5000)
    assert "\n" not in str(info.value)
    monkeypatch.setattr(os, "write", real_write)
    session_dir = ws.root / ws.sessions.get(sid)["path"]
    leftovers = [p for p in ws.root.rglob("*") if p.name.endswith(".tmp") or ".tmp-" in p.name]
    assert leftovers == []
    assert not (session_dir / "files" / "big.txt").exists()
    assert [a["name"] for a in ws.artifacts.list(sid)] == [f"ok{i}.txt" for i in range(5)]
    assert fsck(ws).ok
    ws.artifacts.store(sid, "user_input", "big.txt", b"y" * 5000)  # space is back: works again
    assert ws.artifacts.get(sid, "big.txt")["content"] == b"y" * 5000
