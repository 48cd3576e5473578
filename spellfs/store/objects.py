"""Content-addressed object stores: ``.spell/objects/ab/cdef…`` keyed by BLAKE3 (:mod:`.codec`).

A large object is a loose file of its own; small ones live in packs and journals (:mod:`.packs`,
:mod:`.journal`). Objects are immutable and read-only (0o444); adding one that exists is a no-op;
every read re-hashes and a mismatch is an :class:`IntegrityError`, never wrong data.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import os
import stat
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from ..errors import IntegrityError
from .atomic import disk_error, pid, write_all
from .codec import (
    CHUNK,
    ZSTD_MAGIC,
    compressor,
    decode,
    encode,
    hash_bytes,
    is_oid,
    stored_raw,
    stream_content,
    validate_oid,
)
from .backend import ObjectStore
from .links import file_kind, real_dir
from .packs import Packs

_SERIAL = itertools.count()  # temp names: unique per process and thread with pid and ident

__all__ = [
    "CHUNK",
    "FsObjectStore",
    "ObjectStore",
    "ZSTD_MAGIC",
    "decode",
    "hash_bytes",
    "stream_content",
    "validate_oid",
]


#: A batch with at least this many new objects writes them as one pack (see :mod:`.packs`).
PACK_FROM = 16
#: A larger object (stored form) stays a file of its own.
PACKED_MAX = 64 << 10


def _no_follow(path: str, flags: int) -> int:
    """Open ``path`` without following a link, nor waiting on a FIFO."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


class _Packed(io.BytesIO):
    """A packed object's stored form, opened like a loose one; ``name`` says where it is."""

    def __init__(self, stored: bytes, name: str) -> None:
        super().__init__(stored)
        self.name = name


class FsObjectStore(ObjectStore):
    def __init__(self, root: Path, threshold: int) -> None:
        self.root = root
        self.base = os.fspath(root) + "/"
        self.threshold = threshold
        self._dirs: set[str] = set()  # fan-out folders seen to be real ones
        self._checked = False
        self.packs = Packs(self.base, self._check_root)

    def _check_root(self) -> None:
        """Refuse to work through ``.spell`` or ``.spell/objects`` when either is a link."""
        if not self._checked:
            real_dir(os.path.dirname(os.fspath(self.root)), ".spell")
            real_dir(os.fspath(self.root), ".spell/objects")
            self._checked = True

    def _fan(self, fan: str) -> str:
        """The fan-out folder ``fan``, refused when it is a link (it may not exist yet)."""
        d = self.base + fan
        if fan not in self._dirs:
            self._check_root()
            if real_dir(d, f".spell/objects/{fan}"):
                self._dirs.add(fan)
        return d

    def _file(self, oid: str) -> str:
        """Where ``oid``'s loose file is (or would be), as a string: no ``Path`` built."""
        return f"{self.base}{oid[:2]}/{oid[2:]}"

    def path(self, oid: str) -> Path:
        validate_oid(oid)
        return self.root / oid[:2] / oid[2:]

    def has(self, oid: str) -> bool:
        validate_oid(oid)
        return os.path.exists(self._file(oid)) or self.packs.locate(oid) is not None

    def _tmp(self, fan: str) -> str:
        d = self._fan(fan)
        if fan not in self._dirs:
            try:
                os.makedirs(d, exist_ok=True)
            except OSError as exc:
                raise disk_error(exc, d) from None
            self._dirs.add(fan)
        return f"{d}/.tmp-{pid()}-{threading.get_ident()}-{next(_SERIAL)}"

    def _install(self, tmp: str, oid: str) -> None:
        os.replace(tmp, self._file(oid))

    def _write_new(self, oid: str, stored: bytes, where: object) -> None:
        """Write ``stored`` as object ``oid``: a read-only temp file in its fan-out, renamed into
        place."""
        tmp = self._tmp(oid[:2])
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            try:
                fd = os.open(tmp, flags, 0o444)
            except FileExistsError:  # a dead process's temp (its pid and thread came back)
                tmp += f"-{os.urandom(8).hex()}"
                fd = os.open(tmp, flags, 0o444)
            try:
                write_all(fd, stored)
            finally:
                os.close(fd)
            self._install(tmp, oid)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise disk_error(exc, where) from None

    def put_bytes(self, data: bytes) -> str:
        """Store one content; a small one is appended to this process's journal (one write, not
        a new file: :mod:`.journal`)."""
        oid = hash_bytes(data)
        # (a hit is checked: a gc may have run; a miss may be a racy one, costing a second copy)
        if len(data) <= PACKED_MAX and stored_raw(len(data), data, self.threshold):
            # small: into the journal unless a pack holds it. A loose copy (pulled from a
            # remote, or a repair's) is not looked for: a second copy, never a loss
            if self.packs.locate(oid, exact=False) is None:
                self.packs.append(oid, data)
            return oid
        final = self._file(oid)
        if os.path.exists(final) or self.packs.locate(oid, exact=False):
            return oid
        stored = encode(data, self.threshold)
        if len(stored) <= PACKED_MAX:
            self.packs.append(oid, stored)
        else:
            self._write_new(oid, stored, final)
        return oid

    def durable_paths(self, oids: Iterable[str]) -> list[str]:
        """The files holding ``oids`` (loose, packed or in a journal) and their folders: what a
        checkpoint flushes so that what it names survives a crash."""
        self.packs.refresh()  # (another process's journal may hold some)
        files: dict[str, None] = {}
        dirs: set[str] = set()
        for oid in oids:
            packed = self.packs.where(oid)
            if packed is not None:
                files[packed] = None  # (a journal sealed since was flushed before its rename)
                dirs.add(self.packs.dir)
            else:
                files[self._file(oid)] = None  # (a missing one is skipped)
                dirs.add(self.base + oid[:2])
        return list(files) + sorted(dirs) + [os.fspath(self.root)]

    def close(self) -> None:
        """Seal this process's journal into a pack (:mod:`.journal`)."""
        self.packs.seal()

    def tidy(self) -> int:
        """Merge the packs, and fold the journals dead processes left (:meth:`Packs.merge`)."""
        return self.packs.merge()

    def packed_only(self) -> list[str]:
        return [o for o in self.packs if not os.path.exists(self._file(o))]

    def put_many(self, datas: list[bytes]) -> list[str]:
        """Store many contents at once; the new small ones go into one pack (one file, not one
        each) once there are :data:`PACK_FROM` of them, else into the journal."""
        oids = [hash_bytes(d) for d in datas]
        self.packs.refresh()
        new: dict[str, bytes] = {}
        for oid, data in zip(oids, datas):
            if oid in new or self.packs.holds(oid):
                continue
            if os.path.exists(self._file(oid)):
                continue
            new[oid] = encode(data, self.threshold)
        small = {o: b for o, b in new.items() if len(b) <= PACKED_MAX}
        packed = len(small) >= PACK_FROM
        if packed:
            self.packs.write(small.items())
        for oid, stored in new.items():
            if oid not in small:
                self._write_new(oid, stored, self._file(oid))
            elif not packed:
                self.packs.append(oid, stored)  # a few: the journal, as single stores
        return oids

    def put_loose(self, data: bytes) -> str:
        """Store ``data`` as a loose file even when a pack or journal holds it: a loose file is
        read first, so this mends a damaged packed copy that cannot be rewritten yet (a journal
        another process still writes)."""
        oid = hash_bytes(data)
        final = self._file(oid)
        if not os.path.exists(final):
            self._write_new(oid, encode(data, self.threshold), final)
        return oid

    def add_verified(self, oid: str, stored: bytes, where: str) -> None:
        """Insert an object fetched from elsewhere, after checking its bytes (no further than
        :attr:`limit`: a remote's crafted object must not fill memory)."""
        decode(oid, stored, where, self.limit)
        if self.has(oid):
            return
        self._write_new(oid, stored, self.path(oid))

    def put_stream(self, f: BinaryIO) -> tuple[str, int]:
        """Store a stream of any size in bounded memory; return (oid, size)."""
        from blake3 import blake3

        hasher = blake3(max_threads=blake3.AUTO)
        head = bytearray()
        while len(head) < self.threshold:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            head += chunk
        if stored_raw(len(head), head, self.threshold):
            oid = self.put_bytes(bytes(head))
            return oid, len(head)
        tmp = self._tmp("tmp")  # never a valid fan-out name, so never iterated
        size = 0
        try:
            with open(tmp, "wb") as out:
                with compressor().stream_writer(out, closefd=False) as z:
                    chunk = bytes(head)
                    del head
                    while chunk:
                        hasher.update(chunk)
                        z.write(chunk)
                        size += len(chunk)
                        chunk = f.read(CHUNK)
            oid = hasher.hexdigest()
            if self.has(oid):
                os.unlink(tmp)
            else:
                os.chmod(tmp, 0o444)
                self._tmp(oid[:2])
                self._install(tmp, oid)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise disk_error(exc, self.root) from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return oid, size

    def packed(self, oid: str) -> bytes | None:
        """The stored form of ``oid`` when it lives only in a pack (no loose file), else None:
        what a push or an export sends as bytes rather than from the object's file (then a
        regular file: anything else there is an IntegrityError, never opened)."""
        try:
            mode = os.lstat(self.path(oid)).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None:
            if not stat.S_ISREG(mode):
                raise self._not_a_file(oid, mode)
            return None
        hit = self.packs.read(oid)
        return None if hit is None else hit[0]

    def _open_packed(self, oid: str) -> _Packed | None:
        hit = self.packs.read(oid)
        if hit is None:
            return None
        return _Packed(hit[0], f"{hit[1]}: {oid}")

    def _open_loose(self, oid: str) -> BinaryIO:
        """The loose file of ``oid``, opened only if it is a regular file: a link or a FIFO there
        (a cloned repository may carry one) would read from elsewhere, or wait for ever."""
        try:
            f = open(self.path(oid), "rb", opener=_no_follow)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise self._not_a_file(oid, stat.S_IFLNK) from None
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            f.close()
            raise self._not_a_file(oid, mode)
        return f

    def _not_a_file(self, oid: str, mode: int) -> IntegrityError:
        what = file_kind(mode)
        return IntegrityError(
            f"corrupt object {oid[:12]}: {self.path(oid)} is {what}, not an object file (never "
            "read; `spell fsck --repair` rebuilds it from a files/ copy)"
        )

    def _open_stored(self, oid: str) -> BinaryIO:
        try:
            return self._open_loose(oid)
        except FileNotFoundError:
            packed = self._open_packed(oid)
            if packed is not None:
                return packed
            if self.fetcher is not None and self.fetcher(oid):
                return self._open_packed(oid) or self._open_loose(oid)
            raise self._missing(oid) from None

    def get(self, oid: str) -> bytes:
        with self._open_stored(oid) as f:
            stored = f.read()
            where = f.name
        return decode(oid, stored, str(where), self.limit)

    def iter_content(self, oid: str) -> Iterator[bytes]:
        """Content in chunks; the hash is checked before the last chunk is yielded."""
        with self._open_stored(oid) as f:
            yield from stream_content(oid, f, str(f.name), self.limit)

    def verify(self, oid: str) -> None:
        """Read the object through in bounded memory (IntegrityError if it is damaged)."""
        for _ in self.iter_content(oid):
            pass

    def __iter__(self) -> Iterator[str]:
        """Every local object id, in order: the loose ones and the packed ones."""
        if not self.root.is_dir():
            return iter(())
        self._check_root()
        found = set(self.packs)
        for fan in os.listdir(self.root):
            if (
                len(fan) != 2
                or not os.path.isdir(self.root / fan)
                or os.path.islink(self.root / fan)
            ):
                continue  # (a link is never followed: `spell fsck` reports it)
            for rest in os.listdir(self.root / fan):
                oid = fan + rest
                if is_oid(oid):
                    found.add(oid)
        return iter(sorted(found))

    def remove(self, oid: str) -> None:
        self.remove_many([oid])

    def remove_many(self, oids: list[str]) -> None:
        """Remove these objects, loose or packed (a pack is written again without them)."""
        for oid in oids:
            validate_oid(oid)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._fan(oid[:2]) + "/" + oid[2:])
        self.packs.drop(set(oids))

    def stored_size(self, oid: str) -> int:
        try:
            return os.stat(self.path(oid)).st_size
        except FileNotFoundError:
            hit = self.packs.locate(oid)
            if hit is None:
                raise
            return hit[2]

    def stored_mtime(self, oid: str) -> float:
        """When the object was written (a packed one: its pack), for gc's grace period."""
        try:
            return os.stat(self.path(oid)).st_mtime
        except FileNotFoundError:
            return self.packs.mtime(oid)

    def unpack(self, durable: Callable[[list[str]], None]) -> int:
        """Write every packed object as a loose file (made ``durable``), then remove the packs;
        return how many were written. ``spell commit`` does this first: git carries loose
        files, each left out when a ``files/`` copy carries its bytes."""

        def install(oid: str, stored: bytes) -> str | None:
            final = self._file(oid)
            if os.path.exists(final):
                return None
            self._write_new(oid, stored, final)
            return final

        return self.packs.unpack(install, durable)
