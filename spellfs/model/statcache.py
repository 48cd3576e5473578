"""The stat cache: what a file under ``files/`` looked like when its hash was last computed.

:class:`StatCache` maps a workspace-relative path to the ``(inode, size, mtime_ns, ctime_ns)``
it had when its BLAKE3 hash was computed, in ``.spell/watch-cache.sqlite`` (git's
index, for sessions). The ctime is there as in git's index: a same-size write whose mtime
is put back (``touch -r``, ``cp -p``, ``rsync -t``) still moves it, since only the kernel
sets it; an entry written before the ctime was kept (no ``ctime_ns``) vouches for nothing,
so its file is hashed once more. The working-copy check (:mod:`spellfs.model.worktree`) and
the watcher's catch-up share it: each stats every file and re-hashes only those
whose stat changed, so a check costs a stat per file, not a read. Losing the file
loses only speed.

A cached stat is trusted only when the file's mtime was at least :data:`RACY_NS`
older than the moment it was hashed (git's "racily clean" rule): a file rewritten
within the same timestamp tick with the same size would otherwise look unchanged.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import sqlite3
import time
from pathlib import Path

from ..store.links import linked_file

__all__ = [
    "RACY_NS",
    "Stat",
    "StatCache",
    "hash_path",
    "is_editor_temp",
    "same_stat",
    "settled",
    "stat_of",
]

RACY_NS = 100_000_000  # 100 ms
Stat = tuple  # (inode, size, mtime_ns, mode, ctime_ns)

# Files editors and tools write beside the real one while saving; never artifacts.
# (Names starting with '.' are skipped before this: swap files, our own
# `.<name>.<pid>.<tid>.tmp`, `.#lock` files, `.goutputstream-*`.)
_EDITOR_GLOBS = (
    "*~",
    "*.swp",
    "*.swo",
    "*.swx",
    "#*#",
    "4913",
    "*.tmp",
    "*.part",
    "*.crdownload",
    "*.kate-swp",
    "*___jb_tmp___",
    "*___jb_old___",
    "*.orig.tmp",
    "*.sb-*",
)
_EDITOR_RE = re.compile("|".join(fnmatch.translate(g) for g in _EDITOR_GLOBS))

# The cache's SQL, in one place: the table, how a connection is set up, and the statements.
_SETUP = """
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
CREATE TABLE IF NOT EXISTS stat (
    path TEXT PRIMARY KEY, ino INTEGER, size INTEGER, mtime_ns INTEGER, hash TEXT,
    checked_ns INTEGER, ctime_ns INTEGER);
"""
_PROBE = "SELECT count(*) FROM stat WHERE path = ''"
# (a file made before ctime_ns was kept gets the column; its rows hold NULL: never trusted)
_COLUMNS = "PRAGMA table_info(stat)"
_ADD_CTIME = "ALTER TABLE stat ADD COLUMN ctime_ns INTEGER"
_SELECT = "SELECT path, ino, size, mtime_ns, hash, checked_ns, ctime_ns FROM stat"
_SELECT_RANGE = _SELECT + " WHERE path >= ? AND path < ?"
_DELETE = "DELETE FROM stat WHERE path=?"
_PUT = "INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?,?,?)"


def is_editor_temp(name: str) -> bool:
    return name.startswith(".") or _EDITOR_RE.match(name) is not None


def stat_of(path: str) -> Stat | None:
    """The identity of a file as the watcher compares it (``lstat``: a link is itself)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_ctime_ns)


def hash_path(path: str, limit: int | None = None) -> tuple[str, bytes | None, Stat] | None:
    """BLAKE3 of a file, its bytes when small, and the stat it had while read.

    Returns None when the file changed while being read (size, mtime or ctime moved).
    """
    from blake3 import blake3

    with open(path, "rb") as f:
        before = os.fstat(f.fileno())
        if before.st_size <= (4 << 20):
            data = f.read()
            digest = blake3(data).hexdigest()
        else:
            data, h = None, blake3()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            digest = h.hexdigest()
        after = os.fstat(f.fileno())
    if _moved(before, after) or (data is not None and len(data) != after.st_size):
        return None
    st = (after.st_ino, after.st_size, after.st_mtime_ns, after.st_mode, after.st_ctime_ns)
    return digest, data, st


def _moved(before: os.stat_result, after: os.stat_result) -> bool:
    """Whether a file was written between two stats of it (a write moves the ctime even when
    the mtime is put back)."""
    return (before.st_size, before.st_mtime_ns, before.st_ctime_ns) != (
        after.st_size,
        after.st_mtime_ns,
        after.st_ctime_ns,
    )


class StatCache:
    """path (workspace-relative) -> (inode, size, mtime_ns, hash, checked_ns, ctime_ns), persisted
    in SQLite (``checked_ns``: when the hash was computed).

    Owned by one thread (the watcher's worker). Writes are batched and flushed by
    :meth:`flush`; losing the file loses only speed.
    """

    def __init__(self, path: Path | None, prefix: str | None = "") -> None:
        """``prefix``: load only entries under it now (one session's ``files/``); more with
        :meth:`load`. ``""`` loads everything (the watcher), ``None`` nothing yet."""
        self.path = path
        self.entries: dict[str, tuple[int, int, int, str, int, int | None]] = {}
        self._dirty: dict[str, tuple | None] = {}
        self._db: sqlite3.Connection | None = None
        self._loaded: set[str] = set()
        if path is not None:
            self._open()
            if prefix is not None:
                self.load(prefix)

    def load(self, prefix: str) -> None:
        """Read the entries under ``prefix`` (once; ``""`` is all of them)."""
        if self._db is None or "" in self._loaded or prefix in self._loaded:
            return
        if prefix:
            bound = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            rows = self._db.execute(_SELECT_RANGE, (prefix, bound))
        else:
            rows = self._db.execute(_SELECT)
        try:
            for row in rows:
                self.entries.setdefault(row[0], tuple(row[1:]))
        except sqlite3.DatabaseError:
            return  # read again next time; meanwhile files are hashed
        self._loaded.add(prefix)

    def _open(self) -> None:
        assert self.path is not None
        if linked_file(os.fspath(self.path)):  # (a cloned repository's link: never written through)
            return  # no cache: every file is hashed
        for _attempt in range(2):
            try:
                db = sqlite3.connect(str(self.path), timeout=10, check_same_thread=False)
                db.executescript(_SETUP)
                db.execute(_PROBE).fetchone()  # a damaged file fails here
                if _add_ctime(db):
                    self._db = db
                else:  # an old file this process may not change: hash everything instead
                    db.close()
                return
            except sqlite3.DatabaseError:
                # A damaged cache is rebuilt, never trusted.
                with contextlib.suppress(Exception):
                    db.close()
                for suffix in ("", "-wal", "-shm"):
                    Path(str(self.path) + suffix).unlink(missing_ok=True)
                self.entries.clear()

    def lookup(self, rel: str, st: Stat) -> str | None:
        """The cached hash when ``st`` is what was hashed and it was not racily recent."""
        e = self.entries.get(rel)
        if e is None or not same_stat(e, st[0], st[1], st[2], st[4]) or not settled(e):
            return None
        return e[3]

    def put(self, rel: str, st: Stat, digest: str) -> None:
        """Remember ``digest`` for ``st`` (a :data:`Stat`: ino, size, mtime_ns, mode, ctime_ns)."""
        e = (st[0], st[1], st[2], digest, time.time_ns(), st[4])
        if self.entries.get(rel) != e:
            self.entries[rel] = e
            self._dirty[rel] = e

    def drop(self, rel: str) -> None:
        if self.entries.pop(rel, None) is not None:
            self._dirty[rel] = None

    def flush(self) -> None:
        if self._db is None or not self._dirty:
            self._dirty.clear()
            return
        dirty, self._dirty = self._dirty, {}
        try:
            with self._db:
                self._db.executemany(_DELETE, [(p,) for p, e in dirty.items() if e is None])
                self._db.executemany(_PUT, [(p, *e) for p, e in dirty.items() if e is not None])
        except sqlite3.Error:
            pass  # a cache: the next catch-up re-hashes what it cannot vouch for

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


def _add_ctime(db: sqlite3.Connection) -> bool:
    """Give a cache file made before ctimes were kept its ``ctime_ns`` column (its rows: NULL,
    never trusted); False when it has none and cannot get one (a read-only file). (On a file
    that has it, the ALTER fails at once, "duplicate column", without waiting for a lock.)"""
    try:
        with db:
            db.execute(_ADD_CTIME)
    except sqlite3.OperationalError:  # it has the column, or cannot be changed
        pass
    return any(row[1] == "ctime_ns" for row in db.execute(_COLUMNS))


def same_stat(e: tuple, ino: int, size: int, mtime_ns: int, ctime_ns: int) -> bool:
    """Whether the cache entry ``e`` was taken of a file with this stat: the same inode, size,
    mtime and ctime (an entry from before ctimes were kept has none: never the same)."""
    return e[0] == ino and e[1] == size and e[2] == mtime_ns and e[5] == ctime_ns


def settled(e: tuple | None) -> bool:
    """Whether the cache entry ``e`` (ino, size, mtime_ns, hash, hashed_at_ns, …) may vouch for its
    file: it was hashed past the racy window after the mtime it saw, so a later write within
    the same mtime tick cannot hide behind it (git's racy-clean rule)."""
    return e is not None and e[2] + RACY_NS < e[4]
