"""The checks each member of an imported archive passes as it streams, before and as its
bytes are written: a plain relative path inside the export layout, a regular file or
directory, within the size limits and the write budget (the ``bytes:`` total the export
declares, capped by ``sessions.max_import_bytes`` and never past the disk's free space
less 16 MiB), and an object whose content hashes to its name.
"""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .archive import MANIFEST, ArchiveError

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Budget", "check_name", "classify", "copy_exact", "members", "verify_object"]

_COMPONENT = re.compile(r"[^\x00-\x1f\x7f/\\]{1,255}\Z")


def check_name(name: str) -> list[str]:
    """The member's path components, or ArchiveError for anything but a plain relative path."""
    if not name or name.startswith("/") or "\\" in name or re.match(r"[A-Za-z]:", name):
        raise ArchiveError(f"unsafe archive member: {name[:120]!r} (absolute path)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(f"unsafe archive member: {name[:120]!r} (a '..' component)")
    if not parts or len(parts) > 6 or not all(_COMPONENT.match(p) for p in parts):
        raise ArchiveError(f"unsafe archive member: {name[:120]!r} (not a spellfs export path)")
    return parts


def classify(parts: list[str], is_dir: bool) -> str:
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


def members(
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


class Budget:
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


def copy_exact(src, dest: Path, size: int, member: str) -> None:
    """Copy exactly ``size`` bytes (what the member's header declared), never more."""
    left = size
    with open(dest, "xb") as f:
        while left:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                raise ArchiveError(f"archive member {member[:120]!r} is shorter than it declares")
            f.write(chunk)
            left -= len(chunk)


def verify_object(path: Path, oid: str, member: str, max_member: int) -> None:
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
