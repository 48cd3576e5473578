"""What git says of a workspace, shared by `spell commit` and `spell status`: the paths it
shares (:data:`SHARED`), ``git status --porcelain`` under the workspace, whether a merge is
in progress, and a failed git command as a one-line error.
"""

from __future__ import annotations

import os
import re

from ..errors import SpellError

__all__ = ["SHARED", "git_error", "is_merging", "porcelain", "shared"]

#: Workspace paths `spell commit` stages (relative to the workspace root).
SHARED = (
    "sessions",
    "templates",
    "state.yaml",
    "spell.yaml",
    ".spellignore",
    ".gitignore",
    ".gitattributes",
    ".spell/objects",
    ".spell/.gitignore",
)


def porcelain(repo, prefix: str) -> list[tuple[str, str]]:
    """(XY, workspace-relative path) for every changed or untracked path under the workspace."""
    out = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all", "--", prefix or ".")
    items, parts = [], out.split("\0")
    i = 0
    while i < len(parts):
        entry = parts[i]
        i += 1
        if len(entry) < 4:
            continue
        xy, path = entry[:2], entry[3:]
        if xy[0] in "RC":
            i += 1  # the source path follows
        if path.startswith(prefix):
            items.append((xy, path[len(prefix) :]))
    return items


def shared(path: str) -> bool:
    return any(path == s or path.startswith(s + "/") for s in SHARED)


def git_error(what: str, exc: Exception) -> SpellError:
    detail = (getattr(exc, "stderr", "") or str(exc)).strip().replace("\n", " ")
    detail = re.sub(r"^stderr:\s*", "", detail).strip("' ")
    return SpellError(f"git {what} failed: {detail[:400]}")


def is_merging(repo) -> bool:
    return os.path.exists(os.path.join(repo.git_dir, "MERGE_HEAD"))
