"""`spell fsck --repair`: what it restores, what it sets aside, and what it says it did."""

from __future__ import annotations

import os
import time
from pathlib import Path

from spellfs import Workspace
from spellfs.maintenance.checks import Problem, Report, fsck
from spellfs.maintenance.repairs import repair


def _damage(ws: Workspace, oid: str) -> Path:
    path = ws.objects.path(oid)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    return path


def test_a_corrupt_or_missing_object_is_rebuilt_from_a_files_copy(ws: Workspace) -> None:
    sid = ws.sessions.create(name="c")
    a = ws.artifacts.store(sid, "user_input", "notes.md", b"precious words")["content_hash"]
    b = ws.artifacts.store(sid, "user_input", "other.md", b"more words")["content_hash"]
    (ws.root / ws.sessions.get(sid)["path"] / "files" / "sub").mkdir()  # not a copy: skipped
    dir = ws.sessions.resolve(sid)
    path = _damage(ws, a)
    ws.objects.path(b).unlink()
    report = fsck(ws)
    assert sorted((p.kind, p.oid) for p in report.problems) == sorted(
        [("corrupt-object", a), ("missing-object", b)]
    )
    fixed, left = repair(ws, report)
    assert left == []
    assert sorted(fixed) == sorted(
        [
            f"object {a} rebuilt from sessions/{dir}/files/notes.md",
            f"object {b} rebuilt from sessions/{dir}/files/other.md",
        ]
    )
    assert path.read_bytes() == b"precious words" and os.stat(path).st_mode & 0o777 == 0o444
    assert ws.objects.get(b) == b"more words"
    assert fsck(ws).ok


def test_a_missing_object_is_fetched_from_the_remote_but_a_corrupt_one_is_not(
    ws: Workspace, tmp_path: Path
) -> None:
    sid = ws.sessions.create(name="c")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v2")  # v1 now has no files/ copy
    ws.artifacts.store(sid, "user_input", "b.txt", b"b1")
    ws.artifacts.store(sid, "user_input", "b.txt", b"b2")
    v1 = ws.artifacts.get(sid, "a.txt@1")["metadata"]["content_hash"]
    b1 = ws.artifacts.get(sid, "b.txt@1")["metadata"]["content_hash"]
    saved = {v1: b"v1", b1: b"b1"}
    ws.objects.path(v1).unlink()
    _damage(ws, b1)
    asked: list[str] = []

    def remote(oid: str) -> bool:
        asked.append(oid)
        ws.objects.put_bytes(saved[oid])
        return True

    report = fsck(ws)
    ws.objects.fetcher = remote
    fixed, left = repair(ws, report)
    assert fixed == [f"object {v1} fetched from the remote"] and asked == [v1]
    assert [(p.kind, p.oid) for p in left] == [("corrupt-object", b1)]  # not rebuilt: listed
    assert ws.artifacts.get(sid, "a.txt@1")["content"] == b"v1"


def test_unreadable_record_lines_are_set_aside_whole_and_said_so(ws: Workspace) -> None:
    sid = ws.sessions.create(name="c")
    for i in range(3):
        ws.artifacts.store(sid, "user_input", f"f{i}.txt", b"x%d" % i)
    rel = f"{ws.sessions.get(sid)['path']}/artifacts.yaml"
    lines = (ws.root / rel).read_bytes().split(b"\n")
    good = [lines[0], lines[2]]
    lines[1] = b"- {this is: [not, closed"
    (ws.root / rel).write_bytes(b"\n".join(lines) + b'- {"seq": 9, "na')  # an unfinished write
    report = fsck(ws)
    assert sorted(p.kind for p in report.problems) == ["bad-record", "partial-record"]
    fixed, left = repair(ws, report)
    assert left == []
    [kept] = (ws.root / ".spell" / "repair").iterdir()
    dest = f".spell/repair/{kept.name}"
    assert kept.name.startswith(rel.replace("/", "__") + ".") and kept.name.endswith(".removed")
    assert fixed == [f"{rel}: set aside 2 unreadable line(s) in {dest}"]
    assert kept.read_bytes() == b'- {this is: [not, closed\n- {"seq": 9, "na\n'
    assert (ws.root / rel).read_bytes() == b"".join(line + b"\n" for line in good)
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["f0.txt", "f2.txt"]
    assert fsck(ws).ok
    # a second repair with the report of before finds nothing left to set aside
    assert repair(ws, report) == ([], [])


def test_old_temps_are_removed_young_ones_kept_and_other_problems_listed(
    ws: Workspace,
) -> None:
    tmp = ws.root / ".spell" / "tmp"
    tmp.mkdir(exist_ok=True)
    old, young = tmp / ".a.1.2.tmp", tmp / ".b.1.2.tmp"
    for p in (old, young):
        p.write_bytes(b"half a write")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    other = Problem("bad-manifest", "sessions/x/session.yaml", "broken")
    report = Report()
    report.problems += [other, Problem("stray-temp", ".spell/tmp/.a.1.2.tmp", "unfinished")]
    fixed, left = repair(ws, report)
    assert fixed == ["removed .spell/tmp/.a.1.2.tmp"] and left == [other]
    assert not old.exists() and young.exists()
