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
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Iterable

from .atomic import atomic_create, atomic_replace, atomic_write, disk_error
from .flush import fsync_paths
from .kept import KeptFiles
from .locks import FileLock, Locks

__all__ = ["FsStorage", "Storage", "torn_name"]


def _pread_all(fd: int, offset: int, size: int) -> bytes:
    """The bytes of ``fd`` from ``offset`` to its end, ``size`` being its size a moment ago: a
    record file's new lines in two ``pread`` calls, where a buffered file object makes eight."""
    parts: list[bytes] = []
    want = max(size - offset, 0) + 1
    while True:
        chunk = os.pread(fd, want, offset)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        offset += len(chunk)
        want = 1 << 20


def torn_name(rel: str) -> str:
    """Where the unfinished last line of record file ``rel`` is kept when an append sets it
    aside."""
    return (
        f".spell/repair/{rel.replace('/', '__')}.{time.strftime('%Y%m%dT%H%M%S')}."
        f"{time.time_ns() % 10**9}.torn"
    )


class Storage:
    """The operations sessions and artifacts need from the place they live."""

    #: descriptors kept open between stores (none kept: a file system's own is larger)
    kept = KeptFiles(0)

    def read(self, rel: str) -> bytes: ...
    def read_from(self, rel: str, offset: int) -> bytes: ...
    def write(
        self, rel: str, data: bytes, fsync: bool = False, mtime_ns: int | None = None
    ) -> os.stat_result | None:
        """Replace ``rel`` atomically; with ``mtime_ns``, set its mtime first and return its stat
        (the memory backend returns None)."""

    def create(self, rel: str, data: bytes) -> bool:
        """Write ``rel`` where nothing is: False (nothing written) when something is there,
        put there meanwhile by someone else (:func:`~.atomic.atomic_create`)."""
        if self.exists(rel):
            return False
        self.write(rel, data)
        return True

    def append(self, rel: str, data: bytes, keep: bool = False) -> int: ...

    def append_known(self, rel: str, data: bytes, inode: int, size: int) -> tuple | None:
        """Append ``data`` to ``rel``, known (a stat just taken, under its lock) to be file
        ``inode`` of ``size`` bytes that end with a newline, through a descriptor an earlier
        append with ``keep`` left open; return ``(size, signature after)``, or None (nothing
        written) when there is no such descriptor, and :meth:`append` is the way."""
        return None

    def exists(self, rel: str) -> bool: ...
    def isdir(self, rel: str) -> bool: ...
    def listdir(self, rel: str) -> list[str]: ...
    def remove(self, rel: str) -> None: ...
    def rmtree(self, rel: str) -> None: ...
    def mkdir(self, rel: str) -> None: ...

    def changed(self, rel: str) -> None:
        """``rel`` changed outside this process (the kernel's queue said so): what was known
        of it (that it is a real folder, not a link) is looked at again."""

    def signature(self, rel: str) -> tuple[int, int, int, int] | None:
        """(inode, size, mtime, ctime) of a file, None when there is none: what caches compare to
        tell a change. ctime too, as git's index does: an edit that keeps the size and puts the
        mtime back (``cp -p``, ``touch -r``) still moves the ctime, which no one can set."""

    def lock(self, name: str) -> contextlib.AbstractContextManager: ...
    def sync(self) -> None:
        """Make everything written so far survive a power cut (the whole machine's writes;
        checkpoints use fsync)."""

    def fsync(self, paths: "Iterable[str]") -> None:
        """Make exactly ``paths`` (absolute; files or directories) survive a power cut."""

    def realpath(self, rel: str) -> str | None: ...


class FsStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = os.fspath(root) + "/"
        self.locks = Locks(lambda: self.internal("locks"))
        self.kept = KeptFiles()  # (a session's record file and in-flight list, between stores)
        from .links import PathGuard

        self.guard = PathGuard(self.base)

    def path(self, rel: str) -> str:
        return self.base + rel

    def internal(self, name: str) -> str:
        """The path of ``.spell/<name>`` (one of :data:`~.links.INTERNAL`), refused when it or
        ``.spell`` is a link (looked at once a process; a sweep that deletes looks again)."""
        self.guard.check(f".spell/{name}")
        return f"{self.base}.spell/{name}"

    @property
    def tmpdir(self) -> str:
        """Where atomic writes keep their temporary files (``.spell/tmp``)."""
        return self.internal("tmp")

    def realpath(self, rel: str) -> str | None:
        return self.base + rel

    def _open_read(self, rel: str) -> int:
        return self._open_stat(rel)[0]

    def _open_stat(self, rel: str) -> tuple[int, os.stat_result]:
        """A descriptor for reading ``rel`` and its stat; links and special files under sessions/
        are refused."""
        self.guard.check(rel, final=False)
        # spellfs's own files: never through a link (elsewhere, templates/ say, a user's link is
        # followed as before)
        own = rel.startswith(("sessions", ".spell/"))
        try:
            fd = os.open(
                self.base + rel, os.O_RDONLY | (os.O_NOFOLLOW | os.O_NONBLOCK if own else 0)
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP and own:
                from .links import refusal

                raise refusal(rel, os.lstat(self.base + rel).st_mode) from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) and own:
            os.close(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), self.base + rel)
            from .links import refusal

            raise refusal(rel, st.st_mode)
        return fd, st

    def read(self, rel: str) -> bytes:
        return self.read_from(rel, 0)

    def read_from(self, rel: str, offset: int) -> bytes:
        fd, st = self._open_stat(rel)
        try:
            return _pread_all(fd, offset, st.st_size)
        finally:
            os.close(fd)

    def write(
        self, rel: str, data: bytes, fsync: bool = False, mtime_ns: int | None = None
    ) -> os.stat_result | None:
        # The last component is replaced, never followed; the directories on the way are checked.
        self.guard.check(rel, final=False)
        return atomic_write(
            self.base + rel, data, fsync=fsync, tmpdir=self.tmpdir, mtime_ns=mtime_ns
        )

    def create(self, rel: str, data: bytes) -> bool:
        self.guard.check(rel, final=False)
        try:
            made = atomic_create(self.base + rel, data)
        except OSError as exc:
            raise disk_error(exc, self.base + rel) from None
        # (no unnamed files here: look, then write, as any backend does)
        return super().create(rel, data) if made is None else made

    def append(self, rel: str, data: bytes, keep: bool = False) -> int:
        """Append ``data`` with one write; return the file size before it. ``keep``: the
        descriptor stays open for :meth:`append_known`.

        A session's record file is appended under that session's lock (``s-<dir>``,
        re-entrant: most callers hold it already), the lock every writer that rewrites
        a record file (``fsck --repair``) holds too, so no rewrite drops an append.
        """
        parts = rel.split("/")
        if len(parts) == 3 and parts[0] == "sessions":
            with self.lock(f"s-{parts[1]}"):
                return self._append(rel, data, keep)
        return self._append(rel, data, keep)

    def append_known(self, rel: str, data: bytes, inode: int, size: int) -> tuple | None:
        # Three calls (fstat, write, lstat) where a first append makes six (open, fstat, pread,
        # write, close, lstat): the fstat checks the file is still ``size`` bytes (what the
        # caller read, ending with a newline: nothing to set aside), the lstat that the path
        # still names it (else the write went to a file no one reads: done again by path).
        fd = self.kept.take(rel, inode)
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            if st.st_ino != inode:  # not ours: someone closed it and the number went to
                return None  # another file (left open, theirs)
            if st.st_size != size:
                os.close(fd)
                return None
            n = os.write(fd, data)
            if n != len(data):
                os.ftruncate(fd, size)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise disk_error(exc, self.base + rel) from None
        self.kept.give(rel, fd, inode)
        sig = self.signature(rel)
        if sig is None or sig[0] != inode:
            return None  # replaced while written (a checkout): the caller appends by path
        return size, sig

    def _append(self, rel: str, data: bytes, keep: bool = False) -> int:
        path = self.base + rel
        self.guard.check(rel, final=False)
        try:
            fd = os.open(
                path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644
            )
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    from .links import refusal

                    raise refusal(rel, st.st_mode)
                start = st.st_size
                # A killed writer may have left a partial last line: set it aside first,
                # so the new record lands on its own line and the file stays readable.
                if start and os.pread(fd, 1, start - 1) != b"\n":
                    start = self._set_aside_tail(fd, rel, start)
                n = os.write(fd, data)
                if n != len(data):
                    os.ftruncate(fd, start)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except BaseException:
                os.close(fd)
                raise
            if keep:
                self.kept.give(rel, fd, st.st_ino)
            else:
                os.close(fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP and rel.startswith("sessions"):  # (as _open_stat says)
                from .links import refusal

                raise refusal(rel, os.lstat(path).st_mode) from None
            raise disk_error(exc, path) from None
        return start

    def _set_aside_tail(self, fd: int, rel: str, size: int) -> int:
        """Move the unfinished last line of ``fd`` to ``.spell/repair/``; return the new size."""
        window = min(size, 1 << 20)
        while True:
            chunk = os.pread(fd, window, size - window)
            cut = chunk.rfind(b"\n")
            if cut >= 0 or window == size:
                break
            window = min(size, window * 4)
        keep = size - window + cut + 1
        tail = os.pread(fd, size - keep, keep)
        self.internal("repair")
        atomic_replace(self.base + torn_name(rel), tail, fsync=True, tmpdir=self.tmpdir)
        os.ftruncate(fd, keep)
        return keep

    def exists(self, rel: str) -> bool:
        self.guard.check(rel, final=False)
        return os.path.lexists(self.base + rel)

    def isdir(self, rel: str) -> bool:
        self.guard.check(rel)
        return os.path.isdir(self.base + rel)

    def listdir(self, rel: str) -> list[str]:
        self.guard.check(rel)
        try:
            return os.listdir(self.base + rel)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def remove(self, rel: str) -> None:
        self.guard.check(rel, final=False)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.base + rel)

    def rmtree(self, rel: str) -> None:
        self.guard.check(
            rel, final=False
        )  # a link itself is removed (rmtree refuses it: unlink it)
        if os.path.islink(self.base + rel):
            os.unlink(self.base + rel)
        else:
            shutil.rmtree(self.base + rel, ignore_errors=True)
        self.guard.forget(rel)
        self.kept.forget(rel)

    def changed(self, rel: str) -> None:
        self.guard.forget(rel)

    def mkdir(self, rel: str) -> None:
        self.guard.check(rel)
        try:
            os.makedirs(self.base + rel, exist_ok=True)
        except OSError as exc:
            raise disk_error(exc, self.base + rel) from None

    def signature(self, rel: str) -> tuple[int, int, int, int] | None:
        self.guard.check(rel, final=False)
        try:
            st = os.lstat(self.base + rel)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if (
            not stat.S_ISREG(st.st_mode)
            and not stat.S_ISDIR(st.st_mode)
            and rel.startswith("sessions")
        ):
            from .links import refusal

            raise refusal(rel, st.st_mode)
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def lock(self, name: str) -> FileLock:
        """An exclusive lock shared by threads and processes (flock), re-entrant here."""
        return self.locks.lock(name)

    def sync(self) -> None:
        os.sync()

    def fsync(self, paths: Iterable[str]) -> None:
        fsync_paths(paths, self.base)

    def close(self) -> None:
        self.locks.close()
        self.kept.close()
