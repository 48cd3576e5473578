"""What removing a session would drop that the working-copy check does not judge.

``spell rm`` refuses over hand edits, or with ``--force`` keeps them as objects first
(:meth:`~spellfs.model.handedits.HandEdits.keep_as_objects`). That check judges artifact-named
files only, so without this a removal also deleted, unseen, what the check skips: dot files
(``.env``), editor temporaries (``results.tmp``), ``.spellignore``d names, files in folders
under ``files/``; and files written between the check and the removal. Here the first are
listed before anything is removed (refused, or kept with ``--force``), and the session's
folder is renamed aside before it is deleted, so no writer can add to it unseen: whatever
appeared or changed since the listing is kept as an object before the folder goes.
"""

from __future__ import annotations

import os
import stat as statmod
from typing import TYPE_CHECKING

from .statcache import hash_path

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["files_now", "keep_new", "not_files", "unjudged", "unrecorded"]

_DEPTH = 64  # folders under files/ deeper than this are not looked into (nothing is deleted
# there unseen either: the removal of a folder that deep fails with the session kept)


def files_now(base: str) -> dict[str, tuple]:
    """Every regular file under ``base`` (links never followed), by path relative to it: its
    stat as ``(inode, size, mtime, ctime)``."""
    out: dict[str, tuple] = {}

    def walk(path: str, rel: str, depth: int) -> None:
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            return
        for e in entries:
            try:
                s = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            name = rel + e.name
            if statmod.S_ISREG(s.st_mode):
                out[name] = (s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)
            elif statmod.S_ISDIR(s.st_mode) and depth < _DEPTH:
                walk(e.path, name + "/", depth + 1)

    walk(base, "", 0)
    return out


def not_files(base: str) -> list[dict]:
    """What sits in ``base`` (a session's ``files/``) that spellfs never records, since an
    artifact is a plain file with an artifact's name: each folder and link, and each file whose
    name no artifact may have (a control character, a backslash; hidden files are left out, as
    editors' are), as ``{"name", "kind"}`` (`spell status` says so, rather than leave a person
    wondering why it is not in the listing)."""
    from ..store import file_kind
    from .artifact_log import valid_name

    out = []
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return out
    for e in entries:
        try:
            mode = e.stat(follow_symlinks=False).st_mode
        except FileNotFoundError:
            continue
        if not statmod.S_ISREG(mode):
            out.append({"name": e.name, "kind": file_kind(mode)})
        elif not e.name.startswith(".") and not valid_name(e.name):
            out.append({"name": e.name, "kind": "a name no artifact may have"})
    return out


def unjudged(files: dict[str, tuple], judged: set[str]) -> list[str]:
    """The files the working-copy check skipped: in a folder, or a name it does not judge."""
    return sorted(name for name in files if "/" in name or name not in judged)


def unrecorded(base: str, names: list[str], recorded: set[str]) -> list[str]:
    """Of ``names`` (under ``base``), those holding content no record has (an empty file holds
    nothing to lose; one changing while read counts as unrecorded)."""
    out = []
    for name in names:
        try:
            got = hash_path(f"{base}/{name}")
        except (FileNotFoundError, NotADirectoryError):
            continue  # gone meanwhile
        if got is None or (got[2][1] and got[0] not in recorded):
            out.append(name)
    return out


def keep_new(
    ws: "Workspace", base: str, before: dict[str, tuple], recorded: set[str]
) -> list[tuple[str, str]]:
    """Store as an object each file under ``base`` that is not in ``before`` or changed since,
    holding content no record has: ``[(name, object id)]``."""
    kept = []
    for name, st in sorted(files_now(base).items()):
        if before.get(name) == st:
            continue
        try:
            with open(f"{base}/{name}", "rb") as f:
                oid, size = ws.objects.put_stream(f)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if size and oid not in recorded:
            kept.append((name, oid))
    return kept
