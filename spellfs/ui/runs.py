"""The runs page of ``spell ui``: recorded runs, model calls with their usage, how to replay.

A replay report is not shown: ``spell replay`` runs the scripts again in a scratch
world and leaves no record in the workspace, and this view, being read-only, runs
nothing. For each run the page says whether it can be replayed (its script is still in
the store) and gives the command that replays it and prints the report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..agent import read_calls, summarize
from ..errors import SpellError
from ..history import read_runs
from ..store import load_json

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["runs_page"]


def _messages(ws: "Workspace", oid: Any) -> list[dict]:
    try:
        doc = load_json(ws.objects.get(oid), f"object {oid}")
    except (SpellError, ValueError, TypeError):
        return []
    msgs = doc.get("messages") if isinstance(doc, dict) else None
    out = []
    for m in msgs if isinstance(msgs, list) else []:
        if isinstance(m, dict):
            content = m.get("content")
            out.append(
                {
                    "role": str(m.get("role", "")),
                    "content": content
                    if isinstance(content, str)
                    else json.dumps(content, ensure_ascii=False),
                }
            )
    if isinstance(doc, dict) and isinstance(doc.get("system"), str):
        out.insert(0, {"role": "system", "content": doc["system"]})
    return out


def _answer(ws: "Workspace", oid: Any) -> str:
    try:
        doc = load_json(ws.objects.get(oid), f"object {oid}")
    except (SpellError, ValueError, TypeError):
        return ""
    return str(doc.get("text", "")) if isinstance(doc, dict) else ""


def runs_page(ws: "Workspace", ref: str) -> dict:
    """Runs (script, arguments, exit status, artifacts, how to replay), model calls with usage."""
    dir = ws.sessions.resolve(ref)
    info = ws.sessions.info(dir)
    runs = []
    for r in reversed(read_runs(ws, dir)):
        try:
            script = ws.objects.get(r["script_hash"]).decode("utf-8", "replace")
        except SpellError:
            script = None
        replay = f"spell replay {info['id'][:8]} --run {str(r.get('run', ''))[:8]}"
        runs.append({**r, "script_text": script, "replay": replay if script is not None else None})
    calls = []
    for c in reversed(read_calls(ws, dir)):
        calls.append(
            {
                **c,
                "messages": _messages(ws, c.get("request")),
                "answer": _answer(ws, c.get("response")),
            }
        )
    return {
        "session": info,
        "dir": dir,
        "runs": runs,
        "calls": calls,
        "usage": summarize(read_calls(ws, dir)),
    }
