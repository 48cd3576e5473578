"""Temporary files of writes that never finished (a killed process, a full disk).

Writes go to a temporary file first: ``.spell/objects/xx/.tmp-*`` for objects
(``.spell/objects/tmp/.tmp-*`` while a large one streams in, ``.spell/objects/pack/.tmp-*``
while a pack is written),
``.spell/tmp/`` for atomic replaces and imports (``import-*`` directories), and
``sessions/*/files/.*.tmp`` for copies written beside their file. A live writer's
temporary file is young, so only those older than the grace period are strays:
``spell fsck`` reports them, ``spell fsck --repair`` and ``spell gc`` remove them.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["TEMP_GRACE_SECONDS", "remove_stray_temps", "stray_temps"]

#: A temporary file younger than this may belong to a write in progress.
TEMP_GRACE_SECONDS = 15 * 60


def stray_temps(ws: "Workspace", grace: float = TEMP_GRACE_SECONDS) -> list[tuple[str, float]]:
    """Workspace-relative paths of temporary files older than ``grace`` seconds, with their age."""
    if ws.memory:
        return []
    root = os.fspath(ws.root) + "/"
    clock = time.time()
    found: list[tuple[str, float]] = []

    def consider(rel: str) -> None:
        try:
            age = clock - os.lstat(root + rel).st_mtime
        except OSError:
            return
        if age >= grace:
            found.append((rel, age))

    # (no folder is listed through a link: a cloned repository may carry one, and what is found
    # here is deleted; fsck reports the link)
    own = _listdir(root + ".spell")
    for fan in _listdir(root + ".spell/objects") if "objects" in own else []:
        if len(fan) == 2 or fan in ("tmp", "pack"):
            for name in _listdir(f"{root}.spell/objects/{fan}"):
                if name.startswith(".tmp-"):
                    consider(f".spell/objects/{fan}/{name}")
    for name in _listdir(root + ".spell/tmp") if "tmp" in own else []:
        consider(f".spell/tmp/{name}")
    for dir in _listdir(root + "sessions"):
        if os.path.islink(f"{root}sessions/{dir}"):
            continue
        for name in _listdir(f"{root}sessions/{dir}/files"):
            if name.startswith(".") and name.endswith(".tmp"):
                consider(f"sessions/{dir}/files/{name}")
    return found


def remove_stray_temps(ws: "Workspace", grace: float = TEMP_GRACE_SECONDS) -> list[str]:
    """Remove what :func:`stray_temps` finds; return the paths removed."""
    removed: list[str] = []
    if ws.memory:
        return removed
    root = os.fspath(ws.root) + "/"
    for rel, _ in stray_temps(ws, grace):
        path = root + rel
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError:
            continue  # left for next time; fsck still reports it
        removed.append(rel)
    return removed


def _listdir(path: str) -> list[str]:
    """The entries of folder ``path``; none when it is a link (or not there)."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return []
        return os.listdir(path)
    except OSError:
        return []
