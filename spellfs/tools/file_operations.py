"""``file_operations``: files inside the workspace, never spellfs's own (see :func:`base.confine`).

``{operation, path, input}``: ``read`` -> ``{path, content, input, size}``; ``write`` and
``append`` -> ``{path, size}``; ``delete`` -> ``{path, deleted}``; ``list`` (``list_dir``)
-> ``{path, entries = {{name, type, size}}, count}``; ``exists`` -> ``{path, exists}``;
``create_dir`` (``create_directory``, ``mkdir``) -> ``{path, created}``; ``copy`` and
``move`` (``source_path``/``target_path``, or ``path``/``target``) -> ``{from, to}``.
Relative paths resolve against the workspace root; anything resolving outside it
(``..``, absolute paths, symlinks) or onto spellfs's files is refused. ``delete``
removes a symlink itself. Writes are atomic (temp file + ``os.replace``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..store import atomic_replace
from .base import RECORD_FILES, Tool, confine, text

__all__ = ["TOOL"]

OPERATIONS = (
    "read",
    "write",
    "append",
    "delete",
    "list",
    "list_dir",
    "exists",
    "create_dir",
    "create_directory",
    "mkdir",
    "copy",
    "move",
    "metadata",
)


def _file_operations(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation")
    if operation not in OPERATIONS:
        raise UsageError(f"unknown operation: {operation} (use {', '.join(OPERATIONS)})")
    default = "." if operation in ("list", "list_dir") else None
    raw = text(params, "path", "source_path", "source", default=default)
    root, path, shown = confine(ctx, raw)
    try:
        return _operate(operation, params, ctx, root, raw, path, shown)
    except OSError as exc:  # say which path: the system's message names none
        raise UsageError(f"{exc.strerror or exc}: {raw}") from None


def _content(params: dict) -> bytes:
    value = params.get("input", params.get("content"))
    if not isinstance(value, (str, bytes)):
        raise UsageError("write needs the text in parameter 'input'")
    return value.encode("utf-8") if isinstance(value, str) else value


def _operate(
    operation: str, params: dict, ctx: Any, root: Path, raw: str, path: Path, shown: str
) -> dict:
    if operation == "read":
        data = path.read_bytes()
        try:
            content: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            content = data
        return {"path": shown, "content": content, "input": content, "size": len(data)}
    if operation in ("write", "append"):
        data = _content(params)
        if operation == "append" and path.exists():
            data = path.read_bytes() + data
        atomic_replace(path, data, fsync=True, mode=0o600)  # 0o600: as tempfile.mkstemp made it
        return {"path": shown, "size": len(data)}
    if operation == "delete":
        if path.is_dir():
            raise UsageError(f"is a directory, not a file: {raw}")
        link = root / raw  # a symlink (into root, as checked above) goes, not its target
        (link if link.is_symlink() else path).unlink()
        return {"path": shown, "deleted": True}
    if operation in ("list", "list_dir"):
        entries = []
        for child in sorted(path.iterdir(), key=lambda p: p.name):
            kind = "symlink" if child.is_symlink() else "directory" if child.is_dir() else "file"
            size = child.lstat().st_size if kind == "file" else 0
            entries.append({"name": child.name, "type": kind, "size": size})
        return {"path": shown, "entries": entries, "count": len(entries)}
    if operation in ("create_dir", "create_directory", "mkdir"):
        path.mkdir(parents=True, exist_ok=True)
        return {"path": shown, "created": True}
    if operation in ("copy", "move"):
        target_raw = text(params, "target_path", "target", "destination_path", "destination")
        _, target, target_shown = confine(ctx, target_raw)
        if target.is_dir():  # the file or folder lands inside it: judge where it lands
            _, target, target_shown = confine(ctx, f"{target_shown}/{path.name}")
        if operation == "copy":
            atomic_replace(target, path.read_bytes(), fsync=True, mode=0o600)
        else:
            _refuse_holding_records(path, raw)
            shutil.move(str(path), str(target))
        return {"from": shown, "to": target_shown}
    if operation == "metadata":
        st = path.stat()
        return {
            "path": shown,
            "size": st.st_size,
            "is_file": path.is_file(),
            "is_dir": path.is_dir(),
            "modified": st.st_mtime,
        }
    return {"path": shown, "exists": path.exists()}  # exists


def _refuse_holding_records(path: Path, raw: str) -> None:
    """A folder moved carries what it holds: one holding record files (a session's directory,
    ``sessions/`` itself) would take sessions out of the workspace's view. Links are not
    followed (moving a link moves the link)."""
    if path.is_symlink() or not path.is_dir():
        return
    for _, dirs, names in os.walk(path):
        hit = RECORD_FILES.intersection(names) or RECORD_FILES.intersection(dirs)
        if hit:
            raise UsageError(f"path belongs to spellfs, not to scripts: {raw} holds {min(hit)}")


TOOL = Tool(
    "file_operations",
    "Read, write, delete, list and check files inside the workspace",
    _file_operations,
    category="filesystem",
    operations=OPERATIONS,
    parameters={"path": "file path, relative to the workspace", "input": "content to write"},
)
