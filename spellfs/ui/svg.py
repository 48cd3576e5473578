"""The history graph as server-rendered SVG: no script, styled by classes in style.css.

It uses the terminal drawing's layout (:func:`spellfs.history.layout`): newest row
first, one lane per session. Each node links to its checkpoint (or, for a session's
start, to the session); a restore is a dashed arc back to the checkpoint it
returned to; forks join their parent's lane. Every
piece of text is escaped here, since the template includes the SVG as markup.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from ..history import Graph, layout, node_label

__all__ = ["graph_svg"]

ROW, LANE, PAD, R = 28, 22, 16, 6


def _url(sid: str, kind: str, number: int | None) -> str:
    base = f"/s/{quote(sid, safe='')}"
    return base if kind == "start" or number is None else f"{base}/checkpoint/{number}"


def graph_svg(graph: Graph, current: str | None = None) -> str:
    """An ``<svg>`` element drawing ``graph``; ``current`` (a session id) is shown in bold."""
    lay = layout(graph)
    x = lambda lane: PAD + lane * LANE  # noqa: E731
    y = lambda row: PAD + row * ROW  # noqa: E731
    text_x = x(lay.width) + 28
    where: dict[str, tuple[float, float]] = {}
    parts: list[str] = []
    nodes: list[str] = []
    for sid, (top, bottom) in lay.span.items():
        s = graph.sessions[sid]
        xs = x(lay.lane[sid])
        joins = s.parent in graph.sessions
        end = bottom - 1 if joins else bottom
        if end > top:
            parts.append(f'<line class="lane" x1="{xs}" y1="{y(top)}" x2="{xs}" y2="{y(end)}"/>')
        if joins:
            xp = x(lay.lane[s.parent])
            parts.append(
                f'<path class="edge fork" d="M{xs},{y(end)} C{xs},{y(bottom)} {xp},{y(end)} '
                f'{xp},{y(bottom)}"/>'
            )
    for row, (kind, item) in enumerate(lay.rows):
        if kind != "node":
            continue
        n = item
        s = graph.sessions[n.session]
        cx, cy = x(lay.lane[n.session]), y(row)
        where[n.key] = (cx, cy)
        cls = n.kind
        label = escape(node_label(graph, n))
        title = escape(f"{s.name} · {n.time[:19].replace('T', ' ')}")
        bold = " current" if n.session == current else ""
        nodes.append(
            f'<a href="{escape(_url(n.session, n.kind, n.number))}" class="node {cls}{bold}">'
            f'<title>{title}</title><circle cx="{cx}" cy="{cy}" r="{R}"/>'
            f'<text x="{text_x}" y="{cy + 4}">{label}</text></a>'
        )
    for a, b, kind in graph.edges:
        if kind == "restore" and a in where and b in where:
            (x1, y1), (x2, y2) = where[a], where[b]
            bend = x1 + 12 + min(60, abs(y2 - y1) / 3)
            parts.append(
                f'<path class="edge restore" marker-end="url(#arrow)" '
                f'd="M{x1 + R},{y1} C{bend},{y1} {bend},{y2} {x2 + R},{y2}"/>'
            )
    height = y(len(lay.rows)) + PAD
    width = text_x + 640
    marker = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse">'
        '<path class="arrowhead" d="M0,0 L10,5 L0,10 z"/>'
        "</marker></defs>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="history graph">{marker}'
        + "".join(parts)
        + "".join(nodes)
        + "</svg>"
    )
