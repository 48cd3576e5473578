"""The working copy: what a session's ``files/`` holds that its records do not say.

``files/<name>`` is a working copy, like git's (SPEC §1, "the files are the
truth"). Every command that shows or changes a session compares it with the
records first, without the watcher: :meth:`Worktree.scan` stats each file and
hashes only those whose ``(inode, size, mtime_ns, ctime_ns)`` differs from the stat cache
(:mod:`spellfs.model.statcache`, shared with the watcher), so a clean session of
10,000 artifacts costs 10,000 ``stat`` calls, not reads. It answers:

- ``modified``: a live artifact whose copy differs from its latest record;
- ``added``: a file no live record names (editor temp files, dot files and
  ``.spellignore`` paths are never artifacts);
- ``deleted``: a live artifact whose copy is gone (a copy never written because
  the artifact is above ``watch.materialize_max_bytes`` is not a deletion);
- ``not_local``: a live artifact whose copy is missing and whose object is not in the local
  store (a clone that has not fetched what was kept out of git): not a deletion either
  (:mod:`spellfs.model.absent`); a copy kept out of git whose object is local again is
  written back by the scan.

Interrupted stores leave no phantoms: see :mod:`spellfs.model.inflight`; a scan
first puts back what an unfinished store left.
"""

from __future__ import annotations

import contextlib
import os
import stat as statmod
import threading
import time
from typing import TYPE_CHECKING, Any

from .absent import DELETED, NOT_LOCAL, UNWRITTEN, KeptOut, absence, write_back
from .copyfeed import FEED_AFTER, MAX_FEEDS, CopyFeed
from .handedits import HandEdits
from .inflight import INFLIGHT, inflight, pending, repair_inflight
from .recall import Recall
from .statcache import RACY_NS as _RACY, StatCache, hash_path, is_editor_temp, settled as _settled
from .working_copy import WorkingCopy

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["INFLIGHT", "WorkingCopy", "Worktree", "inflight", "repair_inflight"]


class Worktree(HandEdits):
    """``ws.worktree``: the working-copy view of every session, and what keeps it honest."""

    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self._cache: StatCache | None = None
        self._lock = threading.RLock()
        self._puts = 0  # stat-cache entries this process wrote: the memo below is rebuilt after any
        self._memo: dict[str, tuple] = {}
        self._recall = Recall()  # the fast path of a clean check repeated in this process
        self._scans: dict[str, int] = {}  # full scans per session, until one gets a feed
        self._feeds: dict[str, CopyFeed] = {}  # sessions checked often: see model/copyfeed.py
        self._looked: dict[str, int] = {}  # files/ entries the last full or fed scan looked at

    @property
    def on_disk(self) -> bool:
        return not self.ws.memory

    def _expected(self, dir: str, log: Any, cache: StatCache, prefix: str) -> tuple[dict, dict]:
        """(live table, name → (ino, size, mtime_ns, hash on disk, record hash, ctime_ns)) for the
        copies the stat cache vouches for; rebuilt only when the records or the cache changed (a
        clean check of 10,000 files is then a stat and a tuple compare each)."""
        key = (log.inode, log.generation, log.offset, self._puts)
        memo = self._memo.get(dir)
        if memo is not None and memo[0] == key:
            return memo[1], memo[2]
        live = log.table()
        entries = cache.entries
        expect = {}
        for name, rec in live.items():
            c = entries.get(prefix + name)
            if _settled(c):
                expect[name] = (c[0], c[1], c[2], c[3], rec.get("hash"), c[5])
        self._memo[dir] = (key, live, expect)
        while len(self._memo) > 64:
            self._memo.pop(next(iter(self._memo)))
        return live, expect

    def cache(self) -> StatCache:
        if self._cache is None:
            self._cache = StatCache(self.ws.root / ".spell" / "watch-cache.sqlite", prefix=None)
        return self._cache

    def _feed(self, dir: str, fdir: str) -> CopyFeed | None:
        """The session's feed, made on its FEED_AFTER + 1-th scan in this process (a one-off
        command never pays for the watches); the least recently made goes past MAX_FEEDS."""
        feed = self._feeds.get(dir)
        if feed is not None:
            return feed
        n = self._scans.get(dir, 0) + 1
        self._scans[dir] = n
        if n <= FEED_AFTER:
            return None
        feed = self._feeds[dir] = CopyFeed(fdir)
        while len(self._feeds) > MAX_FEEDS:
            self._drop_feed(next(iter(self._feeds)), again=True)
        return feed

    def looked(self, dir: str) -> int:
        """How many ``files/`` entries the last scan of ``dir`` in this process looked at: all of
        them, or (fed) those named as changed; 0 for a remembered answer (one ctime compare
        each)."""
        return self._looked.get(dir, 0)

    def fed(self, dir: str) -> bool:
        """Whether scans of ``dir`` in this process look only at what the queue says changed."""
        feed = self._feeds.get(dir)
        return feed is not None and feed.answer is not None

    def _drop_feed(self, dir: str, again: bool = False) -> None:
        """Stop watching ``dir``; unless ``again``, for good in this process (it cannot be)."""
        feed = self._feeds.pop(dir, None)
        if feed is not None:
            feed.close()
        self._scans[dir] = 0 if again else -(1 << 30)

    def close(self) -> None:
        for dir in list(self._feeds):
            self._feeds.pop(dir).close()
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    # -- looking -------------------------------------------------------------------
    def scan(self, dir: str, repair: bool = True) -> WorkingCopy:
        """Compare ``sessions/<dir>/files/`` with the records (stat first, hash what moved).

        ``repair``: first put back the copies of an interrupted store, and after the look write
        the copies kept out of git this workspace never had once their objects are local
        (``fsck`` only looks)."""
        wc = self._scan(dir, repair)
        if wc.written:
            todo, wc.written = wc.written, []
            if repair:
                copies = write_back(self.ws, dir, todo)
                if copies:
                    self.vouch(dir, copies)
                    wc.written = [c[0] for c in copies]
        return wc

    def _scan(self, dir: str, repair: bool) -> WorkingCopy:
        wc = WorkingCopy(dir)
        if not self.on_disk:
            return wc  # the memory backend has no hand editor
        ws = self.ws
        if repair and pending(ws, dir):
            with ws.storage.lock(
                f"s-{dir}"
            ):  # a store in progress finishes first; then the journal is stale
                wc.phantoms = repair_inflight(ws, dir)
        fdir = f"{ws.root}/sessions/{dir}/files"
        if os.path.islink(f"{ws.root}/sessions/{dir}") or os.path.islink(fdir):
            return wc  # links are refused elsewhere and reported by fsck; never followed here
        log = ws.log(dir)
        log.refresh()
        prefix = f"sessions/{dir}/files/"
        limit = ws.config.get("watch.materialize_max_bytes")
        with self._lock:
            rules = (limit, ws.storage.signature(".spellignore"))
            feed = self._feed(dir, fdir)
            if feed is not None:
                names = feed.since(rules, log)
                if names is not None:  # only these can have changed since the last answer
                    # (and those not local then: a read or a pull may have brought the object)
                    names = set(names) | set(feed.answer.not_local)
                    self._looked[dir] = len(names)
                    self._look_again(feed.answer, names, feed, log, prefix, limit)
                    feed.keep(feed.answer, rules, log)
                    out = feed.answer.copy()
                    out.phantoms = wc.phantoms
                    out.written, feed.answer.written = feed.answer.written, []
                    return out
                if not feed.start():
                    self._drop_feed(dir)
                    feed = None
            else:
                known = self._recall.answer(dir, self._key(log, rules), fdir)
                if known is not None:
                    self._looked[dir] = 0
                    return known  # no stat moved since a scan that saw them settled
            start = time.time_ns()
            cache = self.cache()
            cache.load(prefix)
            live, expect = self._expected(dir, log, cache, prefix)
            seen = looked = 0  # live artifacts whose copy is there; entries stat-ed
            kept: list[os.DirEntry] | None = []  # what the fast path re-checks; None: it may not
            try:
                dst = os.stat(fdir)
                entries = os.scandir(fdir)
            except (FileNotFoundError, NotADirectoryError):
                entries, kept = None, None
            with entries if entries is not None else contextlib.nullcontext(()) as it:
                for e in it:
                    name = e.name
                    if feed is not None:
                        feed.follow(name)  # before the look: a later change is then queued
                    try:
                        s = e.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        kept = None
                        continue
                    if kept is not None and not (name[0] == "." and name not in live):
                        kept.append(e)  # (a dot file is never an artifact: its stat cannot matter)
                    there, settled = self._judge(wc, name, s, expect.get(name), live, prefix, start)
                    seen += there
                    looked += 1
                    if not settled:
                        kept = None
            if seen < len(live):  # some copies are gone: which (a rare, slower path)
                try:
                    present = set(os.listdir(fdir))
                except OSError:
                    present = set()
                kept_out = KeptOut(ws)
                for name, rec in live.items():
                    if name not in present and rec.get("size", 0) <= limit:
                        self._absent(wc, name, rec, cache, prefix, kept_out)
                if wc.not_local or wc.written:
                    kept = None  # a fetch changes the answer without touching files/
            cache.flush()
            wc.deleted.sort()
            wc.not_local.sort()
            self._looked[dir] = looked
            self._recall.forget(dir)
            if feed is not None:
                if feed.crowded():
                    self._drop_feed(dir)  # too many to watch: stat them every time instead
                else:
                    feed.keep(wc.copy(), rules, log)
            elif kept is not None:
                self._recall.remember(dir, self._key(log, rules), start, dst, kept, wc)
        return wc

    def _judge(
        self,
        wc: WorkingCopy,
        name: str,
        s: os.stat_result,
        x: Any,
        live: Any,
        prefix: str,
        start: int,
    ) -> tuple[bool, bool]:
        """Enter the ``files/`` entry ``name`` (stat ``s``) in ``wc``: modified, added or
        neither. ``x`` is what the stat cache vouches for (None: nothing); ``live`` the live
        records by name. Returns (a live artifact's copy is there, the answer can be kept:
        the file was not being written, nor changed within the racy window before ``start``)."""
        if x is not None and _same(x, s):
            if x[3] != x[4]:  # the stat is what was hashed: no read
                wc.modified[name] = x[3]
            return True, True
        rec = live.get(name)
        if rec is None and is_editor_temp(name):
            return False, True
        if not statmod.S_ISREG(s.st_mode):
            return False, True  # a directory or link under files/ is no artifact (fsck: links)
        rel = prefix + name
        if rec is None and (self.ws.ignore.matches(rel) or not _valid(name)):
            return False, True
        got = hash_path(f"{self.ws.root}/{rel}")
        if got is None:  # being written right now: changed while read
            (wc.modified if rec is not None else wc.added)[name] = ""
            return rec is not None, False
        digest, _, st = got
        self.cache().put(rel, st, digest)
        self._puts += 1
        if rec is None:
            wc.added[name] = digest
        elif digest != rec.get("hash"):
            wc.modified[name] = digest
        return rec is not None, s.st_ctime_ns + _RACY < start

    def _absent(
        self, wc: WorkingCopy, name: str, rec: dict, cache: StatCache, prefix: str, kept: KeptOut
    ) -> None:
        """Enter live artifact ``name``, whose copy is missing, in ``wc``: deleted by hand, not
        local, or (kept out of git, never written here) to be written (:mod:`.absent`)."""
        why = absence(self.ws, wc.dir, name, rec, prefix + name in cache.entries, kept)
        if why == DELETED:
            wc.deleted.append(name)
        elif why == NOT_LOCAL:
            wc.not_local.append(name)
        elif why == UNWRITTEN:
            wc.written.append(name)

    def _look_again(
        self, wc: WorkingCopy, names: set[str], feed: CopyFeed, log: Any, prefix: str, limit: int
    ) -> None:
        """Bring the feed's last answer ``wc`` up to date for ``names``, the only entries that
        can have changed since (see :mod:`spellfs.model.copyfeed`)."""
        start = time.time_ns()
        cache = self.cache()
        base = f"{self.ws.root}/{prefix}"
        gone = False
        kept = KeptOut(self.ws)
        for name in names:
            wc.modified.pop(name, None)
            wc.added.pop(name, None)
            for missing in (wc.deleted, wc.not_local, wc.written):
                if name in missing:
                    missing.remove(name)
            rec = log.latest(name)
            feed.follow(name)
            try:
                s = os.lstat(base + name)
            except (FileNotFoundError, NotADirectoryError):
                feed.always.discard(name)
                if rec is not None and rec.get("size", 0) <= limit:
                    self._absent(wc, name, rec, cache, prefix, kept)
                    gone = True
                continue
            x = None
            c = cache.entries.get(prefix + name)
            if rec is not None and _settled(c):
                x = (c[0], c[1], c[2], c[3], rec.get("hash"), c[5])
            self._judge(wc, name, s, x, {name: rec} if rec is not None else {}, prefix, start)
        if gone:
            wc.deleted.sort()
            wc.not_local.sort()
        cache.flush()

    def _key(self, log: Any, rules: tuple) -> tuple:
        """What a scan's result depends on besides the stats: records, stat cache, ``rules`` (the
        size limit and `.spellignore`'s signature, read once at the scan's start)."""
        return (log.inode, log.generation, log.offset, self._puts, *rules)

    def vouch(self, dir: str, copies: list[tuple[str, Any, str]]) -> None:
        """Enter copies a store just wrote, ``(name, stat, hash)``, in the stat cache: their
        mtimes were set past the racy window before they came into view, so the next scan
        trusts them without a read."""
        prefix = f"sessions/{dir}/files/"
        with self._lock:
            cache = self.cache()
            cache.load(prefix)  # (entries read later must not replace these)
            for name, st, digest in copies:
                stat = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_ctime_ns)
                cache.put(prefix + name, stat, digest)
            self._puts += 1
            cache.flush()

    def scan_all(self) -> dict[str, WorkingCopy]:
        """Every session's working copy (the dirs holding a ``session.yaml``)."""
        ws = self.ws
        out = {}
        for d in sorted(ws.storage.listdir("sessions")):
            if not d.startswith(".") and ws.storage.exists(f"sessions/{d}/session.yaml"):
                out[d] = self.scan(d)
        return out


def _same(x: tuple, s: os.stat_result) -> bool:
    """Whether ``s`` is the stat the vouched entry ``x`` (see ``_expected``) was hashed at."""
    return (
        x[0] == s.st_ino and x[1] == s.st_size and x[2] == s.st_mtime_ns and x[5] == s.st_ctime_ns
    )


def _valid(name: str) -> bool:
    from .artifact_log import valid_name

    return valid_name(name)
