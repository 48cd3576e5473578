"""The query index's SQLite file: opened (and rebuilt when damaged), and told apart from a
busy or a mistaken one.

The index is a cache of the files, so a damaged database is thrown away and started
again, never trusted; a busy one ("database is locked") waits or fails, and a mistake in
a statement is raised, never hidden by a rebuild that would wipe the cache at every use.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Any

from ..store.links import linked_file
from . import index_sql as sql

__all__ = ["damaged", "healing", "open_db", "remove_db"]


def damaged(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file (rebuild it), not a busy one, nor a mistake in a statement (a
    ProgrammingError and the like)."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        return (
            "malformed" in text or "not a database" in text or "disk I/O" in text or "full" in text
        )
    return type(exc) is sqlite3.DatabaseError  # SQLite's "malformed", "not a database"


def healing(method: Any) -> Any:
    """Run an index method through its ``_healed``: on a damaged database, rebuild the cache
    from the files and run it again. (It runs when the class is made, before mutmut switches
    any mutant on: the loop to mutate is in that method.)"""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kw: Any) -> Any:
        return self._healed(method, args, kw)

    return run


def remove_db(path: Path) -> None:
    """Delete the database file and its write-ahead log."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _connect(target: str) -> sqlite3.Connection:
    return sqlite3.connect(target, timeout=30, isolation_level=None, check_same_thread=False)


def open_db(path: Path | None) -> sqlite3.Connection:
    """The index database at ``path`` (in memory when None, or when ``path`` is a link: SQLite
    would write where a cloned repository's link points; fsck names it), at the current schema
    version: an older version is dropped, a damaged file replaced by an empty one."""
    target = ":memory:"
    if path is not None and not linked_file(str(path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path)
    db = _connect(target)
    try:
        db.executescript(sql.OPEN)
        if db.execute(sql.GET_VERSION).fetchone()[0] != sql.VERSION:
            db.executescript(sql.DROP)
            db.execute(sql.SET_VERSION)
        db.executescript(sql.SCHEMA)
    except sqlite3.DatabaseError:
        db.close()
        if path is not None:
            remove_db(path)
        db = _connect(target)
        db.executescript(sql.OPEN)
        db.execute(sql.SET_VERSION)
        db.executescript(sql.SCHEMA)
    return db
