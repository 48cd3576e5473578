"""Writing one file so that no reader ever sees half of it: a temporary file, then a rename.

Every layer that writes a whole file (records, manifests, objects, packs, exports, the file
tools) goes through :func:`atomic_write` or :func:`atomic_replace`; a failure is one line
naming the path (:func:`disk_error`), with a hint when the disk is full. Kept apart from the
storage backends because the object store and the tools write files outside any backend.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path

from ..errors import SpellError

__all__ = ["atomic_create", "atomic_replace", "atomic_write", "disk_error", "pid", "write_all"]


def disk_error(exc: OSError, path: object) -> SpellError:
    """A one-line error for a failed write (disk full, read-only, permissions)."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    hint = (
        " (free some space and retry; nothing stored before this was touched)"
        if exc.errno == errno.ENOSPC
        else ""
    )
    return SpellError(f"cannot write {path}: {reason}{hint}")


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to the open descriptor ``fd`` (``os.write`` may write fewer)."""
    n = os.write(fd, data)
    if n < len(data):  # (rare: a signal, a full disk, a pipe; one call otherwise)
        view = memoryview(data)[n:]
        while view:
            view = view[os.write(fd, view) :]


def atomic_write(
    path: str | Path,
    data: bytes,
    fsync: bool = False,
    mode: int | None = None,
    tmpdir: str | None = None,
    mtime_ns: int | None = None,
) -> os.stat_result | None:
    """Write ``data`` to ``path`` so readers see the old file or the new, never half.

    The temporary file lives in ``tmpdir`` when given (the workspace keeps them under
    ``.spell/tmp``, so a killed writer leaves nothing in view under ``sessions/``),
    else beside ``path``. A failure is a one-line :func:`disk_error` naming ``path``.
    ``mtime_ns`` sets the file's mtime before it comes into view; the file's stat once in place
    is then returned (what a stat cache may vouch for: any later write moves its ctime, and
    its mtime unless put back).
    """
    try:
        return atomic_replace(path, data, fsync, mode, tmpdir, mtime_ns)
    except OSError as exc:
        raise disk_error(exc, os.fspath(path)) from None


_pid = [os.getpid()]
_fds: list[int | None] = [None]  # this process's /proc/self/fd, open: what links an unnamed file


def _forked() -> None:
    _pid[0] = os.getpid()
    if _fds[0] is not None:  # (the parent's descriptors, not this process's)
        with contextlib.suppress(OSError):
            os.close(_fds[0])
        _fds[0] = None


os.register_at_fork(after_in_child=_forked)


def pid() -> int:
    """This process's id, without a system call each time (glibc stopped caching it): temp
    names carry it, and a bulk add names two temps a file."""
    return _pid[0]


def atomic_replace(
    path: str | Path,
    data: bytes,
    fsync: bool = False,
    mode: int | None = None,
    tmpdir: str | None = None,
    mtime_ns: int | None = None,
) -> os.stat_result | None:
    """:func:`atomic_write` for callers that report a failure their own way: it raises the
    ``OSError``."""
    path = os.fspath(path)
    head, _, name = path.rpartition("/")
    head = head or ("/" if path.startswith("/") else ".")  # (as os.path.split, quicker)
    if len(name) > 20 or not name.isascii():  # (80 bytes at most: 255 is the limit)
        name = name.encode("utf-8", "surrogateescape")[:80].decode("utf-8", "ignore")
    tmp = f"{tmpdir or head}/.{name}.{_pid[0]}.{threading.get_ident()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        try:
            fd = os.open(tmp, flags, 0o644 if mode is None else mode)
        except FileNotFoundError:
            os.makedirs(tmpdir or head, exist_ok=True)
            fd = os.open(tmp, flags, 0o644 if mode is None else mode)
        st = None
        try:
            write_all(fd, data)
            if mtime_ns is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            if fsync:
                os.fsync(fd)
            try:
                os.replace(tmp, path)
            except FileNotFoundError:
                os.makedirs(head, exist_ok=True)
                os.replace(tmp, path)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                os.unlink(tmp)  # sessions/ on another filesystem: a temp beside the file
                return atomic_replace(path, data, fsync, mode, None, mtime_ns)
            if mtime_ns is not None:
                st = os.fstat(fd)  # after the rename, which moves the ctime a stat cache keeps
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return st


def atomic_create(path: str, data: bytes) -> bool | None:
    """Write ``path``, where nothing was, so that it appears whole and never replaces a file
    someone put there meanwhile (False: that one is left as it is; nothing written).

    An unnamed file (``O_TMPFILE``) in the folder, linked into place: the link fails where a
    file is, and no look before the write leaves a moment in which an editor's save would be
    overwritten; a kill leaves nothing behind. None (nothing written) where the file system, or
    ``/proc``, has none, or the folder is not there: the caller looks, then writes as
    :func:`atomic_replace` does. A failure raises the ``OSError``.
    """
    head = path.rpartition("/")[0]
    try:
        fd = os.open(head, os.O_TMPFILE | os.O_WRONLY, 0o644)
    except (OSError, AttributeError):  # (no O_TMPFILE here; a folder not made yet)
        fd = None
    if fd is not None:
        try:
            write_all(fd, data)
            if _fds[0] is None:
                _fds[0] = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
            os.link(str(fd), path, src_dir_fd=_fds[0])  # (linkat, following the fd's link)
            return True
        except FileExistsError:
            return False
        except FileNotFoundError:  # no /proc
            pass
        finally:
            os.close(fd)
    return None
