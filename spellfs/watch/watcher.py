"""The watcher: what people change by hand under ``sessions/`` becomes records.

Two kinds of threads, one owner. watchdog's emitter and dispatcher threads turn
kernel events into *keys* (``("f", dir, name)`` a file under ``files/``,
``("m", dir)`` a manifest, ``("r", dir)`` a record log, ``("s", dir)`` a session
to rescan, ``("all",)`` everything) and hand them to :meth:`Watcher._schedule`;
nothing else happens on those threads. One worker thread owns the workspace: it
sleeps until the earliest key is due (:mod:`spellfs.watch.debounce`), then acts on it.

Debounce: every event for a key pushes its deadline ``quiet`` seconds on, and
carries the file's ``lstat`` at event time. When the deadline passes the file is
stat'ed again; a different stat means it is still moving and the key waits
again. The content is hashed from one open descriptor whose size and mtime must
not move while it is read. So an editor's write-temp-and-rename, a truncate and
rewrite, or a burst of small writes each give one version with the settled
content, never a partial one.

Our own writes are not hand edits: the hash is compared, under the session's
store lock, with the latest record of that name; equal means nothing to do. A
content equal to an *older* version is a new version (the user reverted). The
file is read before the lock is taken, so under it its stat is checked again: a
store that got the lock first has replaced it, and what was read (that store's
predecessor's copy) is not taken for a hand edit; the file is looked at again.

Watch strategy: one recursive inotify watch on ``sessions/`` (kernel watches on
``sessions/``, each session directory and its ``files/``; ``.spell/objects`` and
the rest of the workspace are never watched); when the system's limit is reached
(ENOSPC/EMFILE) the watcher says so and polls instead (:mod:`spellfs.watch.observer`).
A kernel queue overflow (events lost) triggers a full rescan, which the stat
cache keeps cheap.
"""

from __future__ import annotations

import os
import stat as statmod
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ManifestError, SessionNotFound, SpellError, UsageError
from ..model import Ignore
from ..names import check_artifact_name, now, parse_time
from .catchup import CatchUp, StatCache, hash_path, is_editor_temp, stat_of
from ..model.absent import DELETED, UNWRITTEN, KeptOut, absence, write_back
from ..model.inflight import pending, repair_inflight
from .observer import OverflowAlarm, start_observer
from .debounce import DebounceQueue

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Watcher"]

_INF = float("inf")
_DIR_EVENTS = ("created", "moved", "deleted")


class _NoProgress:
    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


class Watcher(CatchUp):
    """Watch one workspace until :meth:`stop`. ``emit`` receives one dict per change.

    Changes: ``stored`` / ``deleted`` (an artifact), ``manifest`` (a valid hand edit
    of session.yaml), ``invalid`` (a bad one; ``error`` names file and line),
    ``suspended`` (idle past ``session_timeout_seconds``), and ``warning``.
    """

    def __init__(
        self,
        ws: "Workspace",
        emit: Callable[[dict], None] | None = None,
        *,
        quiet: float = 0.15,
        polling: bool = False,
        poll_interval: float = 1.0,
        check_interval: float | None = None,
        progress: Callable[[str, int], Any] | None = None,
    ) -> None:
        if ws.root is None:
            raise UsageError("cannot watch an in-memory workspace")
        self.ws = ws
        self.root = Path(ws.root)
        self._real_root = os.path.realpath(self.root)
        self._prefix = os.fspath(self.root / "sessions") + "/"
        self.emit = emit or (lambda change: None)
        self.quiet = quiet
        self.polling = polling
        self.poll_interval = poll_interval
        self.timeout = ws.config.get("sessions.session_timeout_seconds") or 0
        if check_interval is None:
            check_interval = min(30.0, max(1.0, self.timeout / 10)) if self.timeout > 0 else 30.0
        self.check_interval = check_interval
        self.progress = progress or (lambda label, total: _NoProgress())
        self.ignore = Ignore(ws)
        self.cache: StatCache | None = None
        self.observer: Any = None
        self.mode = ""
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.counts = {
            "stored": 0,
            "deleted": 0,
            "manifest": 0,
            "invalid": 0,
            "suspended": 0,
            "warning": 0,
        }
        self._queue = DebounceQueue()
        self._worker: threading.Thread | None = None
        self._overflow = OverflowAlarm(lambda: self._schedule(("all",), None))
        self._bad: dict[str, str] = {}
        self._manifests: dict[str, dict] = {}
        self._warned: set = set()
        self._next_check = _INF

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> "Watcher":
        """Start watching; catch-up runs first on the worker (see :attr:`ready`)."""
        self.cache = StatCache(
            None if self.ws.memory else self.root / ".spell" / "watch-cache.sqlite"
        )
        self._overflow.attach()
        try:
            self.observer, self.mode = start_observer(
                self._prefix[:-1],
                self._note,
                polling=self.polling,
                poll_interval=self.poll_interval,
                warn=self._warn,
            )
        except BaseException:
            self._detach()
            raise
        self._worker = threading.Thread(target=self._run, name="spell-watch", daemon=True)
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop and join every thread this watcher started; unsettled keys wait for the next
        catch-up."""
        self._queue.stop()
        if self.observer is not None:
            self.observer.stop()
            if self.observer.is_alive():
                self.observer.join()
        if self._worker is not None:
            self._worker.join()
        self._detach()

    def __enter__(self) -> "Watcher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _detach(self) -> None:
        self._overflow.detach()
        if self.cache is not None:
            self.cache.close()

    # -- intake (watchdog's threads) ------------------------------------------
    def _note(self, path: Any, is_dir: bool, event_type: str) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not path.startswith(self._prefix):
            return
        parts = path[len(self._prefix) :].split("/")
        dir = parts[0]
        if not dir or dir.startswith("."):
            return
        if is_dir:
            if event_type in _DIR_EVENTS and (
                len(parts) == 1 or (len(parts) == 2 and parts[1] == "files")
            ):
                self._schedule(("s", dir), None)
            return
        if len(parts) == 3 and parts[1] == "files":
            if not is_editor_temp(parts[2]):
                self._schedule(("f", dir, parts[2]), stat_of(path))
        elif len(parts) == 2 and parts[1] == "session.yaml":
            self._schedule(("m", dir), None)
        elif len(parts) == 2 and parts[1] == "artifacts.yaml":
            self._schedule(("r", dir), None)

    def _schedule(self, key: tuple, st: Any, delay: float | None = None) -> None:
        self._queue.push(key, st, self.quiet if delay is None else delay)

    # -- the worker --------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.catch_up()
            self._flush(set())
            self._next_check = time.monotonic() + self.check_interval
            self.ready.set()
            while True:
                due = self._queue.wait(self._next_check)
                if due is None:
                    return
                self._process(due)
                if time.monotonic() >= self._next_check:
                    self._guard(self.check_timeouts)
                    self._next_check = time.monotonic() + self.check_interval
        except BaseException as exc:  # surfaced by the CLI; never a silent dead watcher
            self.error = exc
            self._warn(f"the watcher stopped: {type(exc).__name__}: {exc}")
        finally:
            self.ready.set()

    def _process(self, due: list[tuple[tuple, Any]]) -> None:
        touched: set[str] = set()
        for key, st in due:
            if self._queue.stopping:
                break  # the rest waits for the next start's catch-up
            kind = key[0]
            if kind == "all":
                self._guard(self.catch_up)
                continue
            touched.add(key[1])
            if kind == "f":
                self._guard(self._file, key[1], key[2], st)
            elif kind == "m":
                self._guard(self._manifest, key[1])
            elif kind == "s":
                self._guard(self.catch_up, [key[1]])
        self._flush(touched)

    def _flush(self, touched: set[str]) -> None:
        for dir in touched:
            self._guard(self.ws.index.refresh_dir, dir)
        self.ws.index.commit()
        if self.cache is not None:
            self.cache.flush()

    def _guard(self, fn: Callable, *args: Any) -> Any:
        try:
            return fn(*args)
        except (SpellError, OSError) as exc:
            self._warn(str(exc))
        return None

    # -- files -----------------------------------------------------------------
    def _file(self, dir: str, name: str, st_event: Any, scanned: bool = False) -> None:
        path = f"{self._prefix}{dir}/files/{name}"
        rel = f"sessions/{dir}/files/{name}"
        st = stat_of(path)
        if not scanned and st != st_event:
            self._schedule(("f", dir, name), st)  # still moving
            return
        if dir in self._bad or self.ignore.matches(rel):
            return
        if st is None:
            self._gone(dir, name, rel)
            return
        target = path
        if statmod.S_ISLNK(st[3]):
            target = os.path.realpath(path)
            if not self._inside(target):
                self._warn_once(
                    ("link", rel, target),
                    f"skipped {rel}: a link out of the workspace (to {target})",
                )
                return
            try:
                t = os.stat(target)
            except OSError:
                return
            st = (t.st_ino, t.st_size, t.st_mtime_ns, t.st_mode, t.st_ctime_ns)
        if not statmod.S_ISREG(st[3]):
            return
        try:
            check_artifact_name(name)
        except UsageError as exc:
            self._warn_once(("name", rel), f"skipped {rel}: {exc}")
            return
        digest, data = self.cache.lookup(rel, st), None
        if digest is None:
            got = hash_path(target)
            if got is None or got[2][:3] != st[:3]:
                self._schedule(("f", dir, name), stat_of(path))  # changed while read
                return
            digest, data, _ = got
        self._record(dir, name, rel, target, st, digest, data)

    def _latest(self, dir: str, name: str) -> tuple[dict, Any, dict | None] | None:
        """(manifest, refreshed log, latest record of ``name``), or None when the session is gone or
        broken (and reported); call under the session lock."""
        try:
            m = self.ws.sessions.manifest(dir)
        except SessionNotFound:
            return None
        except ManifestError as exc:
            self._report_bad(dir, exc)
            return None
        log = self.ws.log(dir)
        log.refresh()
        return m, log, log.latest(name)

    def _record(
        self, dir: str, name: str, rel: str, target: str, st: Any, digest: str, data: bytes | None
    ) -> None:
        ws = self.ws
        with ws.storage.lock(f"s-{dir}"):
            found = self._latest(dir, name)
            if found is None:
                return
            m, log, latest = found
            if latest is not None and latest.get("hash") == digest:
                self.cache.put(rel, st, digest)  # our own copy, or nothing new
                return
            now_st = stat_of(target)
            if now_st is None or now_st[:3] != st[:3]:
                # Rewritten since it was read: a store (which writes files/ under this lock)
                # came first, so what was read may be its stale copy. Look again.
                self._schedule(("f", dir, name), stat_of(f"{self._prefix}{dir}/files/{name}"))
                return
            if self._phantom(dir, name):
                return  # a copy a killed store left: put back, never adopted as a hand edit
            m = self._writable(dir, m, rel)
            if m is None:
                return
            if data is not None:
                aid = ws.artifacts.store(dir, "user_input", name, data, materialized=True)
            else:
                aid = ws.artifacts.store_file(
                    dir, target, "user_input", name=name, materialized=True
                )
            rec = log.latest(name) or {}
        if aid["content_hash"] == digest:
            self.cache.put(rel, st, digest)
        else:
            self.cache.drop(rel)
        self._change(
            "stored",
            dir,
            m,
            path=rel,
            name=name,
            version=rec.get("version"),
            hash=aid["content_hash"],
            size=rec.get("size"),
        )

    def _gone(self, dir: str, name: str, rel: str) -> None:
        ws = self.ws
        with ws.storage.lock(f"s-{dir}"):
            found = self._latest(dir, name)
            if found is None:
                return
            m, _, latest = found
            if latest is None:
                self.cache.drop(rel)
                return
            if latest.get("size", 0) > ws.config.get("watch.materialize_max_bytes"):
                return  # too large to have a copy under files/: absence is not a deletion
            why = absence(ws, dir, name, latest, rel in self.cache.entries, KeptOut(ws))
            if why != DELETED:  # not local, or kept out of git and never here: no deletion
                if why == UNWRITTEN:
                    write_back(ws, dir, [name])
                return
            if os.path.lexists(self._prefix + rel[len("sessions/") :]):
                return  # back already; its own event follows
            m = self._writable(dir, m, rel)
            if m is None:
                return
            ws.artifacts.delete(dir, name)
        self.cache.drop(rel)
        self._change("deleted", dir, m, path=rel, name=name)

    def _phantom(self, dir: str, name: str) -> bool:
        """True when ``files/<name>`` was written by a store that never appended its record
        (and has now been put back); call under the session lock."""
        if not pending(self.ws, dir):
            return False
        fixed = repair_inflight(self.ws, dir)
        for n in fixed:
            self._change("put-back", dir, None, path=f"sessions/{dir}/files/{n}", name=n)
        return name in fixed

    def _writable(self, dir: str, m: dict, rel: str) -> dict | None:
        """The manifest of a session that may take a hand edit now, or None (reported).

        A suspended session (the idle timeout suspends them) is resumed by the edit, as
        `spell add` does; a completed or failed one is read-only: the edit stays on disk,
        reported here and by `spell status`, never recorded."""
        if m["status"] == "suspended":
            m = self.ws.sessions.resume(dir)
            self._manifests[dir] = m
            self._change("resumed", dir, m, path=rel, status=m["status"])
        if m["status"] != "active":
            self._warn_once(
                ("finished", rel, m["status"]),
                f"not recorded: {rel} changed by hand in {m['status']} session {m['id'][:8]} "
                f"(a finished session is read-only; fork it: `spell fork {m['id'][:8]}`)",
            )
            return None
        return m

    def _inside(self, real: str) -> bool:
        return real == self._real_root or real.startswith(self._real_root + "/")

    # -- manifests -------------------------------------------------------------
    def _manifest(self, dir: str) -> None:
        try:
            m = self.ws.sessions.manifest(dir)
        except SessionNotFound:
            self._bad.pop(dir, None)
            self._manifests.pop(dir, None)
            return
        except ManifestError as exc:
            self._report_bad(dir, exc)
            return
        was_bad = self._bad.pop(dir, None) is not None
        old = self._manifests.get(dir)
        self._manifests[dir] = m
        if was_bad or (old is not None and old != m):
            changed = sorted(k for k in m if old is None or old.get(k) != m[k])
            self._change(
                "manifest",
                dir,
                m,
                path=f"sessions/{dir}/session.yaml",
                status=m["status"],
                name=m["name"],
                fields=changed,
                fixed=was_bad,
            )
        if was_bad:
            self._schedule(("s", dir), None, delay=0)  # its files waited while it was broken

    def _report_bad(self, dir: str, exc: Exception) -> None:
        msg = str(exc)
        if self._bad.get(dir) != msg:
            self._bad[dir] = msg
            self._change("invalid", dir, None, path=f"sessions/{dir}/session.yaml", error=msg)

    # -- session timeout -----------------------------------------------------------
    def check_timeouts(self) -> None:
        """Suspend active sessions idle longer than ``session_timeout_seconds``."""
        if self.timeout <= 0:
            return
        limit = time.time() - self.timeout
        for row in self.ws.index.refresh_all():
            m = row.manifest
            if m is None or row.error or m["status"] != "active" or row.dir in self._bad:
                continue
            updated = max(m["updated_at"], row.last_at or "")
            if parse_time(updated, "updated_at") >= limit:
                continue
            new = self.ws.sessions.suspend(row.dir)
            self._manifests[row.dir] = new
            self._change(
                "suspended",
                row.dir,
                new,
                path=f"sessions/{row.dir}/session.yaml",
                idle_seconds=int(time.time() - parse_time(updated, "updated_at")),
            )

    # -- reporting -----------------------------------------------------------------
    def _change(self, event: str, dir: str, m: dict | None, **fields: Any) -> None:
        self.counts[event] = self.counts.get(event, 0) + 1
        change = {"event": event, "time": now(), "session": dir}
        if m is not None:
            change["session_id"] = m["id"]
        change.update(fields)
        self.emit(change)

    def _warn(self, message: str) -> None:
        self.counts["warning"] += 1
        self.emit({"event": "warning", "time": now(), "message": message})

    def _warn_once(self, key: Any, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._warn(message)
