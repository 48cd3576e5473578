"""``spell gc``: remove objects nothing reaches.

Reachable is what :func:`spellfs.history.reachable` says: every object named by an
artifact record, a checkpoint, a run record, an in-flight run's marker, or a root
registered in :data:`spellfs.history.ROOTS` (the walk ``spell push`` uses too).

Racing a store in another process is safe, for two reasons:

* Objects whose file was modified in the last ``grace`` seconds (default
  :data:`GRACE_SECONDS`) are spared, so an object written just before its
  record is appended is never a candidate.
* The removal phase holds the ``sessions`` lock (no session can be created)
  and every session's ``s-<dir>`` lock — the lock an artifact store, a
  checkpoint, a restore and a fork hold from writing their objects to appending
  their records — and computes reachability again under them. An object a store
  re-used (``put`` of existing content is a no-op) is therefore seen as reached.

A tree, table or page that cannot be read stops gc (IntegrityError): what it
would have reached is unknown, so nothing is removed.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..errors import ManifestError
from ..history import reachable

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["GRACE_SECONDS", "GcReport", "gc"]

GRACE_SECONDS = 15 * 60


@dataclass
class GcReport:
    dry_run: bool
    removed: list[dict] = field(default_factory=list)  # {oid, size}
    bytes: int = 0
    kept: int = 0
    spared: int = 0  # unreached but younger than the grace period
    temps: list[str] = field(default_factory=list)  # stray temporary files removed
    packs_merged: int = 0  # packs and dead processes' journals written as one (store/packs.py)

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "removed": self.removed,
            "bytes": self.bytes,
            "count": len(self.removed),
            "kept": self.kept,
            "spared": self.spared,
            "temps_removed": self.temps,
            "packs_merged": self.packs_merged,
        }


def _reachable(ws: "Workspace") -> dict[str, str]:
    try:
        return reachable(ws)
    except ManifestError as exc:
        raise ManifestError(f"cannot collect garbage: {exc}") from None


def _age(ws: "Workspace", oid: str, clock: float) -> float:
    if ws.memory:
        return float("inf")
    try:
        return clock - ws.objects.stored_mtime(oid)
    except FileNotFoundError:
        return -1.0


@contextlib.contextmanager
def _all_session_locks(ws: "Workspace"):
    storage = ws.storage
    with contextlib.ExitStack() as stack:
        stack.enter_context(storage.lock("sessions"))
        dirs = sorted(storage.listdir("sessions"))
        if not ws.memory:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = len(dirs) + 256
            if soft != resource.RLIM_INFINITY and soft < want:
                with contextlib.suppress(ValueError, OSError):
                    resource.setrlimit(
                        resource.RLIMIT_NOFILE,
                        (want if hard == resource.RLIM_INFINITY else min(want, hard), hard),
                    )
        for dir in dirs:
            stack.enter_context(storage.lock(f"s-{dir}"))
        yield


def gc(
    ws: "Workspace",
    dry_run: bool = False,
    grace: float = GRACE_SECONDS,
    advance: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
) -> GcReport:
    """Remove (or with ``dry_run`` list) objects nothing reaches and older than ``grace``
    seconds."""
    report = GcReport(dry_run=dry_run)
    if not dry_run:
        from .temps import remove_stray_temps

        report.temps = remove_stray_temps(ws)
    store = ws.objects
    refs = _reachable(ws)
    clock = time.time()
    candidates = []
    oids = list(store)
    if total:
        total(len(oids))
    for oid in oids:
        if advance:
            advance(1)
        if oid in refs:
            report.kept += 1
        elif _age(ws, oid, clock) < grace:
            report.spared += 1
        else:
            candidates.append(oid)
    if not candidates:
        if not dry_run:
            report.packs_merged = store.tidy()
        return report
    with contextlib.ExitStack() as stack:
        if not dry_run:
            stack.enter_context(_all_session_locks(ws))
            refs = _reachable(ws)
        doomed = []
        for oid in candidates:
            if oid in refs:
                report.kept += 1
                continue
            try:
                size = store.stored_size(oid)
            except (FileNotFoundError, KeyError):
                continue  # another gc got there first
            doomed.append(oid)
            report.removed.append({"oid": oid, "size": size})
            report.bytes += size
        if not dry_run:
            store.remove_many(doomed)  # (a pack is written again once, not once per object)
            report.packs_merged = store.tidy()
    if not dry_run:
        ws.publish("workspace.gc", {"removed": len(report.removed), "bytes": report.bytes})
    return report
