"""Comparing a recorded run with its replay: sessions, artifacts, State keys, model calls.

Both sides are world records (:mod:`spellfs.history.runs`): the original run's, read
from the workspace's store, and the replayed run's, read from the replay's world.
Sessions the run created are matched with the replay's by creation order.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from ..errors import SpellError

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["compare_calls_of", "compare_sessions", "compare_state"]

DIFF_MAX = 256 * 1024  # bytes of text shown as a diff; larger contents compare by hash only
DIFF_LINES = 200


def _outcome(items: list[dict]) -> dict[str, str | None]:
    """name -> final hash (None: deleted) of a run's artifact list."""
    out: dict[str, str | None] = {}
    for a in items:
        out[a["name"]] = None if a.get("op") == "delete" else a.get("hash")
    return out


def _text_diff(
    ws: "Workspace", world_ws: "Workspace", name: str, a: str | None, b: str | None
) -> str | None:
    try:
        old = ws.objects.get(a).decode("utf-8") if a else ""
        new = world_ws.objects.get(b).decode("utf-8") if b else ""
    except (SpellError, UnicodeDecodeError):
        return None
    if len(old) > DIFF_MAX or len(new) > DIFF_MAX:
        return None
    lines = list(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"original/{name}",
            f"replay/{name}",
        )
    )
    if len(lines) > DIFF_LINES:
        lines = lines[:DIFF_LINES] + [f"… ({len(lines) - DIFF_LINES} more lines)\n"]
    return "".join(x if x.endswith("\n") else x + "\n" for x in lines)


def _compare_artifacts(
    ws: "Workspace", world_ws: "Workspace", original: list[dict], produced: list[dict]
) -> list[dict]:
    o_map, p_map = _outcome(original), _outcome(produced)
    items = []
    for n in sorted(set(o_map) | set(p_map)):
        o, p = o_map.get(n, "absent"), p_map.get(n, "absent")
        verdict = (
            "same"
            if o == p
            else "missing"
            if p == "absent"
            else "extra"
            if o == "absent"
            else "differs"
        )
        item = {
            "name": n,
            "original": None if o == "absent" else o,
            "replay": None if p == "absent" else p,
            "result": verdict,
            "same": verdict == "same",
        }
        if verdict == "differs":
            d = _text_diff(ws, world_ws, n, item["original"], item["replay"])
            if d:
                item["diff"] = d
        items.append(item)
    return items


def _session_report(
    ws, world_ws, dir: str | None, o: dict | None, p: dict | None, p_dir: str | None, created: bool
) -> dict:
    ref = o or p or {}
    items = _compare_artifacts(
        ws, world_ws, (o or {}).get("artifacts") or [], (p or {}).get("artifacts") or []
    )
    state = compare_state(
        {"state_written": (o or {}).get("state_written")},
        {"state_written": (p or {}).get("state_written")},
    )
    o_del, p_del = bool((o or {}).get("deleted")), bool((p or {}).get("deleted"))
    if o is None:
        result = "extra"
    elif p is None and created:
        result = "missing"
    elif o_del != p_del:
        result = "deleted" if p_del else "not deleted"
    else:
        result = "same" if all(i["same"] for i in items) else "differs"
    return {
        "session_id": ref.get("id"),
        "name": ref.get("name"),
        "path": f"sessions/{dir or p_dir}",
        "replay_session_id": (p or {}).get("id"),
        "replay_path": f"sessions/{p_dir}" if p_dir else None,
        "created": created,
        "deleted": o_del,
        "result": result,
        "same": result == "same" and all(i["same"] for i in items + state),
        "artifacts": items,
        "state": state,
    }


def compare_sessions(
    ws, world_ws, target: str, run: dict, orig: dict | None, rep: dict | None
) -> list[dict]:
    """Every session the run touched or created, beside the replay's counterpart."""
    rep_sessions = (rep or {}).get("sessions") or {}
    if orig is None:  # a legacy run: what it produced in the target session
        o = {"id": ws.sessions.manifest(target)["id"], "artifacts": run.get("artifacts") or []}
        p = rep_sessions.get(target)
        return [_session_report(ws, world_ws, target, o, p, target if p else None, False)]
    o_sessions = orig.get("sessions") or {}
    out = []
    created_o, created_p = list(orig.get("created") or []), list((rep or {}).get("created") or [])
    matched = set()
    for dir, o in o_sessions.items():
        if dir in created_o:
            continue
        written = bool(o.get("artifacts") or o.get("state_written")) or o.get("deleted")
        p = rep_sessions.get(dir)
        changed = p and (p.get("artifacts") or p.get("deleted") or p.get("state_written"))
        if not (written or dir == target) and not changed:
            continue  # only read, then and now: nothing to compare
        matched.add(dir)
        out.append(_session_report(ws, world_ws, dir, o, p, dir if p else None, False))
    for i, dir in enumerate(created_o):
        p_dir = created_p[i] if i < len(created_p) else None
        p = rep_sessions.get(p_dir) if p_dir else None
        if p_dir:
            matched.add(p_dir)
        out.append(_session_report(ws, world_ws, dir, o_sessions.get(dir) or {}, p, p_dir, True))
    for p_dir in created_p[len(created_o) :]:
        matched.add(p_dir)
        out.append(_session_report(ws, world_ws, None, None, rep_sessions.get(p_dir), p_dir, True))
    for p_dir, p in rep_sessions.items():
        if p_dir not in matched and (p.get("artifacts") or p.get("deleted")):
            out.append(_session_report(ws, world_ws, None, None, p, p_dir, False))
    return out


def compare_state(orig: dict | None, rep: dict | None) -> list[dict]:
    o = (orig or {}).get("state_written") or {}
    p = (rep or {}).get("state_written") or {}
    out = []
    for k in sorted(set(o) | set(p)):
        if k not in p:
            result = "missing"
        elif k not in o:
            result = "extra"
        else:
            result = "same" if o[k] == p[k] else "differs"
        out.append(
            {
                "key": k,
                "original": o.get(k),
                "replay": p.get(k),
                "result": result,
                "same": result == "same",
            }
        )
    return out


def compare_calls_of(
    ws: "Workspace",
    world_ws: "Workspace",
    target: str,
    run: dict,
    orig: dict | None,
    rep: dict | None,
) -> tuple[list[dict], list[dict]]:
    """(the original run's call records, the replayed run's), each in order."""
    from ..agent import read_calls

    def gather(w: "Workspace", dirs: list[str], run_id: Any) -> list[dict]:
        found = []
        for d in dirs:
            if run_id is not None and w.storage.exists(f"sessions/{d}/calls.yaml"):
                found.extend(c for c in read_calls(w, d) if c.get("run") == run_id)
        return sorted(found, key=lambda c: c.get("created_at") or "")

    o_dirs = list(((orig or {}).get("sessions") or {}).keys()) or [target]
    original = gather(ws, o_dirs, run.get("run"))
    produced = gather(
        world_ws, list(((rep or {}).get("sessions") or {}).keys()), (rep or {}).get("run")
    )
    return original, produced
