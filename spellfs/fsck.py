"""``spell fsck``: every object verifies and every record points at an object that exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .errors import IntegrityError, ManifestError, ObjectNotFound, SpellError

if TYPE_CHECKING:
    from .workspace import Workspace

__all__ = ["Problem", "fsck"]


@dataclass
class Problem:
    kind: str  # corrupt-object, missing-object, bad-manifest, bad-record, stray-temp
    where: str
    detail: str


@dataclass
class Report:
    objects: int = 0
    sessions: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"ok": self.ok, "objects": self.objects, "sessions": self.sessions, "records": self.records,
                "problems": [p.__dict__ for p in self.problems]}


def referenced(ws: "Workspace") -> dict[str, str]:
    """Every object a session record reaches: oid -> where it is referenced (first seen)."""
    refs: dict[str, str] = {}
    for dir in ws.storage.listdir("sessions"):
        log = ws.log(dir)
        try:
            log.refresh()
        except ManifestError:
            continue
        for rec in log.records:
            if rec.get("hash"):
                refs.setdefault(rec["hash"], f"sessions/{dir}/artifacts.yaml#{rec['seq']}")
    return refs


def fsck(ws: "Workspace", advance: Callable[[int], None] | None = None) -> Report:
    report = Report()
    store = ws.objects
    for oid in store:
        report.objects += 1
        try:
            store.verify(oid)
        except IntegrityError as exc:
            report.problems.append(Problem("corrupt-object", oid, str(exc)))
        if advance:
            advance(1)
    for dir in ws.storage.listdir("sessions"):
        report.sessions += 1
        base = f"sessions/{dir}"
        try:
            ws.sessions.manifest(dir)
        except (ManifestError, SpellError) as exc:
            report.problems.append(Problem("bad-manifest", f"{base}/session.yaml", str(exc)))
        log = ws.log(dir)
        log.reset()
        try:
            log.refresh()
        except ManifestError as exc:
            report.problems.append(Problem("bad-record", f"{base}/artifacts.yaml", str(exc)))
        sig = ws.storage.signature(f"{base}/artifacts.yaml")
        if sig is not None and sig[1] != log.offset:
            report.problems.append(Problem("bad-record", f"{base}/artifacts.yaml",
                                           f"{base}/artifacts.yaml: ends with an unfinished record ({sig[1] - log.offset} bytes)"))
        for rec in log.records:
            report.records += 1
            oid = rec.get("hash")
            if oid and not store.has(oid):
                report.problems.append(Problem("missing-object", f"{base}/artifacts.yaml#{rec['seq']}",
                                               f"object {oid} of {rec['name']} v{rec.get('version')} is missing"))
        for name in ws.storage.listdir(f"{base}/files"):
            if name.startswith(".") and name.endswith(".tmp"):
                report.problems.append(Problem("stray-temp", f"{base}/files/{name}", "an unfinished write"))
    return report


__all__ += ["Report", "referenced", "ObjectNotFound"]
