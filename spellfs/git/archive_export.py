"""``spell export``: one session and every object it reaches, written as a tar.zst archive
(the layout is in :mod:`.archive`).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import SpellError, UsageError
from ..store import file_kind
from .archive import FORMAT, MANIFEST

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["ExportResult", "export_session", "reachable_objects"]

_HEX = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def reachable_objects(ws: "Workspace", dir: str) -> list[str]:
    """Every object the session ``dir`` reaches (sorted): records, checkpoint trees, run scripts
    and the starting points a replay rebuilds their worlds from."""
    from ..history import reachable

    found: set[str] = set()
    log = ws.log(dir)
    log.refresh()
    found.update(rec["hash"] for rec in log.records if rec.get("hash"))
    history = ws.history
    seen: set[str] = set()
    for cp in history.checkpoints(dir):
        found.update(history.trees.refs(cp["tree"], seen))
    # Ids other record files name (run scripts, model-call answers, ...), when the store has them.
    for name in ("checkpoints.yaml", "runs.yaml", "calls.yaml"):
        rel = f"sessions/{dir}/{name}"
        if ws.storage.exists(rel):
            found.update(
                oid for m in _HEX.findall(ws.storage.read(rel)) if ws.objects.has(oid := m.decode())
            )
    # what a run's world object names (the session.yaml and state.yaml it started from): a
    # replay of the imported session rebuilds its worlds from them
    found.update(oid for oid in reachable(ws, [dir]) if oid not in found and ws.objects.has(oid))
    return sorted(found)


@dataclass
class ExportResult:
    session_id: str
    path: str
    files: int
    objects: int
    bytes: int
    #: hand changes ``force`` recorded first: {"modified", "added", "deleted"}
    recorded: dict | None = None


def export_session(
    ws: "Workspace",
    session: str,
    out: str | os.PathLike,
    advance: Callable[[int], None] | None = None,
    force: bool = False,
) -> ExportResult:
    """Write ``session`` with its history and objects to ``out`` (a tar stream through zstd).

    The archive is made whole in a temporary file beside ``out`` and renamed over it, so
    ``out`` must be a new path or a regular file: a rename would replace a device node, a
    FIFO or a symlink (and what it points at would never see the archive). The archive's
    ``files/`` and records must agree (an import rewrites copies from the records):
    unrecorded hand changes stop the export (:class:`~spellfs.errors.UnrecordedChanges`)
    unless ``force``, which records them first, as `spell save` does.
    """
    import zstandard

    out = _check_output(out)
    dir = ws.sessions.resolve(session)
    sid = ws.sessions.manifest(dir)["id"]
    wc = ws.worktree.record_or_refuse(dir, force, "export")
    oids = reachable_objects(ws, dir)
    missing = [o for o in oids if not ws.objects.has(o) and not _fetch(ws, o)]
    if missing:
        raise SpellError(
            f"cannot export session {sid[:8]}: object {missing[0]} is missing "
            f"({len(missing)} in all; run `spell pull` or `spell fsck`)"
        )
    base = ws.root / "sessions" / dir
    files = sorted(
        p
        for p in base.rglob("*")
        if p.is_file() and not p.is_symlink() and not p.name.endswith(".tmp")
    )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    total = 0
    # What an import may write is declared first: the sum of every member's size.
    declared = sum(p.stat().st_size for p in files) + sum(ws.objects.stored_size(o) for o in oids)
    try:
        with (
            open(tmp, "wb") as raw,
            zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as z,
            tarfile.open(fileobj=z, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            head = (
                f"format: {FORMAT}\nsession_id: {sid}\ndir: {dir}\nobjects: {len(oids)}\n"
                f"bytes: {declared}\n"
            ).encode()
            _add_bytes(tar, MANIFEST, head)
            for p in files:
                rel = p.relative_to(ws.root).as_posix()
                _add_file(tar, rel, p)
                total += p.stat().st_size
                if advance:
                    advance(1)
            for oid in oids:
                name = f"objects/{oid[:2]}/{oid[2:]}"
                path = ws.objects.path(oid)
                packed = ws.objects.packed(oid)
                if packed is not None:  # (store/packs.py)
                    _add_bytes(tar, name, packed)
                    total += len(packed)
                else:
                    _add_file(tar, name, path)
                    total += path.stat().st_size
                if advance:
                    advance(1)
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SpellError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    recorded = None if wc.clean else wc.as_dict()
    return ExportResult(sid, str(out), len(files), len(oids), total, recorded)


def _check_output(out: str | os.PathLike) -> Path:
    """``out`` as a Path, if an archive may be renamed over it: absent or a regular file.

    Raises UsageError (exit 2) naming the path and what it is otherwise; nothing is written.
    """
    if not os.fspath(out):
        raise UsageError("no output path: -o needs a file name (or - for stdout)")
    path = Path(out)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(
            f"not a regular file: {path} is {file_kind(mode)} (an export replaces the file it "
            "writes; give a new path or a regular file, or - for stdout)"
        )
    if path.name in ("", ".", ".."):
        raise UsageError(f"not a file name: {out!s}")
    return path


def _fetch(ws: "Workspace", oid: str) -> bool:
    fetcher = getattr(ws.objects, "fetcher", None)
    return bool(fetcher and fetcher(oid))


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_info(name, len(data)), io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    with open(path, "rb") as f:
        tar.addfile(_info(name, os.fstat(f.fileno()).st_size), f)
