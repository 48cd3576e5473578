"""Missing ``files/`` copies that are no hand deletion: not local, or never written here.

A live artifact's copy can be missing for reasons other than a person deleting it:

- it is above ``watch.materialize_max_bytes`` and never gets a copy (the scan skips those);
- its object is not in the local store (a clone of a workspace whose large objects were kept
  out of git and not yet fetched: ``spell pull`` or a read brings it from the remote). No
  copy can have been written from it here, so the absence is "not local", never a deletion;
- ``spell commit`` kept the copy out of git (above ``git.max_object_bytes``: its path is one
  of the lines it appended to the workspace ``.gitignore``) and this workspace never had it:
  a clone gets the record but no copy. Once the object is local the copy is written back
  (materialised) by the next scan, as a clone's reconcile writes the others.

"Never had it" is what the stat cache says: every scan that sees a copy enters it there, and
the scan of ``spell commit`` runs before it appends the ``.gitignore`` line, so a copy kept out
of git and then deleted by hand in the workspace that had it is still a deletion. (A lost
stat cache makes such a deletion look like a copy never written: it is written back from the
records, nothing is lost.)
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from .statcache import RACY_NS

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["DELETED", "NOT_LOCAL", "UNWRITTEN", "KeptOut", "absence", "ignore_line", "write_back"]

DELETED = "deleted"  # deleted by hand: `spell save` records the deletion
NOT_LOCAL = "not-local"  # the object is not here: fetch it (`spell pull`)
UNWRITTEN = "unwritten"  # kept out of git, never written here, object local: write it back


def ignore_line(path: str) -> str:
    """The ``.gitignore`` line `spell commit` appends to keep workspace path ``path`` out of
    git (anchored, with gitignore's special characters escaped)."""
    out = re.sub(r"([\\*?\[])", r"\\\1", path)
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return "/" + out


class KeptOut:
    """The paths `spell commit` kept out of git, read from ``.gitignore`` on first use."""

    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self._lines: set[str] | None = None

    def __contains__(self, path: str) -> bool:
        if self._lines is None:
            try:
                text = (self.ws.root / ".gitignore").read_text(errors="surrogateescape")
            except OSError:
                text = ""
            self._lines = set(text.splitlines())
        return ignore_line(path) in self._lines


def absence(ws: "Workspace", dir: str, name: str, rec: dict, seen: bool, kept: KeptOut) -> str:
    """Why the copy of live artifact ``name`` (latest record ``rec``) is missing: DELETED,
    NOT_LOCAL or UNWRITTEN. ``seen``: the stat cache has an entry for the copy (this workspace
    had it)."""
    digest = rec.get("hash")
    if not isinstance(digest, str) or not ws.objects.has(digest):
        return NOT_LOCAL
    if not seen and f"sessions/{dir}/files/{name}" in kept:
        return UNWRITTEN
    return DELETED


def write_back(ws: "Workspace", dir: str, names: list[str]) -> list[tuple[str, Any, str]]:
    """Write the copies of ``names`` (UNWRITTEN) from their objects, under the session lock, each
    still missing and still what the records say; return ``(name, stat, hash)`` written, dated
    past the racy window so the stat cache vouches for them at once."""
    out: list[tuple[str, Any, str]] = []
    limit = ws.config.get("watch.materialize_max_bytes")
    with ws.storage.lock(f"s-{dir}"):
        log = ws.log(dir)
        log.refresh()
        for name in names:
            rec = log.latest(name)
            rel = f"sessions/{dir}/files/{name}"
            if rec is None or rec.get("size", 0) > limit or ws.storage.exists(rel):
                continue
            if not ws.objects.has(rec["hash"]):
                continue
            st = ws.storage.write(
                rel, ws.objects.get(rec["hash"]), mtime_ns=time.time_ns() - 2 * RACY_NS
            )
            if st is not None:
                out.append((name, st, rec["hash"]))
    return out
