"""Disk storage: writes are atomic, so a concurrent reader never sees a torn or empty file."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from conftest import flocked

from spellfs import SpellError, Workspace
from spellfs.store.atomic import atomic_replace, atomic_write, disk_error, write_all
from spellfs.store.memory import MemoryStorage
from spellfs.store.storage import FsStorage, Storage
from spellfs.store.yamlio import load_yaml

READER = textwrap.dedent(r"""
    import os, re, sys
    whole = re.compile(rb"# spellfs session manifest.*\nupdated_at: [^\n]+\n\Z", re.S)
    path, stop = sys.argv[1], sys.argv[2]
    reads = bad = 0
    print("ready", flush=True)
    while not os.path.exists(stop) or reads < 500:
        with open(path, "rb") as f:
            data = f.read()
        reads += 1
        # every version starts with the header and ends with updated_at; a torn read does not
        if not whole.match(data):
            bad += 1
    print(reads, bad, flush=True)
""")


def test_concurrent_reader_never_sees_a_torn_session_yaml(ws: Workspace, tmp_path: Path) -> None:
    """A separate process reads session.yaml in a loop while this one rewrites it 400 times.

    With writes in place (open, truncate, write) the reader sees an empty or half file in
    most reads; with temp + rename it sees only whole versions.
    """
    sid = ws.sessions.create(name="atomic", metadata={"pad": "x" * 20_000})
    rel = ws.sessions.get(sid)["path"] + "/session.yaml"
    path = ws.root / rel
    assert path.read_bytes().startswith(b"# spellfs session manifest")
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline() == "ready\n"
        for i in range(400):
            ws.sessions.update_metadata(sid, {"pad": f"{i:05d}" * 4_000})
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=120)
    reads, bad = map(int, out.split())
    assert reads >= 500
    assert bad == 0, f"{bad} of {reads} reads saw a torn or empty session.yaml"
    assert load_yaml(path.read_bytes(), rel)["metadata"]["pad"] == "00399" * 4_000


# -- the Storage contract, on both backends ------------------------------------------


@pytest.fixture(params=["fs", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "memory":
        yield MemoryStorage()
    else:
        fs = FsStorage(tmp_path / "root")
        (tmp_path / "root").mkdir()
        yield fs
        fs.close()


def test_write_read_and_read_from(storage: Storage) -> None:
    storage.write("a/b/c.txt", b"hello world")
    assert storage.read("a/b/c.txt") == b"hello world"
    assert storage.read_from("a/b/c.txt", 6) == b"world"
    assert storage.read_from("a/b/c.txt", 11) == b""
    storage.write("a/b/c.txt", b"short", fsync=True)
    assert storage.read("a/b/c.txt") == b"short"
    for read in (lambda: storage.read("a/b/missing"), lambda: storage.read_from("a/b/missing", 0)):
        with pytest.raises(FileNotFoundError):
            read()


def test_append_returns_the_old_size_and_never_glues_onto_a_cut_line(storage: Storage) -> None:
    assert storage.append("log", b"one\n") == 0
    assert storage.append("log", b"two\n") == 4
    assert storage.read("log") == b"one\ntwo\n"
    storage.write("cut", b"whole\npartial")  # a killed writer's unfinished last line
    assert storage.append("cut", b"next\n") == 6  # the size once the fragment is set aside
    assert storage.read("cut") == b"whole\nnext\n"
    [torn] = [n for n in storage.listdir(".spell/repair") if n.startswith("cut.")]
    assert storage.read(f".spell/repair/{torn}") == b"partial"  # kept, not dropped


def test_listing_exists_isdir_remove_rmtree(storage: Storage) -> None:
    storage.write("s/x/files/a.txt", b"a")
    storage.write("s/x/files/b.txt", b"b")
    storage.write("s/y.txt", b"y")
    storage.mkdir("s/empty")
    assert sorted(storage.listdir("s")) == ["empty", "x", "y.txt"]
    assert sorted(storage.listdir("s/x/files")) == ["a.txt", "b.txt"]
    assert storage.listdir("s/nothing") == [] and storage.listdir("s/y.txt") == []
    assert storage.exists("s/x") and storage.exists("s/y.txt") and storage.exists("s/empty")
    assert storage.isdir("s/x") and storage.isdir("s/empty") and not storage.isdir("s/y.txt")
    assert not storage.exists("s/z") and not storage.isdir("s/z")
    storage.remove("s/y.txt")
    storage.remove("s/y.txt")  # removing what is gone is not an error
    assert not storage.exists("s/y.txt")
    storage.rmtree("s/x")
    assert not storage.exists("s/x") and not storage.exists("s/x/files/a.txt")
    assert sorted(storage.listdir("s")) == ["empty"]
    storage.rmtree("s/never")  # nor is removing a tree that is not there


def test_signature_changes_with_every_write(storage: Storage) -> None:
    assert storage.signature("f") is None
    storage.write("f", b"one")
    first = storage.signature("f")
    assert first is not None and first[1] == 3
    storage.write("f", b"two!")
    second = storage.signature("f")
    assert second is not None and second != first and second[1] == 4
    storage.append("f", b"\n")
    assert storage.signature("f") not in (first, second)


# -- the disk: atomic writes, modes, errors ---------------------------------------------


def test_atomic_write_modes_and_missing_folders(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new" / "dir" / "f", b"x")
        assert (tmp_path / "new" / "dir" / "f").read_bytes() == b"x"
        assert stat.S_IMODE(os.stat(tmp_path / "new" / "dir" / "f").st_mode) == 0o644
        atomic_write(tmp_path / "ro", b"y", mode=0o444, fsync=True)
        assert stat.S_IMODE(os.stat(tmp_path / "ro").st_mode) == 0o444
        atomic_write(tmp_path / "t" / "g", b"z", tmpdir=str(tmp_path / "tmp" / "deep"))
        assert (tmp_path / "t" / "g").read_bytes() == b"z"
        assert os.listdir(tmp_path / "tmp" / "deep") == []  # made for the temp, left empty
        assert sorted(os.listdir(tmp_path / "t")) == ["g"]  # the temp never lived beside g
    finally:
        os.umask(old)


def test_atomic_write_failure_is_one_line_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "dir"
    (target / "inside").mkdir(parents=True)  # replacing a non-empty folder fails
    with pytest.raises(SpellError) as info:
        atomic_write(target, b"data", tmpdir=str(tmp_path / "tmp"))
    assert str(info.value) == f"cannot write {target}: {os.strerror(errno.EISDIR)}"
    assert os.listdir(tmp_path / "tmp") == []
    with pytest.raises(IsADirectoryError):
        atomic_replace(target, b"data")
    assert sorted(os.listdir(tmp_path)) == ["dir", "tmp"]


def test_disk_error_names_the_path_and_hints_on_a_full_disk() -> None:
    full = disk_error(OSError(errno.ENOSPC, "ignored"), "/w/f")
    assert str(full) == (
        "cannot write /w/f: No space left on device "
        "(free some space and retry; nothing stored before this was touched)"
    )
    assert (
        str(disk_error(OSError(errno.EROFS, "x"), "/w/f"))
        == "cannot write /w/f: Read-only file system"
    )
    assert str(disk_error(OSError("no errno"), "/w/f")) == "cannot write /w/f: no errno"


def test_temp_on_another_filesystem_falls_back_beside_the_file(tmp_path: Path, monkeypatch) -> None:
    tmpdir = tmp_path / "tmp"
    real = os.replace
    calls: list[str] = []

    def cross_device(src, dst):
        calls.append(os.path.dirname(src))
        if os.path.dirname(src) == str(tmpdir):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    atomic_write(tmp_path / "f", b"content", tmpdir=str(tmpdir))
    assert (tmp_path / "f").read_bytes() == b"content"
    assert calls == [str(tmpdir), str(tmp_path)]
    assert os.listdir(tmpdir) == [] and sorted(os.listdir(tmp_path)) == ["f", "tmp"]


def test_write_all_finishes_a_short_write(tmp_path: Path, monkeypatch) -> None:
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:3])))  # 3 bytes a call
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        write_all(fd, b"0123456789")
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"0123456789"


def test_append_that_does_not_fit_is_undone(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "root").mkdir()
    fs = FsStorage(tmp_path / "root")
    fs.append("log", b"kept\n")
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:2])))  # the disk fills
    with pytest.raises(SpellError) as info:
        fs.append("log", b"lost line\n")
    monkeypatch.setattr(os, "write", real)
    assert str(info.value) == (
        f"cannot write {tmp_path / 'root' / 'log'}: No space left on device "
        "(free some space and retry; nothing stored before this was touched)"
    )
    assert fs.read("log") == b"kept\n"  # no half line left behind


def test_fs_mkdir_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    fs = FsStorage(tmp_path / "root")
    fs.write("file", b"x")
    fs.mkdir("a/b")
    assert fs.isdir("a/b")
    fs.mkdir("a/b")  # exists: fine
    with pytest.raises(SpellError) as info:
        fs.mkdir("file/sub")
    assert (
        str(info.value)
        == f"cannot write {tmp_path / 'root' / 'file/sub'}: {os.strerror(errno.ENOTDIR)}"
    )
    assert fs.path("x/y") == f"{tmp_path / 'root'}/x/y"


def test_more_of_the_contract(storage: Storage) -> None:
    """Edges the mutation run found untested: root listing, trailing slash, errno, locks."""
    storage.write("s/x/f", b"abc")
    assert storage.isdir("") and storage.isdir("s") and storage.isdir("s/x")
    assert "s" in storage.listdir("")
    assert storage.listdir("s/") == storage.listdir("s") == ["x"]
    with pytest.raises(FileNotFoundError) as info:
        storage.read("s/x/nope")
    assert info.value.errno == errno.ENOENT and str(info.value.filename).endswith("s/x/nope")
    with pytest.raises(FileNotFoundError) as info:
        storage.read_from("s/x/nope", 1)
    assert info.value.errno == errno.ENOENT and str(info.value.filename).endswith("s/x/nope")
    before = storage.signature("s/x/f")
    storage.write("s/x/f", b"xyz")  # same size, new content: the signature still moves
    assert storage.signature("s/x/f") != before
    with storage.lock("one"):
        with storage.lock("one"):  # re-entrant
            with storage.lock("two"):
                pass


def test_disk_writes_use_the_workspace_temp_folder_and_fsync_when_asked(
    tmp_path: Path, monkeypatch
) -> None:
    old = os.umask(0o022)
    (tmp_path / "root").mkdir()
    fs = FsStorage(tmp_path / "root")
    sources: list[str] = []
    synced: list[int] = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(
        os,
        "replace",
        lambda src, dst: sources.append(os.path.dirname(src)) or real_replace(src, dst),
    )
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    try:
        fs.write("a/f", b"x")
        assert synced == [] and set(sources) == {f"{tmp_path / 'root'}/.spell/tmp"}
        fs.write("a/f", b"y", fsync=True)
        assert len(synced) == 1
        assert stat.S_IMODE(os.stat(tmp_path / "root" / "a" / "f").st_mode) == 0o644
        atomic_write(tmp_path / "existing-dir-ro", b"r", mode=0o400)
        assert stat.S_IMODE(os.stat(tmp_path / "existing-dir-ro").st_mode) == 0o400
        atomic_write(tmp_path / "missing" / "ro", b"r", mode=0o400)
        assert stat.S_IMODE(os.stat(tmp_path / "missing" / "ro").st_mode) == 0o400
        fs.append("log", b"line\n")
        assert stat.S_IMODE(os.stat(tmp_path / "root" / "log").st_mode) == 0o644
    finally:
        os.umask(old)
        fs.close()
    fs.close()  # closing twice is harmless


def test_cross_device_fallback_keeps_fsync_and_mode(tmp_path: Path, monkeypatch) -> None:
    tmpdir = tmp_path / "tmp"
    real_replace, real_fsync = os.replace, os.fsync
    synced: list[int] = []

    def cross_device(src, dst):
        if os.path.dirname(src) == str(tmpdir):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    atomic_write(tmp_path / "f", b"content", fsync=True, mode=0o400, tmpdir=str(tmpdir))
    assert (tmp_path / "f").read_bytes() == b"content"
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o400
    assert len(synced) == 2  # the first temp and the one beside the file


def test_a_temp_folder_that_cannot_be_made_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(SpellError) as info:
        atomic_write(tmp_path / "f", b"x", tmpdir=str(tmp_path / "file" / "tmp"))
    assert str(info.value) == f"cannot write {tmp_path / 'f'}: {os.strerror(errno.ENOTDIR)}"
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_close_releases_the_lock_files(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    fs = FsStorage(tmp_path / "root")
    with fs.lock("a"):
        pass
    fd = fs.locks.fd("a")
    fs.close()
    with pytest.raises(OSError):
        os.fstat(fd)


# -- FsStorage.fsync: what a checkpoint makes durable, path by path ---------------------------
class _Flushes:
    """os.fsync and sync_file_range recorded by path (the device cache flushes one can count)."""

    def __init__(self, monkeypatch, writeout_result: int | None = 0) -> None:
        from spellfs.store import flush as st

        self.events: list[tuple[str, str, int]] = []  # (what, path, flags)
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), 0))
            real_fsync(fd)

        def writeout(fd: int, offset: int, length: int, flags: int) -> int:
            assert (offset, length) == (0, 0)  # the whole file
            self.events.append(("writeout", os.readlink(f"/proc/self/fd/{fd}"), flags))
            return writeout_result or 0

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "sync", lambda: self.events.append(("sync", "", 0)))
        monkeypatch.setattr(
            st, "_sync_file_range", lambda: None if writeout_result is None else writeout
        )

    def of(self, what: str) -> list[str]:
        return [p for w, p, _ in self.events if w == what]


def _files(tmp_path: Path, n: int) -> list[str]:
    (tmp_path / "sessions").mkdir(exist_ok=True)
    out = []
    for i in range(n):
        p = tmp_path / "sessions" / f"f{i}"
        p.write_bytes(b"x")
        out.append(str(p))
    return out


def test_fsync_writes_each_path_out_once_then_one_barrier_on_the_last(tmp_path, monkeypatch):
    fs = FsStorage(tmp_path)
    flushes = _Flushes(monkeypatch)
    paths = _files(tmp_path, 3)
    fs.fsync([])
    assert flushes.events == []
    fs.fsync([paths[0], paths[1], paths[0], paths[2]])  # a path named twice is flushed once
    assert flushes.events == [
        ("writeout", paths[0], 1 | 2 | 4),
        ("writeout", paths[1], 1 | 2 | 4),
        ("fsync", paths[2], 0),
    ]


def test_fsync_of_many_paths_starts_every_writeout_before_waiting(tmp_path, monkeypatch):
    fs = FsStorage(tmp_path)
    flushes = _Flushes(monkeypatch)
    paths = _files(tmp_path, 17)
    fs.fsync(paths)
    started = [(p, f) for w, p, f in flushes.events[:16]]
    assert started == [(p, 2) for p in paths[:16]]  # SYNC_FILE_RANGE_WRITE: no waiting
    assert [(w, p, f) for w, p, f in flushes.events[16:]] == [
        *[("writeout", p, 7) for p in paths[:16]],
        ("fsync", paths[16], 0),
    ]
    flushes.events.clear()
    fs.fsync(paths[:16])  # 16 or fewer: no early start
    assert [f for w, p, f in flushes.events if w == "writeout"] == [7] * 15


def test_fsync_without_sync_file_range_fsyncs_every_path(tmp_path, monkeypatch):
    fs = FsStorage(tmp_path)
    flushes = _Flushes(monkeypatch, writeout_result=None)
    paths = _files(tmp_path, 20)
    fs.fsync(paths)
    assert flushes.events == [("fsync", p, 0) for p in paths]


def test_fsync_falls_back_to_fsync_where_writeout_is_refused(tmp_path, monkeypatch):
    fs = FsStorage(tmp_path)
    flushes = _Flushes(monkeypatch, writeout_result=-1)
    paths = _files(tmp_path, 2)
    fs.fsync(paths)
    assert flushes.events == [
        ("writeout", paths[0], 7),
        ("fsync", paths[0], 0),
        ("fsync", paths[1], 0),
    ]


def test_fsync_skips_missing_paths_but_keeps_the_barrier(tmp_path, monkeypatch):
    fs = FsStorage(tmp_path)
    flushes = _Flushes(monkeypatch)
    [present] = _files(tmp_path, 1)
    gone = str(tmp_path / "sessions" / "gone")
    under_file = present + "/x"  # NotADirectoryError
    fs.fsync([gone, present, under_file])
    # the last one is missing: the barrier is an fsync of sessions/ instead
    assert flushes.events == [
        ("writeout", present, 7),
        ("fsync", str(tmp_path / "sessions"), 0),
    ]


def test_fsync_names_a_path_it_cannot_open_or_flush(tmp_path, monkeypatch):
    fs = FsStorage(tmp_path)
    _Flushes(monkeypatch)
    [present] = _files(tmp_path, 1)
    long = str(tmp_path / ("n" * 300))
    with pytest.raises(SpellError) as e:
        fs.fsync([long])
    assert str(e.value) == f"cannot write {long}: {os.strerror(errno.ENAMETOOLONG)}"

    def failing(code):
        def fsync(fd):
            raise OSError(code, os.strerror(code))

        return fsync

    monkeypatch.setattr(os, "fsync", failing(errno.EIO))
    with pytest.raises(SpellError) as e:
        fs.fsync([present])
    assert str(e.value) == f"cannot write {present}: {os.strerror(errno.EIO)}"
    monkeypatch.setattr(os, "fsync", failing(errno.EINVAL))  # a file system that cannot fsync
    fs.fsync([present])


def test_fsync_of_more_than_fsync_many_paths_flushes_the_workspace_file_system(
    tmp_path, monkeypatch
):
    from spellfs.store import flush as st

    fs = FsStorage(tmp_path)
    flushes = _Flushes(monkeypatch)
    whole: list[str] = []
    monkeypatch.setattr(st, "_syncfs", whole.append)
    paths = _files(tmp_path, st.FSYNC_MANY)
    fs.fsync(paths + paths[:1])  # FSYNC_MANY distinct paths: still one by one
    assert whole == [] and len(flushes.of("fsync")) == 1
    fs.fsync(paths + [str(tmp_path / "sessions")])
    assert whole == [fs.base] and len(flushes.of("fsync")) == 1


def test_syncfs_flushes_the_one_file_system_else_everything(tmp_path, monkeypatch):
    import ctypes

    from spellfs.store import flush as st

    synced: list[str] = []
    monkeypatch.setattr(os, "sync", lambda: synced.append("sync"))
    st._syncfs(str(tmp_path))  # Linux: syncfs of this file system, no os.sync
    assert synced == []

    class NoSyncfs:
        def __init__(self, *a, **k) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoSyncfs)  # a libc without syncfs
    st._syncfs(str(tmp_path))
    assert synced == ["sync"]

    class FailingSyncfs:
        def __init__(self, *a, **k) -> None:
            self.syncfs = lambda fd: -1

    monkeypatch.setattr(ctypes, "CDLL", FailingSyncfs)
    st._syncfs(str(tmp_path))
    assert synced == ["sync", "sync"]


def test_sync_file_range_is_looked_up_once(monkeypatch):
    from spellfs.store import flush as st

    monkeypatch.setattr(st, "_SFR", [])
    fn = st._sync_file_range()
    assert fn is not None and st._SFR == [fn] and st._sync_file_range() is fn
    # it starts writing a real file out and says so with 0
    import tempfile

    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 4096)
        f.flush()
        assert fn(f.fileno(), 0, 0, 7) == 0
    monkeypatch.setattr(st, "_SFR", [])
    monkeypatch.setattr(sys, "platform", "darwin")
    assert st._sync_file_range() is None and st._SFR == [None]


def test_only_the_unfinished_last_line_is_set_aside_however_long_it_is(tmp_path: Path) -> None:
    fs = FsStorage(tmp_path)
    fs.write("cut", b"one\ntwo\nthree\npartial")  # several whole lines before the fragment
    assert fs.append("cut", b"next\n") == 14
    assert fs.read("cut") == b"one\ntwo\nthree\nnext\n"
    [torn] = [n for n in fs.listdir(".spell/repair") if n.startswith("cut.")]
    assert fs.read(f".spell/repair/{torn}") == b"partial"
    # a fragment longer than the first look (1 MiB) back from the end
    big = b"x" * ((1 << 20) + 5000)
    fs.write("big", b"whole\n" + big)
    assert fs.append("big", b"next\n") == 6
    assert fs.read("big") == b"whole\nnext\n"
    [torn] = [n for n in fs.listdir(".spell/repair") if n.startswith("big.")]
    assert fs.read(f".spell/repair/{torn}") == big
    # a file that is one unfinished line: all of it set aside
    fs.write("none", b"no newline at all")
    assert fs.append("none", b"next\n") == 0 and fs.read("none") == b"next\n"


# -- what the mutation run of 2026-11-30 found untested ------------------------------------------


def test_whole_lines_are_never_set_aside_only_the_unfinished_last_one(storage: Storage) -> None:
    """Appends to a file of whole lines set nothing aside (fsck would report every one as a
    torn write); after a cut, the whole lines before the fragment stay in the file."""
    assert storage.append("log", b"one\n") == 0  # a new file
    assert storage.append("log", b"two\n") == 4
    assert storage.append("log", b"three\n") == 8
    assert storage.listdir(".spell/repair") == []
    storage.write("cut", b"one\ntwo\npartial")
    assert storage.append("cut", b"next\n") == 8
    assert storage.read("cut") == b"one\ntwo\nnext\n"
    [torn] = storage.listdir(".spell/repair")
    assert torn.startswith("cut.") and storage.read(f".spell/repair/{torn}") == b"partial"


def test_two_locks_never_wait_for_each_other(storage: Storage) -> None:
    """Sessions are written side by side: while one thread holds one session's lock, another
    thread takes a different session's lock at once (one lock for all would serialise them)."""

    took = threading.Event()

    def other() -> None:
        with storage.lock("s-b"):
            took.set()

    with storage.lock("s-a"):
        worker = threading.Thread(target=other)
        worker.start()
        assert took.wait(60), "lock s-b waited for lock s-a"
    worker.join(60)


def test_a_folder_name_may_end_in_any_character(storage: Storage) -> None:
    for name in ("BOX", "a/", "x_/"):  # (a trailing slash is the folder itself)
        storage.write(f"in/{name.rstrip('/')}/f", b"x")
    assert storage.listdir("in/BOX") == ["f"]
    assert storage.listdir("in/a/") == storage.listdir("in/x_") == ["f"]


def test_a_missing_file_is_worded_as_on_disk(storage: Storage) -> None:
    """The CLI prints an ``OSError``'s ``strerror``: the memory backend says what the disk says."""
    for read in (lambda: storage.read("gone"), lambda: storage.read_from("gone", 0)):
        with pytest.raises(FileNotFoundError) as info:
            read()
        assert info.value.strerror == os.strerror(errno.ENOENT)


def test_plain_writes_are_not_flushed_and_return_no_stat(tmp_path: Path, monkeypatch) -> None:
    """Only writes that ask for it wait for the disk (a world or a bulk add writes thousands of
    files); and without ``mtime_ns`` no stat comes back, so no stat cache vouches for the file."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    assert atomic_write(tmp_path / "a", b"x") is None
    assert atomic_replace(tmp_path / "b", b"y") is None
    (tmp_path / "root").mkdir()
    fs = FsStorage(tmp_path / "root")
    assert fs.write("c", b"z") is None
    assert synced == []
    assert atomic_write(tmp_path / "a", b"x2", fsync=True) is None and len(synced) == 1
    st = fs.write("c", b"z2", mtime_ns=1_000_000_000)
    assert st is not None and st.st_mtime_ns == 1_000_000_000 and st.st_size == 2


def test_removing_a_link_under_sessions_removes_the_link_not_what_it_points_to(
    tmp_path: Path,
) -> None:
    """A link left in a session (a cloned repository's, a user's) is never followed, not even to
    delete: deleting the artifact or the session unlinks the link, and the files it points
    to, outside the workspace, stay."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "keep.txt").write_bytes(b"not ours")
    (outside / "file.txt").write_bytes(b"not ours either")
    root = tmp_path / "root"
    (root / "sessions" / "s" / "files").mkdir(parents=True)
    (root / "sessions" / "s" / "files" / "a.txt").symlink_to(outside / "file.txt")
    (root / "sessions" / "s" / "linked").symlink_to(outside / "dir")
    (root / "sessions" / "t").symlink_to(outside / "dir")
    fs = FsStorage(root)
    fs.remove("sessions/s/files/a.txt")  # an artifact's files/ copy, deleted
    assert not os.path.lexists(root / "sessions" / "s" / "files" / "a.txt")
    fs.rmtree("sessions/s/linked")
    fs.rmtree("sessions/t")  # a whole session that is a link
    assert sorted(os.listdir(root / "sessions")) == ["s"]
    assert os.listdir(root / "sessions" / "s") == ["files"]
    assert (outside / "file.txt").read_bytes() == b"not ours either"
    assert (outside / "dir" / "keep.txt").read_bytes() == b"not ours"
    fs.close()


def test_a_set_aside_fragment_is_named_after_its_file_and_time(storage: Storage) -> None:
    """``.spell/repair/<file>.<time>.torn`` (README, Durability): one file, not a folder
    tree, named after the record file (``/`` as ``__``), the local time and the nanosecond."""
    import re

    storage.write("sessions/s/artifacts.yaml", b"- whole\n- cut")
    storage.append("sessions/s/artifacts.yaml", b"- next\n")
    [torn] = storage.listdir(".spell/repair")
    assert re.fullmatch(r"sessions__s__artifacts\.yaml\.\d{8}T\d{6}\.\d{1,9}\.torn", torn), torn
    assert storage.read(f".spell/repair/{torn}") == b"- cut"


def test_every_fragment_is_kept_however_many_in_one_second(storage: Storage) -> None:
    """Nothing is lost: a fragment set aside never replaces an earlier one of the same file."""
    for i in range(40):
        storage.write("log", f"whole\npart {i}".encode())
        storage.append("log", b"next\n")
    kept = {storage.read(f".spell/repair/{n}") for n in storage.listdir(".spell/repair")}
    assert kept == {f"part {i}".encode() for i in range(40)}


def test_a_fragment_is_on_disk_before_it_leaves_the_record_file(tmp_path: Path, monkeypatch):
    """Cutting the unfinished line out of the record file and keeping it elsewhere must not lose
    it to a power cut: its copy is written through ``.spell/tmp`` (where an interrupted temp
    is cleaned up) and flushed before the record file is truncated."""
    fs = FsStorage(tmp_path)
    fs.write("sessions/s/artifacts.yaml", b"- whole\n- cut")
    events: list[tuple[str, str]] = []
    real_fsync, real_truncate, real_replace = os.fsync, os.ftruncate, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def ftruncate(fd: int, size: int) -> None:
        events.append(("truncate", os.readlink(f"/proc/self/fd/{fd}")))
        real_truncate(fd, size)

    def replace(src: str, dst: str) -> None:
        real_replace(src, dst)  # (the first try fails: .spell/repair/ is made, then again)
        events.append(("replace", os.path.dirname(src)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    monkeypatch.setattr(os, "replace", replace)
    fs.append("sessions/s/artifacts.yaml", b"- next\n")
    tmp = f"{tmp_path}/.spell/tmp"
    assert [what for what, _ in events] == ["fsync", "replace", "truncate"]
    assert os.path.dirname(events[0][1]) == tmp  # the fragment's temp, flushed,
    assert events[1][1] == tmp  # renamed into .spell/repair/,
    assert events[2][1] == f"{tmp_path}/sessions/s/artifacts.yaml"  # then cut from the record
    assert fs.read("sessions/s/artifacts.yaml") == b"- whole\n- next\n"


def test_libc_is_found_without_find_library_and_syncfs_flushes_the_workspace(tmp_path, monkeypatch):
    """Where ``ctypes.util.find_library`` finds nothing (no ldconfig, no compiler: a slim
    container) libc is still loaded by its soname; ``syncfs`` is given a descriptor of the
    workspace's own file system; a libc without ``sync_file_range`` means per-file fsync."""
    import ctypes
    import ctypes.util

    from spellfs.store import flush as st

    synced: list[str] = []
    monkeypatch.setattr(os, "sync", lambda: synced.append("sync"))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    st._syncfs(str(tmp_path))
    assert synced == []  # syncfs found in libc.so.6, not the sync-everything fallback
    monkeypatch.setattr(st, "_SFR", [])
    assert st._sync_file_range() is not None

    given: list[str] = []

    class Recording:
        def __init__(self, *a, **k) -> None:
            self.syncfs = lambda fd: given.append(os.readlink(f"/proc/self/fd/{fd}")) or 0

    monkeypatch.setattr(ctypes, "CDLL", Recording)
    st._syncfs(str(tmp_path))
    assert given == [str(tmp_path)] and synced == []

    class WithoutSyncFileRange:
        def __init__(self, *a, **k) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", WithoutSyncFileRange)
    monkeypatch.setattr(st, "_SFR", [])
    assert st._sync_file_range() is None and st._SFR == [None]


def test_a_session_record_is_appended_under_that_session_lock(tmp_path: Path, monkeypatch):
    """``fsck --repair`` rewrites a record file under its session's lock (``s-<dir>``): an
    append holds the same lock while it writes, so no rewrite can drop the line."""
    fs = FsStorage(tmp_path)
    fs.mkdir("sessions/d")
    fs.mkdir(".spell/locks")
    lockfile = tmp_path / ".spell" / "locks" / "s-d.lock"

    held: list[bool] = []
    real_write = os.write

    def write(fd: int, data) -> int:
        if bytes(data) == b"- line\n":
            held.append(flocked(lockfile))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    fs.append("sessions/d/artifacts.yaml", b"- line\n")
    assert held == [True]
    assert not flocked(lockfile)  # and released once the line is in
    assert fs.read("sessions/d/artifacts.yaml") == b"- line\n"
    fs.close()


def test_appending_to_a_linked_or_special_record_file_is_refused_by_name(tmp_path: Path) -> None:
    """A record file that is a link (a hostile clone's) or a fifo is never appended through: the
    error names it, as a read's does, and the file it points to is untouched."""
    from spellfs.errors import UnsafePath

    hint = "spellfs never follows links under sessions/; remove it, or the session"
    (tmp_path / "outside.txt").write_bytes(b"not ours\n")
    (tmp_path / "sessions" / "s").mkdir(parents=True)
    os.symlink(tmp_path / "outside.txt", tmp_path / "sessions" / "s" / "artifacts.yaml")
    os.mkfifo(tmp_path / "sessions" / "s" / "events.yaml")
    fs = FsStorage(tmp_path)
    with pytest.raises(UnsafePath) as info:
        fs.append("sessions/s/artifacts.yaml", b"- line\n")
    assert str(info.value) == f"refused: sessions/s/artifacts.yaml is a symbolic link ({hint})"
    assert (tmp_path / "outside.txt").read_bytes() == b"not ours\n"
    with pytest.raises(UnsafePath) as info:
        fs.append("sessions/s/events.yaml", b"- line\n")
    assert str(info.value) == (
        f"refused: sessions/s/events.yaml is a special file (device, fifo or socket) ({hint})"
    )
    fs.close()


def test_fsync_of_many_paths_skips_a_missing_one_when_starting_writeouts(tmp_path, monkeypatch):
    fs = FsStorage(tmp_path)
    flushes = _Flushes(monkeypatch)
    paths = _files(tmp_path, 20)
    gone = str(tmp_path / "sessions" / "gone")  # an object pushed and dropped meanwhile
    fs.fsync([gone, *paths])
    assert gone not in flushes.of("writeout") and flushes.of("fsync") == [paths[-1]]
    assert flushes.of("writeout") == paths[:-1] + paths[:-1]  # started, then waited for


def test_long_and_undecodable_names_get_a_temp_of_their_own(tmp_path: Path) -> None:
    """A name up to 255 bytes, in any script, or with bytes that are not UTF-8 (a file name
    read from disk): the temp's name keeps at most 80 bytes of it, cut between characters."""
    long = "日" * 85  # 255 bytes: the longest name there is; 80 bytes falls inside a character
    atomic_write(tmp_path / long, b"kanji", tmpdir=str(tmp_path / "tmp"))
    raw = "caf\udce9.txt"  # b"caf\xe9.txt" as os.listdir gives it
    atomic_write(tmp_path / raw, b"latin-1", tmpdir=str(tmp_path / "tmp"))
    assert (tmp_path / long).read_bytes() == b"kanji"
    assert (tmp_path / os.fsdecode(b"caf\xe9.txt")).read_bytes() == b"latin-1"
    assert os.listdir(tmp_path / "tmp") == []


def test_atomic_write_dates_the_file_before_it_comes_into_view(tmp_path: Path, monkeypatch):
    st = atomic_write(tmp_path / "f", b"data", mtime_ns=2_000_000_123)
    assert st is not None and st.st_mtime_ns == 2_000_000_123 and st.st_size == 4
    assert os.stat(tmp_path / "f").st_mtime_ns == 2_000_000_123
    # the same when the temp folder is on another file system (the temp made again beside)
    tmpdir, real = tmp_path / "tmp", os.replace

    def cross_device(src, dst):
        if os.path.dirname(src) == str(tmpdir):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    st = atomic_write(tmp_path / "g", b"moved", tmpdir=str(tmpdir), mtime_ns=3_000_000_456)
    assert st is not None and st.st_mtime_ns == 3_000_000_456 and st.st_size == 5
    assert os.stat(tmp_path / "g").st_mtime_ns == 3_000_000_456
    assert sorted(os.listdir(tmp_path)) == ["f", "g", "tmp"] and os.listdir(tmpdir) == []


def test_a_folder_another_writer_makes_at_the_same_moment_is_no_error(
    tmp_path: Path, monkeypatch
) -> None:
    """Writers in threads (a bulk add's) or processes may find the same folder missing at once:
    whichever makes it second must not fail. The race is made to happen: the folder appears
    between this writer's failed attempt and its ``makedirs``."""
    real_open, real_replace = os.open, os.replace

    def open_as_other_made_tmp(path, flags, mode=0o777, **kw):
        if os.fspath(path).startswith(f"{tmp_path}/tmp/") and not (tmp_path / "tmp").exists():
            os.mkdir(tmp_path / "tmp")  # the other writer, just before us
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return real_open(path, flags, mode, **kw)

    def replace_as_other_made_dir(src, dst):
        if dst.startswith(f"{tmp_path}/new/") and not (tmp_path / "new").exists():
            os.mkdir(tmp_path / "new")
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), dst)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "open", open_as_other_made_tmp)
    monkeypatch.setattr(os, "replace", replace_as_other_made_dir)
    atomic_write(tmp_path / "f", b"one", tmpdir=str(tmp_path / "tmp"))
    atomic_write(tmp_path / "new" / "g", b"two", tmpdir=str(tmp_path / "tmp"))
    assert (tmp_path / "f").read_bytes() == b"one"
    assert (tmp_path / "new" / "g").read_bytes() == b"two"


def test_a_write_replaces_a_link_in_a_session_and_never_writes_through_it(tmp_path: Path):
    """The last component is replaced, never followed: a ``files/`` copy that is a link becomes
    a file of its own, and what the link pointed to, outside, is untouched."""
    (tmp_path / "outside.txt").write_bytes(b"not ours")
    (tmp_path / "ws" / "sessions" / "s" / "files").mkdir(parents=True)
    link = tmp_path / "ws" / "sessions" / "s" / "files" / "a.txt"
    link.symlink_to(tmp_path / "outside.txt")
    fs = FsStorage(tmp_path / "ws")
    fs.write("sessions/s/files/a.txt", b"ours")
    assert not link.is_symlink() and link.read_bytes() == b"ours"
    assert (tmp_path / "outside.txt").read_bytes() == b"not ours"
    fs.close()


def test_a_read_sees_what_was_appended_after_the_size_was_taken(tmp_path: Path, monkeypatch):
    """A read takes the file's size, then reads; a writer's append may land in between (a
    line larger than one chunk here): the read returns every byte, in order."""
    fs = FsStorage(tmp_path)
    fs.write("sessions/s/artifacts.yaml", b"- one\n")
    big = b"- " + b"x" * (3 << 20) + b"\n"
    real_fstat, landed = os.fstat, []

    def fstat_then_append(fd: int):
        st = real_fstat(fd)
        if not landed:  # the other writer, just after the size was taken
            landed.append(True)
            with open(tmp_path / "sessions" / "s" / "artifacts.yaml", "ab") as f:
                f.write(big)
        return st

    monkeypatch.setattr(os, "fstat", fstat_then_append)
    assert fs.read("sessions/s/artifacts.yaml") == b"- one\n" + big
    assert landed == [True]


def test_a_read_never_follows_a_link_in_a_session_but_does_elsewhere(tmp_path: Path) -> None:
    """Under sessions/ a record file that is a link or a fifo is refused by name (a fifo would
    also block the read for ever); templates/ and other files may be links, followed."""
    from spellfs.errors import UnsafePath

    hint = "spellfs never follows links under sessions/; remove it, or the session"
    (tmp_path / "outside.yaml").write_bytes(b"secret: 1\n")
    (tmp_path / "sessions" / "s").mkdir(parents=True)
    (tmp_path / "templates").mkdir()
    os.symlink(tmp_path / "outside.yaml", tmp_path / "sessions" / "s" / "artifacts.yaml")
    os.symlink(tmp_path / "outside.yaml", tmp_path / "templates" / "shared.yaml")
    os.mkfifo(tmp_path / "sessions" / "s" / "events.yaml")
    fs = FsStorage(tmp_path)
    with pytest.raises(UnsafePath) as info:
        fs.read("sessions/s/artifacts.yaml")
    assert str(info.value) == f"refused: sessions/s/artifacts.yaml is a symbolic link ({hint})"
    with pytest.raises(UnsafePath) as info:
        fs.read_from("sessions/s/events.yaml", 0)
    assert str(info.value) == (
        f"refused: sessions/s/events.yaml is a special file (device, fifo or socket) ({hint})"
    )
    assert fs.read("templates/shared.yaml") == b"secret: 1\n"
    fs.close()


def test_reading_a_folder_in_a_session_is_the_disk_s_is_a_directory_error(tmp_path: Path):
    """The CLI words an ``OSError`` from its errno, ``strerror`` and file name: a folder where a
    record file was expected reads as the disk's own EISDIR, naming the folder."""
    (tmp_path / "sessions" / "s" / "artifacts.yaml").mkdir(parents=True)
    fs = FsStorage(tmp_path)
    with pytest.raises(IsADirectoryError) as info:
        fs.read("sessions/s/artifacts.yaml")
    assert info.value.errno == errno.EISDIR
    assert info.value.strerror == os.strerror(errno.EISDIR)
    assert info.value.filename == f"{tmp_path}/sessions/s/artifacts.yaml"
    fs.close()


def test_a_write_into_folders_that_do_not_exist_yet_makes_them(tmp_path: Path) -> None:
    """The temp file's first open fails there; the folders are made and it is opened again."""
    target = tmp_path / "new" / "deeper" / "f.txt"
    atomic_replace(target, b"made")
    assert target.read_bytes() == b"made"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]  # no temp left beside it


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_the_signature_of_a_link_or_fifo_under_sessions_is_refused_by_name(
    tmp_path: Path, kind: str
) -> None:
    from spellfs.errors import UnsafePath

    storage = FsStorage(tmp_path)
    (tmp_path / "sessions" / "s").mkdir(parents=True)
    where = tmp_path / "sessions" / "s" / "session.yaml"
    if kind == "link":
        (tmp_path / "elsewhere.yaml").write_text("x")
        where.symlink_to(tmp_path / "elsewhere.yaml")
        what = "a symbolic link"
    else:
        os.mkfifo(where)
        what = "a special file (device, fifo or socket)"
    with pytest.raises(UnsafePath) as err:
        storage.signature("sessions/s/session.yaml")
    assert str(err.value) == (
        f"refused: sessions/s/session.yaml is {what} (spellfs never follows links under "
        "sessions/; remove it, or the session)"
    )
    (tmp_path / "templates").mkdir()
    os.mkfifo(tmp_path / "templates" / "t.yaml")  # outside sessions/: not refused here
    assert storage.signature("templates/t.yaml") is not None


def test_the_stat_a_write_returns_is_the_one_the_file_has_in_place(tmp_path: Path) -> None:
    """A store vouches for its copies with the stat the write returns (red-team F12): it must
    be the stat a later scan finds, ctime included, which the rename into place moves."""
    (tmp_path / "root").mkdir()
    fs = FsStorage(tmp_path / "root")
    for rel in ("new", "new"):  # (created, then replaced)
        st = fs.write(rel, b"content", mtime_ns=1_000_000_000)
        now = os.lstat(tmp_path / "root" / rel)
        assert st is not None
        assert (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) == (
            now.st_ino,
            now.st_size,
            now.st_mtime_ns,
            now.st_ctime_ns,
        )


def test_create_makes_a_file_where_none_is_and_leaves_what_is_there(storage: Storage) -> None:
    assert storage.create("sessions/s/files/a.txt", b"one")  # (folders made as needed)
    assert storage.read("sessions/s/files/a.txt") == b"one"
    assert not storage.create("sessions/s/files/a.txt", b"two")
    assert storage.read("sessions/s/files/a.txt") == b"one"
    assert storage.create("sessions/s/files/b.txt", b"")
    assert storage.read("sessions/s/files/b.txt") == b""


def test_create_never_writes_through_or_over_a_link_or_folder(tmp_path: Path) -> None:
    fs = FsStorage(tmp_path / "root")
    files = tmp_path / "root" / "sessions" / "s" / "files"
    files.mkdir(parents=True)
    (files / "link").symlink_to(tmp_path / "outside")  # (dangling: create would make it)
    (files / "dir").mkdir()
    assert not fs.create("sessions/s/files/link", b"x")
    assert not fs.create("sessions/s/files/dir", b"x")
    assert not (tmp_path / "outside").exists() and os.listdir(files / "dir") == []
    fs.close()


@pytest.mark.parametrize("tmpfile", [True, False], ids=["unnamed-file", "no-O_TMPFILE"])
def test_a_file_saved_at_the_name_while_create_writes_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmpfile: bool
) -> None:
    """An editor saves at the name after the look (if any) and before the file comes into
    view: the unnamed file's link fails and the editor's file stays; without ``O_TMPFILE``,
    only the look protects it (the moment after it is the old way's)."""
    fs = FsStorage(tmp_path / "root")
    files = tmp_path / "root" / "sessions" / "s" / "files"
    files.mkdir(parents=True)
    if not tmpfile:
        monkeypatch.delattr(os, "O_TMPFILE")
        (files / "a.txt").write_bytes(b"saved by an editor")
        assert not fs.create("sessions/s/files/a.txt", b"from the store")
    else:
        real = os.write

        def save_meanwhile(fd: int, data) -> int:
            if bytes(data) == b"from the store":
                (files / "a.txt").write_bytes(b"saved by an editor")
            return real(fd, data)

        monkeypatch.setattr(os, "write", save_meanwhile)
        assert not fs.create("sessions/s/files/a.txt", b"from the store")
        monkeypatch.undo()
    assert (files / "a.txt").read_bytes() == b"saved by an editor"
    left = [f for _, _, names in os.walk(tmp_path / "root") for f in names]
    assert left == ["a.txt"]  # and no temp file left anywhere
    fs.close()


def test_a_forked_child_creates_its_own_file_not_one_of_its_parent_s(tmp_path: Path) -> None:
    """The unnamed file is linked through ``/proc/self/fd``, opened once a process: a child
    opens its own, or it would link whichever file its parent has at that descriptor."""
    fs = FsStorage(tmp_path / "root")
    (tmp_path / "root").mkdir()
    assert fs.create("sessions/s/files/first.txt", b"the parent's")  # (/proc/self/fd opened)
    decoy = os.open(tmp_path / "decoy", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(decoy, b"a file of the parent's")
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.close(decoy)  # the child's unnamed file gets this number
        ok = fs.create("sessions/s/files/child.txt", b"the child's")
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    os.close(decoy)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / "root" / "sessions" / "s" / "files" / "child.txt").read_bytes() == (
        b"the child's"
    )
    fs.close()
