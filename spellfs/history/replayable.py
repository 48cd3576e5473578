"""Which sessions can be replayed, and what a replay would run: read-only answers for
``spell replay --json``, ``Session.canReplay``, ``getReplayMetadata`` and ``listReplayable``.

A session can be replayed when it has recorded runs (``runs.yaml``) and the store still
holds every script they ran (a script is recorded by hash).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError
from .runs import read_runs

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["can_replay", "list_replayable", "replay_metadata"]


def _scripts(ws: "Workspace", runs: list[dict]) -> list[dict]:
    """The scripts ``runs`` ran, one entry each, with whether the store still holds it."""
    seen: dict[str, dict] = {}
    for r in runs:
        h = r["script_hash"]
        if h not in seen:
            try:
                available = ws.objects.has(h)
            except UsageError:
                available = False
            seen[h] = {"script": r.get("script"), "hash": h, "available": available}
    return list(seen.values())


def can_replay(ws: "Workspace", dir: str) -> bool:
    """Whether the session has recorded runs and every script they ran is still stored."""
    runs = read_runs(ws, dir)
    return bool(runs) and all(s["available"] for s in _scripts(ws, runs))


def replay_metadata(ws: "Workspace", dir: str) -> dict:
    """What a replay of the session would run (``Session.getReplayMetadata``)."""
    runs = read_runs(ws, dir)
    m = ws.sessions.manifest(dir)
    scripts = _scripts(ws, runs)
    first = runs[0].get("checkpoint") if runs else None
    return {
        "session_id": m["id"],
        "name": m["name"],
        "can_replay": bool(runs) and all(s["available"] for s in scripts),
        "run_count": len(runs),
        "checkpoints": len(ws.history.checkpoints(dir)),
        "from_checkpoint": first,
        "first_run_at": runs[0]["started_at"] if runs else None,
        "last_run_at": runs[-1]["started_at"] if runs else None,
        "with_starting_point": sum(1 for r in runs if r.get("world")),
        "scripts": scripts,
        "runs": runs,
    }


def list_replayable(ws: "Workspace") -> list[dict]:
    """The sessions a replay can run (``Session.listReplayable``)."""
    out = []
    for dir in sorted(ws.storage.listdir("sessions")):
        if not ws.storage.exists(f"sessions/{dir}/runs.yaml"):
            continue
        try:
            m = ws.sessions.manifest(dir)
            if not can_replay(ws, dir):
                continue
        except Exception:  # a broken session is fsck's business, not a listing's
            continue
        out.append(
            {
                "session_id": m["id"],
                "name": m["name"],
                "status": m["status"],
                "path": f"sessions/{dir}",
                "run_count": len(read_runs(ws, dir)),
            }
        )
    return out
