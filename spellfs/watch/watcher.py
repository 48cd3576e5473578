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

What a settled key becomes (a version, a deletion, a manifest change) is
:mod:`spellfs.watch.handedits`. With ``answer_listings`` (``spell watch``, the daemon) it also
answers other processes' session listings (:mod:`spellfs.watch.listings`).

Watch strategy: one recursive inotify watch on ``sessions/`` (kernel watches on
``sessions/``, each session directory and its ``files/``; ``.spell/objects`` and
the rest of the workspace are never watched); when the system's limit is reached
(ENOSPC/EMFILE) the watcher says so and polls instead (:mod:`spellfs.watch.observer`).
A kernel queue overflow (events lost) triggers a full rescan, which the stat
cache keeps cheap.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import SpellError, UsageError
from ..model import Ignore
from ..model.watched import identity
from ..names import now, parse_time
from .catchup import CatchUp, StatCache, is_editor_temp, stat_of
from .handedits import HandEdits
from .listings import ListingServer
from .observer import OverflowAlarm, start_observer
from .debounce import DebounceQueue

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Watcher"]

_INF = float("inf")
#: How often (seconds) the worker looks whether ``sessions/`` was replaced (one stat).
LOOK_EVERY = 1.0
_DIR_EVENTS = ("created", "moved", "deleted")


class _NoProgress:
    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


class Watcher(CatchUp, HandEdits):
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
        answer_listings: bool = False,
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
        self._folder: list[int] | None = None  # sessions/, by device and inode
        self._home: list[int] | None = None  # the workspace folder, likewise
        self.listings = ListingServer(ws, self._warn) if answer_listings else None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> "Watcher":
        """Start watching; catch-up runs first on the worker (see :attr:`ready`)."""
        self.cache = StatCache(
            None if self.ws.memory else self.root / ".spell" / "watch-cache.sqlite"
        )
        self._overflow.attach()
        try:
            self._observe()
        except BaseException:
            self._detach()
            raise
        self._worker = threading.Thread(target=self._run, name="spell-watch", daemon=True)
        self._worker.start()
        if self.listings is not None:
            self.listings.start()
        return self

    def stop(self) -> None:
        """Stop and join every thread this watcher started; unsettled keys wait for the next
        catch-up."""
        self._queue.stop()
        if self.listings is not None:
            self.listings.stop()
        if self._worker is not None:
            self._worker.join()  # (first: the worker may replace the observer, see _follow)
        if self.observer is not None:
            self.observer.stop()
            if self.observer.is_alive():
                self.observer.join()
        self._detach()

    def _observe(self) -> None:
        """Start the observer on ``sessions/`` as it is now (the folder, not its path)."""
        self.observer, self.mode = start_observer(
            self._prefix[:-1],
            self._note,
            polling=self.polling,
            poll_interval=self.poll_interval,
            warn=self._warn,
        )
        self._folder = identity(self._prefix[:-1])
        if self._home is None:
            self._home = identity(self.root)

    def _still_home(self) -> None:
        """Stop (an error the CLI reports) once the workspace folder was moved away from the
        path this watcher was started on: whatever is at that path now is not its workspace,
        and it must not record, suspend or list anything there."""
        try:
            here: list[int] | None = identity(self.root)
        except FileNotFoundError:
            here = None
        if here != self._home:
            raise SpellError(
                f"the workspace was moved away from {self.root}: this watcher stops (start one "
                "again where the workspace is now)"
            )

    def _follow(self) -> None:
        """``sessions/`` replaced by another folder (a copy moved in, a checkout): the kernel
        watches the old one, which nothing reaches any more. Watch the new one, and catch up
        with what changed in between."""
        try:
            if identity(self._prefix[:-1]) == self._folder:
                return
        except FileNotFoundError:
            return  # gone for now: looked at again next time
        old = self.observer
        self._observe()
        old.stop()
        if old.is_alive():
            old.join()
        self._warn("sessions/ was replaced by another folder: watching the new one")
        self.catch_up()
        self._flush(set())

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
            next_look = time.monotonic() + LOOK_EVERY
            while True:
                due = self._queue.wait(min(self._next_check, next_look))
                if due is None:
                    return
                self._process(due)
                if time.monotonic() >= next_look:
                    self._still_home()
                    self._guard(self._follow)
                    next_look = time.monotonic() + LOOK_EVERY
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
