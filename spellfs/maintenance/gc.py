"""``spell gc``: remove objects nothing reaches.

Reachable (:func:`reachable`) is every object named by an artifact record of any
session (every version, deletions included), by a checkpoint (its tree, the
parent trees, manifest, state, table pages and the artifacts in them), by a run
record (its script), by an in-flight run's marker under ``.spell/runs/``, or by
a root another area registers in :data:`ROOTS`.

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
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from .errors import ManifestError
from .records import RecordError

if TYPE_CHECKING:
    from .workspace import Workspace

__all__ = ["GRACE_SECONDS", "ROOTS", "GcReport", "gc", "reachable"]

GRACE_SECONDS = 15 * 60
#: Extra roots: functions ws -> iterable of object ids another area keeps (e.g. a model-call cache).
ROOTS: list[Callable[["Workspace"], Iterable[str]]] = []


@dataclass
class GcReport:
    dry_run: bool
    removed: list[dict] = field(default_factory=list)  # {oid, size}
    bytes: int = 0
    kept: int = 0
    spared: int = 0  # unreached but younger than the grace period

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "removed": self.removed, "bytes": self.bytes, "count": len(self.removed),
                "kept": self.kept, "spared": self.spared}


def _live_marker(ws: "Workspace", rel: str) -> str | None:
    """The script object of an in-flight run's marker; drops markers of dead processes."""
    try:
        marker = json.loads(ws.storage.read(rel))
        pid = int(marker["pid"])
        oid = marker["script_hash"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not ws.memory and pid != os.getpid():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            ws.storage.remove(rel)
            return None
        except PermissionError:
            pass
    return oid


def reachable(ws: "Workspace") -> dict[str, str]:
    """Every object something in the workspace reaches: oid -> where (first seen)."""
    from .runs import MARKERS, read_runs

    refs: dict[str, str] = {}
    trees = ws.history.trees
    seen: set[str] = set()
    for dir in sorted(ws.storage.listdir("sessions")):
        base = f"sessions/{dir}"
        log = ws.log(dir)
        try:
            log.refresh()
        except ManifestError:
            raise ManifestError(f"cannot collect garbage: {base}/artifacts.yaml does not parse "
                                "(fix it first; `spell fsck` names the line)") from None
        for rec in log.records:
            if rec.get("hash"):
                refs.setdefault(rec["hash"], f"{base}/artifacts.yaml#{rec['seq']}")
        try:
            checkpoints = ws.history._records(dir)
            runs = read_runs(ws, dir)
        except RecordError as exc:
            raise ManifestError(f"cannot collect garbage: {exc}") from None
        for cp in checkpoints:
            for oid in trees.refs(cp["tree"], seen):
                refs.setdefault(oid, f"{base}/checkpoints.yaml#{cp['number']}")
        for run in runs:
            refs.setdefault(run["script_hash"], f"{base}/runs.yaml#{run.get('run', '?')[:8]}")
    for name in ws.storage.listdir(MARKERS):
        oid = _live_marker(ws, f"{MARKERS}/{name}")
        if oid:
            refs.setdefault(oid, f"{MARKERS}/{name}")
    if ws.run is not None:
        refs.setdefault(ws.run.script_hash, "the running script")
    for root in ROOTS:
        for oid in root(ws):
            refs.setdefault(oid, getattr(root, "__name__", "a registered root"))
    return refs


def _age(ws: "Workspace", oid: str, clock: float) -> float:
    if ws.memory:
        return float("inf")
    try:
        return clock - os.stat(ws.objects.path(oid)).st_mtime
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
                    resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
        for dir in dirs:
            stack.enter_context(storage.lock(f"s-{dir}"))
        yield


def gc(ws: "Workspace", dry_run: bool = False, grace: float = GRACE_SECONDS,
       advance: Callable[[int], None] | None = None, total: Callable[[int], None] | None = None) -> GcReport:
    """Remove (or with ``dry_run`` list) objects nothing reaches and older than ``grace`` seconds."""
    report = GcReport(dry_run=dry_run)
    store = ws.objects
    refs = reachable(ws)
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
        return report
    with contextlib.ExitStack() as stack:
        if not dry_run:
            stack.enter_context(_all_session_locks(ws))
            refs = reachable(ws)
        for oid in candidates:
            if oid in refs:
                report.kept += 1
                continue
            try:
                size = store.stored_size(oid)
            except (FileNotFoundError, KeyError):
                continue  # another gc got there first
            if not dry_run:
                store.remove(oid)
            report.removed.append({"oid": oid, "size": size})
            report.bytes += size
    if not dry_run:
        ws.publish("workspace.gc", {"removed": len(report.removed), "bytes": report.bytes})
    return report
