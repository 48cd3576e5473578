"""The runs page of ``spell ui``: recorded runs, model calls with their usage, replay reports."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..agent import read_calls, summarize
from ..errors import SpellError
from ..store import load_json
from ..history import children_of, read_runs, replay_report

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
    """Runs (script, arguments, exit status, artifacts), model calls with usage, replay reports."""
    dir = ws.sessions.resolve(ref)
    info = ws.sessions.info(dir)
    runs = []
    for r in reversed(read_runs(ws, dir)):
        try:
            script = ws.objects.get(r["script_hash"]).decode("utf-8", "replace")
        except SpellError:
            script = None
        runs.append({**r, "script_text": script})
    calls = []
    for c in reversed(read_calls(ws, dir)):
        calls.append(
            {
                **c,
                "messages": _messages(ws, c.get("request")),
                "answer": _answer(ws, c.get("response")),
            }
        )
    reports = []
    parent = info["parent_session_id"]
    if parent:
        try:
            rep = replay_report(ws, parent, dir)
        except SpellError:
            rep = None
        if rep:
            reports.append({"title": f"this session replays {parent[:8]}", **rep})
    for child in children_of(ws, info["id"]):
        rep = replay_report(ws, dir, child["id"])
        if rep:
            reports.append({"title": f"{child['id'][:8]} replays this session", **rep})
    return {
        "session": info,
        "dir": dir,
        "runs": runs,
        "calls": calls,
        "usage": summarize(read_calls(ws, dir)),
        "reports": reports,
    }
