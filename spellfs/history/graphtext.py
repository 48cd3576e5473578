"""``spell log --graph``: a :class:`~spellfs.history.graph.Graph` drawn as text, newest first.

Each session has a lane (a column) from its newest node down to where it began; a
fork's lane ends in a connector row joining its parent's lane, like ``git log
--graph``. Lanes are reused once a session's history is over, so a workspace of
many short sessions stays narrow. Glyphs (ASCII, then Unicode)::

    o ○  a session begins          * ●  a checkpoint
    < ↺  a restore (back to the checkpoint named)
    |-/  ├─╯  a fork joining its parent (``/`` when the fork's lane is to the right)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .graph import Graph, GraphNode

__all__ = ["Layout", "layout", "node_label", "render_graph"]

_GLYPHS = {
    True: {
        "start": "o",
        "checkpoint": "*",
        "restore": "<",
        "line": "|",
        "fill": "-",
        "cross": "+",
        "join_right": "/",
        "join_left": "\\",
        "tee_right": "|",
        "tee_left": "|",
    },
    False: {
        "start": "○",
        "checkpoint": "●",
        "restore": "↺",
        "line": "│",
        "fill": "─",
        "cross": "┼",
        "join_right": "╯",
        "join_left": "╰",
        "tee_right": "├",
        "tee_left": "┤",
    },
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _clean(text: str, limit: int = 72) -> str:
    """One line, no terminal control sequences, at most ``limit`` characters."""
    text = _CONTROL.sub(" ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def node_label(graph: Graph, node: GraphNode) -> str:
    s = graph.sessions[node.session]
    me = s.id[:8]
    if node.kind == "checkpoint":
        c = node.counts
        text = f"{me} checkpoint {node.number}"
        if node.message:
            text += f": {_clean(node.message)}"
        return text + f" (+{c.get('added', 0)} ~{c.get('changed', 0)} -{c.get('removed', 0)})"
    if node.kind == "restore":
        return f"{me} restored to checkpoint {node.number}"
    name = f'"{_clean(s.name, 48)}"'
    if s.parent is None or s.parent not in graph.sessions:
        return f"{me} created {name}" + (f" (fork of {s.parent[:8]})" if s.parent else "")
    at = f" at checkpoint {s.fork_point}" if s.fork_point is not None else ""
    verb = "forked from" if s.fork_point is not None else "child of"
    return f"{me} {verb} {s.parent[:8]}{at} {name}"


@dataclass
class Layout:
    """Where each part of a graph goes: ``rows`` newest first, each ``("node", GraphNode)`` or
    ``("join", child session id)``; a session's ``lane`` and the rows it spans (top, bottom)."""

    rows: list[tuple[str, Any]]
    lane: dict[str, int]
    span: dict[str, tuple[int, int]]
    width: int


def layout(graph: Graph) -> Layout:
    """Rows and lanes for drawing ``graph`` (the terminal here, SVG in ``spell ui``)."""
    order = {sid: i for i, sid in enumerate(graph.sessions)}
    nodes = sorted(
        graph.nodes, key=lambda n: (n.time, order[n.session], n.kind != "start"), reverse=True
    )
    # rows: ("node", node) or ("join", child session id); a fork's join row sits just below
    # its start
    rows: list[tuple[str, Any]] = []
    for n in nodes:
        rows.append(("node", n))
        s = graph.sessions[n.session]
        if n.kind == "start" and s.parent in graph.sessions:
            rows.append(("join", s.id))
    top: dict[str, int] = {}
    bottom: dict[str, int] = {}
    for i, (kind, item) in enumerate(rows):
        sid = item.session if kind == "node" else item
        top.setdefault(sid, i)
        bottom[sid] = i
        if kind == "join":
            parent = graph.sessions[sid].parent
            top[parent] = min(top.get(parent, i), i)
    # lanes: oldest session first, each in the lowest lane free for its whole span
    lane: dict[str, int] = {}
    lane_top: list[int] = []
    for sid in sorted(bottom, key=lambda s: (-bottom[s], order[s])):
        for i, t in enumerate(lane_top):
            if t > bottom[sid]:
                lane[sid], lane_top[i] = i, top[sid]
                break
        else:
            lane[sid] = len(lane_top)
            lane_top.append(top[sid])
    return Layout(rows, lane, {s: (top[s], bottom[s]) for s in lane}, len(lane_top))


def render_graph(graph: Graph, ascii: bool = True) -> list[str]:
    """The lines of the drawing, newest first, without trailing spaces."""
    g = _GLYPHS[ascii]
    lay = layout(graph)
    rows, lane, width = lay.rows, lay.lane, lay.width
    spans = [(lane[s], t, b) for s, (t, b) in lay.span.items()]
    lines = []
    for i, (kind, item) in enumerate(rows):
        cells = [" "] * width
        for ln, t, b in spans:
            if t <= i <= b:
                cells[ln] = g["line"]
        seps = [" "] * width
        if kind == "node":
            n: GraphNode = item  # type: ignore[assignment]
            cells[lane[n.session]] = g[n.kind]
            text = node_label(graph, n)
        else:
            child, parent = lane[item], lane[graph.sessions[item].parent]
            lo, hi = min(child, parent), max(child, parent)
            for k in range(lo + 1, hi):
                cells[k] = g["cross"] if cells[k] != " " else g["fill"]
            for k in range(lo, hi):
                seps[k] = g["fill"]
            right = child > parent
            cells[child] = g["join_right"] if right else g["join_left"]
            cells[parent] = g["tee_right"] if right else g["tee_left"]
            text = ""
        graph_part = "".join(c + sep for c, sep in zip(cells, seps))
        lines.append((graph_part + " " + text).rstrip())
    return lines
