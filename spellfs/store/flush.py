"""Making exactly some paths survive a power cut, as git's ``core.fsyncMethod=batch`` does (a
checkpoint names what it wrote; ``os.sync()`` would wait for every other process's writes too).
Moved out of :mod:`.storage`, whose disk backend calls it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import Iterable

from .atomic import disk_error

__all__ = ["FSYNC_MANY", "fsync_paths"]


#: More paths than this at once (a first checkpoint of a big session): one syncfs of the workspace's
#: file system instead; measured here, 5,000 objects took 0.4–1.3 s one by one and 45–155 ms so.
FSYNC_MANY = 256


# SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
_SFR_FLAGS = 1 | 2 | 4
_SFR_START = 2  # SYNC_FILE_RANGE_WRITE alone: start writeout, do not wait
_SFR: list = []


def _sync_file_range():
    """libc's ``sync_file_range`` (Linux), or None."""
    if not _SFR:
        fn = None
        if sys.platform.startswith("linux"):
            import ctypes
            import ctypes.util

            try:
                fn = ctypes.CDLL(
                    ctypes.util.find_library("c") or "libc.so.6", use_errno=True
                ).sync_file_range
                fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
                fn.restype = ctypes.c_int
            except (OSError, AttributeError):
                fn = None
        _SFR.append(fn)
    return _SFR[0]


def _syncfs(path: str) -> None:
    """Flush the one file system holding ``path`` (Linux ``syncfs``), else every one (``sync``)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def fsync_paths(paths: Iterable[str], base: str) -> None:
    """Make ``paths`` (absolute: files and directories) of the workspace at ``base`` durable,
    as git's ``core.fsyncMethod=batch`` does.

    Each file's pages are written out (``sync_file_range``: no device cache flush),
    then one ``fsync`` of the last path commits the file system journal (directory
    entries included) and flushes the device cache once. Unlike ``os.sync()`` this
    waits for nothing another process wrote. Where ``sync_file_range`` is missing,
    every path gets its own ``fsync``. Past :data:`FSYNC_MANY` paths, one
    ``syncfs`` of the workspace's file system costs less.
    """
    paths = list(dict.fromkeys(paths))
    if not paths:
        return
    if len(paths) > FSYNC_MANY:
        _syncfs(base)
        return
    writeout = _sync_file_range()
    if (
        writeout is not None and len(paths) > 16
    ):  # many: start every writeout before waiting for any
        for path in paths[:-1]:
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    writeout(fd, 0, 0, _SFR_START)
                finally:
                    os.close(fd)
    for i, path in enumerate(paths):
        last = i == len(paths) - 1
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            if last:  # the barrier must still happen
                fsync_paths([base + "sessions"], base)
            continue  # not here (an object on a remote): nothing of ours to flush
        except OSError as exc:
            raise disk_error(exc, path) from None
        try:
            if writeout is None or last:
                os.fsync(fd)
            elif writeout(fd, 0, 0, _SFR_FLAGS) != 0:
                os.fsync(fd)  # writeout refused: flush this one fully
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: a file system that cannot fsync (nothing to do)
                raise disk_error(exc, path) from None
        finally:
            os.close(fd)
