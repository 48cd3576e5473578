"""Git carries each byte once (issue 19): objects the ``files/`` copies already carry.

Above ``sessions.artifact_compression_threshold`` an object is zstd-compressed, so git
would store an artifact twice: its ``files/`` copy (which git compresses and deltas) and
its object (which git cannot). ``spell commit`` therefore leaves out of git the object of
a **latest live version whose ``files/`` copy goes into the same commit**, byte for byte
(checked on the staged blob, not on the file): a clone rebuilds it from that copy
(:mod:`spellfs.git.rebuild`), verified by its BLAKE3 hash.

The objects left out are listed in a local ignore file in their own fan-out directory,
``.spell/objects/ab/.gitignore``, which ignores itself (so it is never committed, never
merged; every clone keeps its own): a plain ``git add -A`` leaves them out too, and git
matches each object against the few names of its directory, not against every entry
(10,000 entries cost ``git status`` 1.2 s here in ``info/exclude``, 0.03 s this way).
The rule that keeps history in git: an entry is written only after the commit holding
its ``files/`` copy succeeded, and the next ``spell commit`` removes the entry of an
object that is no longer the latest live version of a clean copy (a new version was
stored, the artifact deleted, the copy hand-edited in a finished session, the session
removed), so that commit stages it. Until then (for example after a plain ``git commit
-a``) its bytes are still in git as an earlier ``files/`` blob, from which a clone
rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..store import atomic_write

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["add_entries", "candidates", "entries", "remove_entries", "unstage_carried"]

IGNORE = ".gitignore"
HEADER = (
    "# spellfs: objects a committed files/ copy carries (rebuilt from it on a clone);\n"
    "# local, never committed: spell commit keeps this file\n"
    "/.gitignore\n"
)
_ENTRY = re.compile(r"/([0-9a-f]{62})\Z")
_FAN = re.compile(r"[0-9a-f]{2}\Z")


def objects_dir(ws: "Workspace") -> Path:
    return Path(ws.root) / ".spell" / "objects"


def _read(path: Path) -> set[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return set()
    return {m.group(1) for m in map(_ENTRY.match, text.splitlines()) if m}


def entries(objects: Path) -> set[str]:
    """Object ids listed as left out of git, over every fan-out directory."""
    try:
        fans = [f for f in os.listdir(objects) if _FAN.match(f)]
    except OSError:
        return set()
    return {fan + rest for fan in fans for rest in _read(objects / fan / IGNORE)}


def _rewrite(objects: Path, add: set[str], remove: set[str]) -> None:
    fans = {o[:2] for o in add | remove}
    for fan in sorted(fans):
        path = objects / fan / IGNORE
        old = _read(path)
        new = (old - {o[2:] for o in remove if o[:2] == fan}) | {o[2:] for o in add if o[:2] == fan}
        if new == old and (new or not path.exists()):
            continue
        if not new:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (HEADER + "".join(f"/{r}\n" for r in sorted(new))).encode())


def add_entries(objects: Path, oids: set[str]) -> None:
    """List ``oids`` (whose bytes a committed ``files/`` blob holds) as left out of git."""
    if oids:
        _rewrite(objects, set(oids), set())


def remove_entries(objects: Path, oids: set[str]) -> None:
    """Let git stage ``oids`` again (always safe: at worst git stores a byte twice)."""
    if oids:
        _rewrite(objects, set(), set(oids))


def candidates(ws: "Workspace") -> dict[str, list[tuple[str, str]]]:
    """oid -> (session dir, name) of each latest live version whose object git need not carry:
    compressed (smaller ones are byte-identical to the copy, so git stores them once already),
    with a ``files/`` copy that goes into git (not above ``watch.materialize_max_bytes`` nor
    ``git.max_object_bytes``) and that holds the version now (no unrecorded hand edit)."""
    low = ws.config.get("sessions.artifact_compression_threshold")
    high = min(ws.config.get("watch.materialize_max_bytes"), ws.config.get("git.max_object_bytes"))
    out: dict[str, list[tuple[str, str]]] = {}
    from ..errors import SpellError

    for dir, wc in ws.worktree.scan_all().items():
        dirty = set(wc.modified) | set(wc.deleted)
        try:
            log = ws.log(dir)
            log.refresh()
            live = list(log.live())
        except SpellError:
            continue  # not readable now: its objects are staged (the safe side)
        for rec in live:
            if low <= rec.get("size", 0) <= high and rec["name"] not in dirty:
                out.setdefault(rec["hash"], []).append((dir, rec["name"]))
    return out


def blob_id(data: bytes, hexlen: int) -> str:
    """Git's id of a blob holding ``data``: SHA-1, or SHA-256 in a repository using it (the
    length of an id git gave tells which)."""
    algo = hashlib.sha1 if hexlen == 40 else hashlib.sha256
    return algo(b"blob %d\0" % len(data) + data).hexdigest()


def unstage_carried(
    ws: "Workspace", repo, prefix: str, new: set[str], eligible: dict[str, list[tuple[str, str]]]
) -> set[str]:
    """Of the objects just staged for the first time (``new``), unstage those a staged
    ``files/`` blob holds byte for byte; return their ids (for :func:`add_entries` once the
    commit is made)."""
    from ..store import hash_bytes

    wanted = {oid: eligible[oid] for oid in new if oid in eligible}
    if not wanted:
        return set()
    paths = [f"{prefix}sessions/{d}/files/{n}" for places in wanted.values() for d, n in places]
    staged: dict[str, str] = {}
    for i in range(0, len(paths), 500):
        out = repo.git.ls_files("-s", "-z", "--", *paths[i : i + 500])
        for entry in out.split("\0"):
            meta, _, path = entry.partition("\t")
            parts = meta.split()
            if path and len(parts) == 3 and parts[2] == "0":
                staged[path] = parts[1]
    carried = set()
    for oid, places in wanted.items():
        for d, n in places:
            blob = staged.get(f"{prefix}sessions/{d}/files/{n}")
            if blob is None:
                continue
            try:
                data = ws.storage.read(f"sessions/{d}/files/{n}")
            except OSError:
                continue
            if hash_bytes(data) == oid and blob_id(data, len(blob)) == blob:
                carried.add(oid)
                break
    objs = [f"{prefix}.spell/objects/{o[:2]}/{o[2:]}" for o in sorted(carried)]
    for i in range(0, len(objs), 500):
        repo.git.rm("--cached", "-q", "--", *objs[i : i + 500])
    return carried
