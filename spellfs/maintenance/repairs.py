"""``spell fsck --repair``: restore what can be restored, list what cannot.

- a corrupt or missing object is rebuilt from any ``files/`` copy whose content
  hashes to its id (or fetched from the default remote, when one is configured);
- a record file with an unfinished last line or garbled lines is rewritten
  without them, atomically; the removed bytes are kept under ``.spell/repair/``;
- stray temporary files from killed writes are removed.
Nothing acknowledged is ever dropped: a garbled line was never a readable record.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from .checks import Problem, Report
from ..store import hash_bytes

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["repair"]


def _copies(ws: "Workspace") -> dict[str, str]:
    """oid -> a files/ copy holding that content."""
    found: dict[str, str] = {}
    for dir in ws.storage.listdir("sessions"):
        for name in ws.storage.listdir(f"sessions/{dir}/files"):
            rel = f"sessions/{dir}/files/{name}"
            try:
                found.setdefault(hash_bytes(ws.storage.read(rel)), rel)
            except (IsADirectoryError, FileNotFoundError, PermissionError):
                continue
    return found


def _aside(rel: str) -> str:
    """Where ``rel``'s unreadable bytes are kept: ``.spell/repair/<path>.<time>.removed``."""
    return f".spell/repair/{rel.replace('/', '__')}.{time.strftime('%Y%m%dT%H%M%S')}.removed"


def _quarantine(ws: "Workspace", rel: str, data: bytes) -> str:
    dest = _aside(rel)
    ws.storage.write(dest, data)  # (never through a link: the storage refuses one)
    return dest


def _rewrite_record_file(ws: "Workspace", rel: str) -> str | None:
    """Set aside the unreadable lines of ``rel`` under the lock its appenders hold.

    The lines are found again under the lock: between the check and now, writers
    appended and another repair may have rewritten the file, so line numbers from
    the report would name the wrong lines.
    """
    from .checks import check_record_file

    dir = rel.split("/")[1]
    with ws.storage.lock(f"s-{dir}"):
        fresh = Report()
        check_record_file(ws, rel, fresh)
        numbers = {
            p.line for p in fresh.problems if p.kind in ("bad-record", "partial-record") and p.line
        }
        if not numbers:
            return None
        data = ws.storage.read(rel)
        lines = data.split(b"\n")
        tail = lines.pop()
        keep, removed = [], []
        for i, raw in enumerate(lines, 1):
            (removed if i in numbers else keep).append(raw)
        if tail:
            removed.append(tail)
        dest = _quarantine(ws, rel, b"\n".join(removed) + b"\n")
        ws.storage.write(rel, b"".join(line + b"\n" for line in keep), fsync=True)
    return f"{rel}: set aside {len(removed)} unreadable line(s) in {dest}"


def repair(ws: "Workspace", report: Report) -> tuple[list[str], list[Problem]]:
    """Act on ``report``; return (what was repaired, problems left)."""
    fixed: list[str] = []
    left: list[Problem] = []
    copies: dict[str, str] | None = None
    bad_lines: dict[str, set[int]] = {}
    packs: list[str] = []
    for p in report.problems:
        if p.kind in ("corrupt-object", "missing-object") and p.oid:
            if copies is None:
                copies = _copies(ws)
            if p.oid in copies:
                content = ws.storage.read(copies[p.oid])
                if p.kind == "corrupt-object":
                    ws.objects.remove(p.oid)  # (a journal another process writes keeps it:
                    ws.objects.put_loose(content)  # the loose copy, read first, mends it)
                else:
                    ws.objects.put_bytes(content)
                fixed.append(f"object {p.oid} rebuilt from {copies[p.oid]}")
            elif (
                ws.objects.fetcher is not None
                and p.kind == "missing-object"
                and ws.objects.fetcher(p.oid)
            ):
                fixed.append(f"object {p.oid} fetched from the remote")
            else:
                left.append(p)
        elif p.kind in ("bad-record", "partial-record") and p.line:
            bad_lines.setdefault(p.where, set()).add(p.line)
        elif p.kind == "stray-temp":
            pass  # removed below, all at once, if still older than the grace period
        elif p.kind == "corrupt-pack":
            packs.append(p.where)  # set aside below, once what it held was rebuilt
        else:
            left.append(p)
    from .temps import remove_stray_temps

    fixed.extend(f"removed {rel}" for rel in remove_stray_temps(ws))
    for rel in packs:  # unreadable: kept under .spell/repair/, never deleted
        dest = _aside(rel)
        os.makedirs(ws.storage.internal("repair"), exist_ok=True)  # (refused if a link)
        os.rename(f"{ws.root}/{rel}", f"{ws.root}/{dest}")
        fixed.append(f"{rel}: unreadable, set aside in {dest}")
    for rel in bad_lines:
        line = _rewrite_record_file(ws, rel)
        if line:
            fixed.append(line)
    # Logs cached in this process describe the files as they were.
    for dir in ws.storage.listdir("sessions"):
        ws.log(dir).reset()
    return fixed, left
