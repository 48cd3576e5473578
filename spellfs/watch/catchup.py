"""The watcher's start-up and rescan half: catch up with what changed while nobody watched.

The stat cache and hashing it relies on live in :mod:`spellfs.model.statcache`,
shared with the working-copy check every command makes (:mod:`spellfs.model.worktree`).
"""

from __future__ import annotations

import os
import stat as statmod
import time
from typing import Any

from ..errors import ManifestError
from ..model.statcache import RACY_NS, Stat, StatCache, hash_path, is_editor_temp, stat_of
from ..model.inflight import pending, repair_inflight

__all__ = ["CatchUp", "RACY_NS", "StatCache", "Stat", "hash_path", "is_editor_temp", "stat_of"]


class CatchUp:
    """The :class:`~spellfs.watch.watcher.Watcher`'s start-up and rescan half (a mixin)."""

    ws: Any
    cache: StatCache
    quiet: float
    progress: Any
    _prefix: str
    _bad: dict
    _manifests: dict
    _queue: Any

    def catch_up(self, dirs: list[str] | None = None) -> None:
        """Record what changed while nobody watched (all sessions, or ``dirs``).

        Stats every file under ``files/``; hashes only those whose stat differs from
        the cache, and compares with the index's live artifacts.
        """
        index = self.ws.index
        if dirs is None:
            rows = index.refresh_all()
        else:
            rows = [r for r in (index.refresh_dir(d) for d in dirs) if r is not None]
        live: dict[str, dict[str, dict]] = {}
        for d, rec in index.artifact_rows(
            [r.dir for r in rows] if dirs is not None else None, "", []
        ):
            live.setdefault(d, {})[rec["name"]] = rec
        settling = time.time_ns() - int(self.quiet * 1e9)
        with self.progress("catching up", len(rows)) as bar:
            for row in rows:
                if self._queue.stopping:
                    return  # stopped mid-way: the next start catches up again
                bar.advance()
                d = row.dir
                if d.startswith("."):
                    continue
                if row.error and row.error.startswith(f"sessions/{d}/session.yaml"):
                    self._report_bad(d, ManifestError(row.error))
                    continue
                if row.manifest is not None:
                    self._bad.pop(d, None)
                    self._manifests[d] = row.manifest
                self._scan_session(d, live.get(d, {}), settling)

    def _scan_session(self, d: str, live: dict[str, dict], settling: int) -> None:
        if pending(self.ws, d):  # a store killed mid-way: put its copies back first
            with self.ws.storage.lock(f"s-{d}"):
                repair_inflight(self.ws, d)
        fdir = f"{self._prefix}{d}/files"
        if os.path.islink(self._prefix + d) or os.path.islink(fdir):
            real = os.path.realpath(fdir)
            if not self._inside(real):
                self._warn_once(
                    ("link", fdir, real),
                    f"skipped sessions/{d}/files: a link out of the workspace (to {real})",
                )
                return
        present: set[str] = set()
        try:
            entries = list(os.scandir(fdir))
        except (FileNotFoundError, NotADirectoryError):
            entries = []
        for e in entries:
            present.add(e.name)
            if is_editor_temp(e.name):
                continue
            try:
                s = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            st = (s.st_ino, s.st_size, s.st_mtime_ns, s.st_mode, s.st_ctime_ns)
            rec = live.get(e.name)
            rel = f"sessions/{d}/files/{e.name}"
            if (
                rec is not None
                and statmod.S_ISREG(st[3])
                and self.cache.lookup(rel, st) == rec.get("hash")
            ):
                continue
            if st[2] > settling:
                self._schedule(("f", d, e.name), st)  # being written right now: let it settle
            else:
                self._file(d, e.name, st, scanned=True)
        for name in live:
            if name not in present:
                self._file(d, name, None, scanned=True)
