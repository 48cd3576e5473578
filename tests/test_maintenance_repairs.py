"""`spell fsck --repair`: what it restores, what it sets aside, and what it says it did."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import added_in_a_pack, loose
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
    loose(ws)
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
    # the corrupt file is replaced by a good loose one, read-only (a loose file is read before
    # any pack or journal, so this mends a damaged copy wherever it was); the missing one is
    # stored as a single store is: in this process's journal (store/journal.py)
    assert path.read_bytes() == b"precious words" and os.stat(path).st_mode & 0o777 == 0o444
    assert ws.objects.get(a) == b"precious words"
    where = ws.objects.packs.where(b)  # type: ignore[attr-defined]
    assert where is not None and Path(where).parent == ws.root / ".spell" / "objects" / "pack"
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
    loose(ws)
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


# -- found by mutation testing ---------------------------------------------------------------


def _garble(ws: Workspace, rel: str, line: int, tail: bytes = b"") -> list[bytes]:
    """Replace record line ``line`` (1-based) by garbage, optionally add an unfinished tail;
    return the lines that stay good."""
    lines = (ws.root / rel).read_bytes().split(b"\n")[:-1]
    good = [raw for i, raw in enumerate(lines, 1) if i != line]
    lines[line - 1] = b"- {this is: [not, closed"
    (ws.root / rel).write_bytes(b"".join(raw + b"\n" for raw in lines) + tail)
    return good


def _session_with_records(ws: Workspace, n: int = 3) -> tuple[str, str]:
    sid = ws.sessions.create(name="c")
    for i in range(n):
        ws.artifacts.store(sid, "user_input", f"f{i}.txt", b"x%d" % i)
    return sid, f"{ws.sessions.get(sid)['path']}/artifacts.yaml"


def test_a_garbled_line_alone_is_set_aside_and_the_rewrite_is_flushed(ws, monkeypatch) -> None:
    import re

    sid, rel = _session_with_records(ws)
    good = _garble(ws, rel, 2)
    flushed: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    fixed, left = repair(ws, fsck(ws))
    monkeypatch.undo()
    assert left == [] and len(fixed) == 1
    assert (ws.root / rel).read_bytes() == b"".join(raw + b"\n" for raw in good)
    [kept] = (ws.root / ".spell" / "repair").iterdir()
    assert re.fullmatch(re.escape(rel.replace("/", "__")) + r"\.\d{8}T\d{6}\.removed", kept.name)
    assert kept.read_bytes() == b"- {this is: [not, closed\n"
    # the rewritten record file reached the disk before repair said so
    assert any("artifacts.yaml" in path for path in flushed), flushed


def test_an_unfinished_last_line_alone_is_set_aside(ws) -> None:
    sid, rel = _session_with_records(ws)
    before = (ws.root / rel).read_bytes()
    (ws.root / rel).write_bytes(before + b'- {"seq": 9, "na')
    report = fsck(ws)
    assert [p.kind for p in report.problems] == ["partial-record"]
    fixed, left = repair(ws, report)
    assert left == [] and len(fixed) == 1 and "set aside 1 unreadable line(s)" in fixed[0]
    assert (ws.root / rel).read_bytes() == before


def test_every_files_copy_is_considered_past_folders_in_files(ws) -> None:
    sid = ws.sessions.create(name="c")
    oids = [
        ws.artifacts.store(sid, "user_input", f"n{i:02d}.md", b"copy %d" % i)["content_hash"]
        for i in range(20)
    ]
    files = ws.root / ws.sessions.get(sid)["path"] / "files"
    for name in ("d1", "d2", "d3"):  # listed in any order among the copies
        (files / name).mkdir()
    loose(ws)
    for oid in oids:
        _damage(ws, oid)
    fixed, left = repair(ws, fsck(ws))
    assert left == [] and len(fixed) == 20
    assert [ws.objects.get(oid) for oid in oids] == [b"copy %d" % i for i in range(20)]


def test_problems_repair_does_not_handle_are_listed_back_whatever_they_carry(ws) -> None:
    sid = ws.sessions.create(name="c")
    oid = ws.artifacts.store(sid, "user_input", "a.txt", b"has a files/ copy")["content_hash"]
    rel = f"{ws.sessions.get(sid)['path']}/artifacts.yaml"
    before = (ws.root / rel).read_bytes()
    others = [
        Problem("bad-checkpoint", rel, "checkpoint 1: unreadable", oid=oid),
        Problem("hand-edit", rel, "files/a.txt differs", line=1),
    ]
    report = Report()
    report.problems += others
    assert repair(ws, report) == ([], others)
    assert (ws.root / rel).read_bytes() == before
    assert not (ws.root / ".spell" / "repair").exists()


def test_repair_waits_for_a_writer_holding_the_session_lock(ws) -> None:
    import threading

    sid, rel = _session_with_records(ws)
    good = _garble(ws, rel, 1)
    dir = rel.split("/")[1]
    report = fsck(ws)
    done = threading.Event()
    result: list = []

    def run() -> None:
        with Workspace.open(ws.root) as other:  # another process's view, here a thread's
            result.append(repair(other, report))
        done.set()

    with ws.storage.lock(f"s-{dir}"):
        worker = threading.Thread(target=run)
        worker.start()
        assert not done.wait(0.5)  # blocked on the lock an appender holds
        assert (ws.root / rel).read_bytes().startswith(b"- {this is")
        late = good[1].replace(b'"seq": 3', b'"seq": 4')  # a record a writer appends meanwhile
        assert late != good[1]
        ws.storage.append(rel, late + b"\n")
    worker.join(60)
    assert done.is_set() and len(result[0][0]) == 1
    # the rewrite saw the append: nothing acknowledged was dropped
    assert (ws.root / rel).read_bytes() == b"".join(raw + b"\n" for raw in [*good, late])


def test_a_corrupt_packed_object_is_rebuilt_from_its_files_copy(root: Path, spell) -> None:
    """A bulk store's objects live in one pack (store/packs.py): a damaged one among them is
    rebuilt from its files/ copy, and the others in that pack still read."""
    from spellfs.store.objects import hash_bytes

    sid, contents, pack = added_in_a_pack(root, "packed words")
    victim = contents["f07.txt"]
    oid = hash_bytes(victim)
    raw = bytearray(pack.read_bytes())
    at = raw.find(victim)
    assert at > 0 and not (root / ".spell" / "objects" / oid[:2] / oid[2:]).exists()
    raw[at] ^= 0x01
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(raw))

    r = spell("-w", str(root), "fsck", "--repair")
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr.decode())
    assert f"object {oid} rebuilt from sessions/" in out and "files/f07.txt" in out
    with Workspace.open(root) as ws:
        report = fsck(ws)
        assert report.ok and report.problems == [], report.problems
        for name, content in contents.items():
            assert ws.objects.get(hash_bytes(content)) == content, name
    r = spell("-w", str(root), "cat", sid, "f07.txt")
    assert r.returncode == 0 and r.stdout == victim


def test_after_repair_rebuilt_what_an_unreadable_pack_held_fsck_passes(root: Path, spell) -> None:
    """A pack whose footer is damaged cannot be read; `spell fsck --repair` rebuilds each object
    it held from its files/ copy. Then the workspace is whole: fsck passes, and the damaged
    pack's bytes are kept aside (never deleted), not reported again and again."""
    sid, contents, pack = added_in_a_pack(root, "packed words")
    raw = bytearray(pack.read_bytes())
    assert all(c in raw for c in contents.values())
    raw[-3] ^= 0xFF  # in the footer's magic
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(raw))
    r = spell("-w", str(root), "fsck")
    assert r.returncode == 1 and "corrupt-pack" in r.stdout.decode()

    r = spell("-w", str(root), "fsck", "--repair")
    assert r.stdout.decode().count(" rebuilt from sessions/") == len(contents), r.stdout.decode()
    with Workspace.open(root) as ws:
        for name, content in contents.items():
            assert ws.artifacts.get(sid, name)["content"] == content, name
    r = spell("-w", str(root), "fsck")
    assert r.returncode == 0, r.stdout.decode()
    kept = [p for p in (root / ".spell").rglob("*") if p.is_file() and p.read_bytes() == raw]
    assert kept, "the damaged pack was deleted"


def test_repair_sets_an_unreadable_pack_aside_byte_for_byte_once_its_objects_are_rebuilt(
    root: Path,
) -> None:
    """In-process (the `spell fsck --repair` test above runs a subprocess): the damaged pack is
    moved to .spell/repair/ under a name that says where it was and when, never deleted."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="bulk")
        contents = [f"packed {i:02}\n".encode() for i in range(20)]
        ws.artifacts.store_many(
            sid, [("user_input", f"f{i:02}.txt", c, None) for i, c in enumerate(contents)]
        )
    [pack] = (root / ".spell" / "objects" / "pack").glob("*.pack")
    raw = bytearray(pack.read_bytes())
    raw[-3] ^= 0xFF  # in the footer's magic
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(raw))
    rel = f".spell/objects/pack/{pack.name}"
    with Workspace.open(root) as ws:
        before = time.strftime("%Y%m%dT%H%M%S")
        fixed, left = repair(ws, fsck(ws))
        after = time.strftime("%Y%m%dT%H%M%S")
        assert left == []
        [aside] = (root / ".spell" / "repair").iterdir()
        stamp = aside.name.removeprefix(f".spell__objects__pack__{pack.name}.")
        assert stamp.endswith(".removed") and before <= stamp[: -len(".removed")] <= after
        assert aside.read_bytes() == bytes(raw) and not pack.exists()
        assert fixed[-1] == f"{rel}: unreadable, set aside in .spell/repair/{aside.name}"
        assert len(fixed) == 21  # the 20 objects rebuilt from their copies, then the pack
    with Workspace.open(root) as ws:
        assert fsck(ws).ok


def test_repair_sets_two_unreadable_packs_aside(root: Path) -> None:
    """The second goes beside the first (.spell/repair/ exists by then)."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="bulk")
        for batch in ("a", "b"):
            ws.artifacts.store_many(
                sid, [("user_input", f"{batch}{i:02}.txt", f"{batch} {i}", None) for i in range(20)]
            )
    packs = sorted((root / ".spell" / "objects" / "pack").glob("*.pack"))
    assert len(packs) == 2
    for pack in packs:
        raw = bytearray(pack.read_bytes())
        raw[-3] ^= 0xFF
        os.chmod(pack, 0o644)
        pack.write_bytes(bytes(raw))
    with Workspace.open(root) as ws:
        fixed, left = repair(ws, fsck(ws))
        assert left == [] and len(fixed) == 42
        assert len(list((root / ".spell" / "repair").iterdir())) == 2
    with Workspace.open(root) as ws:
        assert fsck(ws).ok
