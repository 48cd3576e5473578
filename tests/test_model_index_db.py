"""The index database: which SQLite failures are damage (the cache is rebuilt from the files)
and which are not (busy, or a statement's own mistake: raised, the cache kept)."""

from __future__ import annotations

import sqlite3

import pytest

from spellfs.model import index_db


@pytest.mark.parametrize(
    "error, damaged",
    [
        (sqlite3.OperationalError("database is locked"), False),  # busy: wait or fail, never wipe
        (sqlite3.OperationalError("no such table: sessions"), False),
        (sqlite3.OperationalError("database disk image is malformed"), True),
        (sqlite3.OperationalError("file is not a database"), True),
        (sqlite3.OperationalError("disk I/O error"), True),
        (sqlite3.OperationalError("database or disk is full"), True),
        (sqlite3.DatabaseError("database disk image is malformed"), True),
        (sqlite3.DatabaseError("file is not a database"), True),
        # a statement's own mistake: raised, not hidden by wiping the cache at every use
        (sqlite3.ProgrammingError("Incorrect number of bindings supplied."), False),
        (sqlite3.InterfaceError("bad parameter or other API misuse"), False),
    ],
)
def test_only_damage_rebuilds_the_cache(error: sqlite3.DatabaseError, damaged: bool) -> None:
    assert index_db.damaged(error) is damaged


def test_a_damaged_file_is_replaced_by_an_empty_index(tmp_path) -> None:
    """A file that is not a database is thrown away and an empty index made in its place."""
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    (tmp_path / "index.sqlite-wal").write_bytes(b"junk")
    db = index_db.open_db(path)
    assert db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    db.close()
    assert (
        not (tmp_path / "index.sqlite-wal").exists()
        or b"junk" not in (tmp_path / "index.sqlite-wal").read_bytes()
    )
    assert sqlite3.connect(path).execute("PRAGMA quick_check").fetchone() == ("ok",)
