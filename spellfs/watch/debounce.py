"""The :class:`~spellfs.watch.watcher.Watcher`'s debounce queue: keys that fall due after a quiet
spell.

watchdog's threads :meth:`~DebounceQueue.push` keys; one worker thread
:meth:`~DebounceQueue.wait`\\ s for them. Pushing a key again moves its deadline
on and replaces the value it carries (the file's ``lstat`` at event time), so
a burst of events for one key comes out once, after the last one. The worker is
woken only when a push makes the earliest deadline earlier.
"""

from __future__ import annotations

import heapq
import threading
import time
from typing import Any

__all__ = ["DebounceQueue"]

_INF = float("inf")


class DebounceQueue:
    """Keys with deadlines, safe to push from any thread and to wait on from one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[tuple, tuple[float, Any]] = {}
        self._heap: list[tuple[float, int, tuple]] = []
        self._seq = 0
        self._wake_at = _INF
        self.stopping = False

    def push(self, key: tuple, value: Any, delay: float) -> None:
        """Make ``key`` due ``delay`` seconds from now, carrying ``value`` (replacing an earlier
        push)."""
        deadline = time.monotonic() + delay
        with self._cond:
            self._pending[key] = (deadline, value)
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, key))
            if deadline < self._wake_at:
                self._cond.notify()

    def wait(self, next_check: float) -> list[tuple[tuple, Any]] | None:
        """Block until keys are due or the monotonic time ``next_check`` is reached; None when
        stopping.

        Returns the due ``(key, value)`` pairs (empty when only ``next_check`` was reached).
        """
        with self._cond:
            while True:
                if self.stopping:
                    return None
                now_ = time.monotonic()
                due = []
                while self._heap and self._heap[0][0] <= now_:
                    deadline, _, key = heapq.heappop(self._heap)
                    entry = self._pending.get(key)
                    if entry is not None and entry[0] == deadline:
                        del self._pending[key]
                        due.append((key, entry[1]))
                if due or now_ >= next_check:
                    self._wake_at = -_INF  # busy: no need to be woken
                    return due
                self._wake_at = min(self._heap[0][0] if self._heap else _INF, next_check)
                self._cond.wait(self._wake_at - now_)

    def stop(self) -> None:
        """Make :meth:`wait` return None, now and from then on."""
        with self._cond:
            self.stopping = True
            self._cond.notify_all()
