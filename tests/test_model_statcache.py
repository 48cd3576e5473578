"""The stat cache: a file's hash trusted again only while its stat is what was hashed."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest
from blake3 import blake3

from spellfs.model.statcache import RACY_NS, StatCache, hash_path, is_editor_temp, stat_of

OLD = 1_000_000_000  # an mtime long before any hash was computed
CT = 2_000_000_000  # the ctime the stats below were taken at


@pytest.mark.parametrize(
    "name",
    [
        ".notes.md.swp",
        ".#notes.md",
        "notes.md~",
        "notes.md.swp",
        "notes.md.swo",
        "notes.md.swx",
        "#notes.md#",
        "4913",
        "x.tmp",
        "x.part",
        "x.crdownload",
        "x.kate-swp",
        "x___jb_tmp___",
        "x___jb_old___",
        "x.orig.tmp",
        "x.sb-12ab",
    ],
)
def test_editor_temps(name: str) -> None:
    assert is_editor_temp(name)


@pytest.mark.parametrize(
    "name", ["notes.md", "x.tmp.txt", "49130", "a4913", "swp", "x.swp.md", "x.partial", "#x"]
)
def test_not_editor_temps(name: str) -> None:
    assert not is_editor_temp(name)


def test_stat_of_a_file_a_link_and_nothing(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_bytes(b"hello")
    st = os.lstat(f)
    assert stat_of(str(f)) == (st.st_ino, 5, st.st_mtime_ns, st.st_mode, st.st_ctime_ns)
    os.symlink(f, tmp_path / "link")
    got = stat_of(str(tmp_path / "link"))
    assert got is not None and stat.S_ISLNK(got[3]) and got[0] != st.st_ino
    assert stat_of(str(tmp_path / "missing")) is None
    assert stat_of(str(f / "under-a-file")) is None


@pytest.mark.parametrize(
    "size, kept", [(0, True), (5, True), (4 << 20, True), ((4 << 20) + 1, False), (7 << 20, False)]
)
def test_hash_path_gives_the_bytes_of_a_small_file_only(
    tmp_path: Path, size: int, kept: bool
) -> None:
    """Up to 4 MiB the bytes come back with the hash; past it they are not kept in memory."""
    data = os.urandom(size)
    f = tmp_path / "f"
    f.write_bytes(data)
    st = os.stat(f)
    assert hash_path(str(f)) == (
        blake3(data).hexdigest(),
        data if kept else None,
        (st.st_ino, size, st.st_mtime_ns, st.st_mode, st.st_ctime_ns),
    )


def cache_at(tmp_path: Path, prefix: str | None = "") -> StatCache:
    return StatCache(tmp_path / "watch-cache.sqlite", prefix=prefix)


def test_a_hash_is_trusted_for_the_same_stat_only(tmp_path: Path) -> None:
    cache = cache_at(tmp_path)
    cache.put("f/a", (1, 5, OLD, 0o100644, CT), "h1")
    assert cache.lookup("f/a", (1, 5, OLD, 0o100644, CT)) == "h1"
    assert cache.lookup("f/a", (1, 5, OLD, 0o100600, CT)) == "h1"  # the mode is not content
    assert cache.lookup("f/a", (2, 5, OLD, 0o100644, CT)) is None  # another inode
    assert cache.lookup("f/a", (1, 6, OLD, 0o100644, CT)) is None  # another size
    assert cache.lookup("f/a", (1, 5, OLD + 1, 0o100644, CT)) is None  # another mtime
    assert cache.lookup("f/a", (1, 5, OLD, 0o100644, CT + 1)) is None  # written, mtime put back
    assert cache.lookup("f/b", (1, 5, OLD, 0o100644, CT)) is None


def test_a_racily_recent_file_is_hashed_again(tmp_path: Path) -> None:
    """Written in the same tick as its hash, a same-size rewrite would keep the stat."""
    cache = cache_at(tmp_path)
    now = time.time_ns()
    cache.put("f/a", (1, 5, now, 0o100644, CT), "h1")
    assert cache.lookup("f/a", (1, 5, now, 0o100644, CT)) is None
    cache.put("f/b", (1, 5, now - 2 * RACY_NS, 0o100644, CT), "h2")
    assert cache.lookup("f/b", (1, 5, now - 2 * RACY_NS, 0o100644, CT)) == "h2"


def test_a_hash_is_trusted_only_when_checked_more_than_the_racy_window_after_the_mtime(
    tmp_path: Path,
) -> None:
    """As stored on disk: ``checked_ns`` is when the hash was computed. The boundary is the
    worktree's too (one rule, :func:`settled`): at exactly the window, not trusted."""
    cache_at(tmp_path).close()
    db = sqlite3.connect(tmp_path / "watch-cache.sqlite")
    with db:
        db.executemany(
            "INSERT INTO stat VALUES (?,?,?,?,?,?,?)",
            [
                ("f/a", 1, 5, OLD, "h1", OLD + RACY_NS + 1, CT),
                ("f/b", 2, 5, OLD, "h2", OLD + RACY_NS, CT),
            ],
        )
    db.close()
    cache = cache_at(tmp_path)
    assert cache.lookup("f/a", (1, 5, OLD, 0, CT)) == "h1"
    assert cache.lookup("f/b", (2, 5, OLD, 0, CT)) is None


def test_entries_survive_close_and_reopen(tmp_path: Path) -> None:
    cache = cache_at(tmp_path)
    cache.put("f/a", (1, 5, OLD, 0, CT), "h1")
    cache.put("f/b", (2, 6, OLD, 0, CT), "h2")
    cache.put("f/c", (3, 7, OLD, 0, CT), "h3")
    cache.flush()
    cache.drop("f/b")
    cache.put("f/c", (3, 8, OLD, 0, CT), "h3b")
    cache.close()
    cache.close()  # twice is harmless
    again = cache_at(tmp_path)
    assert again.lookup("f/a", (1, 5, OLD, 0, CT)) == "h1"
    assert again.lookup("f/b", (2, 6, OLD, 0, CT)) is None
    assert again.lookup("f/c", (3, 7, OLD, 0, CT)) is None
    assert again.lookup("f/c", (3, 8, OLD, 0, CT)) == "h3b"
    assert set(again.entries) == {"f/a", "f/c"}
    again.close()


def test_dropping_an_unknown_path_changes_nothing(tmp_path: Path) -> None:
    cache = cache_at(tmp_path)
    cache.put("f/a", (1, 5, OLD, 0, CT), "h1")
    cache.drop("f/zzz")
    cache.close()
    assert set(cache_at(tmp_path).entries) == {"f/a"}


def test_without_a_file_the_cache_lives_in_memory(tmp_path: Path) -> None:
    cache = StatCache(None)
    cache.put("f/a", (1, 5, OLD, 0, CT), "h1")
    cache.flush()
    cache.load("")
    assert cache.lookup("f/a", (1, 5, OLD, 0, CT)) == "h1"
    cache.drop("f/a")
    assert cache.lookup("f/a", (1, 5, OLD, 0, CT)) is None
    cache.close()


def stored(tmp_path: Path, paths: list[str]) -> None:
    cache = cache_at(tmp_path)
    for i, p in enumerate(paths):
        cache.put(p, (i, 1, OLD, 0, CT), f"h{i}")
    cache.close()


def test_a_prefix_loads_only_what_is_under_it(tmp_path: Path) -> None:
    paths = [
        "sessions/a/files/x",
        "sessions/a/files/y",
        "sessions/ab/files/x",
        "sessions/a.b/files/x",
        "sessions/a0/files/x",
        "sessions/b/files/x",
    ]
    stored(tmp_path, paths)
    cache = cache_at(tmp_path, prefix="sessions/a/")
    assert set(cache.entries) == {"sessions/a/files/x", "sessions/a/files/y"}
    cache.load("sessions/b/files/")
    assert set(cache.entries) == {"sessions/a/files/x", "sessions/a/files/y", "sessions/b/files/x"}
    cache.load("")
    assert set(cache.entries) == set(paths)
    assert set(cache_at(tmp_path, prefix=None).entries) == set()
    assert set(cache_at(tmp_path).entries) == set(paths)


def test_a_session_files_prefix_loads_every_name_under_it(tmp_path: Path) -> None:
    names = ["0.txt", "A.md", "files.txt", "t.txt", "u.txt", "z.txt", "~x"]
    other = ["sessions/s/files0", "sessions/s/state.yaml", "sessions/t/files/a.txt"]
    stored(tmp_path, [f"sessions/s/files/{n}" for n in names] + other)
    cache = cache_at(tmp_path, prefix="sessions/s/files/")
    assert sorted(cache.entries) == [f"sessions/s/files/{n}" for n in names]


def test_loading_keeps_what_this_process_put_since(tmp_path: Path) -> None:
    stored(tmp_path, ["sessions/a/files/x"])
    cache = cache_at(tmp_path, prefix=None)
    cache.put("sessions/a/files/x", (9, 9, OLD, 0, CT), "newer")
    cache.load("sessions/a/")
    assert cache.lookup("sessions/a/files/x", (9, 9, OLD, 0, CT)) == "newer"


def test_a_prefix_is_read_once(tmp_path: Path) -> None:
    """What was dropped here is not brought back by loading the same prefix again."""
    stored(tmp_path, ["sessions/a/files/x"])
    cache = cache_at(tmp_path, prefix="sessions/a/")
    cache.entries.pop("sessions/a/files/x")  # as a caller clearing its view would
    cache.load("sessions/a/")
    assert cache.entries == {}
    cache_all = cache_at(tmp_path)
    cache_all.entries.clear()
    cache_all.load("sessions/a/")  # everything was read already
    assert cache_all.entries == {}


@pytest.mark.parametrize("damage", [b"not a database at all" * 100, b""])
def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "watch-cache.sqlite"
    path.write_bytes(damage)
    (tmp_path / "watch-cache.sqlite-wal").write_bytes(b"junk")
    cache = StatCache(path)
    assert cache.entries == {}
    cache.put("f/a", (1, 5, OLD, 0, CT), "h1")
    cache.close()
    assert StatCache(path).lookup("f/a", (1, 5, OLD, 0, CT)) == "h1"
    rows = sqlite3.connect(path).execute("SELECT path, hash FROM stat").fetchall()
    assert rows == [("f/a", "h1")]


def test_the_file_is_a_wal_database(tmp_path: Path) -> None:
    """Readers (another spell process) do not block the watcher's writes."""
    cache = cache_at(tmp_path)
    cache.put("f/a", (1, 5, OLD, 0, CT), "h1")
    cache.flush()
    db = sqlite3.connect(tmp_path / "watch-cache.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    row = db.execute("SELECT path, ino, size, mtime_ns, hash FROM stat").fetchone()
    assert row == ("f/a", 1, 5, OLD, "h1")
    cache.close()


def test_a_cache_opened_in_one_thread_is_saved_from_another(tmp_path: Path) -> None:
    """The worktree opens it on first use, under its lock, in whichever thread asks."""
    import threading

    cache = cache_at(tmp_path)

    def work() -> None:
        cache.put("f/a", (1, 5, OLD, 0, CT), "h1")
        cache.close()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert cache_at(tmp_path).lookup("f/a", (1, 5, OLD, 0, CT)) == "h1"


def test_a_cache_file_that_cannot_be_opened_costs_only_speed(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "no-such-folder" / "watch-cache.sqlite")
    cache.put("f/a", (1, 5, OLD, 0, CT), "h1")
    cache.flush()
    assert cache.lookup("f/a", (1, 5, OLD, 0, CT)) == "h1"
    cache.close()
    assert not (tmp_path / "no-such-folder").exists()


def test_a_write_that_puts_the_mtime_back_is_not_hidden(tmp_path: Path) -> None:
    """Same size, mtime put back (``touch -r``, ``cp -p``, ``rsync -t``): the kernel still
    moved the ctime, so the cached hash no longer vouches for the file (git's index: ctime)."""
    f = tmp_path / "a.txt"
    f.write_bytes(b"recorded")
    os.utime(f, ns=(OLD, OLD))
    got = hash_path(str(f))
    assert got is not None
    cache = cache_at(tmp_path)
    cache.put("f/a", got[2], got[0])
    assert cache.lookup("f/a", stat_of(str(f))) == got[0]
    time.sleep(0.01)  # (a later clock tick: the ctime moves)
    f.write_bytes(b"RECORDED")
    os.utime(f, ns=(OLD, OLD))
    now = stat_of(str(f))
    assert now is not None and now[:4] == got[2][:4]  # what the cache compared before
    assert cache.lookup("f/a", now) is None


OLD_SCHEMA = """
CREATE TABLE stat (
    path TEXT PRIMARY KEY, ino INTEGER, size INTEGER, mtime_ns INTEGER, hash TEXT,
    checked_ns INTEGER);
"""


def _old_cache_file(tmp_path: Path) -> Path:
    """A cache file as spellfs wrote it before ctimes: one entry, f/a."""
    path = tmp_path / "watch-cache.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    with db:
        db.execute("INSERT INTO stat VALUES (?,?,?,?,?,?)", ("f/a", 1, 5, OLD, "h1", OLD * 9))
    db.close()
    return path


def test_a_cache_file_from_before_ctimes_is_read_and_its_entries_hashed_once(
    tmp_path: Path,
) -> None:
    """An older spellfs's file: opened, given the column; its entries vouch for nothing (their
    file may have been written with the mtime put back), the next put is trusted again."""
    path = _old_cache_file(tmp_path)
    cache = StatCache(path)
    assert set(cache.entries) == {"f/a"}
    assert cache.lookup("f/a", (1, 5, OLD, 0, CT)) is None
    cache.put("f/a", (1, 5, OLD, 0, CT), "h1")
    cache.close()
    again = StatCache(path)
    assert again.lookup("f/a", (1, 5, OLD, 0, CT)) == "h1"
    again.close()
    StatCache(path).close()  # the column is added once


def test_an_old_cache_file_that_cannot_be_changed_costs_only_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the column cannot be added (a read-only file; here an ALTER that fails): nothing
    is trusted, the file is left as it was (not taken for damage), the cache lives in memory."""
    import spellfs.model.statcache as statcache

    path = _old_cache_file(tmp_path)
    monkeypatch.setattr(statcache, "_ADD_CTIME", "ALTER TABLE stat ADD COLUMN hash TEXT")
    cache = StatCache(path)
    assert cache.entries == {}
    cache.put("f/b", (1, 5, OLD, 0, CT), "h2")
    cache.flush()
    assert cache.lookup("f/b", (1, 5, OLD, 0, CT)) == "h2"
    cache.close()
    rows = sqlite3.connect(path).execute("SELECT * FROM stat").fetchall()
    assert rows == [("f/a", 1, 5, OLD, "h1", OLD * 9)]


@pytest.mark.parametrize("moved", ["st_mtime_ns", "st_ctime_ns", "st_size"])
def test_a_file_written_while_it_was_read_gives_no_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moved: str
) -> None:
    """Its bytes may be half old, half new: the caller looks again later. The ctime counts too
    (a write whose mtime is put back right after)."""
    import types

    import spellfs.model.statcache as statcache

    f = tmp_path / "f"
    f.write_bytes(b"hello")
    real = os.fstat
    seen: list[int] = []

    def fstat(fd: int):
        st = real(fd)
        seen.append(fd)
        if len(seen) == 1:
            return st
        fields = {k: getattr(st, k) for k in dir(st) if k.startswith("st_")}
        fields[moved] += 1  # (the size: as if more was written than was read)
        return types.SimpleNamespace(**fields)

    monkeypatch.setattr(statcache.os, "fstat", fstat)
    assert hash_path(str(f)) is None
    assert len(seen) == 2
