"""The query index: a rebuildable SQLite cache of manifests and live artifacts.

Files are the truth. Each cached session row carries the stat signatures of the
``session.yaml`` and ``artifacts.yaml`` it was read from; a query re-stats them
and re-reads only what changed, so hand edits and other processes' writes show
up in the next answer, and deleting ``.spell/index.sqlite`` loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import ManifestError, UnsafePath
from . import index_sql as sql
from .feed import Feed
from .index_db import damaged, healing, open_db, remove_db
from .index_row import UNREAD, Row
from .manifest import load_manifest

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Index"]

# Decorators here are applied by assignment after the ``def`` (``x = healing(x)``,
# ``y = property(_y)``): mutmut 3 leaves decorated functions unmutated, and the cache's
# checks live in exactly these methods.


def _sig(sig: Any) -> str | None:
    return None if sig is None else "%d:%d:%d:%d" % tuple(sig)


class Index:
    #: Why the cache was last rebuilt in this process (``spell fsck`` reports it), or None.
    rebuilt: str | None = None

    def _healed(self, method: Any, args: tuple, kw: dict) -> Any:
        for attempt in range(3):  # damaged: rebuilt on disk; no room: in memory; then give up
            try:
                return method(self, *args, **kw)
            except sqlite3.DatabaseError as exc:
                if attempt == 2 or not damaged(exc):
                    raise
                # no room for the cache, or damaged again: answer from the files
                self.rebuild(str(exc), on_disk="full" not in str(exc) and attempt == 0)

    def rebuild(self, why: str, on_disk: bool = True) -> None:
        """Throw the cache away and start an empty one: every answer is then read from the files.

        ``on_disk=False`` (the disk is full) keeps the file and works in memory for this process.
        """
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None
        self._rows = None
        self._dirty = 0
        if not on_disk:
            self.path = None
            return
        if self.path is not None:
            remove_db(self.path)
        self.rebuilt = why

    def check(self) -> str | None:
        """Verify the cache file (``PRAGMA quick_check``); rebuild a damaged one and say why, else
        None."""
        try:
            result = self.db.execute(sql.QUICK_CHECK).fetchone()[0]
            if result == "ok":
                for count in sql.COUNTS:
                    self.db.execute(count).fetchone()
                return self.rebuilt
            why = f"integrity check: {result}"
        except sqlite3.DatabaseError as exc:
            if not damaged(exc):
                raise
            why = str(exc)
        self.rebuild(why)
        return why

    def __init__(self, ws: "Workspace", path: Path | None) -> None:
        self.ws = ws
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._rows: dict[str, Row] | None = None
        self._dirty = 0
        self._batch = 0
        self._last_commit = time.monotonic()
        self.feed = Feed(ws)  # from a process's second listing on: which rows changed
        #: sessions the last full listing looked at on disk (the others the kernel's queue
        #: vouched for): all of them, then from the feed on only what changed
        self.looked = 0

    # -- storage -------------------------------------------------------------
    def _get_db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = open_db(self.path)
        return self._db

    db = property(_get_db)

    def _get_rows(self) -> dict[str, Row]:
        if self._rows is None:
            self._rows = {}
            # Manifests stay in the database until a row is chosen: a listing filters on status and
            # tags.
            for r in self.db.execute(sql.ROWS):
                row = Row(r[0], r[1], UNREAD, *r[2:])
                row.loader = self._manifest_json
                self._rows[r[0]] = row
        return self._rows

    rows = property(_get_rows)

    def load_manifests(self, rows: list[Row]) -> None:
        """Read the manifests of ``rows`` still in the database with a query per 500, not one
        each."""
        unread = [r for r in rows if r.unread]
        for i in range(0, len(unread), 500):
            part = {r.dir: r for r in unread[i : i + 500]}
            query = f"{sql.MANIFESTS}({','.join('?' * len(part))})"
            for dir, text in self.db.execute(query, list(part)):
                part.pop(dir).set_json(text)
            for r in part.values():  # gone from the database meanwhile
                r.set_json(None)

    load_manifests = healing(load_manifests)

    def holding(self, text: str) -> set[str]:
        """The sessions whose cached manifest (JSON) contains ``text``: a filter the database
        applies without handing every manifest over (a name looked for, ``"name": "x"``)."""
        return {dir for (dir,) in self.db.execute(sql.HOLDING, (text,))}

    holding = healing(holding)

    def _manifest_json(self, dir: str) -> str | None:
        hit = self.db.execute(sql.MANIFEST, (dir,)).fetchone()
        return hit[0] if hit else None

    _manifest_json = healing(_manifest_json)

    def _begin(self) -> None:
        """Writes run in short IMMEDIATE transactions, reads in autocommit: a writer waits
        (busy timeout) for another process's writer instead of failing on a stale read
        snapshot, and no lock outlives the call that took it (a long-lived watcher or
        script must not hold the index against other commands)."""
        if not self.db.in_transaction:
            self.db.execute(sql.BEGIN)

    def _save(self, row: Row) -> None:
        self._begin()
        self.db.execute(
            sql.SAVE,
            (
                row.dir,
                row.id,
                row.json_text,
                row.error,
                row.msig,
                row.rsig,
                row.artifact_count,
                row.last_at,
                row.status,
                row.tags,
            ),
        )
        self._touch()

    def _touch(self, n: int = 1) -> None:
        self._dirty += n
        if not self._batch or self._dirty >= 2000 or time.monotonic() - self._last_commit > 1.0:
            self.commit()

    def commit(self) -> None:
        if self._db is not None and self._db.in_transaction:
            self._db.execute(sql.COMMIT)
        self._dirty = 0
        self._last_commit = time.monotonic()

    commit = healing(commit)

    def close(self) -> None:
        self.feed.close()
        if self._db is not None:
            try:
                self._db.execute(sql.COMMIT)
            except sqlite3.OperationalError:
                pass
            self._db.close()
            self._db = None

    def _signature(self, dir: str, name: str) -> str | None:
        """The stat signature of ``sessions/<dir>/<name>`` as rows keep it."""
        return _sig(self.ws.storage.signature(f"sessions/{dir}/{name}"))

    # -- keeping current -----------------------------------------------------
    def note_manifest(self, dir: str, manifest: dict) -> None:
        """Record a manifest this process just wrote (saves re-reading it)."""
        row = self.rows.get(dir) or Row(dir)
        row.id, row.manifest, row.error = manifest["id"], manifest, None
        row.msig = self._signature(dir, "session.yaml")
        self.rows[dir] = row
        self._save(row)

    note_manifest = healing(note_manifest)

    def forget(self, dir: str) -> None:
        self.feed.forget(dir)
        if self.rows.pop(dir, None) is not None:
            self._begin()
            self.db.execute(sql.DELETE, (dir,))
            self.db.execute(sql.DELETE_ARTIFACTS, (dir,))
            self._touch()

    forget = healing(forget)

    def refresh_dir(self, dir: str, records: bool = True, manifest: bool = True) -> Row | None:
        """The session's row, current with its manifest (and its artifact log when ``records``).

        ``manifest=False`` trusts a manifest this process checked a moment ago.
        """
        storage = self.ws.storage
        base = f"sessions/{dir}/"
        feed = self.feed
        feed.drain()
        row = self.rows.get(dir)
        if dir in feed.stale:  # changed for sure: an edit can keep size and mtime
            feed.stale.discard(dir)
            storage.changed(base[:-1])  # (it may be a link now, put in place of the folder)
            if row is not None:
                row.msig = row.rsig = None
        try:
            # (a row the queue just named has no manifest signature left to trust: look)
            check_m = row is None or row.msig is None or (manifest and dir not in feed.mq)
            msig = self._signature(dir, "session.yaml") if check_m else row.msig
            if msig is None:
                self.forget(dir)
                return None
            check_r = (records or row is None) and not (row is not None and dir in feed.rq)
            rsig = self._signature(dir, "artifacts.yaml") if check_r else row.rsig
            feed.vouch(dir, check_m and msig, check_r and rsig, self._signature)
            if row is None or row.msig != msig:
                storage.isdir(base + "files")  # a files/ link is refused here too
        except UnsafePath as exc:  # a link under sessions/: listed as broken, never followed
            self.forget(dir)
            row = Row(dir, error=str(exc))
            self.rows[dir] = row
            return row
        if row is not None and row.msig == msig and row.rsig == rsig:
            return row
        row = row or Row(dir)
        if row.msig != msig:
            try:
                row.manifest = load_manifest(
                    storage.read(base + "session.yaml"), base + "session.yaml", dir
                )
                row.id, row.error = row.manifest["id"], None
            except ManifestError as exc:
                row.error = str(exc)
            except FileNotFoundError:
                self.forget(dir)
                return None
            row.msig = msig
        if row.rsig != rsig:
            log = self.ws.log(dir)
            try:
                log.refresh()
            except ManifestError as exc:
                row.error = str(exc)
            live = list(log.live())
            row.artifact_count = log.live_count
            row.last_at = log.last_at
            self._begin()
            self.db.execute(sql.DELETE_ARTIFACTS, (dir,))
            self.db.executemany(
                sql.ADD_ARTIFACT,
                [
                    (
                        dir,
                        r["name"],
                        r.get("type", ""),
                        r.get("size", 0),
                        r.get("created_at", ""),
                        json.dumps(r),
                    )
                    for r in live
                ],
            )
            row.rsig = rsig
            self._touch(len(live))
        self.rows[dir] = row
        self._save(row)
        return row

    refresh_dir = healing(refresh_dir)

    def refresh_records(self, rows: list[Row]) -> list[Row]:
        """``rows`` with their artifact logs current (their manifests were checked a moment
        ago): :meth:`refresh_dir` for each, but one drain of the kernel's queue for all, and
        no look at the rows it vouches for. A session gone meanwhile keeps its row."""
        feed = self.feed
        feed.drain()
        vouched, stale = feed.rq, feed.stale
        return [
            row
            if row.dir in vouched and row.dir not in stale
            else self.refresh_dir(row.dir, manifest=False) or row
            for row in rows
        ]

    def refresh_all(self, records: bool = True) -> list[Row]:
        """Every session, current with the files; broken manifests carry ``error``.

        With ``records=False`` only manifests are checked (one stat a session): enough to
        filter; refresh the chosen rows' records with :meth:`refresh_dir` afterwards.
        """
        feed = self.feed
        feed.begin_pass()  # (a watch starts before the stats below, so they cover what came before)
        losses = feed.losses
        rows = self.rows
        followed = feed.complete and not records
        if followed:  # the kernel named every dir that changed
            dirs = [*rows, *(d for d in feed.pending if d not in rows)]
        else:
            dirs = self.ws.storage.listdir("sessions")
        feed.pending.clear()
        out = []
        # On disk, an unchanged manifest is one stat (relative to sessions/: a shorter path
        # walk) and a string compare: the common case.
        fd = None
        if not (records or self.ws.memory):
            try:
                fd = os.open(f"{self.ws.storage.base}sessions", os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                pass
        stat = os.stat
        self._batch += 1
        try:
            quiet, stale, watch = feed.mq, feed.stale, feed.watch
            if fd is not None and quiet:  # vouched for by the kernel's queue: not looked at
                sure = (quiet - stale) & rows.keys()
                out = [rows[dir] for dir in dirs if dir in sure]
                dirs_left = [dir for dir in dirs if dir not in sure]
            else:
                dirs_left = dirs
            trusted = len(out)
            for dir in dirs_left:
                row = rows.get(dir)
                if fd is not None and row is not None and dir not in stale:
                    try:
                        st = stat(dir + "/session.yaml", dir_fd=fd)
                    except OSError:
                        pass
                    else:
                        sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                        if row.msig == _sig(sig):
                            if watch is not None:  # stat-ed after its watch: vouched for
                                feed.vouch(dir, row.msig, False, self._signature)
                            out.append(row)
                            continue
                row = self.refresh_dir(dir, records)
                if row is not None:
                    out.append(row)
            if not followed:  # (else every row was in dirs, and one gone is forgotten as found)
                for gone in set(self.rows) - set(dirs):
                    self.forget(gone)
            feed.complete = feed.watch is not None and feed.losses == losses
            self.looked = len(dirs) - trusted
        finally:
            self._batch -= 1
            if fd is not None:
                os.close(fd)
        self.commit()
        return out

    refresh_all = healing(refresh_all)

    def artifact_rows(
        self, dirs: Iterable[str] | None, where: str, params: list
    ) -> list[tuple[str, dict]]:
        clauses, args = [], []
        if dirs is not None:
            dirs = list(dirs)
            clauses.append(f"dir IN ({','.join('?' * len(dirs))})")
            args.extend(dirs)
        if where:
            clauses.append(where)
            args.extend(params)
        query = sql.ARTIFACTS.format(sql.AND.join(clauses) or "1")
        return [(d, json.loads(rec)) for d, rec in self.db.execute(query, args)]

    artifact_rows = healing(artifact_rows)
