"""A clean check remembered: the next one re-stats only what it saw, by ctime.

:class:`Recall` keeps, per session, the answer of the last working-copy scan whose every stat
was older than the racy window, with the ``files/`` directory's (inode, mtime, ctime) and
each entry's ctime. A later scan in the same process gives that answer again when the
records and rules are unchanged (the ``key``) and no stat moved:

- a name that comes to mean another inode (created, removed, renamed, linked over) changes
  the directory's mtime;
- a file's ctime changes on every write, truncate and chmod, and only the kernel sets it
  (``touch -d`` cannot put it back).

So 10,000 files cost one ``lstat`` each, relative to the directory's descriptor, and one
list compare: no tuple, no table, no hash.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from .statcache import RACY_NS

__all__ = ["Recall"]


class Recall:
    """dir → (key, files/ dir stat, names, their ctime_ns, answer); the last 64 sessions."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple] = {}

    def answer(self, dir: str, key: tuple, fdir: str) -> Any:
        """The remembered answer (a copy) if nothing it depends on moved, else None."""
        memo = self._seen.get(dir)
        if memo is None or memo[0] != key or _ctimes(fdir, memo[2], memo[1]) != memo[3]:
            return None
        return memo[4].copy()

    def forget(self, dir: str) -> None:
        self._seen.pop(dir, None)

    def remember(
        self, dir: str, key: tuple, start: int, dst: os.stat_result, kept: list, answer: Any
    ) -> None:
        """Keep ``answer`` of a scan that began at ``start`` and saw ``dst`` (the directory) and
        the entries ``kept``, when every stat was older than the racy window: a change after
        it then moves some ctime."""
        sigs = [e.stat(follow_symlinks=False).st_ctime_ns for e in kept]
        if max([dst.st_ctime_ns, dst.st_mtime_ns, *sigs]) + RACY_NS >= start:
            return
        dsig = (dst.st_ino, dst.st_mtime_ns, dst.st_ctime_ns)
        self._seen[dir] = (key, dsig, [e.name for e in kept], sigs, answer.copy())
        while len(self._seen) > 64:
            self._seen.pop(next(iter(self._seen)))


def _ctimes(fdir: str, names: list[str], dsig: tuple) -> list | None:
    """The ctime of each of ``names`` under ``fdir``, or None when the directory itself moved
    or a name is gone."""
    try:
        fd = os.open(fdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        d = os.fstat(fd)
        if (d.st_ino, d.st_mtime_ns, d.st_ctime_ns) != dsig:
            return None
        stat = functools.partial(os.lstat, dir_fd=fd)
        return [s.st_ctime_ns for s in map(stat, names)]
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)
