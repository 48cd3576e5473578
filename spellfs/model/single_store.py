"""One content stored on its own, the way most scripts store (a result at a time): the steps of a
batch (:mod:`.artifact_writes`) without a batch's machinery, which cost a single store more than
its writes did (issue 19: a 1 KiB store against ``git hash-object -w``).

Taken when nothing about the store needs that machinery: the workspace is on disk, the content
is in memory, and no copy is at ``files/<name>`` (one there may be a hand edit to record first,
:meth:`~.handedits.HandEdits.keep_before_store`). Otherwise :func:`store_one` returns None
before it has written anything, and the batch path stores it. The order and the commit point are
a batch's: the name goes on the in-flight list, then the object is written, then the copy
(made where nothing is, so a file an editor saved there meanwhile is kept:
:meth:`~spellfs.store.storage.Storage.create`), then the record is appended; a failure before
the append puts the copy back (:mod:`.inflight`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from ..store import encode_record
from .chunk_writes import build_records
from .inflight import inflight
from .store_inputs import require_active

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["store_one"]


def store_one(
    ws: "Workspace",
    dir: str,
    item: tuple[dict, bytes | None, object],
    by: str | None,
    announce: Callable[[str, str, list[dict]], list[dict]],
) -> dict | None:
    """Store ``item`` (as :func:`~.store_inputs.prepare` returns it) in session ``dir``; return
    its id table, or None when it takes the batch path (nothing written). ``by`` overrides
    created_by; ``announce`` tells events, hooks and the run of the record
    (:meth:`ArtifactWrites._announce`)."""
    rec, content, _ = item
    if content is None or ws.memory:
        return None
    name = rec["name"]
    copy = f"sessions/{dir}/files/{name}"
    storage = ws.storage
    with storage.lock(f"s-{dir}"):
        if os.access(f"{ws.root}/{copy}", os.F_OK, follow_symlinks=False):
            return None  # (a link or a folder is something too)
        m = ws.sessions.manifest(dir)
        require_active(ws, m)
        log = ws.log(dir)
        log.refresh()
        if not log.is_live(name) and log.live_count >= ws.config.get(
            "sessions.max_artifacts_per_session"
        ):
            return None  # (the batch path says so)
        with inflight(ws, dir) as journal:
            journal.note_many([name])
            oid = ws.objects.put_bytes(content)
            size = len(content)
            if size <= ws.config.get("watch.materialize_max_bytes"):
                storage.create(copy, content)  # (not over a file an editor saved meanwhile)
            records = build_records(ws, log, [item], {0: (oid, size, content[:4096])}, by)
            log.append(encode_record(records[0]), records)
            journal.committed()
        return announce(dir, m["id"], records)[0]
