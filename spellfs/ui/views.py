"""What each page of ``spell ui`` shows, as plain data read from the workspace on disk now.

These functions know nothing of HTTP or HTML (:mod:`spellfs.ui.app` does): each
takes a workspace and the page's parameters and returns a dict for a template, or
raises a :class:`~spellfs.errors.SpellError` the app turns into an error page.
Every read goes through the library (``ws.sessions``, ``ws.artifacts``,
``ws.history``, run and call records), which re-reads what changed on disk, so a
reload shows a hand edit.
"""

from __future__ import annotations

import heapq
import json
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Mapping

from ..agent import read_calls, summarize
from ..errors import NotFound, UsageError
from ..history import children_of, history_graph, read_runs, ref_of
from ..model import STATUSES, valid_name
from ..names import check_tags, parse_time
from .preview import preview, side_by_side

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = [
    "PAGE_SIZE",
    "artifact_bytes",
    "artifact_page",
    "checkpoint_page",
    "diff_page",
    "history_page",
    "session_page",
    "sessions_page",
]

PAGE_SIZE = 50
EDIT_CHECK_MAX = 64 * 1024  # files compared byte for byte on a session page


def number_param(value: Any, what: str, default: int, low: int = 1) -> int:
    if value in (None, ""):
        return default
    try:
        n = int(str(value))
    except ValueError:
        raise UsageError(f"invalid {what}: {str(value)[:40]!r} (a whole number)") from None
    if n < low:
        raise UsageError(f"invalid {what}: {n} (at least {low})")
    return n


def _day(value: str, end: bool = False) -> str:
    """A date filter as an RFC 3339 time; a bare date ``before`` means before the day's end."""
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return value  # a full time: Sessions.list checks it and names the problem
    return (d + timedelta(days=1 if end else 0)).isoformat() + "T00:00:00Z"


def _created(row: Any, cache: dict | None = None) -> str:
    """A row's ``created_at`` without decoding its manifest (a string search in its JSON text,
    remembered in ``cache`` while the manifest's signature holds): sorting ten thousand
    sessions must not parse ten thousand documents on every page."""
    if cache is not None:
        hit = cache.get(row.dir)
        if hit is not None and hit[0] == row.msig:
            return hit[1]
        value = _created(row)
        cache[row.dir] = (row.msig, value)
        return value
    text = row.json_text or ""
    at = text.find(_CREATED)
    if at >= 0:
        return text[at + len(_CREATED) : text.find('"', at + len(_CREATED))]
    m = row.manifest
    return str(m.get("created_at", "")) if m else ""


_CREATED = '"created_at": "'


def sessions_page(ws: "Workspace", params: Mapping[str, str], cache: dict | None = None) -> dict:
    """The sessions matching the filters, newest first, one page of them, and counts.

    Reads what the index (:class:`~spellfs.model.Index`) keeps current: one stat of each
    session.yaml tells whether its cached manifest still holds, so statuses, tags and
    names are as on disk now; artifact counts are refreshed for the shown page only.
    ``cache`` (kept by the caller between pages) remembers sort keys per manifest signature.
    """
    q = (params.get("q") or "").strip()
    status = (params.get("status") or "all").strip()
    tags = check_tags([t.strip() for t in (params.get("tags") or "").split(",") if t.strip()])
    parent = (params.get("parent") or "").strip()
    after, before = (params.get("after") or "").strip(), (params.get("before") or "").strip()
    page = number_param(params.get("page"), "page", 1)
    if status not in ("all", *STATUSES):
        raise UsageError(f"invalid status: {status[:40]!r} (one of all, {', '.join(STATUSES)})")
    parent_id = ws.sessions.id(parent) if parent else None
    low = parse_time(_day(after), "created after") if after else None
    high = parse_time(_day(before, end=True), "created before") if before else None
    index = ws.index
    rows = index.refresh_all(records=False)
    broken = [r.error or r.dir for r in rows if r.error or r.status is None]
    rows = [r for r in rows if not (r.error or r.status is None)]
    total = len(rows)
    if tags:
        needles = [json.dumps(t) for t in tags]
        rows = [r for r in rows if r.has_tags(tags, needles)]
    index.load_manifests(rows)
    if parent_id or low is not None or high is not None or q:
        needle = q.casefold()
        keep = []
        for r in rows:
            m = r.manifest
            if m is None or (parent_id and m.get("parent") != parent_id):
                continue
            if low is not None or high is not None:
                created = parse_time(m["created_at"], "created_at")
                if (low is not None and created <= low) or (high is not None and created >= high):
                    continue
            if needle and not (
                needle in m["name"].casefold()
                or needle in m["description"].casefold()
                or m["id"].startswith(needle)
                or any(needle == t.casefold() for t in m["tags"])
            ):
                continue
            keep.append(r)
        rows = keep
    counts = {s: 0 for s in STATUSES}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    if status != "all":
        rows = [r for r in rows if r.status == status]
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(page, pages)
    # newest first; only the pages up to this one need ordering
    newest = heapq.nlargest(page * PAGE_SIZE, rows, key=lambda r: (_created(r, cache), r.id or ""))
    shown = []
    for r in newest[(page - 1) * PAGE_SIZE :]:
        fresh = (
            index.refresh_dir(r.dir, manifest=False) or r
        )  # this page's artifact counts, as on disk
        if fresh.manifest is not None:
            shown.append(
                ws.sessions.info(r.dir, fresh.manifest, fresh.artifact_count, fresh.last_at)
            )
    index.commit()
    filters = {
        "q": q,
        "status": status,
        "tags": ",".join(tags),
        "parent": parent,
        "after": after,
        "before": before,
    }
    return {
        "sessions": shown,
        "matching": len(rows),
        "total": total,
        "counts": counts,
        "page": page,
        "pages": pages,
        "filters": filters,
        "statuses": STATUSES,
        "broken": broken,
    }


def _dir(ws: "Workspace", ref: str) -> str:
    return ws.sessions.resolve(ref)


def session_page(ws: "Workspace", ref: str) -> dict:
    """A session: its manifest (as parsed and as the file reads), artifacts, State, usage."""
    dir = _dir(ws, ref)
    info = ws.sessions.info(dir)
    raw = ws.storage.read(f"sessions/{dir}/session.yaml").decode("utf-8", "replace")
    log = ws.log(dir)
    log.refresh()
    artifacts = []
    for item in ws.artifacts.list(dir):
        name = item["name"]
        versions = [r for r in log.versions.get(name, []) if r.get("op") != "delete"]
        artifacts.append(
            {**item, "versions": len(versions), "edited": _edited(ws, dir, name, item)}
        )
    deleted = sorted(n for n in log.versions if not log.is_live(n))
    state = ws.state.session_values(dir)
    children = children_of(ws, info["id"])
    return {
        "session": info,
        "dir": dir,
        "manifest_text": raw,
        "artifacts": artifacts,
        "deleted": deleted,
        "state": json.dumps(state, indent=2, ensure_ascii=False, sort_keys=True, default=str),
        "state_count": len(state),
        "children": children,
        "checkpoints": ws.history.checkpoints(dir),
        "runs": len(read_runs(ws, dir)),
        "usage": summarize(read_calls(ws, dir)),
    }


def _edited(ws: "Workspace", dir: str, name: str, item: dict) -> bool:
    """Whether files/<name> on disk no longer holds the recorded latest version (a hand edit).
    Sizes tell most edits apart; small files are compared byte for byte."""
    rel = f"sessions/{dir}/files/{name}"
    sig = ws.storage.signature(rel)
    if sig is None:
        return False
    if sig[1] != item.get("size"):
        return True
    if sig[1] <= EDIT_CHECK_MAX:
        return ws.storage.read(rel) != ws.objects.get(item["content_hash"])
    return False


def _record(ws: "Workspace", dir: str, name: str, version: int | None) -> tuple[dict, list[dict]]:
    if not valid_name(name):
        raise NotFound(f"artifact not found: {name[:80]!r}")
    log = ws.log(dir)
    log.refresh()
    versions = [r for r in log.versions.get(name, []) if r.get("op") != "delete"]
    if not versions:
        raise NotFound(f"artifact not found: {name[:80]!r} in session {dir}")
    if version is None:
        return versions[-1], versions
    for r in versions:
        if r.get("version") == version:
            return r, versions
    raise NotFound(
        f"artifact not found: {name[:80]!r} version {version} (it has versions 1–{len(versions)})"
    )


def artifact_page(ws: "Workspace", ref: str, name: str) -> dict:
    """Every version of one artifact, newest first, each with its preview."""
    dir = _dir(ws, ref)
    latest, versions = _record(ws, dir, name, None)
    shown = []
    for rec in reversed(versions):
        data = ws.objects.get(rec["hash"])
        shown.append(
            {"record": rec, "preview": preview(data, rec.get("mime_type"), name), "size": len(data)}
        )
    disk = None
    rel = f"sessions/{dir}/files/{name}"
    if ws.storage.signature(rel) is not None:
        data = ws.storage.read(rel)
        if data != ws.objects.get(latest["hash"]):
            disk = {"preview": preview(data, latest.get("mime_type"), name), "size": len(data)}
    return {
        "session": ws.sessions.info(dir),
        "dir": dir,
        "name": name,
        "versions": shown,
        "live": ws.log(dir).is_live(name),
        "disk": disk,
    }


def artifact_bytes(ws: "Workspace", ref: str, name: str, version: int | None) -> tuple[bytes, dict]:
    """The bytes of one version (default: the latest) and its record."""
    dir = _dir(ws, ref)
    rec, _ = _record(ws, dir, name, version)
    return ws.objects.get(rec["hash"]), rec


def history_page(ws: "Workspace", ref: str) -> dict:
    """The graph of the session's family (its root ancestor and every descendant)."""
    from .svg import graph_svg

    dir = _dir(ws, ref)
    info = ws.sessions.info(dir)
    graph = history_graph(ws, [info["id"]])
    return {
        "session": info,
        "dir": dir,
        "graph": graph,
        "svg": graph_svg(graph, info["id"]),
        "checkpoints": ws.history.checkpoints(dir),
    }


def checkpoint_page(ws: "Workspace", ref: str, number: str) -> dict:
    dir = _dir(ws, ref)
    records = ws.history.checkpoints(dir)
    snap = ws.history.snapshot(dir, number)
    rec = next(r for r in records if r["number"] == snap.label)
    table = sorted(snap.table.values(), key=lambda r: r["name"])
    return {
        "session": ws.sessions.info(dir),
        "dir": dir,
        "checkpoint": rec,
        "artifacts": table,
        "state": json.dumps(snap.state, indent=2, ensure_ascii=False, sort_keys=True, default=str),
        "manifest": snap.manifest,
        "numbers": [r["number"] for r in records],
    }


def diff_page(ws: "Workspace", ref: str, from_: str | None, to: str | None) -> dict:
    """What changed from checkpoint ``from_`` to ``to`` (a checkpoint or ``now``), text side
    by side."""
    dir = _dir(ws, ref)
    records = ws.history.checkpoints(dir)
    if not records:
        raise NotFound(f"no checkpoints in session {dir} (make one with `spell save`)")
    if not from_:
        from_ = ref_of(records[-1])
    to = to or "now"
    d = ws.history.diff(dir, from_, to)
    for change in d["artifacts"]["changed"]:
        change["rows"] = None
        if change["content_changed"] and change["diff"] is not None:
            old = ws.objects.get(change["from"]["hash"]).decode("utf-8")
            new = ws.objects.get(change["to"]["hash"]).decode("utf-8")
            change["rows"] = side_by_side(old, new)
    return {
        "session": ws.sessions.info(dir),
        "dir": dir,
        "diff": d,
        "from": str(d["from"]),
        "to": str(d["to"]),
        "numbers": [r["number"] for r in records],
    }
