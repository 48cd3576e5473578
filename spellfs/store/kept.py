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

__all__ = ["KeptFiles"]


class KeptFiles:
    """At most ``size`` open descriptors, by workspace-relative path (the least used closed).
    No lock: each step is one dict operation, which threads see whole, and a descriptor taken
    out is no longer in the dict for another thread to take or close."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._held: dict[str, tuple[int, int]] = {}  # rel: (fd, inode), least used first

    def take(self, rel: str, inode: int) -> int | None:
        """The descriptor kept for ``rel`` if it is open on ``inode`` (now the caller's), or None
        (one kept on another inode is closed)."""
        held = self._held.pop(rel, None)
        if held is None:
            return None
        if held[1] == inode:
            return held[0]
        _close(held[0])
        return None

    def give(self, rel: str, fd: int, inode: int) -> None:
        """Keep ``fd``, open on ``inode`` of ``rel``, for the next :meth:`take`."""
        held = self._held
        self._drop([rel])
        held[rel] = (fd, inode)
        if len(held) > self.size:
            self._drop(list(held)[: len(held) - self.size])  # (the least used first)

    def forget(self, prefix: str) -> None:
        """Close what is kept for ``prefix`` and below (a folder removed)."""
        self._drop([r for r in list(self._held) if r == prefix or r.startswith(prefix + "/")])

    def close(self) -> None:
        self._drop(list(self._held))

    def _drop(self, rels: list[str]) -> None:
        for rel in rels:  # (list(dict) is one call: another thread's change cannot come inside)
            out = self._held.pop(rel, None)
            if out is not None:
                _close(out[0])


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
