"""What the workspace reaches: the objects gc keeps and push sends.

An object is reached when an artifact record names it (every version, deletions
included), when a checkpoint does (its tree, the parent trees, manifest, state,
table pages and the artifacts in them), when a run record does (its script), when
an in-flight run's marker under ``.spell/runs/`` does, or when a root another area
registers in :data:`ROOTS` does. One walk serves ``spell gc`` and ``spell push``,
so what one keeps the other sends.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Iterable

from ..errors import IntegrityError, ManifestError, ObjectNotFound, SpellError
from ..store import load_json
from .runs import MARKERS, read_runs

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["ROOTS", "reachable", "session_dirs"]

#: Extra roots: functions ws -> iterable of object ids another area keeps (e.g. a model-call cache).
ROOTS: list[Callable[["Workspace"], Iterable[str]]] = []


def session_dirs(ws: "Workspace", sessions: Iterable[str] | None) -> list[str]:
    """The directories of the named sessions, or of every session."""
    if sessions:
        return list(dict.fromkeys(ws.sessions.resolve(s) for s in sessions))
    return sorted(d for d in ws.storage.listdir("sessions") if not d.startswith("."))


def _live_marker(ws: "Workspace", rel: str) -> str | None:
    """The script object of an in-flight run's marker; drops markers of dead processes."""
    try:
        marker = load_json(ws.storage.read(rel), rel, ValueError)
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


def reachable(
    ws: "Workspace",
    sessions: Iterable[str] | None = None,
    deep: bool = True,
    unreadable: dict[str, str] | None = None,
) -> dict[str, str]:
    """Objects the sessions (default: all, plus in-flight runs and :data:`ROOTS`) reach.

    Returns oid -> where it is referenced (first seen). ``deep=False`` stops at what
    the session files name (artifact records, checkpoint tree ids, run scripts)
    without reading any object; ``deep=True`` also walks each checkpoint tree,
    reading tree objects (a missing one is fetched by the store's fetcher if it has
    one). A tree that cannot be read anywhere raises, unless ``unreadable`` is given:
    then it is noted there (tree -> why) and the walk goes on. A record file that does
    not parse raises :class:`ManifestError` naming it.
    """
    refs: dict[str, str] = {}
    seen: set[str] = set()
    trees = ws.history.trees if deep else None
    for dir in session_dirs(ws, sessions):
        base = f"sessions/{dir}"
        log = ws.log(dir)
        try:
            log.refresh()
            checkpoints = ws.history.records(dir)
            runs = read_runs(ws, dir)
        except ManifestError as exc:  # RecordError too
            raise ManifestError(f"{exc} (fix it first; `spell fsck` names the line)") from None
        for rec in log.records:
            if rec.get("hash"):
                refs.setdefault(rec["hash"], f"{base}/artifacts.yaml#{rec['seq']}")
        for cp in checkpoints:
            where = f"{base}/checkpoints.yaml#{cp['number']}"
            if trees is None:
                refs.setdefault(cp["tree"], where)
                continue
            try:
                for oid in trees.refs(cp["tree"], seen):
                    refs.setdefault(oid, where)
            except (ObjectNotFound, IntegrityError) as exc:
                if unreadable is None:
                    raise
                unreadable.setdefault(cp["tree"], f"{base}/checkpoints.yaml: {exc}")
        for run in runs:
            where = f"{base}/runs.yaml#{run.get('run', '?')[:8]}"
            refs.setdefault(run["script_hash"], where)
            world = run.get("world")
            if isinstance(world, str) and world not in refs:  # the run's starting point (replay)
                refs[world] = where
                if deep:
                    for oid in _world_oids(ws, world):
                        refs.setdefault(oid, where)
    if not sessions and deep:
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


def _world_oids(ws: "Workspace", oid: str) -> list[str]:
    """The session.yaml/state.yaml copies a run's world object names; none when it is unreadable."""
    from .runs import world_oids

    try:
        return world_oids(load_json(ws.objects.get(oid), f"world {oid[:12]}"))
    except (SpellError, ValueError, AttributeError):
        return []
