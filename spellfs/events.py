"""In-process event bus behind the Lua ``Event`` global.

Session and artifact operations publish their own events (``session.created``,
``artifact.stored``, …); subscribers name a pattern with ``*`` wildcards and
receive from their own queue, so a slow reader never loses events to another.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
import threading
import time
from collections import deque
from typing import Any

from .errors import NotFound, UsageError

__all__ = ["EventBus"]

MAX_QUEUED = 10000


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[int, tuple[re.Pattern, deque]] = {}
        self._patterns: dict[int, str] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self.published = 0
        self.delivered = 0

    def subscribe(self, pattern: str) -> int:
        if not isinstance(pattern, str):
            raise UsageError("invalid event pattern: expected a string like 'artifact.*'")
        # An empty pattern matches nothing (as rs-llmspell's), so a subscription stays quiet.
        regex = re.compile(fnmatch.translate(pattern)) if pattern else re.compile(r"(?!)")
        sub = next(self._ids)
        with self._cond:
            self._subs[sub] = (regex, deque(maxlen=MAX_QUEUED))
            self._patterns[sub] = pattern
        return sub

    def subscriptions(self) -> list[dict[str, Any]]:
        """Each live subscription: ``{id, pattern, queued}``."""
        with self._cond:
            return [
                {"id": sub, "pattern": self._patterns[sub], "queued": len(queue)}
                for sub, (_, queue) in self._subs.items()
            ]

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {
                "published": self.published,
                "delivered": self.delivered,
                "subscriptions": len(self._subs),
                "queued": sum(len(q) for _, q in self._subs.values()),
            }

    def unsubscribe(self, sub: int) -> bool:
        with self._cond:
            self._patterns.pop(sub, None)
            return self._subs.pop(sub, None) is not None

    def publish(self, event_type: str, data: Any = None, language: str = "python") -> int:
        """Deliver to every matching subscription; return how many got it.

        Events carry rs-llmspell's ``metadata`` (``source_language``, ``timestamp``,
        ``event_id``): ``lua`` for what a script published, ``python`` for spellfs's own.
        """
        stamp = time.time()
        event = {
            "event_type": event_type,
            "data": data,
            "timestamp": stamp,
            "metadata": {
                "source_language": language,
                "timestamp": stamp,
                "event_id": f"evt-{self.published + 1}",
            },
        }
        delivered = 0
        with self._cond:  # publishers on several threads (a script, the watcher) all count
            self.published += 1
            for regex, queue in self._subs.values():
                if regex.match(event_type):
                    queue.append(event)
                    delivered += 1
            if delivered:
                self.delivered += delivered
                self._cond.notify_all()
        return delivered

    def receive(self, sub: int, timeout_ms: float = 0) -> dict | None:
        deadline = time.monotonic() + max(0.0, float(timeout_ms or 0)) / 1000
        with self._cond:
            while True:
                entry = self._subs.get(sub)
                if entry is None:
                    raise NotFound(f"subscription not found: {sub}")
                if entry[1]:
                    return entry[1].popleft()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
