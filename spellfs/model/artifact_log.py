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

from ..errors import UsageError
from ..names import check_artifact_name, utc_key
from ..store import RecordLog
from .schema import record_problem

__all__ = ["ArtifactLog", "identity_problems", "valid_name"]


def valid_name(name: object) -> bool:
    """True for a name that may become ``files/<name>``: a record's name is outside data."""
    try:
        check_artifact_name(name)
    except UsageError:
        return False
    return isinstance(name, str)


def _order(rec: dict) -> tuple:
    return (utc_key(rec.get("created_at", "")), rec.get("seq", 0), rec.get("hash", ""))


class ArtifactLog(RecordLog):
    def reset(self) -> None:
        super().reset()
        self.by_seq: dict[int, list[dict]] = {}
        self.versions: dict[str, list[dict]] = {}
        self.deleted: dict[str, tuple] = {}
        self.max_seq = 0
        self.live_count = 0
        self.last_at = ""
        self._last_key = ""  # last_at as utc_key gives it

    def apply(self, rec: dict) -> None:
        if record_problem("artifacts.yaml", rec) is not None:
            return  # a hand-written or merged line that is no artifact record (fsck reports it)
        self.apply_own(rec)

    def apply_own(self, rec: dict) -> None:
        seq = rec["seq"]
        self.records.append(rec)
        self.by_seq.setdefault(seq, []).append(rec)
        if seq > self.max_seq:
            self.max_seq = seq
        at = rec.get("created_at", "")
        key = utc_key(at)
        if key > self._last_key:
            self.last_at, self._last_key = at, key
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

    def find_all(self, seq: int) -> list[dict]:
        """Every version record with sequence ``seq``: two after a merge of clones that each
        appended it (a reference by sequence alone is then ambiguous)."""
        return [r for r in self.by_seq.get(seq, ()) if r.get("op") != "delete"]

    def find(self, seq: int, content_hash: str | None = None) -> dict | None:
        for rec in self.by_seq.get(seq, ()):
            if rec.get("op") != "delete" and (
                content_hash is None or rec.get("hash") == content_hash
            ):
                return rec
        return None

    def version(self, name: str, number: int) -> dict | None:
        versions = self.versions.get(name, [])
        return versions[number - 1] if 1 <= number <= len(versions) else None

    def table(self) -> dict[str, Any]:
        return {r["name"]: r for r in self.live()}


def identity_problems(ws: Any, dir: str) -> list[tuple[str, str, str]]:
    """``(kind, where, detail)`` for records that break, or strain, one identity per version
    (``fsck``). ``ambiguous-record``: two records with one sequence *and* one content hash but
    different names (an id table could name either; a failure). ``shared-sequence``: two clones
    each appended sequence N and were merged (their id tables still differ by content hash, but
    ``#N`` is ambiguous; informative). ``renumbered``: an older record's stored ``version`` is
    not the one derived from record order, which every reader shows (informative)."""
    from ..store import parse_records

    rel = f"sessions/{dir}/artifacts.yaml"
    try:
        data = ws.storage.read(rel)
    except FileNotFoundError:
        return []
    log = ws.log(dir)
    log.refresh()
    out = []
    for seq, recs in sorted(log.by_seq.items()):
        if len(recs) < 2:
            continue
        shown = " and ".join(
            r["name"] + (" (deleted)" if r.get("op") == "delete" else f"@{r.get('version')}")
            for r in recs
        )
        versions = [r for r in recs if r.get("op") != "delete"]
        clash = any(
            a.get("hash") == b.get("hash") and a["name"] != b["name"]
            for i, a in enumerate(versions)
            for b in versions[i + 1 :]
        )
        kind = "ambiguous-record" if clash else "shared-sequence"
        out.append(
            (
                kind,
                rel,
                f"{rel}: sequence {seq} is used by {len(recs)} records after a merge: {shown} "
                f"(`#{seq}` is ambiguous; name them as name@version)",
            )
        )
    derived = {
        (r.get("seq"), r.get("name"), r.get("hash"), r.get("created_at")): r.get("version")
        for vs in log.versions.values()
        for r in vs
    }
    try:
        for line, rec in parse_records(data, rel):
            if rec.get("op") == "delete" or "version" not in rec:
                continue
            want = derived.get(
                (rec.get("seq"), rec.get("name"), rec.get("hash"), rec.get("created_at"))
            )
            if want is not None and want != rec["version"]:
                out.append(
                    (
                        "renumbered",
                        f"{rel}:{line}",
                        f"{rel}:{line}: {rec.get('name')} is stored as version "
                        f"{rec['version']} but reads as version {want} (after a merge versions are "
                        "numbered by record order, the same in every clone)",
                    )
                )
    except Exception:  # noqa: BLE001 - bad lines are reported by the record check
        pass
    return out
