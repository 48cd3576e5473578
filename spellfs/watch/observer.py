"""Choosing the :class:`~spellfs.watch.watcher.Watcher`'s watchdog observer, and hearing of lost
events.

One recursive schedule on ``sessions/``: watchdog runs an emitter thread per
scheduled path, so per-session ``schedule`` calls would mean thousands of
threads; one recursive schedule costs one thread and 1 + 2N kernel watches
(``sessions/``, each session directory and its ``files/``). When the system's
limit on inotify watches or instances is reached (ENOSPC/EMFILE) the caller is
warned and a polling observer takes over. watchdog has no public signal for a kernel
queue overflow (IN_Q_OVERFLOW): its inotify reader only logs a warning, from the
``watchdog.observers.inotify_c`` logger, and :class:`OverflowAlarm` turns that record into
a call. Because that is not a documented interface, tests/test_watch_watcher.py feeds an
overflow event through the installed watchdog's own reader and fails if the call stops
arriving, so a watchdog upgrade that changes it is caught before release.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Any, Callable

__all__ = ["OverflowAlarm", "start_observer"]

_WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")

Note = Callable[[Any, bool, str], None]


class OverflowAlarm(logging.Handler):
    """Calls ``on_overflow`` when watchdog logs that the kernel's event queue overflowed."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        # watchdog 7: "Inotify queue overflowed; filesystem events were lost"
        if record.name in _WATCHDOG_LOGGERS and "overflow" in str(record.msg).lower():
            self.on_overflow()

    def attach(self) -> None:
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).addHandler(self)

    def detach(self) -> None:
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).removeHandler(self)


def start_observer(
    path: str, note: Note, *, polling: bool, poll_interval: float, warn: Callable[[str], None]
) -> tuple[Any, str]:
    """Watch ``path`` recursively; ``note(path, is_directory, event_type)`` gets every event.

    Returns the started observer and its mode, ``"native"`` or ``"polling"``
    (asked for, or the fallback when the watch limit is reached).
    """
    from watchdog.events import FileSystemEventHandler

    class Handler(FileSystemEventHandler):
        def dispatch(self, event: Any) -> None:
            if event.event_type in ("opened", "closed_no_write"):
                return
            note(event.src_path, event.is_directory, event.event_type)
            if event.dest_path:
                note(event.dest_path, event.is_directory, event.event_type)

    os.makedirs(path, exist_ok=True)
    if not polling:
        from watchdog.observers import Observer

        observer = Observer()
        observer.schedule(Handler(), path, recursive=True)
        try:
            observer.start()
            return observer, "native"
        except OSError as exc:
            observer.stop()  # the observer's shared inotify reader thread already runs
            if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            warn(
                f"the system's limit on file watches is reached ({exc.strerror or exc}): "
                "polling every "
                f"{poll_interval:g} s instead (raise fs.inotify.max_user_watches and "
                "fs.inotify.max_user_instances to watch natively)"
            )
    from watchdog.observers.polling import PollingObserver

    observer = PollingObserver(timeout=poll_interval)
    observer.schedule(Handler(), path, recursive=True)
    observer.start()
    return observer, "polling"
