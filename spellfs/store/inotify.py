"""Which subdirectories of a folder changed, from the kernel's own queue (Linux inotify).

A listing of 10,000 sessions must notice a hand edit to any ``session.yaml``; asking the
disk means a ``stat`` per session every time. :class:`DirWatch` asks once: it watches the
folder and each subdirectory, and later answers "which changed since you last asked" by
draining the inotify queue, a single ``read``.

Why that answer can be trusted: the kernel queues an inotify event inside the system call
that changes the file, before that call returns. So every change that finished before
:meth:`DirWatch.changed` runs is in the queue it drains. When the answer is unknown (no
inotify, a full queue, a watch that could not be added, the folder itself moved, or a file
system whose changes may come from another machine) :meth:`changed` returns None and the
caller stats everything, as without it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import sys
from typing import Iterable

__all__ = ["LOCAL_FS", "DirWatch", "EntryWatch", "fs_type", "mount_type"]

_MODIFY, _ATTRIB, _CLOSE_WRITE = 0x2, 0x4, 0x8
_MOVED_FROM, _MOVED_TO, _CREATE, _DELETE = 0x40, 0x80, 0x100, 0x200
_DELETE_SELF, _MOVE_SELF, _UNMOUNT, _OVERFLOW, _IGNORED = 0x400, 0x800, 0x2000, 0x4000, 0x8000
_ONLYDIR, _DONT_FOLLOW, _ISDIR = 0x01000000, 0x02000000, 0x40000000
_SUB = (
    _MODIFY
    | _ATTRIB
    | _CLOSE_WRITE
    | _MOVED_FROM
    | _MOVED_TO
    | _CREATE
    | _DELETE
    | _DELETE_SELF
    | _MOVE_SELF
    | _ONLYDIR
    | _DONT_FOLLOW
)
# A record file's own inode: an edit through a hard link made elsewhere (another directory)
# queues no event on the session directory's watch, only on the inode's.
_FILE = _MODIFY | _ATTRIB | _CLOSE_WRITE | _DONT_FOLLOW
_TOP = _MOVED_FROM | _MOVED_TO | _CREATE | _DELETE | _DELETE_SELF | _MOVE_SELF | _ONLYDIR
_EVENT = struct.Struct("iIII")

# File systems whose every change passes through this kernel (others may change on a server).
LOCAL_FS = frozenset(
    "ext2 ext3 ext4 xfs btrfs tmpfs ramfs zfs f2fs jfs reiserfs bcachefs overlay".split()
)

_libc = None


def _lib():
    """libc, from the symbols this process already has (``find_library`` would run ldconfig)."""
    global _libc
    if _libc is None:
        import ctypes

        lib = ctypes.CDLL(None, use_errno=True)
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        _libc = lib
    return _libc


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def fs_type(path: str) -> str | None:
    """The file system type of the mount holding ``path`` (from /proc/self/mountinfo).
    Mount points are bytes: read as the file system's names are (``os.fsdecode``), so one
    that is not UTF-8 still matches the paths under it."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            return mount_type(os.path.realpath(path), f)
    except OSError:
        return None


def mount_type(path: str, mountinfo: Iterable[str]) -> str | None:
    """The type of the mount holding the absolute ``path``, given the lines of a mountinfo
    file: the longest mount point above it, the later of two at one point (it hides the
    earlier). A mount point's space is written ``\\040``."""
    best, kind = "", None
    for line in mountinfo:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        point = fields[4].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, right.split()[0]
    return kind


def _drain(fd: int) -> list[tuple[int, int, str]] | None:
    """Every queued event ``(watch descriptor, mask, name)``, or None when the read failed."""
    out: list[tuple[int, int, str]] = []
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return out
        except OSError:
            return None
        pos = 0
        while pos + 16 <= len(data):
            wd, mask, _cookie, size = _EVENT.unpack_from(data, pos)
            name = data[pos + 16 : pos + 16 + size].rstrip(b"\0")
            pos += 16 + size
            out.append((wd, mask, os.fsdecode(name)))


def _open() -> int:
    """A new non-blocking inotify descriptor, or -1."""
    try:
        return _lib().inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return -1


class DirWatch:
    """Changes under ``base``: which of its subdirectories saw an entry created, written,
    touched, renamed or removed (not deeper), and which subdirectories came or went."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.fd = -1
        self._wds: dict[int, str] = {}  # watch descriptor -> subdirectory name ("" = base)
        self._names: set[str] = set()  # the subdirectories watched
        self._files: dict[int, set[str]] = {}  # watch descriptor of a file -> its subdirectories
        self._lost = True  # the queue cannot vouch for anything until start() succeeds
        self._pid = 0

    LOCAL_FS = LOCAL_FS

    @staticmethod
    def usable(base: str) -> bool:
        """Whether every change under ``base`` passes through this kernel (Linux, local disk)."""
        return sys.platform.startswith("linux") and fs_type(base) in LOCAL_FS

    def start(self, names: list[str]) -> bool:
        """Watch ``base`` and its subdirectories ``names``. A change after this returns is seen
        by :meth:`changed`; what changed before, the caller checks itself (stat them now)."""
        self.close()
        fd = _open()
        if fd < 0:
            return False
        self.fd = fd
        self._pid = os.getpid()
        if self._add("", _TOP):
            self.close()
            return False
        for name in names:
            if self._add(name, _SUB) not in (0, errno.ENOENT, errno.ENOTDIR):
                self.close()  # no room for every watch (max_user_watches): stat as before
                return False
            # (a file or link there, or a dir gone: not watched, so the caller stats it each time)
        self._lost = False
        return True

    def _add(self, name: str, mask: int) -> int:
        """Watch subdirectory ``name`` (``""``: the base); 0, or the errno of the failure."""
        path = f"{self.base}/{name}" if name else self.base
        wd = _lib().inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            return _errno() or errno.EIO
        old = self._wds.get(wd)  # one watch per inode: a renamed dir keeps its watch
        self._wds[wd] = name
        if old is not None and old != name and old not in self._wds.values():
            self._names.discard(old)
        self._names.add(name)
        return 0

    def watch_file(self, name: str, filename: str) -> bool:
        """Watch the file ``filename`` of subdirectory ``name`` itself (its inode), so a change
        made through another name for it (a hard link elsewhere) is queued too. False when it
        cannot be (then the caller must stat it each time)."""
        if not self.watching(name):
            return False
        path = os.fsencode(f"{self.base}/{name}/{filename}")
        wd = _lib().inotify_add_watch(self.fd, path, _FILE)
        if wd < 0 or wd in self._wds:
            return False  # (a directory's descriptor: not a plain file there)
        self._files.setdefault(wd, set()).add(name)
        return True

    def watching(self, name: str) -> bool:
        """Whether changes in subdirectory ``name`` reach the queue."""
        return self.fd >= 0 and name in self._names

    def changed(self) -> set[str] | None:
        """Subdirectories changed since the last call (new ones are watched from now on), or
        None when that is not known and every one must be checked."""
        if self.fd < 0:
            return None
        if os.getpid() != self._pid:  # a forked child shares the parent's queue: never split it
            self.fd = -1  # (the parent's descriptor stays open for the parent)
            self.close()
            return None
        out: set[str] = set()
        events = _drain(self.fd)
        if events is None:
            self._lost = True
        for wd, mask, name in events or ():
            self._event(wd, mask, name, out)
        if self._lost:  # the caller checks everything now; later changes are queued again
            self._lost = False
            if "" not in self._wds.values():
                self.close()  # the base itself moved or went: nothing to watch any more
            return None
        return out

    def _event(self, wd: int, mask: int, name: str, out: set[str]) -> None:
        if mask & _OVERFLOW:
            self._lost = True
            return
        sub = self._wds.get(wd)
        if sub is None:
            owners = self._files.get(wd)
            if owners is not None:
                out.update(owners)
                if mask & _IGNORED:  # the file is gone (or its watch was removed)
                    self._files.pop(wd, None)
            return
        if sub == "":  # the base itself: a subdirectory came or went, or the base moved
            if mask & (_DELETE_SELF | _MOVE_SELF | _UNMOUNT | _IGNORED):
                self._wds.pop(wd, None)
                self._lost = True
            elif name:
                out.add(name)
                if mask & (_CREATE | _MOVED_TO) and mask & _ISDIR and self._add(name, _SUB):
                    self._lost = True
            return
        out.add(sub)
        if mask & _IGNORED:  # the subdirectory was removed or moved away
            self._wds.pop(wd, None)
            if sub not in self._wds.values():
                self._names.discard(sub)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = -1
        self._wds.clear()
        self._names.clear()
        self._files.clear()
        self._lost = True


# The entries of one directory (names created, written, touched, renamed or removed there):
# the events a session directory's watch takes.
_ENTRIES = _SUB


class EntryWatch:
    """Which entries of the directory ``path`` changed since the last call, from the queue.

    The directory's watch sees every change made through a name in it. A change made through
    another name for the same file (a hard link elsewhere, made before or after) queues an event
    only on the file's own inode, so each entry is also watched by inode (:meth:`follow`)."""

    def __init__(self, path: str) -> None:
        self.path = path.rstrip("/")
        self.fd = -1
        self.ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the directory watched
        self._dir = -1
        self._files: dict[int, set[str]] = {}  # watch descriptor of an entry's inode -> names
        self._pid = 0

    def start(self) -> bool:
        """Watch the directory: a change after this returns is reported by :meth:`changed`."""
        self.close()
        if not DirWatch.usable(self.path):
            return False
        self.fd = _open()
        if self.fd < 0:
            return False
        self._pid = os.getpid()
        self._dir = _lib().inotify_add_watch(self.fd, os.fsencode(self.path), _ENTRIES)
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if self._dir < 0 or st is None:
            self.close()
            return False
        self.ident = (st.st_dev, st.st_ino)
        return True

    def follow(self, name: str) -> bool:
        """Watch the entry ``name`` by inode too (a no-op when it already is); False when it
        cannot be, and then the caller must look at it every time."""
        if self.fd < 0:
            return False
        path = os.fsencode(f"{self.path}/{name}")
        wd = _lib().inotify_add_watch(self.fd, path, _FILE)
        if wd < 0 or wd == self._dir:
            return False
        self._files.setdefault(wd, set()).add(name)
        return True

    @property
    def watched(self) -> int:
        """How many inodes are watched (each counts against the user's inotify limit)."""
        return len(self._files)

    def changed(self) -> set[str] | None:
        """Names changed since the last call, or None when that is not known (the queue
        overflowed, the directory moved or went, a forked child): look at everything."""
        if self.fd < 0:
            return None
        if os.getpid() != self._pid:  # a forked child shares the parent's queue: never split it
            self.fd = -1
            self.close()
            return None
        events = _drain(self.fd)
        out: set[str] = set()
        lost = events is None
        for wd, mask, name in events or ():
            if mask & _OVERFLOW:
                lost = True
            elif wd == self._dir:
                if mask & (_DELETE_SELF | _MOVE_SELF | _UNMOUNT | _IGNORED):
                    lost = True
                elif name:
                    out.add(name)
            else:
                out.update(self._files.get(wd, ()))
                if mask & _IGNORED:  # the inode is gone (its last link removed)
                    self._files.pop(wd, None)
        if lost:
            self.close()
            return None
        return out

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = -1
        self._dir = -1
        self.ident = None
        self._files.clear()
