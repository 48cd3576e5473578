"""One session's ``artifacts.yaml``: the append-only log and its in-memory view.

The log is the truth; the view is rebuilt from it and kept current by reading
only what was appended since (tracked by inode and offset), so a store costs the
same with 10 or 100,000 records before it.

Ordering after a git merge: two clones may append versions of the same name; a
union merge keeps both sides' lines. Versions of a name are ordered by
``(created_at, seq, hash)`` — the same on every clone, whichever side merged —
and numbered 1..n in that order. A delete hides a name until a later store.
"""

from __future__ import annotations

import bisect
from typing import Any, Iterator

from .errors import UsageError
from .names import check_artifact_name
from .records import parse_records
from .storage import Storage

__all__ = ["ArtifactLog"]


def valid_name(name: object) -> bool:
    """True for a name that may become ``files/<name>``: a record's name is outside data."""
    try:
        check_artifact_name(name)
    except UsageError:
        return False
    return isinstance(name, str)


def _order(rec: dict) -> tuple:
    return (rec.get("created_at", ""), rec.get("seq", 0), rec.get("hash", ""))


class ArtifactLog:
    def __init__(self, storage: Storage, rel: str) -> None:
        self.storage = storage
        self.rel = rel
        self.reset()

    def reset(self) -> None:
        self.inode = None
        self.offset = 0
        self.line = 1
        self.records: list[dict] = []
        self.by_seq: dict[int, list[dict]] = {}
        self.versions: dict[str, list[dict]] = {}
        self.deleted: dict[str, tuple] = {}
        self.max_seq = 0
        self.live_count = 0
        self.last_at = ""

    # -- reading -------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the view up to date with the file (cheap when nothing changed)."""
        sig = self.storage.signature(self.rel)
        if sig is None:
            if self.records:
                self.reset()
            return
        inode, size, _ = sig
        if inode != self.inode or size < self.offset:
            self.reset()
            self.inode = inode
        if size == self.offset:
            return
        tail = self.storage.read_from(self.rel, self.offset)
        consumed = tail.rfind(b"\n") + 1
        if consumed == 0:
            return
        for _, rec in parse_records(tail[:consumed], self.rel, self.line):
            self.apply(rec)
        self.line += tail.count(b"\n", 0, consumed)
        self.offset += consumed

    def note_append(self, start: int, data: bytes, records: list[dict]) -> None:
        """Account for lines we appended ourselves at ``start``, one per record (we hold the lock)."""
        if start != self.offset:
            self.refresh()
            return
        self.offset = start + len(data)
        self.line += len(records)
        for rec in records:
            self.apply(rec)

    def apply(self, rec: dict) -> None:
        seq = rec.get("seq")
        if not isinstance(seq, int) or not valid_name(rec.get("name")):
            return  # a hand-written or merged line that is no artifact record (fsck reports it)
        self.records.append(rec)
        self.by_seq.setdefault(seq, []).append(rec)
        if seq > self.max_seq:
            self.max_seq = seq
        at = rec.get("created_at", "")
        if at > self.last_at:
            self.last_at = at
        name = rec["name"]
        was_live = self.is_live(name)
        if rec.get("op") == "delete":
            key = _order(rec)
            if key > self.deleted.get(name, ()):
                self.deleted[name] = key
        else:
            versions = self.versions.setdefault(name, [])
            if not versions or _order(versions[-1]) <= _order(rec):
                versions.append(rec)
                rec["version"] = len(versions)
            else:  # a merged line from the past: renumber
                bisect.insort(versions, rec, key=_order)
                for i, r in enumerate(versions, 1):
                    r["version"] = i
        self.live_count += self.is_live(name) - was_live

    def is_live(self, name: str) -> bool:
        versions = self.versions.get(name)
        if not versions:
            return False
        gone = self.deleted.get(name)
        return gone is None or _order(versions[-1]) > gone

    def latest(self, name: str) -> dict | None:
        return self.versions[name][-1] if self.is_live(name) else None

    def live(self) -> Iterator[dict]:
        for name, versions in self.versions.items():
            if self.is_live(name):
                yield versions[-1]

    def find(self, seq: int, content_hash: str | None = None) -> dict | None:
        for rec in self.by_seq.get(seq, ()):
            if rec.get("op") != "delete" and (content_hash is None or rec.get("hash") == content_hash):
                return rec
        return None

    def version(self, name: str, number: int) -> dict | None:
        versions = self.versions.get(name, [])
        return versions[number - 1] if 1 <= number <= len(versions) else None

    def table(self) -> dict[str, Any]:
        return {r["name"]: r for r in self.live()}
