"""Descriptors kept open between stores, so that a script storing one result at a time does not
open and close the same two files for each (issue 19: a 1 KiB store against ``git hash-object
-w``): a session's record file and its in-flight list.

A descriptor is kept with the inode it was opened on and handed out only for that inode, which
the caller has just read from a ``stat`` of the path: an open descriptor keeps its inode from
being reused, so the same number means the same file. A file replaced since (``git checkout``,
another process's rename) has another inode, and its old descriptor is closed, not used.
A descriptor handed out is the taker's until it gives it back, so two threads never share one,
and none is closed under a thread still writing through it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict

__all__ = ["KeptFiles"]


class KeptFiles:
    """At most ``size`` open descriptors, by workspace-relative path (the least used closed)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._held: OrderedDict[str, tuple[int, int]] = OrderedDict()  # rel: (fd, inode)
        self._lock = threading.Lock()

    def take(self, rel: str, inode: int) -> int | None:
        """The descriptor kept for ``rel`` if it is open on ``inode`` (now the caller's), or None
        (one kept on another inode is closed)."""
        with self._lock:
            held = self._held.pop(rel, None)
        if held is None:
            return None
        if held[1] == inode:
            return held[0]
        _close(held[0])
        return None

    def give(self, rel: str, fd: int, inode: int) -> None:
        """Keep ``fd``, open on ``inode`` of ``rel``, for the next :meth:`take`."""
        with self._lock:
            old = self._held.pop(rel, None)
            self._held[rel] = (fd, inode)
            out = [old] if old is not None else []
            while len(self._held) > self.size:
                out.append(self._held.popitem(last=False)[1])
        for held in out:
            _close(held[0])

    def forget(self, prefix: str) -> None:
        """Close what is kept for ``prefix`` and below (a folder removed)."""
        with self._lock:
            gone = [r for r in self._held if r == prefix or r.startswith(prefix + "/")]
            out = [self._held.pop(r) for r in gone]
        for held in out:
            _close(held[0])

    def close(self) -> None:
        with self._lock:
            out, self._held = list(self._held.values()), OrderedDict()
        for held in out:
            _close(held[0])


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
