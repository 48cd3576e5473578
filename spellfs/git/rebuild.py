"""Rebuilding the objects git does not carry (issue 19; see :mod:`spellfs.git.exclude`).

A clone lacks the objects of the latest versions, left out because their ``files/``
copies carry the same bytes. Reconciling a session (:func:`spellfs.git.repo.reconcile`:
after a clone, a checkout or a merge) puts every missing object of its versions back
from, in order:

1. the ``files/`` copy of the version, when it is the latest one;
2. any blob git has for ``sessions/<dir>/files/<name>``: HEAD's, then every commit's
   (a version superseded by a merge, or one committed with a plain ``git commit``
   before ``spell commit`` could stage its object).

Every candidate is hashed: only bytes whose BLAKE3 is the version's hash become its
object, so a hand-edited or missing copy is never taken for it. Objects above
``git.max_object_bytes`` travel through a remote instead and are not looked for here.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Any

from ..errors import SpellError

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["install_rebuilder", "rebuild_missing"]


def rebuild_missing(ws: "Workspace", dir: str, log: Any) -> list[str]:
    """Put back the missing objects of the versions in ``log``; return their ids."""
    from ..store import hash_bytes
    from .exclude import blob_id

    limit = ws.config.get("git.max_object_bytes")
    missing: dict[str, set[str]] = {}
    for name, versions in log.versions.items():
        for rec in versions:
            oid = rec.get("hash")
            if oid and rec.get("size", 0) <= limit and not ws.objects.has(oid):
                missing.setdefault(oid, set()).add(name)
    if not missing:
        return []
    prefix = (_git(ws, "rev-parse", "--show-prefix") or b"").decode().strip()
    head = _head_blobs(ws, dir, prefix)
    done: list[str] = []
    carried: set[str] = set()  # rebuilt from a copy HEAD holds byte for byte
    for oid, names in list(missing.items()):
        for name in sorted(names):
            rec = log.latest(name)
            if rec is None or rec.get("hash") != oid:
                continue
            try:
                data = ws.storage.read(f"sessions/{dir}/files/{name}")
            except OSError:
                continue
            if hash_bytes(data) != oid:
                continue  # a hand edit (or anything else): never taken for the version
            ws.objects.put_bytes(data)
            done.append(oid)
            del missing[oid]
            blob = head.get(name)
            if blob is not None and blob_id(data, len(blob)) == blob:
                carried.add(oid)
            break
    if missing:
        done += _from_git(ws, dir, missing, list(head.values()))
    if carried:
        from . import exclude

        exclude.add_entries(exclude.objects_dir(ws), carried)
    return done


def install_rebuilder(ws: "Workspace", store: Any) -> None:
    """Let ``store`` rebuild a missing object of an artifact version, as reconciling would,
    before asking any fetcher already installed (a remote): the Python API on a fresh clone
    (which runs no ``spell`` command to reconcile it), or after ``git clean -X`` removed the
    objects git leaves to the copies. One miss rebuilds the whole session's missing objects."""
    previous = store.__dict__.get("fetcher")
    tried: set[str] = set()

    def fetch(oid: str) -> bool:
        if oid not in tried:
            tried.add(oid)
            for dir in ws.storage.listdir("sessions"):
                if dir.startswith(".") or not ws.storage.exists(f"sessions/{dir}/session.yaml"):
                    continue
                try:  # a session carrying a link is refused by every command, and left alone
                    log = ws.log(dir)
                    log.refresh()
                    if any(r.get("hash") == oid for vs in log.versions.values() for r in vs):
                        rebuild_missing(ws, dir, log)
                except SpellError:
                    continue
                if store.has(oid):
                    return True
        return bool(previous and previous(oid))

    store.fetcher = fetch


def _git(ws: "Workspace", *args: str) -> bytes | None:
    try:
        proc = subprocess.run(["git", *args], cwd=ws.root, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _head_blobs(ws: "Workspace", dir: str, prefix: str) -> dict[str, str]:
    """name -> blob id of the session's ``files/`` copies in HEAD."""
    where = f"{prefix}sessions/{dir}/files/"
    out = _git(ws, "ls-tree", "-r", "-z", "--full-name", "HEAD", "--", f"sessions/{dir}/files/")
    blobs = {}
    for entry in (out or b"").split(b"\0"):
        meta, _, path = entry.partition(b"\t")
        parts = meta.split()
        name = os.fsdecode(path)
        if len(parts) == 3 and parts[1] == b"blob" and name.startswith(where):
            blobs[name[len(where) :]] = parts[2].decode()
    return blobs


def _from_git(
    ws: "Workspace", dir: str, missing: dict[str, set[str]], blobs: list[str]
) -> list[str]:
    """Look for the missing contents among the blobs git has for the session's copies: HEAD's
    (``blobs``), then every commit's."""
    where = f"sessions/{dir}/files/"
    merging = _git(ws, "rev-parse", "-q", "--verify", "MERGE_HEAD") is not None
    revs = ["--all", "HEAD"] + (["MERGE_HEAD"] if merging else [])
    history = _git(
        ws, "log", *revs, "--format=", "--raw", "--no-abbrev", "--no-renames", "--", where
    )
    for line in (history or b"").splitlines():
        meta = line.partition(b"\t")[0].split()
        if len(meta) == 5 and meta[0].startswith(b":"):
            blobs += [b.decode() for b in meta[2:4] if b.strip(b"0")]
    order = list(dict.fromkeys(blobs))
    return _scan_blobs(ws, order, missing) if order else []


def _scan_blobs(ws: "Workspace", blobs: list[str], missing: dict[str, set[str]]) -> list[str]:
    """Stream ``blobs`` through one ``git cat-file --batch``; keep those whose hash is missing."""
    from ..store import hash_bytes

    limit = ws.config.get("git.max_object_bytes")
    found: list[str] = []
    try:
        proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=ws.root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return found
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for blob in blobs:
            if not missing:
                break
            proc.stdin.write(blob.encode() + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                continue  # "<id> missing"
            size = int(header[2])
            if size > limit:
                _skip(proc.stdout, size + 1)
                continue
            data = proc.stdout.read(size)
            proc.stdout.read(1)
            oid = hash_bytes(data)
            if oid in missing:
                ws.objects.put_bytes(data)
                found.append(oid)
                del missing[oid]
    finally:
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()
    return found


def _skip(f: Any, n: int) -> None:
    while n > 0:
        chunk = f.read(min(n, 1 << 20))
        if not chunk:
            return
        n -= len(chunk)
