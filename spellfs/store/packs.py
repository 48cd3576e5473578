"""Packs: many small objects in one immutable file (issue 19; the format is :mod:`.packfile`).

A bulk store (``spell add`` of a directory, ``Artifact.store_many``) writes its new small
objects as one pack rather than a file each: creating a file is what such a store waits on
(20–600 µs each here), and every artifact already creates its ``files/`` copy. Git answers
small objects the same way. Single stores append to this process's journal instead
(:mod:`.journal`), which becomes a pack when sealed; until then readers parse its entries.
Both kinds are found and read here alike.

A pack is written under a temporary name, flushed to disk (fsync) and renamed into place, so
a reader sees a whole pack or none and a crash leaves at most a temporary (``spell gc`` removes
it). A pack never changes: dropping objects (gc, repair) writes a new pack of the rest, then
removes the old one, so a crash in between leaves duplicates, never a loss. A journal is
rewritten or removed only once its writer is gone, and only when it was read to its end.
Reads are verified against the id like any object's (:mod:`.objects`). ``spell commit``
unpacks first: git carries loose objects only.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from typing import Callable, Iterable, Iterator

from ..errors import IntegrityError, SpellError
from .atomic import disk_error, pid, write_all
from .journal import JOURNAL, Journal, scan
from .folding import PackFolding, fsync_dir
from .links import real_dir
from .packfile import MAGIC, index_bytes, open_regular, read_index

__all__ = ["PACK_DIR", "Packs"]

PACK_DIR = "pack"
_SETTLE_NS = 1_000_000_000
#: A store's look for packs other processes wrote (to store an object once) is taken again only
#: this long after the last: a script's stores cost no folder stat each. What it misses costs a
#: second copy of an object, never a loss.
_GLANCE_NS = 50_000_000

_ALL: "weakref.WeakSet[Packs]" = weakref.WeakSet()


def _fresh_locks() -> None:
    """In a forked child: locks another thread of the parent held at the fork would never be
    released there."""
    for packs in list(_ALL):
        packs._lock, packs._writing = threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_fresh_locks)


class Packs(PackFolding):
    """The packs under ``<objects>/pack``: which holds an object, and its stored bytes."""

    def __init__(self, objects: str, check_root: Callable[[], None] | None = None) -> None:
        self.dir = os.path.join(objects, PACK_DIR)
        self._check_root = check_root
        self._where: dict[str, tuple[str, int, int]] = {}  # id -> (pack name, offset, size)
        self._loaded: set[str] = set()
        self.bad: dict[str, str] = {}  # pack name -> why it cannot be read (fsck says so)
        self._settled: tuple[int, int] | None = None  # the folder's (ino, mtime) a look vouches for
        self._listed: tuple[int, int] | None = None  # the folder's (ino, mtime) at the last look
        self._scanned: dict[str, int] = {}  # another process's journal -> bytes of it parsed
        self._glanced = -_GLANCE_NS  # (monotonic) when a store last looked (not ``exact``)
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # a journal's append or seal, with what it tells _where
        self.journal = Journal(self.dir)
        _ALL.add(self)

    # -- finding ----------------------------------------------------------------------
    def _real(self) -> bool:
        """Whether the pack folder exists; refused when it (or a folder above) is a link, or a
        file."""
        if self._check_root is not None:
            self._check_root()
        real = real_dir(self.dir, f".spell/objects/{PACK_DIR}")
        if not real and os.path.lexists(self.dir):
            raise SpellError(
                f"cannot write .spell/objects/{PACK_DIR}: it is a file, not a folder "
                "(`spell fsck --repair` sets it aside)"
            )
        return real

    def _names(self) -> set[str]:
        if os.path.islink(self.dir):
            return set()  # never followed (`spell fsck` reports it; a write refuses)
        try:
            return {
                n
                for n in os.listdir(self.dir)
                if n[0] != "." and (n.endswith(".pack") or n.endswith(JOURNAL))
            }
        except (FileNotFoundError, NotADirectoryError):
            return set()

    def refresh(self, exact: bool = True) -> None:
        """Take in packs written (or removed) by other processes since the last look.

        Skipped while the folder's mtime is the one of a look taken well after it (one
        ``stat`` rather than a listing: a workspace may hold many packs). A look within
        :data:`_SETTLE_NS` of the mtime vouches for nothing: a pack renamed in later within
        the same timestamp tick would keep the mtime (git's racy-clean rule). Not ``exact``
        (a store asking whether to write an object again): a folder whose mtime has not moved
        since the last look is not listed again, racy or not; what that misses costs a second
        copy of an object, never a loss, and every store of a script's first second no longer
        lists the folder; nor is the folder looked at within :data:`_GLANCE_NS` of such a look."""
        self._check_journal()
        if not exact:
            glance = time.monotonic_ns()
            if glance - self._glanced < _GLANCE_NS:
                return
            self._glanced = glance
        try:
            st = os.stat(self.dir)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        key = None if st is None else (st.st_ino, st.st_mtime_ns)
        if key is None or key != (self._settled if exact else self._listed):
            for _ in range(5):  # a pack went while it was read (a gc rewrote it): look again
                if not self._look(st, key):
                    break
                st = None
        self._grown()

    def _look(self, st: os.stat_result | None, key: tuple[int, int] | None) -> bool:
        """List the folder and read what is new; True when a listed pack went meanwhile."""
        looked = time.time_ns()
        names = self._names()
        vanished = False
        self._settled = key if st is not None and looked - st.st_mtime_ns > _SETTLE_NS else None
        self._listed = key if st is not None else None
        with self._lock:
            self.bad = {n: why for n, why in self.bad.items() if n in names}  # (set aside since)
            known = None
            if self._loaded - names:  # a gc rewrote some: read them all again (an object may
                known, self._where, self._loaded = self._where, {}, set()  # be in two packs)
                self._scanned = {}
            for name in sorted(names - self._loaded - set(self.bad)):
                if name == self.journal.name:
                    continue  # this process's own: known as it is written
                try:
                    index, _ = self._entries(name)
                except FileNotFoundError:
                    vanished = True  # removed meanwhile (a gc rewrote it)
                    continue
                except (OSError, IntegrityError) as exc:
                    self.bad[name] = str(exc)
                    continue
                for oid, offset, size in index:
                    self._where.setdefault(oid, (name, offset, size))
                self._loaded.add(name)
                if name.endswith(JOURNAL):  # followed from the end of its last whole entry
                    self._scanned[name] = max((o + n for _, o, n in index), default=len(MAGIC))
            if known is not None:
                self._keep_known(known)
        return vanished

    def _check_journal(self) -> None:
        """This process's journal as it is now: a forked child's inherited one is read as the
        parent's (another process's); one whose file is no longer where it was made (removed by
        hand, or with its folder) is forgotten, and the next store starts another rather than
        appending where no reader looks."""
        name = self.journal.name
        if name is None:
            return
        if not self.journal.owned():
            with self._lock:
                self.journal.drop()
                self._scanned[name] = len(MAGIC)
                self._loaded.add(name)
        elif self.journal.gone():
            with self._lock:
                self.journal.drop()
                self._where = {o: w for o, w in self._where.items() if w[0] != name}

    def _keep_known(self, known: dict[str, tuple[str, int, int]]) -> None:
        """After a reading afresh, keep what this process knew that the listing did not show:
        its own journal, and a pack it sealed after the listing was taken (each file checked to
        be still there)."""
        there: dict[str, bool] = {}
        for oid, hit in known.items():
            if oid not in self._where:
                if hit[0] not in there:
                    there[hit[0]] = os.path.exists(os.path.join(self.dir, hit[0]))
                if there[hit[0]]:
                    self._where[oid] = hit

    def _grown(self) -> None:
        """Take in what other processes appended to their journals since the last look (an
        append moves no folder's mtime)."""
        for name, seen in list(self._scanned.items()):
            try:
                fd = open_regular(os.path.join(self.dir, name))
            except (OSError, IntegrityError):
                continue  # sealed or removed: the next listing sees it (the folder changed)
            try:
                size = os.fstat(fd).st_size
                more = os.pread(fd, size - seen, seen) if size > seen else b""
            finally:
                os.close(fd)
            index, end = scan(more, seen, seen)
            with self._lock:
                for oid, offset, size in index:
                    self._where.setdefault(oid, (name, offset, size))
                self._scanned[name] = end

    def _entries(self, name: str) -> tuple[list[tuple[str, int, int]], bool]:
        """``(id, offset, size)`` of each object in pack or journal ``name``, and whether the
        file was read to its end (a journal may stop early: a torn tail, or damage)."""
        path = os.path.join(self.dir, name)
        fd = open_regular(path)
        try:
            if not name.endswith(JOURNAL):
                return read_index(fd, path), True
            data = os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)
        if not data.startswith(MAGIC):
            raise IntegrityError(f"corrupt journal {path}: it does not begin {MAGIC!r}")
        index, end = scan(data, len(MAGIC))
        return index, end == len(data) or data[end : end + 4] == b"IDX1"

    def holds(self, oid: str) -> bool:
        """Whether a pack seen so far holds ``oid`` (no new look: see :meth:`refresh`)."""
        return oid in self._where

    def where(self, oid: str) -> str | None:
        """The path of the pack or journal known to hold ``oid`` (no new look, no check)."""
        hit = self._where.get(oid)
        return None if hit is None else os.path.join(self.dir, hit[0])

    def locate(self, oid: str, exact: bool = True) -> tuple[str, int, int] | None:
        """``(pack path, offset, size)`` of ``oid``'s stored form, or None.

        A pack found earlier is checked to be still there: another process's gc may have
        rewritten it without ``oid``, and a store that trusted the old answer would record an
        object it never wrote. ``exact``: as :meth:`refresh` takes it, for a pack never known to
        hold ``oid``; one that held it and went is looked for afresh, racy or not (a gc that
        rewrote it within the tick of the last look left the folder's mtime as it was)."""
        hit = self._where.get(oid)
        if hit is not None:
            if os.path.exists(os.path.join(self.dir, hit[0])):
                return os.path.join(self.dir, hit[0]), hit[1], hit[2]
            exact = True
        self.refresh(exact)
        hit = self._where.get(oid)
        if hit is None:
            return None
        return os.path.join(self.dir, hit[0]), hit[1], hit[2]

    def read(self, oid: str) -> tuple[bytes, str] | None:
        """The stored form of ``oid`` and the file it was read from, or None when no pack
        holds it."""
        for _ in range(2):
            hit = self.locate(oid)
            if hit is None:
                return None
            path, offset, size = hit
            try:
                fd = open_regular(path)
            except (OSError, IntegrityError):  # rewritten by a gc since: look again
                self.refresh()
                continue
            try:
                return os.pread(fd, size, offset), path
            finally:
                os.close(fd)
        return None

    def __iter__(self) -> Iterator[str]:
        self.refresh()
        return iter(sorted(self._where))

    def mtime(self, oid: str) -> float:
        """When the pack holding ``oid`` was written (its objects' age, for gc's grace)."""
        hit = self.locate(oid)
        if hit is None:
            raise FileNotFoundError(oid)
        return os.stat(hit[0]).st_mtime

    # -- writing ----------------------------------------------------------------------
    def write(self, objects: Iterable[tuple[str, bytes]]) -> str | None:
        """Write ``(id, stored form)`` pairs as one new pack, durable before it is visible;
        return its path (None when there was nothing to write)."""
        entries = []
        body = [MAGIC]
        at = len(MAGIC)
        for oid, stored in objects:
            entries.append((bytes.fromhex(oid), at, len(stored)))
            body.append(stored)
            at += len(stored)
        if not entries:
            return None
        body.append(index_bytes(sorted(entries), at))
        made = not self._real()
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as exc:
            raise disk_error(exc, self.dir) from None
        name = f"{os.urandom(12).hex()}.pack"
        tmp = os.path.join(self.dir, f".tmp-{pid()}-{name}")
        final = os.path.join(self.dir, name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                write_all(fd, b"".join(body))
                os.fsync(fd)  # the records that name these objects come after
            finally:
                os.close(fd)
            os.rename(tmp, final)
            fsync_dir(self.dir)
            if made:
                fsync_dir(os.path.dirname(self.dir))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise disk_error(exc, final) from None
        with self._lock:
            for raw, offset, size in entries:  # (this pack holds them for sure: a gc's rewrite)
                self._where[raw.hex()] = (name, offset, size)
            self._loaded.add(name)
        return final

    def append(self, oid: str, stored: bytes) -> None:
        """Store one object in this process's journal (a single store: see :mod:`.journal`)."""
        with self._writing:
            if self.journal.full:
                self._seal()
            name, offset = self.journal.append(oid, stored, self._real)
            with self._lock:
                self._where[oid] = (name, offset, len(stored))

    def seal(self) -> None:
        """Make this process's journal a pack (its objects keep their offsets)."""
        with self._writing:
            self._seal()

    def _seal(self) -> None:
        with self._lock:  # a reader that finds the journal renamed waits here, then finds the pack
            old = self.journal.name
            new = self.journal.seal()
            if old is None or new is None:
                return
            self._where = {o: (new, *w[1:]) if w[0] == old else w for o, w in self._where.items()}
            self._loaded.add(new)
