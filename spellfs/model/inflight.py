"""The in-flight journal of stores: interrupted work leaves no phantoms.

Before a store writes ``files/`` copies it lists their names in
``.spell/inflight/<dir>`` and empties the list after its record append (the commit
point); the file stays, so a store creates and removes no file for it. A list found
later not empty (:func:`pending`), with the session lock free, belongs to a store that never
appended (killed, interrupted, out of space): each listed copy whose content is an
object no record of that name holds is put back to what the records say (or removed),
never adopted as a hand edit; a listed copy whose content is not in the object store
was edited by hand after the crash, and stays. :mod:`spellfs.model.worktree` (every
command), the watcher and the next store itself call :func:`repair_inflight` when a list
is there.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from ..store import disk_error, write_all
from .statcache import hash_path

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["INFLIGHT", "inflight", "pending", "repair_inflight"]

INFLIGHT = ".spell/inflight"


def _valid(name: str) -> bool:
    from .artifact_log import valid_name

    return valid_name(name)


class _Journal:
    def __init__(self, ws: "Workspace", dir: str, inode: int | None = None) -> None:
        self.ws = ws
        self.dir = dir
        self.fd: int | None = None
        self.noted = False  # names written to the list since it was last emptied
        # the list's inode, when known: a descriptor kept open on it since the last store is
        # taken rather than opening it again, and one opened is kept (:mod:`~spellfs.store.kept`)
        self.inode = inode

    def note_many(self, names: list[str]) -> None:
        """Say ``files/<name>`` is about to be written, for each of ``names``, for records not yet
        appended (one write for a chunk of a bulk add)."""
        if self.ws.memory or not names:
            return
        try:  # nothing is copied yet: a full disk here is a one-line error, nothing touched
            if self.fd is None and self.inode is not None:
                self.fd = self.ws.storage.kept.take(f"{INFLIGHT}/{self.dir}", self.inode)
            if self.fd is None:
                self.inode = None
                path = self.ws.storage.internal("inflight")  # (never a link: a clone may carry one)
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                try:  # the folder is there after the first store: one open, not three more calls
                    self.fd = os.open(f"{path}/{self.dir}", flags, 0o644)
                except OSError:  # not yet (or something else wrong: fails as it always did)
                    os.makedirs(path, exist_ok=True)
                    self.fd = os.open(f"{path}/{self.dir}", flags, 0o644)
            # (valid names: UTF-8 without lone surrogates, never a newline)
            if len(names) == 1:  # (a single store's)
                write_all(self.fd, names[0].encode() + b"\n")
            else:
                write_all(self.fd, b"".join(n.encode() + b"\n" for n in names))
            self.noted = True
        except OSError as exc:
            raise disk_error(exc, f"{INFLIGHT}/{self.dir}") from None

    def committed(self, next: list[str] | None = None) -> None:
        """Empty the list: the chunk noted so far is appended, so a later kill puts back only the
        next. ``next``: the names of the next chunk, noted and being written already (a twin
        works ahead, :mod:`.twin`): the list becomes those in one rename, so no moment lists
        neither chunk."""
        if self.fd is None:
            return
        if not next:
            os.ftruncate(self.fd, 0)
            self.noted = False
            return
        path = f"{self.ws.root}/{INFLIGHT}/{self.dir}"
        tmp = f"{self.ws.storage.tmpdir}/.inflight.{self.dir}.{os.getpid()}.tmp"  # (fsck clears)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        try:
            try:
                fd = os.open(tmp, flags, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                fd = os.open(tmp, flags, 0o644)
            try:
                write_all(fd, b"".join(n.encode() + b"\n" for n in next))
                os.replace(tmp, path)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:  # the list still names both chunks: a repair puts back the next
            raise disk_error(exc, f"{INFLIGHT}/{self.dir}") from None
        os.close(self.fd)
        self.fd, self.inode = fd, None  # (the same file now, under the list's name)

    def close(self) -> None:
        """Close the list, or keep it open for the next store when it is empty (after a commit;
        it keeps what a failed store whose repair failed too left, for the next command)."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        if self.noted:
            os.close(fd)
            return
        try:
            inode = self.inode if self.inode is not None else os.fstat(fd).st_ino
        except OSError:
            os.close(fd)
            return
        self.ws.storage.kept.give(f"{INFLIGHT}/{self.dir}", fd, inode)


def pending(ws: "Workspace", dir: str) -> bool:
    """Whether a store of ``dir`` left copies noted and not committed (its list is not empty):
    one is running now (its lock is held), or it was interrupted and they must be put back."""
    sig = ws.storage.signature(f"{INFLIGHT}/{dir}")
    return sig is not None and sig[1] > 0


class _Nested:
    """The list of a store made inside another store of the same session (an AfterArtifactStore
    hook's): its names join that store's list, which may name the next chunk already (a twin
    writes it meanwhile), and only that store empties it."""

    def __init__(self, outer: _Journal) -> None:
        self.outer = outer
        self.names: list[str] = []

    def note_many(self, names: list[str]) -> None:
        self.outer.note_many(names)
        self.names.extend(names)

    def committed(self, next: list[str] | None = None) -> None:
        self.names = []  # (appended: the outer store's next commit, or its end, drops them)


#: The list of each session a store of this process holds open (under the session's lock).
_OPEN: dict[tuple[int, str], _Journal] = {}


def inflight(ws: "Workspace", dir: str) -> "_Inflight":
    """Around a store (under the session lock): copies noted are put back if it fails before its
    append."""
    return _Inflight(ws, dir)


class _Inflight:
    """:func:`inflight`'s context. A class, not a generator: every single store enters one."""

    __slots__ = ("ws", "dir", "key", "journal")

    def __init__(self, ws: "Workspace", dir: str) -> None:
        self.ws, self.dir, self.key = ws, dir, (id(ws), dir)
        self.journal: _Journal | _Nested | None = None

    def __enter__(self) -> "_Journal | _Nested":
        outer = _OPEN.get(self.key)
        if outer is not None:
            self.journal = _Nested(outer)
            return self.journal
        sig = self.ws.storage.signature(f"{INFLIGHT}/{self.dir}")  # (as pending() looks)
        if sig is not None and sig[1] > 0:  # a store killed before its append left these: put
            repair_inflight(self.ws, self.dir)  # them back first (this store's emptying of the
            sig = None  # list drops them)
        journal = _Journal(self.ws, self.dir, None if sig is None else sig[0])
        self.journal = _OPEN[self.key] = journal
        return journal

    def __exit__(self, kind: object, *exc: object) -> None:
        journal = self.journal
        if isinstance(journal, _Nested):
            if kind is not None and journal.names:  # its own copies only: the outer store's
                with contextlib.suppress(Exception):  # are being written
                    repair_inflight(self.ws, self.dir, journal.names)
            return
        assert journal is not None
        try:
            if kind is not None and journal.fd is not None:
                with contextlib.suppress(Exception):
                    repair_inflight(self.ws, self.dir)
            elif kind is None and journal.noted:  # a store inside this one (a hook's) noted its
                journal.committed()  # names after the last commit, and appended: empty the list
        finally:
            _OPEN.pop(self.key, None)
            journal.close()


def _journal_names(ws: "Workspace", dir: str) -> set[str]:
    """The lines of the list as they are: the empty one after the last newline, and a last name
    a crash cut inside a character, are no valid names and the repair skips them."""
    try:
        return set(
            ws.storage.read(f"{INFLIGHT}/{dir}").decode(errors="surrogateescape").split("\n")
        )
    except FileNotFoundError:
        return set()


def repair_inflight(ws: "Workspace", dir: str, only: list[str] | None = None) -> list[str]:
    """Put back the ``files/`` copies a store that never appended left (call under the session
    lock); ``only``: just these names, the list kept (a store inside a store failed)."""
    rel = f"{INFLIGHT}/{dir}"
    names = _journal_names(ws, dir) if only is None else set(only)
    log = ws.log(dir)
    log.refresh()
    limit = ws.config.get("watch.materialize_max_bytes")
    fixed = []
    for name in sorted(names):
        if not _valid(name):
            continue
        path = f"{ws.root}/sessions/{dir}/files/{name}"
        try:
            got = hash_path(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        if got is None:
            continue
        digest = got[0]
        rec = log.latest(name)
        if rec is not None and rec.get("hash") == digest:
            continue  # what the records say
        if not ws.objects.has(digest):
            continue  # content only the disk has: edited by hand since, so it stays
        if rec is None or rec["size"] > limit:  # (every live record has a size: schema.py)
            ws.storage.remove(f"sessions/{dir}/files/{name}")
        else:
            ws.storage.write(f"sessions/{dir}/files/{name}", ws.objects.get(rec["hash"]))
        fixed.append(name)
    if only is None:
        ws.storage.remove(rel)
    return fixed
