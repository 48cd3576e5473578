"""Descriptors kept open between stores: handed out only for the inode they were opened on, to
one taker at a time, and never more than a few (issue 19: a store no longer opens and closes
its record file and in-flight list)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import before_appends
from spellfs import Workspace, init_workspace
from spellfs.model.inflight import INFLIGHT
from spellfs.store.kept import KeptFiles
from spellfs.store.records import parse_records


def _open(path: Path) -> tuple[int, int]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return fd, os.fstat(fd).st_ino


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_kept_descriptor_is_handed_out_once_and_only_for_its_inode(tmp_path: Path) -> None:
    kept = KeptFiles()
    fd, ino = _open(tmp_path / "a")
    kept.give("a", fd, ino)
    assert kept.take("a", ino) == fd  # the taker's now: nobody else gets it
    assert kept.take("a", ino) is None
    kept.give("a", fd, ino)
    assert kept.take("a", ino + 1) is None  # the path names another file now: closed, not used
    assert not _is_open(fd)


def test_a_folder_removed_closes_what_is_kept_below_it_only(tmp_path: Path) -> None:
    kept = KeptFiles()
    below, beside, gone = (_open(tmp_path / n) for n in ("a", "b", "c"))
    kept.give("sessions/s/artifacts.yaml", *below)
    kept.give("sessions/s2/artifacts.yaml", *beside)
    kept.give("sessions/t/x", *gone)
    os.close(gone[0])  # closed behind its back: forgetting it is no error
    kept.forget("sessions/s")
    kept.forget("sessions/t")
    assert not _is_open(below[0]) and _is_open(beside[0])
    assert kept.take("sessions/s2/artifacts.yaml", beside[1]) == beside[0]


def test_a_deleted_session_leaves_no_record_file_open(ws: Workspace) -> None:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "t", "a.txt", b"one")
    ws.sessions.delete(sid)
    held = []
    for n in _fds():
        try:
            held.append(os.readlink(f"/proc/self/fd/{n}"))
        except FileNotFoundError:  # (the listing's own, closed since)
            pass
    assert not [h for h in held if h.endswith("artifacts.yaml (deleted)")]


def test_no_more_than_its_size_are_kept_the_least_used_closed(tmp_path: Path) -> None:
    kept = KeptFiles(2)
    opened = [_open(tmp_path / n) for n in "abc"]
    for name, (fd, ino) in zip("abc", opened):
        kept.give(name, fd, ino)
    assert not _is_open(opened[0][0])
    assert kept.take("b", opened[1][1]) == opened[1][0]
    kept.give("b", *opened[1])
    fd, ino = _open(tmp_path / "b")  # given again for the same path: the old one is closed
    kept.give("b", fd, ino)
    assert not _is_open(opened[1][0])
    kept.forget("c")
    assert not _is_open(opened[2][0])
    kept.close()
    assert not _is_open(fd)


def test_stores_in_many_sessions_keep_a_few_descriptors_and_close_releases_them(
    root: Path, tmp_path: Path
) -> None:
    init_workspace(tmp_path / "warm")
    with Workspace.open(tmp_path / "warm") as warm:  # (what a process keeps open)
        warm.artifacts.store(warm.sessions.create(name="w"), "t", "a.txt", b"x")
    before = _fds()
    with Workspace.open(root) as ws:
        sids = [ws.sessions.create(name=f"s{i}") for i in range(12)]
        ws.artifacts.store(sids[0], "t", "warm.txt", b"opens the journal, the locks")
        settled = _fds()
        for sid in sids:
            ws.artifacts.store(sid, "t", "a.txt", b"one")
            ws.artifacts.store(sid, "t", "a.txt", b"two")
        grown = _fds() - settled
        assert len(grown) <= 4 + 12  # a few kept, and one lock file a session
    assert _fds() <= before


def test_a_record_file_replaced_while_it_is_appended_to_gets_the_record(
    ws: Workspace, monkeypatch
) -> None:
    """``git checkout`` swaps the record file between the store's look and its write: the write
    through the descriptor kept from the last store went to a file nobody reads, so the record
    is appended again, by path, to the file that is there."""
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "t", "a.txt", b"one")
    dir = ws.sessions.resolve(sid)
    rel = f"sessions/{dir}/artifacts.yaml"
    path = ws.root / rel
    take = ws.storage.kept.take
    swapped = []

    def take_then_swap(r: str, inode: int):
        fd = take(r, inode)
        if r == rel and fd is not None and not swapped:
            copy = path.with_name("checked-out")
            copy.write_bytes(path.read_bytes())
            os.replace(copy, path)
            swapped.append(r)
        return fd

    monkeypatch.setattr(ws.storage.kept, "take", take_then_swap)
    ws.artifacts.store(sid, "t", "b.txt", b"two")
    assert swapped
    names = [r["name"] for _, r in parse_records(path.read_bytes(), rel)]
    assert names == ["a.txt", "b.txt"]
    with Workspace.open(ws.root) as again:
        assert sorted(a["name"] for a in again.artifacts.list(sid)) == ["a.txt", "b.txt"]


def test_a_line_cut_short_by_hand_meanwhile_is_set_aside_not_glued_to(
    ws: Workspace, monkeypatch
) -> None:
    """Someone appends an unfinished line between the store's look and its write: the size the
    kept descriptor finds is not the one read, and the append goes by path, which sets the
    fragment aside, so the record is a line of its own."""
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "t", "a.txt", b"one")
    rel = f"sessions/{ws.sessions.resolve(sid)}/artifacts.yaml"
    path = ws.root / rel
    take = ws.storage.kept.take

    def take_then_cut(r: str, inode: int):
        fd = take(r, inode)
        if r == rel:
            with open(path, "ab") as f:
                f.write(b'- {"seq": 9, "na')
        return fd

    monkeypatch.setattr(ws.storage.kept, "take", take_then_cut)
    ws.artifacts.store(sid, "t", "b.txt", b"two")
    names = [r["name"] for _, r in parse_records(path.read_bytes(), rel)]
    assert names == ["a.txt", "b.txt"]
    assert [p.read_bytes() for p in (ws.root / ".spell" / "repair").iterdir()] == [
        b'- {"seq": 9, "na'
    ]


def test_a_list_replaced_between_stores_gets_the_next_store_s_names(
    ws: Workspace, monkeypatch
) -> None:
    """Another process's bulk store renames a new list into place: the descriptor kept on the
    old one is not written to, so a failure before the append still finds the names listed
    where the next command looks."""
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "t", "a.txt", b"one")
    dir = ws.sessions.resolve(sid)
    listed = ws.root / INFLIGHT / dir
    other = listed.with_name("other")
    other.write_bytes(b"")
    os.replace(other, listed)
    seen = []

    def full(rel: str, data: bytes) -> None:
        seen.append(listed.read_text())
        raise OSError(28, "No space left on device")

    before_appends(monkeypatch, ws, full)
    with pytest.raises(OSError):
        ws.artifacts.store(sid, "t", "b.txt", b"never recorded")
    assert seen == ["b.txt\n"]
    files = ws.root / "sessions" / dir / "files"
    assert sorted(os.listdir(files)) == ["a.txt"]


def test_a_forked_child_and_its_parent_storing_at_once_both_land(ws: Workspace) -> None:
    """The child inherits the kept descriptors, the journal and the lock files: its stores and
    its parent's, made at the same time into one session, all land, one sequence number each,
    nothing read as another's unfinished line."""
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "t", "before.txt", b"opens everything a store keeps open")
    child = os.fork()
    who = "child" if child == 0 else "parent"
    try:
        for i in range(150):
            ws.artifacts.store(sid, "t", f"{who}{i}.txt", b"%s %d" % (who.encode(), i))
    finally:
        if child == 0:  # pragma: no cover (the child)
            os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with Workspace.open(ws.root) as again:
        names = [a["name"] for a in again.artifacts.list(sid)]
        seqs = [r["seq"] for r in again.log(again.sessions.resolve(sid)).records]
    assert sorted(names) == sorted(
        ["before.txt"] + [f"{w}{i}.txt" for w in ("child", "parent") for i in range(150)]
    )
    assert len(seqs) == len(set(seqs)) == 301
    assert not (ws.root / ".spell" / "repair").exists()  # nothing set aside as a torn line


def test_a_kept_number_closed_behind_its_back_and_given_to_another_file_is_left_alone(
    ws: Workspace, tmp_path: Path
) -> None:
    """Code around spellfs closes the record file's kept descriptor and opens a file of its own
    of the same size, which gets the same number: the next store writes its record to the
    record file, not into that file, and leaves that file's descriptor open."""
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "t", "a.txt", b"one")
    path = ws.root / "sessions" / ws.sessions.resolve(sid) / "artifacts.yaml"
    (kept,) = [
        int(n) for n in _fds() if os.path.realpath(f"/proc/self/fd/{n}") == str(path.resolve())
    ]
    theirs, original = tmp_path / "theirs", b"x" * path.stat().st_size
    theirs.write_bytes(original)
    os.close(kept)
    fd = os.open(theirs, os.O_RDWR | os.O_APPEND)
    try:
        assert fd == kept
        ws.artifacts.store(sid, "t", "b.txt", b"two")
        os.fstat(fd)  # still open
    finally:
        os.close(fd)
    assert theirs.read_bytes() == original
    names = [r["name"] for _, r in parse_records(path.read_bytes(), "artifacts.yaml")]
    assert names == ["a.txt", "b.txt"]
