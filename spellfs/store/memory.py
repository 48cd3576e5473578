"""The memory backend (``storage_backend: memory``): the same session and artifact code, run
against dicts, so a dry run or a test writes nothing to disk. Records behave as on disk: an
unfinished last line is set aside on the next append; objects are verified on every read."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from typing import BinaryIO, Iterable, Iterator

from .codec import decode, encode, hash_bytes, validate_oid
from .backend import ObjectStore
from .storage import Storage, torn_name

__all__ = ["MemoryObjectStore", "MemoryStorage"]


class MemoryStorage(Storage):
    """Nothing touches the disk; for tests and dry runs."""

    def __init__(self) -> None:
        self.files: dict[str, bytearray] = {}
        self.dirs: set[str] = {""}
        self._versions: dict[str, int] = {}
        self._counter = 0
        self._locks: dict[str, threading.RLock] = {}

    def realpath(self, rel: str) -> str | None:
        return None

    def read(self, rel: str) -> bytes:
        try:
            return bytes(self.files[rel])
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), rel) from None

    def _touch(self, rel: str) -> None:
        self._counter += 1
        self._versions[rel] = self._counter
        parts = rel.split("/")
        for i in range(1, len(parts)):
            self.dirs.add("/".join(parts[:i]))

    def read_from(self, rel: str, offset: int) -> bytes:
        try:
            return bytes(self.files[rel][offset:])
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), rel) from None

    def write(
        self, rel: str, data: bytes, fsync: bool = False, mtime_ns: int | None = None
    ) -> os.stat_result | None:
        self.files[rel] = bytearray(data)
        self._touch(rel)
        return None

    def append(self, rel: str, data: bytes, keep: bool = False) -> int:
        """Grow in place: appends cost the same however long the file is."""
        buf = self.files.setdefault(rel, bytearray())
        start = len(buf)
        if start and buf[-1:] != b"\n":  # an unfinished last line: set aside, as on disk
            whole = buf.rfind(b"\n") + 1
            self.files[torn_name(rel)] = buf[whole:]
            del buf[whole:]
            start = whole
        buf += data
        self._touch(rel)
        return start

    def exists(self, rel: str) -> bool:
        return rel in self.files or rel in self.dirs

    def isdir(self, rel: str) -> bool:
        return rel in self.dirs

    def listdir(self, rel: str) -> list[str]:
        prefix = rel.rstrip("/") + "/" if rel else ""
        names = set()
        for p in list(self.files) + list(self.dirs):
            if p.startswith(prefix) and p != rel:
                names.add(p[len(prefix) :].split("/")[0])
        names.discard("")
        return sorted(names)

    def remove(self, rel: str) -> None:
        self.files.pop(rel, None)

    def rmtree(self, rel: str) -> None:
        prefix = rel + "/"
        for p in [p for p in self.files if p.startswith(prefix)]:
            del self.files[p]
        self.dirs = {d for d in self.dirs if d != rel and not d.startswith(prefix)}

    def mkdir(self, rel: str) -> None:
        self._touch(rel + "/x")
        self.dirs.add(rel)

    def signature(self, rel: str) -> tuple[int, int, int, int] | None:
        if rel not in self.files:
            return None
        version = self._versions.get(rel, 0)
        return (0, len(self.files[rel]), version, version)

    def lock(self, name: str) -> contextlib.AbstractContextManager:
        return self._locks.setdefault(name, threading.RLock())

    def sync(self) -> None:
        pass

    def fsync(self, paths: Iterable[str]) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryObjectStore(ObjectStore):
    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, data: bytes) -> str:
        oid = hash_bytes(data)
        if oid not in self.objects:
            self.objects[oid] = encode(bytes(data), self.threshold)
        return oid

    def put_stream(self, f: BinaryIO) -> tuple[str, int]:
        data = f.read()
        return self.put_bytes(data), len(data)

    def get(self, oid: str) -> bytes:
        validate_oid(oid)
        try:
            return decode(oid, self.objects[oid], "memory", self.limit)
        except KeyError:
            raise self._missing(oid) from None

    def has(self, oid: str) -> bool:
        return oid in self.objects

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.objects))

    def remove(self, oid: str) -> None:
        self.objects.pop(oid, None)

    def stored_size(self, oid: str) -> int:
        return len(self.objects[oid])
