"""A batch's chunks: writing their objects and ``files/`` copies (on writer threads, or
shared with a twin, :mod:`.twin`) and building their records from what was written.
"""

from __future__ import annotations

import contextlib
import gc
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

from ..names import now
from ..store import PACKED_MAX
from .handedits import edited_since
from .mime import mime_for
from .store_inputs import open_binary, read_small, too_large

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = [
    "PARENT_PART",
    "WRITERS",
    "Writers",
    "build_records",
    "parents_part",
    "write_files",
    "writers",
]

PARALLEL_FROM = 16  # a chunk this large writes its files on WRITERS threads
WRITERS = 8
#: The part of each chunk the parent writes itself, with a twin: it appends the records too.
PARENT_PART = 0.4


def parents_part(n: int) -> int:
    """How many of a chunk of ``n`` files the parent writes, with a twin (the first ones)."""
    return int(n * PARENT_PART)


class Writers:
    """The writer threads of one batch, started when its first large chunk needs them and
    joined when the batch ends: a pool per chunk started 160 threads for 20,000 files, each
    start waiting for the GIL that the running ones hold. The cycle collector pauses for the
    batch: a store makes no cycles, and its scans of a bulk add's records held the GIL for a
    tenth of the time."""

    def __init__(self) -> None:
        self._pool: Any = None
        self._collecting = False

    def map(self, fn: Callable, shares: list) -> Any:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(WRITERS)
        return self._pool.map(fn, shares)

    def __enter__(self) -> "Writers":
        self._collecting = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._collecting:
            gc.enable()


def writers(n: int) -> "Writers | contextlib.nullcontext[None]":
    """The writer threads for a batch of ``n`` files: none below :data:`PARALLEL_FROM` (a single
    store neither starts threads nor pauses the cycle collector)."""
    return Writers() if n >= PARALLEL_FROM else contextlib.nullcontext()


def write_files(
    ws: "Workspace",
    materialize: Callable[..., Any],
    dir: str,
    log: Any,
    prepared: list[tuple],
    share: range,
    materialized: bool,
    checked: dict[str, tuple | None] | None,
    pool: "Writers | None",
) -> tuple[dict[int, tuple[str, int, bytes]], list[tuple[str, Any, str]]]:
    """Write the objects and ``files/`` copies of ``prepared[i]`` for each i in ``share``
    (``materialize`` writes a copy: :meth:`ArtifactWrites._materialize`);
    return {i: (hash, size, head)} and the settled copies written (name, stat, hash).

    The writes of a large chunk run on the threads of ``pool``: on a disk where creating a
    small file takes 0.1–1 ms of waiting, that waiting overlaps. Without one (a twin shares
    the work), this thread writes them.
    """
    last = {
        rec["name"]: i for i, (rec, _, _) in enumerate(prepared)
    }  # only a name's last copy lands
    settled = len(prepared) >= PARALLEL_FROM and not ws.memory
    limit = ws.config.get("sessions.max_artifact_size")
    copies: list[tuple[str, Any, str]] = []
    contents: dict[int, bytes] = {}
    packed: dict[int, str] = {}
    if settled:  # a bulk store: its small objects go into one pack (store/packs.py)
        for i in share:
            _, content, path = prepared[i]
            if content is None and path is not None:
                content = read_small(path, PACKED_MAX)  # (a chunk holds at most 64 MiB)
            if content is not None and len(content) <= PACKED_MAX:
                contents[i] = content
        small = list(contents)
        oids = ws.objects.put_many([contents[i] for i in small])
        packed = dict(zip(small, oids))

    def write(i: int) -> tuple[str, int, bytes]:
        rec, content, path = prepared[i]
        if i in packed:
            content = contents[i]
        elif content is None and path is not None:
            content = read_small(path)
        if content is not None:
            oid = packed.get(i) or ws.objects.put_bytes(content)
            size, head = len(content), content[:4096]
        else:  # streamed: read once, the head kept as read (the file may change meanwhile: its
            # copy is checked against the object, :meth:`ArtifactWrites._materialize`)
            with open_binary(path) as f:
                tap = _HeadTap(f)
                oid, size = ws.objects.put_stream(tap)
            head = tap.head
        if size > limit:  # it grew after the batch was checked: the limit bounds what is read
            raise too_large(rec["name"], size, limit)
        if (
            not materialized
            and last[rec["name"]] == i
            and not (checked is not None and edited_since(ws, dir, log, rec["name"], checked))
        ):
            st = materialize(dir, rec["name"], content, oid, size, settled, path)
            if st is not None:
                copies.append((rec["name"], st, oid))  # (list.append is atomic)
        return oid, size, head

    if settled and pool is not None:
        shares = [share[k::WRITERS] for k in range(WRITERS)]  # a task a thread, not a file
        written: dict[int, tuple[str, int, bytes]] = {}
        for part, done in zip(shares, pool.map(lambda r: [write(i) for i in r], shares)):
            written.update(zip(part, done))
        return written, copies
    return {i: write(i) for i in share}, copies


def build_records(
    ws: "Workspace",
    log: Any,
    prepared: list[tuple],
    written: dict[int, tuple[str, int, bytes]],
    by: str | None,
) -> list[dict]:
    """The records of a chunk, in batch order (so sequence numbers and versions do not depend
    on which thread or process wrote what), from what :func:`write_files` wrote."""
    records: list[dict] = []
    seq = log.max_seq
    batch_versions: dict[str, int] = {}  # a name's versions earlier in this chunk: one lookup
    for i, (rec, _, _) in enumerate(prepared):
        oid, size, head = written[i]
        name = rec["name"]
        seq += 1
        earlier = batch_versions.get(name, 0)
        batch_versions[name] = earlier + 1
        ordered = {
            "seq": seq,
            "name": name,
            "version": len(log.versions.get(name, ())) + earlier + 1,
            "hash": oid,
            "size": size,
            "type": rec["type"],
            "mime_type": rec.get("mime_type") or mime_for(name, head),
            "created_at": now(),
            "created_by": by or ws.actor,
        }
        if len(rec) > 2:  # (more than its type and name: the fields its metadata gave)
            ordered.update((k, v) for k, v in rec.items() if k not in ordered)
        if ws.objects.is_compressed(size, head):
            ordered["compressed"] = True
        records.append(ordered)
    return records


class _HeadTap:
    """A file read through once, keeping its first 4 KiB (a record's head)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.head = b""

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n)
        if len(self.head) < 4096:
            self.head += chunk[: 4096 - len(self.head)]
        return chunk
