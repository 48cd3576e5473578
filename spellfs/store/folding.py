"""Folding packs away: dropping objects (gc, repair), merging many packs into one (gc), and
writing every packed object loose (``spell commit``: git carries loose files).

A mixin of :class:`~spellfs.store.packs.Packs`. Each operation writes what stays first,
durable, and removes a pack or journal only after; a journal only once its writer is gone
(looked at BEFORE it is read, so no append can come after the read) and only when it was read
to its end, so damage past what a parse reached keeps its bytes for fsck and repair.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from ..errors import IntegrityError
from .codec import decode
from .journal import JOURNAL, abandoned
from .packfile import open_regular

if TYPE_CHECKING:
    from .journal import Journal

__all__ = ["MERGE_FROM", "PackFolding", "fsync_dir"]

#: ``spell gc`` merges the packs into one once there are more than this many ...
MERGE_FROM = 32
#: ... the smallest first, at most this many bytes of them at a time.
MERGE_BYTES = 64 << 20


class PackFolding:
    """The folding half of :class:`~spellfs.store.packs.Packs` (it uses the packs' folder,
    index, journal and look)."""

    dir: str
    journal: "Journal"
    _where: dict[str, tuple[str, int, int]]
    _loaded: set[str]
    _lock: "contextlib.AbstractContextManager"

    if TYPE_CHECKING:

        def _real(self) -> bool: ...
        def seal(self) -> None: ...
        def refresh(self) -> None: ...
        def write(self, objects: Iterable[tuple[str, bytes]]) -> str | None: ...
        def _entries(self, name: str) -> tuple[list[tuple[str, int, int]], bool]: ...

    @contextlib.contextmanager
    def _opened(self, name: str) -> Iterator[tuple[int, list, bool] | None]:
        """Pack or journal ``name`` open for folding away: ``(descriptor, entries, removable)``,
        or None when it is gone. A journal is removable only when its writer is gone (looked at
        BEFORE it is read: an append after the read would otherwise go with it) and it was read
        to its end (damage past what was read keeps it, for fsck to name and repair to set
        aside)."""
        path = os.path.join(self.dir, name)
        with abandoned(path) if name.endswith(JOURNAL) else contextlib.nullcontext(True) as free:
            try:
                index, whole = self._entries(name)
                fd = open_regular(path)
            except FileNotFoundError:
                yield None
                return
            try:
                yield fd, index, bool(free) and whole
            finally:
                os.close(fd)

    def drop(self, oids: set[str]) -> None:
        """Remove ``oids`` from the packs holding them: each such pack is written again without
        them (the rest first, durable), then removed."""
        if not self._real():
            return
        self.seal()
        self.refresh()
        hits: dict[str, set[str]] = {}
        for oid in oids:
            hit = self._where.get(oid)
            if hit is not None:
                hits.setdefault(hit[0], set()).add(oid)
        for name, gone in sorted(hits.items()):
            self._rewrite(name, gone)
        if hits:
            fsync_dir(self.dir)
            self.refresh()  # (the objects kept now live in the new packs)

    def _rewrite(self, name: str, gone: set[str]) -> bool:
        """Write pack or journal ``name`` again without ``gone``, then remove it; False when it
        stays (a journal still written to, or not read to its end)."""
        with self._opened(name) as opened:
            if opened is None or not opened[2]:
                return False
            fd, index, _ = opened
            keep = [(o, at, size) for o, at, size in index if o not in gone]
            self.write((o, os.pread(fd, size, at)) for o, at, size in keep)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.dir, name))
        with self._lock:
            self._loaded.discard(name)
            self._where = {o: w for o, w in self._where.items() if w[0] != name}
        return True

    def merge(self) -> int:
        """Past :data:`MERGE_FROM` packs and journals whose writers are gone, write the objects
        of the smallest as one pack and remove them (``spell gc``): every process reads each
        pack's index on its first look, and each storing command leaves one. Below, only fold
        dead processes' journals into packs. Return how many went."""
        if not self._real():
            return 0
        self.seal()
        self.refresh()
        names = sorted(self._loaded)
        if len(names) <= MERGE_FROM:  # only fold the journals of processes that died unsealed
            return sum(self._rewrite(n, set()) for n in names if n.endswith(JOURNAL))
        names = _smallest(self.dir, names)
        with contextlib.ExitStack() as stack:
            opened = [(n, stack.enter_context(self._opened(n))) for n in names]
            taken: list[str] = []
            objects: list[tuple[str, bytes]] = []
            seen: set[str] = set()
            for name, o in opened:
                if o is None or not o[2]:
                    continue
                fd, index, _ = o
                stored = [(oid, os.pread(fd, size, at)) for oid, at, size in index]
                try:
                    for oid, data in stored:
                        decode(oid, data, f"{self.dir}/{name}: {oid}")
                except IntegrityError:
                    continue  # a damaged one stays where it is, for fsck to name
                taken.append(name)
                objects += [(oid, data) for oid, data in stored if oid not in seen]
                seen.update(oid for oid, _ in stored)
            self.write(objects)
            for name in taken:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.dir, name))
        fsync_dir(self.dir)
        self.refresh()
        return len(taken)

    def unpack(
        self, install: Callable[[str, bytes], str | None], durable: Callable[[list[str]], None]
    ) -> int:
        """Hand every packed object to ``install`` (which writes it loose and returns the path it
        wrote, or None when it was there already), make those files ``durable``, then remove the
        packs; return how many objects were written. ``spell commit`` does this first: git
        carries loose files. A pack that another process's gc rewrote meanwhile is looked for
        again under its new name; a damaged object is not installed, and its pack stays."""
        if not self._real():
            return 0
        self.seal()
        written: list[str] = []
        done: set[str] = set()
        remove: list[str] = []
        while True:
            self.refresh()
            todo = sorted(self._loaded - done)
            if not todo:
                break
            for name in todo:
                done.add(name)
                with self._opened(name) as opened:
                    if opened is None:
                        continue  # rewritten by a gc: its new name is read on the next round
                    fd, index, removable = opened
                    path = os.path.join(self.dir, name)
                    for oid, offset, size in index:
                        stored = os.pread(fd, size, offset)
                        try:
                            decode(oid, stored, f"{path}: {oid}")
                        except IntegrityError:
                            removable = False  # damaged: fsck names it, repair rebuilds it
                            continue
                        out = install(oid, stored)
                        if out is not None:
                            written.append(out)
                    if removable:  # (a journal still written to stays: its objects are loose too)
                        remove.append(path)
        if not remove and not written:
            return 0
        durable(written + sorted({os.path.dirname(p) for p in written}))
        for path in remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        fsync_dir(self.dir)
        self.refresh()
        return len(written)


def _smallest(dir: str, names: list[str]) -> list[str]:
    """The smallest of ``names`` (files in ``dir``) that together hold at most
    :data:`MERGE_BYTES`, two at least: a merge holds what it writes in memory, and the next gc
    goes on where this one stopped."""
    sizes = []
    for name in names:
        with contextlib.suppress(OSError):
            sizes.append((os.lstat(os.path.join(dir, name)).st_size, name))
    taken: list[str] = []
    total = 0
    for size, name in sorted(sizes):
        if len(taken) >= 2 and total + size > MERGE_BYTES:
            break
        taken.append(name)
        total += size
    return taken


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # a file system that cannot fsync a directory
    finally:
        os.close(fd)
