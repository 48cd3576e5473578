"""``archive_handler``: create, list and extract zip and tar(.gz) archives in the workspace.

``create``: ``{path, input = {files…}, format = "zip"|"tar"|"tar.gz"}`` -> ``{path, files}``;
``list``: ``{path}`` -> ``{entries, count}``; ``extract``: ``{path, target_path}`` ->
``{extracted, target_path}``. Every path (archive, members, target) is confined to the
workspace like file_operations; members that would land outside the target (``..``,
absolute names, links) are refused before anything is written.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .base import Tool, confine, text

__all__ = ["TOOL"]


def _format(params: dict, path: Path) -> str:
    fmt = params.get("format")
    if isinstance(fmt, str):
        return fmt.lower()
    name = path.name.lower()
    return (
        "zip"
        if name.endswith(".zip")
        else "tar.gz"
        if name.endswith((".tar.gz", ".tgz"))
        else "tar"
    )


#: An archive a model picked must not fill the disk or the inode table (a zip bomb): the
#: declared sizes are what extraction writes (zipfile and tarfile stop there).
MAX_EXTRACT_BYTES = 1 << 30
MAX_MEMBERS = 100_000


def _refuse_bombs(count: int, total: int) -> None:
    if count > MAX_MEMBERS or total > MAX_EXTRACT_BYTES:
        raise UsageError(
            f"archive too large to extract: {count} members, {total} bytes "
            f"(at most {MAX_MEMBERS} members and {MAX_EXTRACT_BYTES} bytes)"
        )


def _members(path: Path, links: bool = True) -> list[str]:
    """The member names; with ``links=False`` a tar member that is not a plain file or
    directory (a symlink, hard link, device, fifo) is refused: a link inside the target passes
    tarfile's "data" filter, and a later member written through it lands in ``.git/`` or
    ``spell.yaml`` (zip files never extract links)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
        if not links:
            _refuse_bombs(len(infos), sum(i.file_size for i in infos))
        return [i.filename for i in infos]
    with tarfile.open(path) as t:
        members = t.getmembers()
    if not links:
        for m in members:
            if not (m.isreg() or m.isdir()):
                raise UsageError(f"archive member is a link or special file: {m.name}")
        _refuse_bombs(len(members), sum(m.size for m in members))
    return [m.name for m in members]


def _archive_handler(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation")
    raw = text(params, "path", "archive_path")
    root, path, shown = confine(ctx, raw)
    if operation == "create":
        files = params.get("input", params.get("files"))
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise UsageError("create needs 'input': a list of file paths")
        sources = [confine(ctx, f) for f in files]
        fmt = _format(params, path)
        if fmt == "zip":
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
                for _, src, name in sources:
                    z.write(src, name)
        elif fmt in ("tar", "tar.gz", "tgz"):
            with tarfile.open(path, "w:gz" if fmt != "tar" else "w") as t:
                for _, src, name in sources:
                    t.add(src, name, recursive=False)
        else:
            raise UsageError(f"unknown format: {fmt} (use zip, tar or tar.gz)")
        return {"operation": operation, "path": shown, "files": len(sources), "format": fmt}
    if operation == "list":
        names = _members(path)
        return {"operation": operation, "path": shown, "entries": names, "count": len(names)}
    if operation == "extract":
        target_raw = text(params, "target_path", "output_dir", "destination", default=".")
        _, target, target_shown = confine(ctx, target_raw)
        names = _members(path, links=False)
        for name in names:  # refuse the whole archive before writing any of it
            confine(ctx, (Path(target_shown) / name).as_posix())
            if not (target / name).resolve().is_relative_to(target):
                raise UsageError(f"archive member escapes the target: {name}")
        target.mkdir(parents=True, exist_ok=True)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                z.extractall(target)
        else:
            with tarfile.open(path) as t:
                t.extractall(target, filter="data")
        return {"operation": operation, "extracted": len(names), "target_path": target_shown}
    raise UsageError(f"unknown operation: {operation} (use create, list or extract)")


TOOL = Tool(
    "archive_handler",
    "Create, list and extract zip and tar archives",
    _archive_handler,
    category="filesystem",
    operations=("create", "list", "extract"),
    parameters={"path": "the archive", "input": "files to add", "target_path": "where to extract"},
)
