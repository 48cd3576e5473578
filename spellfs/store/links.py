"""No link under ``sessions/`` is ever followed.

A cloned repository may carry ``sessions/x/files -> ../../../../tmp/x`` (git
stores symbolic links as such), and a local adversary may leave a FIFO or a
device node where a record file should be. spellfs writes ``files/`` copies and
appends records by path, so a followed link would write, or read, outside the
workspace. :class:`PathGuard` checks every directory on the way from the
workspace root (``lstat``, cached once seen to be a real directory) and the final
component (no link, nothing but a regular file or a directory); a refusal is an
:class:`~spellfs.errors.UnsafePath` naming the link.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import UnsafePath

__all__ = [
    "INTERNAL",
    "INTERNAL_FILES",
    "PathGuard",
    "file_kind",
    "internal_dir",
    "linked_file",
    "open_own",
    "real_dir",
    "refusal",
]

_HINT = "spellfs never follows links under sessions/; remove it, or the session"
_OBJECTS_HINT = "spellfs never follows links under .spell/; remove it: `spell fsck` lists them"


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words (for one-line errors)."""
    for test, word in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return word
    return "not a regular file"


def refusal(rel: str, mode: int, hint: str | None = None) -> UnsafePath:
    """The one-line error for ``rel`` whose ``lstat`` mode is ``mode`` (the hint says where links
    are never followed: ``sessions/`` or ``.spell/``)."""
    what = "a symbolic link" if stat.S_ISLNK(mode) else "a special file (device, fifo or socket)"
    hint = hint or (_OBJECTS_HINT if rel.startswith(".spell") else _HINT)
    return UnsafePath(f"refused: {rel} is {what} ({hint})")


def real_dir(path: str, shown: str) -> bool:
    """Whether ``path`` is a real directory (False: nothing, or a plain file, there); a link or a
    special file is refused, named as ``shown``. The object store's folders (``.spell/objects``,
    its fan-out and pack folders) are checked so: git carries links, and a cloned repository
    could point them anywhere, where a store would then write."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISDIR(mode):
        return True
    if stat.S_ISREG(mode):
        return False  # (making the folder fails, and says so)
    raise refusal(shown, mode)


#: The folders under ``.spell/`` that spellfs writes into or deletes from. A cloned repository may
#: carry a link at any of them (``git add -f`` passes ``.spell/.gitignore``), and writing or
#: sweeping through it would change files outside the workspace.
INTERNAL = ("objects", "tmp", "repair", "inflight", "replay", "locks", "runs", "agent_cache")


def internal_dir(base: str, name: str) -> bool:
    """Whether ``<base>.spell/<name>`` is a real folder (False: not there yet); refused when it,
    or ``.spell``, is a link or a special file. ``base`` ends with a slash."""
    real_dir(base + ".spell", ".spell")
    return real_dir(f"{base}.spell/{name}", f".spell/{name}")


#: The files under ``.spell/`` that SQLite opens by path (caches: a link there is not used).
INTERNAL_FILES = ("index.sqlite", "watch-cache.sqlite")


def linked_file(path: str) -> bool:
    """Whether opening ``path`` (a file in ``.spell/``) would go through a link: it, or the folder
    it is in, is a link or something else than expected (nothing there is no link)."""
    for p, want in ((os.path.dirname(path), stat.S_ISDIR), (path, stat.S_ISREG)):
        try:
            mode = os.lstat(p).st_mode
        except FileNotFoundError:
            return False
        except OSError:
            return True
        if not want(mode):
            return True
    return False


def open_own(path: str | os.PathLike, rel: str, flags: int, mode: int = 0o644) -> int:
    """Open ``path`` (shown as ``rel``), a file spellfs keeps in ``.spell/`` by path (the
    daemon's pid file and log, the git mark, the lock files): never through a link (it or its
    folder), never a FIFO or device, which a cloned repository may carry there. A refusal is
    an :class:`UnsafePath`."""
    path = os.fspath(path)
    real_dir(os.path.dirname(path), rel.rpartition("/")[0])
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:  # a link; a FIFO with no reader, opened for writing
        if exc.errno not in (errno.ELOOP, errno.ENXIO):
            raise
        raise refusal(rel, os.lstat(path).st_mode) from None
    st_mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(st_mode):
        os.close(fd)
        raise refusal(rel, st_mode)
    return fd


class PathGuard:
    """Checks workspace-relative paths under ``sessions/`` before they are opened."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._dirs: set[str] = set()  # directories seen to be real ones (not links)

    def forget(self, rel: str) -> None:
        """``rel`` was removed: check it again when it comes back."""
        prefix = rel + "/"
        self._dirs = {d for d in self._dirs if d != rel and not d.startswith(prefix)}

    def check(self, rel: str, final: bool = True) -> None:
        """Refuse ``rel`` when a directory on its way, or (with ``final``) itself, is a link or
        special file: under ``sessions/`` and under ``.spell/`` (elsewhere, ``templates/`` say,
        a user's link is followed)."""
        if not rel.startswith(("sessions", ".spell/")):
            return
        if (rel if final else rel.rpartition("/")[0]) in self._dirs:
            return  # seen whole before: a folder is kept only once those above it were
        parts = rel.split("/")
        last = len(parts) if final else len(parts) - 1
        for i in range(1, last + 1):
            sub = "/".join(parts[:i])
            if sub in self._dirs:
                continue
            try:
                mode = os.lstat(self.base + sub).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return  # nothing there yet: nothing to follow
            if stat.S_ISDIR(mode):
                self._dirs.add(sub)
            elif not stat.S_ISREG(mode):
                raise refusal(sub, mode)
            else:
                return  # a plain file on the way: the open fails with ENOTDIR, following nothing
