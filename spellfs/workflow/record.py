"""A workflow run, recorded in a session as an artifact ``workflow-<name>.json``.

Each run of a top-level workflow stores a new version of that artifact (type
``system_generated``) holding what the run did: ``{workflow, type, success, error,
input, final_output, steps = [{name, type, target, input, output, status, error?,
iteration?}]}``, and in its metadata when and how long: ``{workflow, workflow_type,
workflow_id, success, started_at, duration_ms, timings = {step = {started_at,
duration_ms}}}``. Timing lives in the metadata so that a replay whose steps give the
same outputs stores the same content, and ``spell replay`` reports only real changes. Being an
artifact, it is listed by ``spell show``, versioned by checkpoints, compared by ``spell diff`` and
by ``spell replay`` (whose agent steps are answered from the session's call records),
and carried by git and remotes like any other, with no new record format.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["artifact_name", "record_run"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def artifact_name(workflow: str) -> str:
    return f"workflow-{_UNSAFE.sub('-', workflow).strip('-.')[:80] or 'unnamed'}.json"


def _plain(value: Any) -> Any:
    """JSON-able: bytes as text, other strange values by their text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def record_run(ws: "Workspace", session: str, result: dict, input: Any = None) -> dict:
    """Store ``result`` (from :func:`spellfs.workflow.execute`) in ``session``; its artifact id."""
    volatile = ("started_at", "duration_ms", "position")
    # In definition order (parallel steps finish in any order): the same run, the same record.
    records = sorted(result.get("step_records", []), key=lambda r: r.get("position", ()))
    steps = [
        _plain(
            {
                k: v
                for k, v in rec.items()
                if k not in volatile and (k != "workflow" or v != result["name"])
            }
        )
        for rec in records
    ]
    doc = {
        "workflow": result["name"],
        "type": result["type"],
        "success": result["success"],
        "error": result["error"],
        "input": _plain(input),
        "final_output": _plain(result["data"].get("final_output")),
        "steps": steps,
    }
    text = json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True, default=str) + "\n"
    meta = {
        "workflow": result["name"],
        "workflow_type": result["type"],
        "workflow_id": result["workflow_id"],
        "success": result["success"],
        "started_at": result["started_at"],
        "duration_ms": result["duration_ms"],
        "timings": {
            f"{i}:{r['name']}": {k: r.get(k) for k in volatile[:2]}
            for i, r in enumerate(records, 1)
        },
    }
    return ws.artifacts.store(
        session, "system_generated", artifact_name(result["name"]), text, meta
    )
