"""Where workspace files live: the disk, or memory for ``storage_backend: memory``.

Sessions, records and state go through a :class:`Storage` with workspace-relative
paths, so the memory backend runs the very same session and artifact code and
writes nothing. Disk writes are atomic (temp file in the same directory, then
``os.replace``); appends are one ``write`` on an ``O_APPEND`` descriptor, so a
killed process leaves either the whole line or none of it in view.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import threading
from pathlib import Path
from typing import Iterator

from ..errors import SpellError

__all__ = ["FsStorage", "MemoryStorage", "Storage", "atomic_replace", "atomic_write", "disk_error", "write_all"]


def disk_error(exc: OSError, path: object) -> SpellError:
    """A one-line error for a failed write (disk full, read-only, permissions)."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    hint = " (free some space and retry; nothing stored before this was touched)" if exc.errno == errno.ENOSPC else ""
    return SpellError(f"cannot write {path}: {reason}{hint}")


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to the open descriptor ``fd`` (``os.write`` may write fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write(path: str | Path, data: bytes, fsync: bool = False, mode: int | None = None,
                 tmpdir: str | None = None) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new, never half.

    The temporary file lives in ``tmpdir`` when given (the workspace keeps them under
    ``.spell/tmp``, so a killed writer leaves nothing in view under ``sessions/``),
    else beside ``path``. A failure is a one-line :func:`disk_error` naming ``path``.
    """
    try:
        atomic_replace(path, data, fsync, mode, tmpdir)
    except OSError as exc:
        raise disk_error(exc, os.fspath(path)) from None


def atomic_replace(path: str | Path, data: bytes, fsync: bool = False, mode: int | None = None,
                   tmpdir: str | None = None) -> None:
    """:func:`atomic_write` for callers that report a failure their own way: it raises the ``OSError``."""
    path = os.fspath(path)
    head, name = os.path.split(path)
    short = os.fsdecode(os.fsencode(name)[:100])  # 100 bytes, not characters: '日' is 3
    tmp = f"{tmpdir or head}/.{short}.{os.getpid()}.{threading.get_ident()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        try:
            fd = os.open(tmp, flags, 0o644 if mode is None else mode)
        except FileNotFoundError:
            os.makedirs(tmpdir or head, exist_ok=True)
            fd = os.open(tmp, flags, 0o644 if mode is None else mode)
        try:
            write_all(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, path)
        except FileNotFoundError:
            os.makedirs(head, exist_ok=True)
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            os.unlink(tmp)  # sessions/ on another filesystem: fall back to a temp beside the file
            atomic_replace(path, data, fsync, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Storage:
    """The operations sessions and artifacts need from the place they live."""

    def read(self, rel: str) -> bytes: ...
    def read_from(self, rel: str, offset: int) -> bytes: ...
    def write(self, rel: str, data: bytes, fsync: bool = False) -> None: ...
    def append(self, rel: str, data: bytes) -> int: ...
    def exists(self, rel: str) -> bool: ...
    def isdir(self, rel: str) -> bool: ...
    def listdir(self, rel: str) -> list[str]: ...
    def remove(self, rel: str) -> None: ...
    def rmtree(self, rel: str) -> None: ...
    def mkdir(self, rel: str) -> None: ...
    def signature(self, rel: str) -> tuple[int, int, int] | None: ...
    def lock(self, name: str) -> contextlib.AbstractContextManager: ...
    def sync(self) -> None:
        """Make everything written so far survive a power cut (a checkpoint calls this)."""
    def realpath(self, rel: str) -> str | None: ...


class FsStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = os.fspath(root) + "/"
        self.tmpdir = self.base + ".spell/tmp"
        self._lock_fds: dict[str, int] = {}
        self._thread_locks: dict[str, threading.RLock] = {}
        self._depth: dict[str, int] = {}

    def path(self, rel: str) -> str:
        return self.base + rel

    def realpath(self, rel: str) -> str | None:
        return self.base + rel

    def read(self, rel: str) -> bytes:
        with open(self.base + rel, "rb") as f:
            return f.read()

    def read_from(self, rel: str, offset: int) -> bytes:
        with open(self.base + rel, "rb") as f:
            f.seek(offset)
            return f.read()

    def write(self, rel: str, data: bytes, fsync: bool = False) -> None:
        atomic_write(self.base + rel, data, fsync=fsync, tmpdir=self.tmpdir)

    def append(self, rel: str, data: bytes) -> int:
        """Append ``data`` with one write; return the file size before it."""
        path = self.base + rel
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                start = os.fstat(fd).st_size
                # A killed writer may have left a partial last line; never glue onto it.
                if start and os.pread(fd, 1, start - 1) != b"\n":
                    data = b"\n" + data
                n = os.write(fd, data)
                if n != len(data):
                    os.ftruncate(fd, start)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            finally:
                os.close(fd)
        except OSError as exc:
            raise disk_error(exc, path) from None
        return start

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self.base + rel)

    def isdir(self, rel: str) -> bool:
        return os.path.isdir(self.base + rel)

    def listdir(self, rel: str) -> list[str]:
        try:
            return os.listdir(self.base + rel)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.base + rel)

    def rmtree(self, rel: str) -> None:
        shutil.rmtree(self.base + rel, ignore_errors=True)

    def mkdir(self, rel: str) -> None:
        try:
            os.makedirs(self.base + rel, exist_ok=True)
        except OSError as exc:
            raise disk_error(exc, self.base + rel) from None

    def signature(self, rel: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.base + rel)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock shared by threads and processes (flock), re-entrant here."""
        tlock = self._thread_locks.setdefault(name, threading.RLock())
        with tlock:
            depth = self._depth.get(name, 0)
            if depth == 0:
                fd = self._lock_fds.get(name)
                if fd is None:
                    lockdir = self.root / ".spell" / "locks"
                    lockdir.mkdir(parents=True, exist_ok=True)
                    fd = os.open(lockdir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                    self._lock_fds[name] = fd
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth[name] = depth + 1
            try:
                yield
            finally:
                self._depth[name] -= 1
                if self._depth[name] == 0:
                    fcntl.flock(self._lock_fds[name], fcntl.LOCK_UN)

    def sync(self) -> None:
        # One call flushes every file and directory written before it, objects included;
        # per-file fsync of thousands of objects would cost far more.
        os.sync()

    def close(self) -> None:
        for fd in self._lock_fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._lock_fds.clear()


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
            raise FileNotFoundError(errno.ENOENT, "no such file", rel) from None

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
            raise FileNotFoundError(errno.ENOENT, "no such file", rel) from None

    def write(self, rel: str, data: bytes, fsync: bool = False) -> None:
        self.files[rel] = bytearray(data)
        self._touch(rel)

    def append(self, rel: str, data: bytes) -> int:
        """Grow in place: appends cost the same however long the file is."""
        buf = self.files.setdefault(rel, bytearray())
        start = len(buf)
        if start and buf[-1:] != b"\n":
            data = b"\n" + data
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
                names.add(p[len(prefix):].split("/")[0])
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

    def signature(self, rel: str) -> tuple[int, int, int] | None:
        if rel not in self.files:
            return None
        return (0, len(self.files[rel]), self._versions.get(rel, 0))

    def lock(self, name: str) -> contextlib.AbstractContextManager:
        return self._locks.setdefault(name, threading.RLock())

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
