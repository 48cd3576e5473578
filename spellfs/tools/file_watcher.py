"""``file_watcher``: the changes under workspace paths during a short wait.

``{operation = "watch", input (a path or a list of paths; or path), events = {"create",
"modify", "delete"}, pattern?, timeout_ms = 1000}`` -> ``{events = {{kind, path}}, count,
watched}``. The paths are confined like ``file_operations``'s; the watch polls them
(every 50 ms, recursively, by size and modification time) for ``timeout_ms`` (at most
30,000) and reports each change once, in the order seen. ``pattern`` is a glob on the file
name (``*.md``). spellfs's own files are never reported.
"""

from __future__ import annotations

import fnmatch
import os
import time
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .base import PROTECTED_TOP, RECORD_FILES, Tool, confine

__all__ = ["TOOL"]

KINDS = ("create", "modify", "delete")
MAX_FILES = 100_000


def _snapshot(paths: list[Path], root: Path, pattern: str | None) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for base in paths:
        walk = [(str(base.parent), [], [base.name])] if base.is_file() else os.walk(base)
        for folder, dirs, files in walk:
            top = Path(folder) == root  # spellfs's own files are not the script's to watch
            dirs[:] = [
                d for d in dirs if d not in (".git", ".spell") and not (top and d in PROTECTED_TOP)
            ]
            for name in files:
                if name in RECORD_FILES or (top and name in PROTECTED_TOP):
                    continue
                if pattern and not fnmatch.fnmatch(name, pattern):
                    continue
                full = Path(folder, name)
                try:
                    st = full.stat()
                except OSError:
                    continue
                out[full.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
                if len(out) > MAX_FILES:
                    raise UsageError(f"too many files to watch (more than {MAX_FILES})")
    return out


def _watch(params: dict, ctx: Any) -> dict:
    operation = params.get("operation", "watch")
    if operation != "watch":
        raise UsageError(f"unknown operation: {operation} (use watch)")
    raw = params.get("input", params.get("path"))
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise UsageError("parameter 'input' must be a path or a list of paths")
    wanted = params.get("events", list(KINDS))
    if not isinstance(wanted, list) or not set(wanted) <= set(KINDS):
        raise UsageError("parameter 'events' must be a list of create, modify, delete")
    pattern = params.get("pattern")
    if pattern is not None and not isinstance(pattern, str):
        raise UsageError("parameter 'pattern' must be a string")
    timeout = params.get("timeout_ms", 1000)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise UsageError("parameter 'timeout_ms' must be a non-negative number")
    confined = [confine(ctx, n) for n in names]
    root = confined[0][0]
    paths = [p for _, p, _ in confined]
    for _, p, shown in confined:
        if not p.exists():
            raise UsageError(f"no such file or directory: {shown}")
    before = _snapshot(paths, root, pattern)
    events: list[dict] = []
    deadline = time.monotonic() + min(timeout, 30_000) / 1000
    while True:
        time.sleep(max(0.0, min(0.05, deadline - time.monotonic())))
        now = _snapshot(paths, root, pattern)
        for path in sorted(set(before) | set(now)):
            if path not in before:
                kind = "create"
            elif path not in now:
                kind = "delete"
            elif before[path] != now[path]:
                kind = "modify"
            else:
                continue
            if kind in wanted:
                events.append({"kind": kind, "path": path})
        before = now
        if time.monotonic() >= deadline:
            break
    return {"events": events, "count": len(events), "watched": [s for _, _, s in confined]}


TOOL = Tool(
    "file_watcher",
    "Report file changes under workspace paths during a short wait",
    _watch,
    category="filesystem",
    operations=("watch",),
    parameters={
        "input": "a path or list of paths",
        "events": "create, modify, delete",
        "pattern": "glob on file names",
        "timeout_ms": "how long to watch",
    },
)
