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

import os
import stat

from ..errors import UnsafePath

__all__ = ["PathGuard", "file_kind", "real_dir", "refusal"]

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


def refusal(rel: str, mode: int, hint: str = _HINT) -> UnsafePath:
    """The one-line error for ``rel`` whose ``lstat`` mode is ``mode``."""
    what = "a symbolic link" if stat.S_ISLNK(mode) else "a special file (device, fifo or socket)"
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
    raise refusal(shown, mode, _OBJECTS_HINT)


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
        special file."""
        if not rel.startswith("sessions"):
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
