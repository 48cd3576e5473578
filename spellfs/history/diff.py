"""What changed between two snapshots of a session (``spell diff``, ``Session.diff``).

The result is plain data (the CLI prints it or dumps it as JSON)::

    {"session_id", "from": 2, "to": "now",
     "artifacts": {"added": [item], "removed": [item], "changed": [change]},
     "manifest": {field: {"from", "to"}},        # name, description, status, parent, template
     "status": {"from", "to"} | None,
     "tags": {"added": [...], "removed": [...]},
     "metadata": {"added": {}, "removed": {}, "changed": {key: {"from", "to"}}},
     "state": {"added": {}, "removed": {}, "changed": {key: {"from", "to"}}},
     "summary": {"added", "removed", "changed"},
     "unrecorded": {"modified": [hand], "added": [hand], "deleted": [hand]}}   # to "now" only

A ``hand`` entry is a change under ``files/`` no record holds yet (the working copy,
:mod:`spellfs.model.worktree`): ``{name, size, binary, diff}``, the diff from the
latest record to the file on disk.

An item is ``{name, hash, size, mime_type, version}``; a change adds ``from``/``to``
items, ``content_changed``, ``binary``, ``diff`` (a unified diff when both sides
are UTF-8 text of at most :data:`TEXT_DIFF_MAX` bytes, else None) and
``metadata`` (the record fields that differ).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from .tree import VOLATILE, Snapshot

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["TEXT_DIFF_MAX", "diff_snapshots", "diff_unrecorded"]

TEXT_DIFF_MAX = 1 << 20


def _item(rec: dict) -> dict:
    return {
        "name": rec["name"],
        "hash": rec.get("hash"),
        "size": rec.get("size", 0),
        "mime_type": rec.get("mime_type", ""),
        "version": rec.get("version"),
    }


def _text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _label(label: Any) -> str:
    return label if label in ("now", "creation") else f"checkpoint {label}"


def _mapping_diff(a: dict, b: dict) -> dict:
    return {
        "added": {k: b[k] for k in b if k not in a},
        "removed": {k: a[k] for k in a if k not in b},
        "changed": {k: {"from": a[k], "to": b[k]} for k in a if k in b and a[k] != b[k]},
    }


def _artifact_change(ws: "Workspace", a: dict, b: dict, labels: tuple[Any, Any]) -> dict | None:
    fields = sorted((set(a) | set(b)) - VOLATILE - {"name", "hash", "size", "compressed"})
    meta = {k: {"from": a.get(k), "to": b.get(k)} for k in fields if a.get(k) != b.get(k)}
    content_changed = a.get("hash") != b.get("hash")
    if not content_changed and not meta:
        return None
    change: dict[str, Any] = {
        "name": a["name"],
        "from": _item(a),
        "to": _item(b),
        "content_changed": content_changed,
        "binary": False,
        "diff": None,
        "metadata": meta,
    }
    if content_changed:
        old = new = None
        if a.get("size", 0) <= TEXT_DIFF_MAX and b.get("size", 0) <= TEXT_DIFF_MAX:
            old, new = _text(ws.objects.get(a["hash"])), _text(ws.objects.get(b["hash"]))
        if old is None or new is None:
            change["binary"] = True  # or too large to diff: sizes and hashes say what changed
        else:
            lines = difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"{a['name']} ({_label(labels[0])})",
                tofile=f"{b['name']} ({_label(labels[1])})",
            )
            change["diff"] = "".join(
                line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                for line in lines
            )
    return change


def diff_snapshots(ws: "Workspace", a: Snapshot, b: Snapshot) -> dict:
    ta, tb = a.table, b.table
    added = [_item(tb[n]) for n in sorted(tb) if n not in ta]
    removed = [_item(ta[n]) for n in sorted(ta) if n not in tb]
    changed = []
    for n in sorted(ta):
        if n in tb and ta[n] is not tb[n]:
            change = _artifact_change(ws, ta[n], tb[n], (a.label, b.label))
            if change is not None:
                changed.append(change)
    ma, mb = a.manifest, b.manifest
    manifest = {
        k: {"from": ma.get(k), "to": mb.get(k)}
        for k in ("name", "description", "status", "parent", "template")
        if ma.get(k) != mb.get(k)
    }
    tags_a, tags_b = list(ma.get("tags") or []), list(mb.get("tags") or [])
    return {
        "session_id": mb.get("id") or ma.get("id"),
        "from": a.label,
        "to": b.label,
        "artifacts": {"added": added, "removed": removed, "changed": changed},
        "manifest": manifest,
        "status": manifest.get("status"),
        "tags": {
            "added": [t for t in tags_b if t not in tags_a],
            "removed": [t for t in tags_a if t not in tags_b],
        },
        "metadata": _mapping_diff(ma.get("metadata") or {}, mb.get("metadata") or {}),
        "state": _mapping_diff(a.state, b.state),
        "summary": {"added": len(added), "removed": len(removed), "changed": len(changed)},
    }


def _unified(old: str, new: str, a: str, b: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=a, tofile=b
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def diff_unrecorded(ws: "Workspace", dir: str) -> dict:
    """Hand changes under ``files/`` not yet recorded, each with a unified diff when text."""
    wc = ws.worktree.scan(dir)
    log = ws.log(dir)
    log.refresh()
    base = ws.root / "sessions" / dir / "files" if ws.root is not None else None
    out: dict[str, list] = {"modified": [], "added": [], "deleted": []}
    for kind, names in (("modified", sorted(wc.modified)), ("added", sorted(wc.added))):
        for name in names:
            try:
                size = (base / name).stat().st_size
                data = (base / name).read_bytes() if size <= TEXT_DIFF_MAX else None
            except OSError:
                continue
            rec = log.latest(name) if kind == "modified" else None
            old_data = (
                ws.objects.get(rec["hash"]) if rec and rec.get("size", 0) <= TEXT_DIFF_MAX else b""
            )
            new, old = (_text(data) if data is not None else None), _text(old_data)
            entry = {"name": name, "size": size, "binary": new is None or old is None, "diff": None}
            if not entry["binary"]:
                entry["diff"] = _unified(
                    old,
                    new,
                    f"{name} (recorded)" if rec else "/dev/null",
                    f"{name} (on disk, not yet recorded)",
                )
            out[kind].append(entry)
    for name in wc.deleted:
        rec = log.latest(name) or {}
        out["deleted"].append(
            {"name": name, "size": rec.get("size", 0), "binary": False, "diff": None}
        )
    return out
