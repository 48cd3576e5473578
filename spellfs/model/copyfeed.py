"""A session's working copy kept current from the kernel's queue (git's fsmonitor, in-process).

Every save first checks ``files/`` for hand edits (SPEC §1): without help that is an ``lstat``
per file, so a save after one change would cost O(files). A process that checks the same
session again and again (a script saving in a loop, the daemon, ``spell ui``) gets a
:class:`CopyFeed` on its third scan: an inotify watch on ``files/`` and on each entry's inode
(:class:`~spellfs.store.inotify.EntryWatch`), started *before* one full scan. From then on a
scan looks again only at

- the names the queue reports (written, touched, created, removed, renamed, linked, also
  through another name for the same file),
- the names whose records were appended since (our own stores, another process's),
- the few entries that could not be watched by inode,

and keeps the rest of the last answer. Why that is the same answer a full scan gives: an entry's
status depends only on its file and its latest record. The kernel queues an event inside the
system call that changes a file, so every change after the watch began is either in the queue
drained now (and looked at now, after the drain) or comes later (and is looked at then). A
change to the rules (``.spellignore``, the size limit), a rewritten record file, a full queue,
a ``files/`` directory that moved, went or was replaced, or a forked child make the next scan a
full one. Not covered, as for git's fsmonitor: writes through a shared memory map (inotify does
not report them) and file systems whose changes may come from elsewhere (the feed is only used
on local ones, see :meth:`~spellfs.store.inotify.DirWatch.usable`).
"""

from __future__ import annotations

import os
from typing import Any

from ..store.inotify import EntryWatch

__all__ = ["CopyFeed", "FEED_AFTER", "MAX_FEEDS", "MAX_ENTRIES"]

FEED_AFTER = 2  # full scans of a session in one process before it gets a feed
MAX_FEEDS = 4  # sessions with a feed per process (each holds an inotify descriptor)
MAX_ENTRIES = 50_000  # entries of one files/ watched by inode at most (the user's watch limit)


class CopyFeed:
    """One session's last scan answer and what changed since, for :class:`Worktree.scan`."""

    def __init__(self, fdir: str) -> None:
        self.watch = EntryWatch(fdir)
        self.always: set[str] = set()  # entries not watched by inode: looked at every time
        # the last answer and what it was for: (WorkingCopy, rules, records inode, generation,
        # records read); None until a full scan with the watch on
        self._last: tuple | None = None

    @property
    def answer(self) -> Any:
        """The last answer (a WorkingCopy the caller brings up to date in place), or None."""
        return None if self._last is None else self._last[0]

    def start(self) -> bool:
        """Watch ``files/`` from now on; the caller then scans everything once."""
        self._last = None
        self.always.clear()
        return self.watch.start()

    def follow(self, name: str) -> None:
        """Watch the entry ``name`` by inode; one that cannot be is looked at every time."""
        if self.watch.follow(name):
            self.always.discard(name)
        else:
            self.always.add(name)

    def since(self, rules: tuple, log: Any) -> set[str] | None:
        """The names to look at again since :meth:`keep`, or None when everything must be."""
        if self._last is None or self.watch.ident is None:
            return None
        _, was, inode, generation, count = self._last
        if (was, inode, generation) != (rules, log.inode, log.generation):
            return None  # (a rewritten record file has a new generation: records only grow)
        if self.crowded():
            return None
        try:
            st = os.stat(self.watch.path)
        except OSError:
            return None
        if (st.st_dev, st.st_ino) != self.watch.ident:
            return None  # files/ (or the session above it) was replaced: the watch sees the old
        names = self.watch.changed()
        if names is None:
            return None
        names.update(r["name"] for r in log.records[count:])
        names.update(self.always)
        return names

    def crowded(self) -> bool:
        """More entries than :data:`MAX_ENTRIES` are watched, or cannot be."""
        return self.watch.watched + len(self.always) > MAX_ENTRIES

    def keep(self, answer: Any, rules: tuple, log: Any) -> None:
        """Remember ``answer`` (the caller's own copy) as of the records in ``log`` now."""
        self._last = (answer, rules, log.inode, log.generation, len(log.records))

    def close(self) -> None:
        self.watch.close()
        self._last = None
