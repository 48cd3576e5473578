"""Storing artifacts: the write path behind ``Artifacts.store``, ``store_file``,
``store_files`` and ``store_many``.

A store writes the content object, then the plain ``files/<name>`` copy, then
appends one record; the record is the commit point. A process killed before it
leaves at most an unreferenced object (removed by ``spell gc``) and a
``files/`` copy that the watcher or ``fsck`` reconciles — never a record
pointing at nothing.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ArtifactNotFound, LimitExceeded, UsageError
from ..store import encode_record, hash_bytes
from .chunk_writes import Writers, build_records, parents_part, write_files, writers
from .handedits import copies_now
from .inflight import inflight
from .single_store import store_one
from .store_inputs import (
    file_name,
    local_path,
    not_regular,
    open_binary,
    prepare,
    require_active,
    too_large,
)
from .twin import Twin, can_fork
from .statcache import RACY_NS

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["ArtifactWrites", "CHUNK_RECORDS"]

_INLINE_BYTES = 16 << 20
#: Records per append in a large batch: each chunk is a commit of its own.
CHUNK_RECORDS = 1000
#: A batch of this many files or more is written by two processes (:mod:`.twin`).
TWIN_FROM = 1000


class ArtifactWrites:
    """The storing half of :class:`~spellfs.model.artifact.Artifacts`."""

    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self.storage = ws.storage

    # -- storing ---------------------------------------------------------------
    def store(
        self,
        session: Any,
        type: str,
        name: str,
        content: bytes | str,
        metadata: dict | None = None,
        *,
        materialized: bool = False,
        by: str | None = None,
    ) -> dict:
        """Store ``content`` as a new version of ``name``; return the artifact id table.

        ``materialized=True`` says ``files/<name>`` already holds exactly this content
        (the watcher recording a hand edit), so the copy is not rewritten under the editor.
        """
        return self._store_all(session, [(type, name, content, None, metadata)], materialized, by)[
            0
        ]

    def store_file(
        self,
        session: Any,
        path: str | os.PathLike,
        type: str,
        metadata: dict | None = None,
        name: str | None = None,
        *,
        materialized: bool = False,
    ) -> dict:
        """Store a file of any size, streamed in bounded memory; the name is its basename."""
        return self.store_files(session, [path], type, metadata, [name], materialized=materialized)[
            0
        ]

    def store_files(
        self,
        session: Any,
        paths: list,
        type: str,
        metadata: dict | list[dict] | None = None,
        names: list[str | None] | None = None,
        *,
        materialized: bool = False,
        by: str | None = None,
        on_commit: Callable[[list[dict]], None] | None = None,
    ) -> list[dict]:
        """Store files: every file is checked (exists, size, name, room) before any is stored.

        The records are appended in chunks of :data:`CHUNK_RECORDS`, each one commit, so
        an interrupted batch of 200,000 files keeps every chunk it finished (``on_commit``
        is told of each, so the caller can acknowledge exactly those) and the cost per
        file stays flat. Small files are read when they are stored, not up front, so
        memory stays bounded however many there are. ``by`` overrides created_by (``hand``).
        ``metadata`` is every file's, or a list of one per file.
        """
        limit = self.ws.config.get("sessions.max_artifact_size")
        ws = self.ws
        eager = "hooks" in ws.__dict__ and ws.hooks.active(
            "BeforeArtifactStore"
        )  # hooks see the content
        items = []
        # with a hook, files up to 1 MiB are read up front while the batch holds at most 16 MiB
        inline = 0
        for i, path in enumerate(paths):
            if not os.fsdecode(path):
                raise UsageError("invalid file: an empty path (name a file to store)")
            p = local_path(os.fsdecode(path))
            try:
                st = os.stat(p)
            except (FileNotFoundError, NotADirectoryError):
                st = None
            if st is None:
                raise ArtifactNotFound(f"file not found: {p}")
            if not stat.S_ISREG(st.st_mode):
                raise not_regular(p, st.st_mode)
            size = st.st_size
            base = file_name(p)
            if size > limit:
                raise too_large(base, size, limit)
            name = names[i] if names and names[i] is not None else base
            meta = metadata[i] if isinstance(metadata, list) else metadata
            if eager and size <= 1 << 20 and inline + size <= _INLINE_BYTES:
                inline += size
                with open(p, "rb") as f:
                    items.append((type, name, f.read(), None, meta))
            else:  # read (small) or streamed (large) from disk when its turn comes
                items.append((type, name, None, p, meta))
        return self._store_all(session, items, materialized, by, on_commit)

    def store_many(
        self, session: Any, items: list[tuple[str, str, bytes | str, dict | None]]
    ) -> list[dict]:
        """Store several ``(type, name, content, metadata)`` artifacts as one commit.

        One lock and one append carry all their records, so a model call's request and
        response cost one log write, and a reader sees both versions or neither.
        """
        return self._store_all(session, [(t, n, c, None, m) for t, n, c, m in items])

    def _store_all(
        self,
        session: Any,
        items: list[tuple],
        materialized: bool = False,
        by: str | None = None,
        on_commit: Callable[[list[dict]], None] | None = None,
    ) -> list[dict]:
        """Store ``items`` in chunks, each one record append; ``by`` overrides created_by
        (``hand``)."""
        ws = self.ws
        dir = ws.sessions.resolve(session, looked_at_next=True)  # (manifest(dir) below)
        prepared = [prepare(ws, dir, *item) for item in items]
        if not prepared:
            return []
        if len(prepared) == 1 and not materialized and on_commit is None:
            done = store_one(ws, dir, prepared[0], by, self._announce)
            if done is not None:
                return [done]
        ids: list[dict] = []
        # the writer threads, started once for all the chunks of this batch (if it needs them)
        with (
            self.storage.lock(f"s-{dir}"),
            inflight(ws, dir) as journal,
            writers(len(prepared)) as pool,
        ):
            m = ws.sessions.manifest(dir)
            require_active(ws, m)
            log = ws.log(dir)
            log.refresh()
            checked = None
            if not materialized:  # a hand edit at a name about to be written is recorded first
                names = [rec["name"] for rec, _, _ in prepared]
                seen: dict[str, tuple | None] = {}
                if ws.worktree.keep_before_store(dir, names, seen) or not seen:
                    checked = copies_now(ws, dir, names)  # (copies just recorded: look again)
                else:  # the stats that look was based on: an edit since then is seen as one
                    checked = seen
            max_live = ws.config.get("sessions.max_artifacts_per_session")
            new_names = {rec["name"] for rec, _, _ in prepared if not log.is_live(rec["name"])}
            if new_names and log.live_count + len(new_names) > max_live:
                raise LimitExceeded(
                    f"too many artifacts in session {m['id'][:8]}: max_artifacts_per_session is "
                    f"{max_live} (raise sessions.max_artifacts_per_session in spell.yaml)"
                )
            chunks = [
                prepared[s : s + CHUNK_RECORDS] for s in range(0, len(prepared), CHUNK_RECORDS)
            ]
            twin = (
                self._twin(dir, log, chunks, materialized, checked)
                if len(prepared) >= TWIN_FROM
                else None
            )
            with twin or contextlib.nullcontext():
                if twin is not None:
                    self._hand_over(journal, twin, chunks, 0, materialized)
                for k in range(len(chunks)):
                    records, copies, ahead = self._store_chunk(
                        dir, log, chunks, k, materialized, journal, by, checked, pool, twin
                    )
                    # the commit point of this chunk:
                    log.append(b"".join(encode_record(r) for r in records), records)
                    journal.committed(ahead)  # a kill in a later chunk puts back its copies only
                    if copies:
                        ws.worktree.vouch(dir, copies)
                    done = self._announce(dir, m["id"], records)
                    ids.extend(done)
                    if on_commit is not None:
                        on_commit(done)
        return ids

    def _twin(
        self,
        dir: str,
        log: Any,
        chunks: list[list[tuple]],
        materialized: bool,
        checked: dict[str, tuple | None] | None,
    ) -> Twin | None:
        """A forked twin writing part of each chunk (:mod:`.twin`), for a batch of
        :data:`TWIN_FROM` files or more (the caller asks only then: a single store never pays
        for the question). Not when the batch stores a name twice: the twin's view
        of the records stops at the fork, and would take the earlier copy for an edit."""
        total = sum(len(chunk) for chunk in chunks)
        if self.ws.memory or not can_fork():
            return None
        if len({rec["name"] for chunk in chunks for rec, _, _ in chunk}) < total:
            return None

        def work(k: int) -> tuple[dict[int, tuple], list]:
            chunk = chunks[k]
            return write_files(
                self.ws,
                self._materialize,
                dir,
                log,
                chunk,
                range(parents_part(len(chunk)), len(chunk)),
                materialized,
                checked,
                None,
            )

        try:
            return Twin(work, self.ws.objects.close)
        except OSError:  # no process to spare (EAGAIN, ENOMEM): this one writes it all
            return None

    def _hand_over(
        self, journal: Any, twin: Twin, chunks: list[list[tuple]], k: int, materialized: bool
    ) -> list[str] | None:
        """List chunk ``k``'s copies in the in-flight journal, then set the twin on its part of
        it; return the names listed."""
        names = None
        if not materialized:
            names = [rec["name"] for rec, _, _ in chunks[k]]
            journal.note_many(names)
        twin.submit(k)
        return names

    def _store_chunk(
        self,
        dir: str,
        log: Any,
        chunks: list[list[tuple]],
        k: int,
        materialized: bool,
        journal: Any,
        by: str | None,
        checked: dict[str, tuple | None] | None = None,
        pool: "Writers | None" = None,
        twin: Twin | None = None,
    ) -> tuple[list[dict], list[tuple[str, Any, str]], list[str] | None]:
        """Write the objects and ``files/`` copies of chunk ``k``; return its records (not yet
        appended), the settled copies written, and the names of the next chunk when a twin is
        writing them already.

        A twin was handed its part of this chunk before: it writes the files past our part
        meanwhile, and once it is done, is handed its part of the next chunk, which it writes
        while we append this one's records (so it waits for us as little as it can)."""
        ws = self.ws
        prepared = chunks[k]
        n = len(prepared)
        ahead = None
        if twin is None:
            if not materialized:  # a copy whose record never follows is put back (worktree)
                journal.note_many(list(dict.fromkeys(rec["name"] for rec, _, _ in prepared)))
            share = range(n)
        else:  # two processes, one thread each: threads would only take turns at the GIL
            share = range(parents_part(n))
            pool = None
        written, copies = write_files(
            ws, self._materialize, dir, log, prepared, share, materialized, checked, pool
        )
        if twin is not None:
            theirs, their_copies = twin.result()
            written.update(theirs)
            copies += their_copies
            if k + 1 < len(chunks):
                ahead = self._hand_over(journal, twin, chunks, k + 1, materialized)
        return build_records(ws, log, prepared, written, by), copies, ahead

    def _announce(self, dir: str, sid: str, records: list[dict]) -> list[dict]:
        """Events, hooks and run notes for committed records; return their ids."""
        ws = self.ws
        ids = []
        hooked = "hooks" in ws.__dict__ and ws.hooks.active("AfterArtifactStore")
        told = hooked or "events" in ws.__dict__  # (else no event is built: nobody listens)
        for rec in records:
            if ws.run is not None:
                ws.run.note_artifact(dir, sid, rec)
            aid = {"content_hash": rec["hash"], "session_id": sid, "sequence": rec["seq"]}
            if told:
                event = {**aid, "name": rec["name"], "type": rec["type"], "size": rec["size"]}
                ws.publish("artifact.stored", {**event, "version": rec["version"]})
                if hooked:
                    ws.hooks.run("AfterArtifactStore", sid, event)
            ids.append(aid)
        return ids

    def _materialize(
        self,
        dir: str,
        name: str,
        content: bytes | None,
        oid: str,
        size: int,
        settled: bool = False,
        path: str | Path | None = None,
    ) -> Any:
        """Write the ``files/`` copy of ``content``, or (None: a file stored streamed, from
        ``path``) of object ``oid``: the file read again is taken only if it still hashes to
        ``oid`` (it may have changed since), else the object as stored.

        ``settled``: dated past the racy window before it comes into view, and its stat
        returned, so the stat cache vouches for it at once (a bulk add is not read back by the
        next ``status``); any later write gives it a current mtime."""
        rel = f"sessions/{dir}/files/{name}"
        if size > self.ws.config.get("watch.materialize_max_bytes"):
            self.storage.remove(rel)
            return None
        if content is None:
            if path is not None:  # (one read past the size: a file that grew differs)
                with open_binary(path) as f:
                    content = f.read(size + 1)
            if content is None or len(content) != size or hash_bytes(content) != oid:
                content = self.ws.objects.get(oid)
        return self.storage.write(
            rel, content, mtime_ns=time.time_ns() - 2 * RACY_NS if settled else None
        )
