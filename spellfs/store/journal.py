"""Journals: the small objects one process stores one at a time, appended to one file (issue 19).

A loose object is a new file in one of 256 fan-out folders; creating it is what a single store
waits on here (0.1–0.5 ms each, more than hashing, writing the ``files/`` copy and appending the
record together). A journal takes those objects as appends to one file that this process alone
writes, as git takes small objects into packs.

``.spell/objects/pack/<name>.journal``::

    b"SPELLPK1"                                   magic (a pack's)
    b"OBJ1" id (32 bytes) size (u32) stored form   each object, appended as it is stored
    b"IDX1" index and footer of a pack             once sealed (see below)

- One writer: the file is made under a temporary name, locked (``flock``) and only then named,
  and the lock is held while the process may append. Another process that can take the lock
  knows the journal's writer is gone (:func:`abandoned`); only then may it rewrite or remove it.
- Readers parse the entries from the start (:func:`scan`) and stop at the first one that is not
  whole: a writer killed in the middle of an append leaves a torn tail that hides nothing
  before it, and an object whose append did not finish was never acknowledged.
- Sealing (when the workspace closes, or the journal passes :data:`JOURNAL_MAX`) appends a
  pack's index and footer behind an ``IDX1`` mark, flushes the file and renames it to
  ``<name>.pack``: from then on it is read as any pack, by its index.
- An append is not flushed: a checkpoint flushes the files holding what it names
  (:meth:`FsObjectStore.durable_paths <spellfs.store.objects.FsObjectStore.durable_paths>`), as
  it does loose objects.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from typing import Callable, Iterator

from ..errors import IntegrityError
from .atomic import disk_error, pid, write_all
from .packfile import MAGIC, index_bytes, open_regular

__all__ = ["JOURNAL", "JOURNAL_MAX", "Journal", "abandoned", "scan"]

JOURNAL = ".journal"
#: A journal is sealed into a pack once it holds this many bytes.
JOURNAL_MAX = 8 << 20
_OBJ = b"OBJ1"
_IDX = b"IDX1"
_HEAD = struct.Struct(">4s32sI")


def scan(data: bytes, at: int, base: int = 0) -> tuple[list[tuple[str, int, int]], int]:
    """The whole entries from file offset ``at`` (past the magic) of a journal whose bytes from
    offset ``base`` on are ``data``: ``(id, offset of its stored form, size)`` each, and the
    offset where the next entry would start. Parsing stops at a seal, at a torn tail and at
    anything that is not an entry."""
    out = []
    i, end = at - base, len(data)
    while i + _HEAD.size <= end:
        mark, raw, size = _HEAD.unpack_from(data, i)
        if mark != _OBJ or i + _HEAD.size + size > end:
            break  # a seal (IDX1), a torn tail, or damage: nothing after it is read
        out.append((raw.hex(), base + i + _HEAD.size, size))
        i += _HEAD.size + size
    return out, base + i


@contextlib.contextmanager
def abandoned(path: str) -> Iterator[bool]:
    """Whether no process writes the journal at ``path`` any more; while True, its lock is held
    here, so no process can take it up until the block ends (False when it is gone)."""
    try:
        fd = open_regular(path)
    except (OSError, IntegrityError):
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # (the lock, if taken, goes with it)


class Journal:
    """This process's journal in ``dir`` (made on the first append). Its caller (:class:`Packs
    <spellfs.store.packs.Packs>`) makes one call at a time."""

    def __init__(self, dir: str) -> None:
        self.dir = dir
        self.name: str | None = None
        self._fd: int | None = None
        self._end = 0
        self._owner = 0
        self._file = (0, 0)  # (device, inode) of the open journal
        self._entries: list[tuple[bytes, int, int]] = []

    def append(self, oid: str, stored: bytes, check: Callable[[], object]) -> tuple[str, int]:
        """Append one object; return ``(journal name, offset of its stored form)``. ``check`` is
        called before a journal is made (it refuses a pack folder that is a link)."""
        if self._fd is not None and self._owner != pid():
            self._close(seal=False)  # a forked child's copy: the parent appends to it
        if self._fd is None:
            self._open(check)
        assert self._fd is not None and self.name is not None
        raw = bytes.fromhex(oid)
        head = _HEAD.pack(_OBJ, raw, len(stored))
        start, count, name = self._end, len(self._entries), self.name
        try:
            write_all(self._fd, head + stored)
            at = start + _HEAD.size
            self._entries.append((raw, at, len(stored)))
            self._end = at + len(stored)
        except BaseException as exc:  # a full disk, or an interrupt (Ctrl-C) at any point here:
            del self._entries[count:]  # the append is taken off whole, so what the journal
            self._end = start  # says of itself is what its file holds
            self._cut_back()
            if isinstance(exc, OSError):  # (named as it was: a failed cut-back closes it)
                raise disk_error(exc, os.path.join(self.dir, name)) from None
            raise
        return name, at

    @property
    def full(self) -> bool:
        return self._end > JOURNAL_MAX

    def owned(self) -> bool:
        """Whether this process made the open journal (not a forked child's inherited copy)."""
        return self._fd is not None and self._owner == pid()

    def gone(self) -> bool:
        """Whether the open journal is no longer the file at its path (removed, or moved away
        with its folder)."""
        if self._fd is None or self.name is None:
            return False
        try:
            st = os.stat(f"{self.dir}/{self.name}")
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._file

    def drop(self) -> None:
        """Stop writing to the journal without sealing it (its file is gone)."""
        self._close(seal=False)

    def seal(self) -> str | None:
        """Make the journal a pack (see the module's text); return the pack's name."""
        return self._close(seal=self._fd is not None and self._owner == pid())

    def _open(self, check: Callable[[], object]) -> None:
        check()
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as exc:
            raise disk_error(exc, self.dir) from None
        name = f"{os.urandom(12).hex()}{JOURNAL}"
        tmp = os.path.join(self.dir, f".tmp-{pid()}-{name}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o444)
        except OSError as exc:
            raise disk_error(exc, tmp) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # before it has a name another process would read
            write_all(fd, MAGIC)
            os.rename(tmp, os.path.join(self.dir, name))
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise disk_error(exc, tmp) from None
        self._fd, self.name, self._end, self._owner = fd, name, len(MAGIC), pid()
        st = os.fstat(fd)
        self._file = (st.st_dev, st.st_ino)
        self._entries = []

    def _cut_back(self) -> None:
        """After a failed append (a full disk): take the torn tail off, or, failing that, write
        no more to this journal (readers stop at the tail; all before it stays readable)."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._end)
        except OSError:
            self._close(seal=False)

    def _close(self, seal: bool) -> str | None:
        fd, name, self._fd = self._fd, self.name, None
        if fd is None or name is None:
            return None
        self.name = None
        try:
            path = os.path.join(self.dir, name)
            if not self._entries and self._owner == pid():
                with contextlib.suppress(OSError):
                    os.unlink(path)  # nothing in it (its one append failed)
                return None
            if not seal:
                return None
            pack = name[: -len(JOURNAL)] + ".pack"
            try:
                if os.fstat(fd).st_size != self._end:
                    return None  # not as this process wrote it: left a journal, parsed as one
                write_all(fd, _IDX + index_bytes(sorted(self._entries), self._end + len(_IDX)))
                os.fsync(fd)  # a checkpoint that flushed the journal finds a pack: no flush
                os.rename(path, os.path.join(self.dir, pack))
            except OSError:
                return None  # left a journal, read as one (it stops at the mark)
            return pack
        finally:
            os.close(fd)  # releases the lock, after the rename
