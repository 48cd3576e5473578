"""The history of related sessions as one graph: checkpoints, forks and restores.

``spell log --graph`` draws it in the terminal (:mod:`spellfs.history.graphtext`) and
``spell ui`` as SVG. Everything comes from files a user can read:

* a session starts at its ``created_at``; its ``parent`` in session.yaml makes it a
  fork, branching from the parent's checkpoint whose artifacts it began with (the
  fork copies that checkpoint's records, so the first records of the child name the
  same contents), else from the parent's latest checkpoint before the fork;
* each line of ``checkpoints.yaml`` is a checkpoint node;
* a restore is the group of artifact records carrying the same ``restored_from``
  checkpoint and time (a restore that changed no artifact leaves no record, so it
  is not drawn).

Replays are not drawn: ``spell replay`` runs in a scratch world under
``.spell/replay/`` and leaves no record in the workspace (no session, no run, no
checkpoint), so there is nothing of it in the history. A fork whose runs repeat its
parent's is a fork like any other: a user re-ran the scripts, nothing replayed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import SpellError
from .checkpoint_log import ref_of

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = [
    "Graph",
    "GraphNode",
    "GraphSession",
    "children_of",
    "family",
    "history_graph",
    "lineage_table",
]

MAX_FORK_CANDIDATES = 32  # checkpoints compared when finding where a fork began


@dataclass
class GraphSession:
    id: str
    dir: str
    name: str
    status: str
    created_at: str
    parent: str | None = None
    fork_point: int | None = None  # the parent's checkpoint it began from; None: creation / now


@dataclass
class GraphNode:
    """One point in a session's history. ``key`` is unique in the graph."""

    key: str
    session: str  # session id
    kind: str  # "start", "checkpoint" or "restore"
    time: str
    number: int | None = None  # the checkpoint made (checkpoint) or returned to (restore)
    message: str = ""
    counts: dict = field(default_factory=dict)


@dataclass
class Graph:
    sessions: dict[str, GraphSession]  # by id, oldest first
    nodes: list[GraphNode]  # oldest first
    edges: list[tuple[str, str, str]]  # (from key, to key, kind: next, fork, restore)

    def as_dict(self) -> dict:
        """The graph as JSON-ready data (``spell log --graph --json``)."""
        return {
            "sessions": [vars(s) for s in self.sessions.values()],
            "nodes": [vars(n) for n in self.nodes],
            "edges": [{"from": a, "to": b, "kind": k} for a, b, k in self.edges],
        }


def _all_sessions(ws: "Workspace") -> list[dict]:
    return ws.sessions.list({"status": "all"})


def lineage_table(ws: "Workspace") -> dict[str, tuple[str, str | None, str]]:
    """``{session id: (dir, parent id, created_at)}`` for every readable session, from the
    query index (one stat of each session.yaml, manifests decoded from the index's cache):
    what finding a family needs, without building every session's listing entry."""
    index = ws.index
    rows = [r for r in index.refresh_all(records=False) if not r.error and r.status is not None]
    index.load_manifests(rows)
    out = {}
    for r in rows:
        m = r.manifest
        if m is not None:
            out[m["id"]] = (r.dir, m.get("parent"), str(m.get("created_at", "")))
    return out


def children_of(ws: "Workspace", session: Any) -> list[dict]:
    """The sessions whose ``parent`` is ``session``, as ``Session.get`` dicts, oldest first."""
    sid = ws.sessions.id(session)
    table = lineage_table(ws)
    kids = sorted((created, d) for d, parent, created in table.values() if parent == sid)
    return [ws.sessions.info(d) for _, d in kids]


def family(ws: "Workspace", refs: Iterable[Any] | None) -> list[dict]:
    """The sessions ``refs`` name with their whole families (the root ancestor of each and
    every descendant), as ``Session.get`` dicts, oldest first; ``None``: every session."""
    if refs is None:
        return _all_sessions(ws)
    table = lineage_table(ws)
    children: dict[str, list[str]] = {}
    for sid, (_, parent, _) in table.items():
        if parent:
            children.setdefault(parent, []).append(sid)
    chosen: set[str] = set()
    for ref in refs:
        sid = ws.sessions.id(ref)
        seen = {sid}
        while sid in table and table[sid][1] in table:
            sid = table[sid][1]  # type: ignore[assignment]
            if sid in seen:
                break
            seen.add(sid)
        todo = [sid]
        while todo:
            cur = todo.pop()
            if cur in chosen:
                continue
            chosen.add(cur)
            todo.extend(children.get(cur, ()))
    members = sorted((table[s][2], s) for s in chosen if s in table)
    return [ws.sessions.info(table[s][0]) for _, s in members]


def _fork_point(ws: "Workspace", parent_dir: str, child_dir: str, created_at: str) -> int | None:
    """The parent's checkpoint the child began from, or None (a child made with a parent, or a
    fork of an empty checkpoint or of the parent as it was, which this cannot tell apart).

    A fork copies the checkpoint's artifact records, keeping their times, so its first
    records are exactly that checkpoint's artifacts and are older than the fork itself."""
    checkpoints = [c for c in ws.history.checkpoints(parent_dir) if c["time"] <= created_at]
    if not checkpoints:
        return None
    log = ws.log(child_dir)
    log.refresh()
    inherited = [
        r
        for r in sorted(
            (r for r in log.records if isinstance(r.get("seq"), int)), key=lambda r: r["seq"]
        )
        if str(r.get("created_at", "")) <= created_at and r.get("op") != "delete"
    ]
    if not inherited:
        return None
    copied = {r["name"]: r.get("hash") for r in inherited}
    for c in reversed(checkpoints[-MAX_FORK_CANDIDATES:]):
        try:
            table = ws.history.snapshot(parent_dir, ref_of(c)).table
        except SpellError:
            continue
        if len(table) == len(copied) and all(
            table.get(n, {}).get("hash") == h for n, h in copied.items()
        ):
            return c["number"]
    return None


def _restores(ws: "Workspace", dir: str) -> list[tuple[str, int, int]]:
    """(time, checkpoint, artifact records) of each restore seen in the artifact log."""
    log = ws.log(dir)
    log.refresh()
    groups: dict[tuple[str, int], int] = {}
    for r in log.records:
        n = r.get("restored_from")
        if type(n) is int and isinstance(r.get("created_at"), str):
            groups[(r["created_at"], n)] = groups.get((r["created_at"], n), 0) + 1
    return [(t, n, k) for (t, n), k in sorted(groups.items())]


def history_graph(ws: "Workspace", refs: Iterable[Any] | None = None) -> Graph:
    """The graph of the sessions ``refs`` name and their families; ``None``: every session."""
    infos = family(ws, refs)
    sessions: dict[str, GraphSession] = {}
    for s in infos:
        dir = s["path"].split("/", 1)[1]
        sessions[s["id"]] = GraphSession(
            s["id"], dir, s["name"], s["status"], s["created_at"], s["parent_session_id"]
        )
    nodes: list[GraphNode] = []
    edges: list[tuple[str, str, str]] = []
    keyed: dict[tuple[str, int], str] = {}  # (session, checkpoint) -> node key
    for sid, g in sessions.items():
        mine = [GraphNode(f"{sid}:start", sid, "start", g.created_at)]
        for c in ws.history.checkpoints(g.dir):
            key = f"{sid}:c{c['number']}"
            keyed[(sid, c["number"])] = key
            mine.append(
                GraphNode(
                    key,
                    sid,
                    "checkpoint",
                    c["time"],
                    c["number"],
                    c.get("message") or "",
                    {k: c.get(k) for k in ("added", "changed", "removed", "artifacts")},
                )
            )
        for i, (time, number, count) in enumerate(_restores(ws, g.dir)):
            mine.append(
                GraphNode(f"{sid}:r{i + 1}", sid, "restore", time, number, "", {"records": count})
            )
        mine.sort(key=lambda n: (n.time, n.kind != "start"))
        for a, b in zip(mine, mine[1:]):
            edges.append((a.key, b.key, "next"))
        nodes.extend(mine)
    for sid, g in sessions.items():
        for n in nodes:
            if n.session == sid and n.kind == "restore" and (sid, n.number) in keyed:
                edges.append((n.key, keyed[(sid, n.number)], "restore"))
        parent = sessions.get(g.parent) if g.parent else None
        if parent is None:
            continue
        g.fork_point = _fork_point(ws, parent.dir, g.dir, g.created_at)
        src = (
            keyed.get((parent.id, g.fork_point))
            if g.fork_point is not None
            else f"{parent.id}:start"
        )
        edges.append((src or f"{parent.id}:start", f"{sid}:start", "fork"))
    nodes.sort(key=lambda n: (n.time, n.kind != "start"))
    return Graph(sessions, nodes, edges)
