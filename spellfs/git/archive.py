"""``spell export`` / ``spell import``: one session and every object it reaches, as a tar.zst.

Layout of an archive (a tar stream compressed with zstd)::

    spellfs-export.yaml          format, session id and directory, object count
    sessions/<dir>/...           the session directory as it is on disk
    objects/ab/cdef...           stored object bytes, exactly as in .spell/objects

The objects are those the session reaches: every content hash in
``artifacts.yaml``, everything its checkpoints' trees reach (``ws.history.trees``:
parents, manifest, state, table pages, artifact contents), and every object id
named by ``checkpoints.yaml``, ``runs.yaml`` (scripts) and ``calls.yaml``.

An import trusts nothing in the archive, and checks while it streams: every
member is a plain file or directory under the layout above (no ``..``, absolute
paths, links or devices), at most ``max_artifact_size``, at most
:data:`MAX_MEMBERS` of them; before a member's first byte is written its size is
taken from a budget (the ``bytes:`` total the export declares, capped by
``sessions.max_import_bytes``, and never past the disk's free space less
16 MiB); each object is re-hashed as soon as it is written, so the import stops
at the first member that is not what its name says, having written at most that
member. Then it loads the manifest and refuses a session id that exists. It
extracts into a temporary directory under ``.spell/`` and only
then moves objects into the store and the session directory into ``sessions/``;
on any failure the temporary directory is removed and nothing else has changed.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from ..errors import SpellError, UsageError
from ..store import FsObjectStore, file_kind, validate_oid

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["ArchiveError", "MAX_MEMBERS", "export_session", "import_session", "reachable_objects"]

FORMAT = 1
MANIFEST = "spellfs-export.yaml"
#: An archive with more members than this is refused.
MAX_MEMBERS = 200_000
_HEX = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_COMPONENT = re.compile(r"[^\x00-\x1f\x7f/\\]{1,255}\Z")


class ArchiveError(SpellError):
    """An archive that cannot be imported (malformed, hostile, or clashing with the workspace)."""


# -- export -----------------------------------------------------------------------
def reachable_objects(ws: "Workspace", dir: str) -> list[str]:
    """Every object the session ``dir`` reaches (sorted): records, checkpoint trees, run scripts."""
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


# -- import -----------------------------------------------------------------------
@dataclass
class ImportResult:
    session_id: str
    dir: str
    files: int
    objects: int
    new_objects: int


def _check_name(name: str) -> list[str]:
    """The member's path components, or ArchiveError for anything but a plain relative path."""
    if not name or name.startswith("/") or "\\" in name or re.match(r"[A-Za-z]:", name):
        raise ArchiveError(f"unsafe archive member: {name[:120]!r} (absolute path)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(f"unsafe archive member: {name[:120]!r} (a '..' component)")
    if not parts or len(parts) > 6 or not all(_COMPONENT.match(p) for p in parts):
        raise ArchiveError(f"unsafe archive member: {name[:120]!r} (not a spellfs export path)")
    return parts


def _classify(parts: list[str], is_dir: bool) -> str:
    """'manifest', 'session', 'object' or 'dir'; ArchiveError for anything outside the layout."""
    shown = "/".join(parts)[:120]
    if parts == [MANIFEST] and not is_dir:
        return "manifest"
    if parts[0] == "objects":
        if is_dir and len(parts) <= 2:
            return "dir"
        if (
            len(parts) == 3
            and not is_dir
            and re.fullmatch(r"[0-9a-f]{2}", parts[1])
            and re.fullmatch(r"[0-9a-f]{62}", parts[2])
        ):
            return "object"
    if parts[0] == "sessions" and len(parts) >= 2 and not parts[1].startswith("."):
        if is_dir:
            return "dir"
        if len(parts) >= 3 and not any(p.startswith(".") for p in parts[2:]):
            return "session"
    raise ArchiveError(f"unexpected archive member: {shown} (not a spellfs export)")


def _members(
    tar: tarfile.TarFile, max_member: int, max_total: int, max_members: int
) -> Iterator[tarfile.TarInfo]:
    count = 0
    while True:
        try:
            m = tar.next()
        except tarfile.TarError as exc:
            raise ArchiveError(f"not a valid spellfs export: {exc}") from None
        if m is None:
            return
        count += 1
        if count > max_members:
            raise ArchiveError(f"archive refused: more than {max_members} members")
        if m.issym() or m.islnk():
            raise ArchiveError(f"unsafe archive member: {m.name[:120]!r} (a link)")
        if not (m.isreg() or m.isdir()):
            raise ArchiveError(
                f"unsafe archive member: {m.name[:120]!r} (a device, fifo or other special file)"
            )
        if m.size > max_member:
            raise ArchiveError(
                f"archive member too large: {m.name[:120]!r} is {m.size} bytes; "
                f"max_artifact_size is {max_member}"
            )
        yield m


class _Budget:
    """What an import may still write: the archive's declared total, capped by
    ``sessions.max_import_bytes`` and by the free space of the disk it writes to."""

    def __init__(self, ws: "Workspace", work: Path, total: int, why: str) -> None:
        self.work = work
        self.left = total
        self.why = why

    def take(self, member: str, size: int) -> None:
        """Reserve ``size`` bytes for ``member`` before a byte of it is written, or refuse it."""
        if size > self.left:
            raise ArchiveError(
                f"archive refused at {member[:120]!r}: it would write more than {self.why}"
            )
        st = os.statvfs(self.work)
        free = st.f_bavail * st.f_frsize
        if size + _RESERVE > free:
            raise ArchiveError(
                f"archive refused at {member[:120]!r}: {size} bytes would fill the disk "
                f"({free} bytes free)"
            )
        self.left -= size


#: Free space an import always leaves on the disk.
_RESERVE = 16 << 20


def _copy_exact(src, dest: Path, size: int, member: str) -> None:
    """Copy exactly ``size`` bytes (what the member's header declared), never more."""
    left = size
    with open(dest, "xb") as f:
        while left:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                raise ArchiveError(f"archive member {member[:120]!r} is shorter than it declares")
            f.write(chunk)
            left -= len(chunk)


def _verify_object(path: Path, oid: str, member: str, max_member: int) -> None:
    """The object just written is what its name says (its content hashes to ``oid``), within the
    limit."""
    from ..errors import IntegrityError
    from ..store import stream_content

    content = 0
    try:
        with open(path, "rb") as f:
            for chunk in stream_content(oid, f, member):
                content += len(chunk)
                if content > max_member:
                    raise ArchiveError(
                        f"archive member too large: {member[:120]!r} holds more than "
                        f"max_artifact_size ({max_member}) bytes"
                    )
    except IntegrityError:
        raise ArchiveError(
            f"corrupt object in archive: {member[:120]!r}: its content does not hash to "
            "its name (refused)"
        ) from None


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
    work = ws.root / ".spell" / "tmp"
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
            budget = _Budget(
                ws,
                work,
                max_total,
                f"{max_total} bytes in all (sessions.max_import_bytes, and "
                "max_artifact_size × max_artifacts_per_session)",
            )
            try:
                for m in _members(tar, max_member, max_total, max_members):
                    parts = _check_name(m.name)
                    kind = _classify(parts, m.isdir())
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
                            budget = _Budget(
                                ws, work, declared, f"the {declared} bytes it declares"
                            )
                        continue
                    budget.take(m.name, m.size)
                    dest = tmp.joinpath(*parts)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    _copy_exact(data, dest, m.size, m.name)
                    if kind == "object":
                        _verify_object(dest, parts[1] + parts[2], m.name, max_member)
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
    existing = _find_session(ws, m["id"])
    if existing or ws.storage.exists(f"sessions/{dir}"):
        raise ArchiveError(
            f"session already exists: {m['id']} (sessions/{existing or dir}; "
            f"remove it with `spell rm {m['id'][:8]}` to import this copy)"
        )
    # Every object was verified as it arrived (_verify_object), before the next member was read.
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


__all__ += ["ExportResult", "ImportResult"]
