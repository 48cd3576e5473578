"""Which session rows a long-lived process may trust without a stat: the kernel's change feed.

A process that lists sessions twice lists again (a script, ``spell ui``, the watcher). From
its second full listing on, :class:`Feed` keeps an inotify watch (:class:`DirWatch`) on
``sessions/``, each session directory and each ``session.yaml`` and ``artifacts.yaml`` inode,
and the index re-reads only the sessions the kernel's queue names. Files stay the truth:
the kernel queues an event inside the system call that changes a file, so a change that
finished before a listing is in the queue it drains; where that cannot be promised (a full
queue, a watch refused, another file system) the feed says so and every row is stat-ed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

from ..errors import UnsafePath
from ..store.inotify import DirWatch

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Feed"]


class Feed:
    """The sets the index consults: ``mq``/``rq`` (dirs whose ``session.yaml``/``artifacts.yaml``
    was stat-ed since their last event), ``stale`` (an event since the last read: read it,
    whatever its stat says), ``pending`` (names under ``sessions/`` that appeared), and
    ``complete`` (every row was checked since the queue last lost track)."""

    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self.watch: DirWatch | None = None
        self.passes = 0
        self.mq: set[str] = set()
        self.rq: set[str] = set()
        self.pending: set[str] = set()
        self.stale: set[str] = set()
        self.complete = False
        self.losses = 0  # how often the queue lost track (a pass that saw one is not complete)
        self._lock = threading.Lock()

    def begin_pass(self) -> None:
        """A full listing starts: take what changed; on the second one, start watching (before
        its stats, so they cover what came before)."""
        self.drain()
        if self.watch is None and self.passes == 1 and not self.ws.memory:  # (once a process)
            base = f"{self.ws.storage.base}sessions"
            if DirWatch.usable(base):
                w = DirWatch(base)
                if w.start(self.ws.storage.listdir("sessions")):
                    self.watch = w
        self.passes += 1

    def drain(self) -> None:
        """Take the changes the kernel queued: their rows must be looked at again."""
        w = self.watch
        if w is None:
            return
        with self._lock:
            changed = w.changed()
            if changed is None:  # the queue lost track: every row is checked once more
                self.mq.clear()
                self.rq.clear()
                self.complete = False
                self.losses += 1
                if not w.watching(""):  # the sessions folder went, or a forked child
                    self.watch = None
                return
            self.mq -= changed
            self.rq -= changed
            self.pending |= changed
            self.stale |= changed

    def unchanged(self) -> bool:
        """Nothing changed since the last full listing, as far as the kernel's queue says: what
        that listing found still holds (a watcher answers a repeated question from it)."""
        self.drain()
        # (a name the queue gave is stale until a listing reads it; a lost queue is not complete)
        return self.complete and not self.stale

    def vouch(
        self, dir: str, manifest: Any, records: Any, signature: Callable[[str, str], Any]
    ) -> None:
        """``dir``'s files were just stat-ed after its watch was in place: ``manifest`` and
        ``records`` are what the stat said (None: no such file; False: not stat-ed). Each
        file's own inode is watched too (an edit through a hard link elsewhere reaches no
        directory watch), then stat-ed again with ``signature(dir, name)``: a change between
        the two stats is not vouched for."""
        w = self.watch
        if w is None or not w.watching(dir):
            return
        for name, seen, quiet in (
            ("session.yaml", manifest, self.mq),
            ("artifacts.yaml", records, self.rq),
        ):
            if seen is None:  # no such file: the directory's watch sees it come
                quiet.add(dir)
            elif seen is not False and w.watch_file(dir, name):
                try:
                    if signature(dir, name) == seen:
                        quiet.add(dir)
                except UnsafePath:  # a link there now: not vouched for
                    pass

    def forget(self, dir: str) -> None:
        self.stale.discard(dir)
        self.mq.discard(dir)
        self.rq.discard(dir)

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None
