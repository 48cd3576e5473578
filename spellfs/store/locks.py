"""The workspace's named locks: one thread at a time in this process (a re-entrant thread lock),
then one process at a time (``flock`` on a file under ``.spell/locks``, taken on the outermost
entry only). A store takes its session's lock and re-enters it for its append.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from typing import Callable

__all__ = ["FileLock", "Locks"]


class FileLock:
    """A re-entrant lock shared by threads and processes. A class, not a generator: a single
    store enters one four times."""

    __slots__ = ("_fd", "_thread", "_depth")

    def __init__(self, fd: Callable[[], int]) -> None:
        self._fd = fd  # the open lock file (opened on first use)
        self._thread = threading.RLock()
        self._depth = 0  # (changed only by the thread holding _thread)

    def __enter__(self) -> None:
        self._thread.acquire()
        if self._depth == 0:
            try:
                fcntl.flock(self._fd(), fcntl.LOCK_EX)
            except BaseException:  # (Ctrl-C while another process holds it)
                self._thread.release()
                raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                fcntl.flock(self._fd(), fcntl.LOCK_UN)
        finally:
            self._thread.release()


class Locks:
    """A workspace's named locks: a :class:`FileLock` each, taken on ``<folder>/<name>.lock``
    (opened once, never through a link: ``folder`` returns ``.spell/locks``, checked)."""

    def __init__(self, folder: Callable[[], str]) -> None:
        self._folder = folder
        self._fds: dict[str, int] = {}
        self._locks: dict[str, FileLock] = {}
        _ALL.add(self)

    def forked(self) -> None:
        """In a forked child: the lock files it inherited are its parent's open files, whose
        ``flock`` the two would share (both holding a lock at once, their stores interleaved):
        the child closes its copies (the parent's locks stay held) and opens its own."""
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds, self._locks = {}, {}

    def lock(self, name: str) -> FileLock:
        held = self._locks.get(name)
        if held is None:
            held = self._locks.setdefault(name, FileLock(lambda: self.fd(name)))
        return held

    def fd(self, name: str) -> int:
        """The open file that lock ``name`` is taken on."""
        fd = self._fds.get(name)
        if fd is None:
            from .links import open_own

            folder = self._folder()
            os.makedirs(folder, exist_ok=True)
            rel = f".spell/locks/{name}.lock"
            fd = self._fds[name] = open_own(f"{folder}/{name}.lock", rel, os.O_RDWR | os.O_CREAT)
        return fd

    def close(self) -> None:
        """Close the lock files (a lock held now is released with them)."""
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


_ALL: "weakref.WeakSet[Locks]" = weakref.WeakSet()


def _forked() -> None:
    for locks in list(_ALL):
        locks.forked()


os.register_at_fork(after_in_child=_forked)
