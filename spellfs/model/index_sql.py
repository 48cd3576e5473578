"""The query index's SQLite schema and every statement it runs, in one place: the methods of
:class:`.index.Index` hold no SQL, so a schema change is read and reviewed here."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    dir TEXT PRIMARY KEY, id TEXT, manifest TEXT, error TEXT,
    msig TEXT, rsig TEXT, artifact_count INTEGER, last_at TEXT, status TEXT, tags TEXT);
CREATE INDEX IF NOT EXISTS sessions_id ON sessions(id);
CREATE TABLE IF NOT EXISTS artifacts (
    dir TEXT, name TEXT, type TEXT, size INTEGER, created_at TEXT, record TEXT,
    PRIMARY KEY (dir, name));
"""
VERSION = 2
OPEN = "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
GET_VERSION = "PRAGMA user_version"
SET_VERSION = f"PRAGMA user_version={VERSION}"
DROP = "DROP TABLE IF EXISTS sessions; DROP TABLE IF EXISTS artifacts;"
QUICK_CHECK = "PRAGMA quick_check"
COUNTS = ("SELECT count(*) FROM sessions", "SELECT count(*) FROM artifacts")
ROWS = "SELECT dir, id, error, msig, rsig, artifact_count, last_at, status, tags FROM sessions"
MANIFESTS = "SELECT dir, manifest FROM sessions WHERE dir IN "  # + "(?,?,...)"
MANIFEST = "SELECT manifest FROM sessions WHERE dir=?"
HOLDING = "SELECT dir FROM sessions WHERE instr(manifest, ?) > 0"
SAVE = "INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?)"
DELETE = "DELETE FROM sessions WHERE dir=?"
DELETE_ARTIFACTS = "DELETE FROM artifacts WHERE dir=?"
ADD_ARTIFACT = "INSERT INTO artifacts VALUES (?,?,?,?,?,?)"
ARTIFACTS = "SELECT dir, record FROM artifacts WHERE {} ORDER BY created_at, dir, name"
AND = " AND "
BEGIN = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
