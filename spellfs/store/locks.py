"""The workspace's named locks: one thread at a time in this process (a re-entrant thread lock),
then one process at a time (``flock`` on a file under ``.spell/locks``, taken on the outermost
entry only). A store takes its session's lock and re-enters it for its append.
"""

from __future__ import annotations

import fcntl
import threading
from typing import Callable

__all__ = ["FileLock"]


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
