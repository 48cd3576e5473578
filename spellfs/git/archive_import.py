"""``spell import``: a session archive (:mod:`.archive`) into the workspace, all or nothing.

An import trusts nothing in the archive, and checks while it streams: every
member is a plain file or directory under the layout (no ``..``, absolute
paths, links or devices), at most ``max_artifact_size``, at most
:data:`~.archive.MAX_MEMBERS` of them; before a member's first byte is written its size is
taken from a budget (the ``bytes:`` total the export declares, capped by
``sessions.max_import_bytes``, and never past the disk's free space less
16 MiB); each object is re-hashed as soon as it is written, so the import stops
at the first member that is not what its name says, having written at most that
member (those checks are :mod:`.archive_members`). Then it loads the manifest and refuses
a session id that exists. It extracts into a temporary directory under ``.spell/`` and only
then moves objects into the store and the session directory into ``sessions/``;
on any failure the temporary directory is removed and nothing else has changed.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import SpellError, UsageError
from ..store import FsObjectStore, validate_oid
from .archive import FORMAT, MANIFEST, MAX_MEMBERS, ArchiveError
from .archive_members import Budget, check_name, classify, copy_exact, members, verify_object

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["ImportResult", "import_session"]


@dataclass
class ImportResult:
    session_id: str
    dir: str
    files: int
    objects: int
    new_objects: int


def import_session(
    ws: "Workspace",
    path: str | os.PathLike,
    max_members: int = MAX_MEMBERS,
    max_total: int | None = None,
    advance: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import the session archived in ``path``; nothing changes unless all of it checks out."""
    import zstandard

    if ws.memory:
        raise UsageError("import needs a workspace on disk (storage_backend is memory)")
    if not os.fspath(path):
        raise UsageError("no archive path: import needs a file name (or - for stdin)")
    max_member = ws.config.get("sessions.max_artifact_size")
    if max_total is None:
        max_total = min(
            ws.config.get("sessions.max_import_bytes"),
            max_member * ws.config.get("sessions.max_artifacts_per_session"),
        )
    work = Path(ws.storage.internal("tmp"))  # (refused if a link)
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="import-", dir=work))
    try:
        try:
            raw = open(path, "rb")
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        manifest_text = None
        oids: list[str] = []
        session_dirs: set[str] = set()
        files = 0
        with raw, zstandard.ZstdDecompressor().stream_reader(raw) as z:
            try:
                tar = tarfile.open(fileobj=z, mode="r|")
            except (tarfile.TarError, zstandard.ZstdError) as exc:
                raise ArchiveError(f"not a spellfs export: {path} ({exc})") from None
            budget = Budget(
                ws,
                work,
                max_total,
                f"{max_total} bytes in all (sessions.max_import_bytes, and "
                "max_artifact_size × max_artifacts_per_session)",
            )
            try:
                for m in members(tar, max_member, max_total, max_members):
                    parts = check_name(m.name)
                    kind = classify(parts, m.isdir())
                    if kind == "dir":
                        continue
                    data = tar.extractfile(m)
                    if kind == "manifest":
                        manifest_text = data.read(64 << 10).decode("utf-8", "replace")
                        declared = _declared_bytes(manifest_text)
                        if declared is not None and not (oids or files):
                            if declared > max_total:
                                raise ArchiveError(
                                    f"archive refused: it declares {declared} bytes, more than "
                                    f"{max_total} bytes in all (sessions.max_import_bytes)"
                                )
                            budget = Budget(ws, work, declared, f"the {declared} bytes it declares")
                        continue
                    budget.take(m.name, m.size)
                    dest = tmp.joinpath(*parts)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    copy_exact(data, dest, m.size, m.name)
                    if kind == "object":
                        verify_object(dest, parts[1] + parts[2], m.name, max_member)
                        oids.append(parts[1] + parts[2])
                    else:
                        session_dirs.add(parts[1])
                        files += 1
                    if advance:
                        advance(1)
            except zstandard.ZstdError as exc:
                raise ArchiveError(f"not a spellfs export: {path} ({exc})") from None
            except tarfile.TarError as exc:
                raise ArchiveError(f"not a valid spellfs export: {exc}") from None
            except FileExistsError as exc:
                raise ArchiveError(
                    f"archive refused: {os.path.relpath(exc.filename, tmp)} appears twice"
                ) from None
            except OSError as exc:
                from ..store import disk_error

                raise disk_error(exc, f"{path} (importing into {work})") from None
        return _install(ws, tmp, manifest_text, session_dirs, oids, files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _declared_bytes(text: str) -> int | None:
    """The ``bytes:`` total an export declares (older archives declare none)."""
    m = re.search(r"^bytes:\s*([0-9]{1,20})\s*$", text, re.M)
    return int(m.group(1)) if m else None


def _install(
    ws: "Workspace",
    tmp: Path,
    manifest_text: str | None,
    session_dirs: set[str],
    oids: list[str],
    files: int,
) -> ImportResult:
    from ..model import load_manifest
    from ..store import load_yaml

    if manifest_text is None:
        raise ArchiveError(f"not a spellfs export: no {MANIFEST}")
    head = load_yaml(manifest_text, MANIFEST)
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ArchiveError(
            f"not a spellfs export this version reads: {MANIFEST} has format "
            f"{head.get('format') if isinstance(head, dict) else None!r} (expected {FORMAT})"
        )
    if (
        len(session_dirs) != 1
        or not isinstance(head.get("dir"), str)
        or head["dir"] not in session_dirs
    ):
        raise ArchiveError(
            f"archive refused: expected the one session {head.get('dir')!r}, "
            f"found {len(session_dirs)} session directories"
        )
    dir = head["dir"]
    src = tmp / "sessions" / dir
    try:
        m = load_manifest((src / "session.yaml").read_bytes(), f"sessions/{dir}/session.yaml", dir)
    except FileNotFoundError:
        raise ArchiveError(f"archive refused: sessions/{dir}/session.yaml is missing") from None
    if m["id"] != head.get("session_id"):
        raise ArchiveError(
            f"archive refused: session.yaml says {m['id']}, {MANIFEST} says "
            f"{head.get('session_id')}"
        )
    from ..names import check_artifact_name

    for name in (src / "files").iterdir() if (src / "files").is_dir() else ():
        try:
            check_artifact_name(name.name)
        except UsageError as exc:
            raise ArchiveError(f"archive refused: sessions/{dir}/files/: {exc}") from None
    same = ws.sessions.named(dir)
    if same:
        raise ArchiveError(
            f"archive refused: its folder name {dir} is the name of session "
            f"{ws.sessions.manifest(same[0])['id'][:8]} here (a reference by that name would find "
            "the imported one: rename that session first)"
        )
    existing = _find_session(ws, m["id"])
    if existing or ws.storage.exists(f"sessions/{dir}"):
        raise ArchiveError(
            f"session already exists: {m['id']} (sessions/{existing or dir}; "
            f"remove it with `spell rm {m['id'][:8]}` to import this copy)"
        )
    # Every object was verified as it arrived (verify_object), before the next member was read.
    staged = FsObjectStore(tmp / "objects", ws.config.threshold)
    for oid in oids:
        validate_oid(oid)
    log_tmp = _records_hashes(src / "artifacts.yaml", f"sessions/{dir}/artifacts.yaml")
    have = set(oids)
    absent = [o for o in log_tmp if o not in have and not ws.objects.has(o)]
    if absent:
        raise ArchiveError(
            f"archive refused: object {absent[0]} of sessions/{dir} is not in it "
            f"({len(absent)} missing)"
        )
    store = ws.objects
    new = 0
    for oid in oids:
        if store.has(oid):
            continue
        final = store.path(oid)
        final.parent.mkdir(parents=True, exist_ok=True)
        staged_path = staged.path(oid)
        os.chmod(staged_path, 0o444)
        os.replace(staged_path, final)
        new += 1
    with ws.storage.lock("sessions"):
        if ws.storage.exists(f"sessions/{dir}"):
            raise ArchiveError(f"session already exists: sessions/{dir}")
        if m["status"] in ("active", "suspended"):  # a live session counts, as for new and fork
            ws.sessions.check_capacity()
        os.replace(src, ws.root / "sessions" / dir)
    from .repo import reconcile

    reconcile(
        ws, [dir]
    )  # files/ copies are derived: make them match the records, whatever the archive held
    ws.index.refresh_dir(dir)
    return ImportResult(m["id"], dir, files, len(oids), new)


def _records_hashes(path: Path, where: str) -> set[str]:
    from ..store import parse_records

    if not path.is_file():
        return set()
    try:
        return {
            r["hash"]
            for _, r in parse_records(path.read_bytes(), where)
            if isinstance(r.get("hash"), str) and re.fullmatch(r"[0-9a-f]{64}", r["hash"])
        }
    except SpellError as exc:
        raise ArchiveError(f"archive refused: {exc}") from None


def _find_session(ws: "Workspace", sid: str) -> str | None:
    for d in ws.storage.listdir("sessions"):
        if d[-8:] == sid[:8] and ws.storage.exists(f"sessions/{d}/session.yaml"):
            try:
                if ws.sessions.manifest(d)["id"] == sid:
                    return d
            except SpellError:
                continue
    return None
