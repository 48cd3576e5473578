"""Which sessions' records may answer a replayed call: a session and its ancestors.

A fork (``spell fork``, ``spell replay``) names its ``parent`` in session.yaml; the
calls recorded before the fork live in the parent, so a replay looks there, nearest
first. This is separate from the call records (:mod:`.calls`) because it reads only
session manifests, never a ``calls.yaml``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import SpellError

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["MAX_LINEAGE", "lineage", "replay_sources"]

MAX_LINEAGE = 64


def lineage(ws: "Workspace", dir: str) -> list[str]:
    """``dir`` and its ancestors (``parent`` in session.yaml), nearest first; stops at a missing
    one."""
    out = [dir]
    while len(out) < MAX_LINEAGE:
        try:
            parent = ws.sessions.manifest(out[-1]).get("parent")
            if not parent:
                break
            nxt = ws.sessions.resolve(parent)
        except SpellError:
            break
        if nxt in out:
            break
        out.append(nxt)
    return out


def replay_sources(ws: "Workspace", target: str, environ: Any = os.environ) -> list[str]:
    """Sessions whose records answer a replayed call: the replay fork's ancestors, then the
    target's."""
    dirs: list[str] = []
    fork = (environ.get("SPELL_SESSION") or "").strip()
    if fork:
        try:
            fork_dir = ws.sessions.resolve(fork)
            dirs.extend(lineage(ws, fork_dir)[1:])
        except SpellError:
            pass
    for d in lineage(ws, target)[1:] + [target]:
        if d not in dirs:
            dirs.append(d)
    return dirs
