"""The bytes of a pack file and how they are opened: the format :mod:`.packs` reads and
:mod:`.packs` and :mod:`.journal` write.

``.spell/objects/pack/<name>.pack``::

    b"SPELLPK1"                             magic
    each object's stored form               the bytes its loose file would hold
    index, sorted by id                     (id: 32 bytes, offset: u64, size: u32) each
    footer                                  index offset: u64, count: u32, b"SPELLPK1"

Anything in the pack folder that is not a regular file (a link a cloned repository or a user
left, a FIFO, a device) is refused before it is read: it could point anywhere, block a reader
for ever, or never end.
"""

from __future__ import annotations

import os
import stat
import struct

from ..errors import IntegrityError

__all__ = ["MAGIC", "index_bytes", "open_regular", "read_index"]

MAGIC = b"SPELLPK1"
_ENTRY = struct.Struct(">32sQI")
_FOOTER = struct.Struct(">QI8s")


def index_bytes(entries: list[tuple[bytes, int, int]], at: int) -> bytes:
    """A pack's index of ``entries`` (sorted by id) starting at offset ``at``, and its footer."""
    return b"".join(_ENTRY.pack(*e) for e in entries) + _FOOTER.pack(at, len(entries), MAGIC)


def open_regular(path: str) -> int:
    """A descriptor of the regular file at ``path``, never through a link, never blocking on a
    FIFO; anything else is an :class:`IntegrityError` (fsck names it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: a link
            raise IntegrityError(f"corrupt pack {path}: a symbolic link, never followed") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IntegrityError(f"corrupt pack {path}: not a regular file")
    return fd


def read_index(fd: int, path: str) -> list[tuple[str, int, int]]:
    """``(id, offset, size)`` of each object of the pack open as ``fd``, from its index."""
    end = os.fstat(fd).st_size
    if end < len(MAGIC) + _FOOTER.size:
        raise IntegrityError(f"corrupt pack {path}: {end} bytes, too short")
    at, count, magic = _FOOTER.unpack(os.pread(fd, _FOOTER.size, end - _FOOTER.size))
    if magic != MAGIC or at + count * _ENTRY.size + _FOOTER.size != end:
        raise IntegrityError(f"corrupt pack {path}: its footer does not fit the file")
    raw = os.pread(fd, count * _ENTRY.size, at)
    out = []
    for oid, offset, size in _ENTRY.iter_unpack(raw):
        if offset < len(MAGIC) or offset + size > at:
            raise IntegrityError(f"corrupt pack {path}: an entry points outside its data")
        out.append((oid.hex(), offset, size))
    return out
