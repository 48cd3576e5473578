"""What one script run's recorded calls share: where answers come from, numbers, record order.

Model calls (the ``Agent`` global) and web searches (the ``web_search`` tool) are recorded
the same way (:mod:`.calls`) and answered the same way under ``spell replay``; a
:class:`Recorder` is the part they share, one per script run:

* the replay mode, from ``SPELL_REPLAY`` (``1``: answer from records, ``live``: ask again);
* the replayed run's own call records (``SPELL_REPLAY_CALLS``, a JSON list) and, without
  them, the recorded calls of the replayed session's lineage (:func:`.lineage.replay_sources`);
  :meth:`Recorder.lookup` finds the record answering a call in either;
* per-session call logs and call numbers (``<name>-0001``), taken when a call is asked;
* tickets: calls are recorded in the order they were asked (a replay pairs them by that
  order), also when parallel workflow steps get their answers in another order.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ReplayError, SpellError

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["NOT_REPLAYING", "Recorder", "replay_mode"]

NOT_REPLAYING = ("", "0", "live", "false", "no")


def replay_mode(environ: Any) -> str:
    return (environ.get("SPELL_REPLAY") or "").strip().lower()


class Recorder:
    """One run's recorded calls (see the module docstring); the ``ws`` it records into."""

    def __init__(self, ws: "Workspace", environ: Any = os.environ) -> None:
        from .calls import CallLog

        self.ws = ws
        self.environ = environ
        self.mode = replay_mode(environ)
        self.replaying = self.mode not in NOT_REPLAYING
        self._log_cls = CallLog
        self._logs: dict[str, Any] = {}
        self._numbers: dict[tuple[str, str], int] = {}
        self._sources: dict[str, list[str]] = {}
        self._pool: list[dict] | None = None
        self._used: set[int] = set()
        self._tickets: list[dict] = []
        self._lock = threading.Lock()

    # -- where recorded answers are ------------------------------------------------------
    def pool(self) -> list[dict]:
        """The replayed run's own call records (``$SPELL_REPLAY_CALLS``); empty when not set."""
        if self._pool is None:
            self._pool = []
            path = (self.environ.get("SPELL_REPLAY_CALLS") or "").strip()
            if path and self.replaying:
                import json

                try:
                    with open(path, "rb") as f:
                        data = json.load(f)
                except (OSError, ValueError) as exc:
                    raise ReplayError(f"cannot read the recorded calls: {path}: {exc}") from None
                self._pool = (
                    [c for c in data if isinstance(c, dict)] if isinstance(data, list) else []
                )
        return self._pool

    def pooled(self) -> bool:
        """Whether this replay is answered from the replayed run's records alone."""
        return bool((self.environ.get("SPELL_REPLAY_CALLS") or "").strip())

    def log(self, dir: str) -> Any:
        log = self._logs.get(dir)
        if log is None:
            log = self._logs[dir] = self._log_cls(self.ws, dir)
        return log.refresh()

    def sources(self, dir: str) -> list[str]:
        from .lineage import replay_sources

        found = self._sources.get(dir)
        if found is None:
            found = self._sources[dir] = replay_sources(self.ws, dir, self.environ)
        return found

    def has_recordings(self) -> bool:
        if self.pool():
            return True
        sid = (self.environ.get("SPELL_SESSION") or "").strip()
        if not sid:
            return False
        try:
            from .lineage import lineage

            return any(self.log(d).records for d in lineage(self.ws, self.ws.sessions.resolve(sid)))
        except SpellError:
            return False

    def lookup(self, name: str, dir: str, h: str, number: int) -> dict | None:
        """The record answering call ``number`` of ``name`` with request hash ``h``, or None.

        From the replayed run's records: the one with the same hash, name and number, else
        the next unused one with the same hash. Else from the session's lineage: the same
        name's call with the same number, else the n-th identical request gets the n-th
        recorded answer; the target session itself gives its latest answer.
        """
        if self.pooled():
            pool = self.pool()
            with self._lock:
                hits = [
                    i
                    for i, c in enumerate(pool)
                    if c.get("request_hash") == h and i not in self._used and _answers(c)
                ]
                exact = [
                    i
                    for i in hits
                    if pool[i].get("agent") == name and pool[i].get("call") == number
                ]
                if not hits:
                    return None
                i = (exact or hits)[0]
                self._used.add(i)
                return pool[i]
        log = self.log(dir)
        done = len(log.by_hash.get(h, ()))  # this request's earlier answers in this session
        for d in self.sources(dir):
            recs = [r for r in self.log(d).by_hash.get(h, ()) if _answers(r)]
            if recs and d != dir:
                # The same call with the same number is the counterpart (a fork keeps the
                # numbering of the calls before its checkpoint); else the n-th identical request.
                for rec in recs:
                    if rec.get("call") == number and rec.get("agent") == name:
                        return rec
                return recs[min(done, len(recs) - 1)]
            if recs:  # the target itself: its own latest answer
                return recs[-1]
        return None

    # -- numbers and the order of records ------------------------------------------------
    def number(self, dir: str, name: str) -> int:
        """The next call number of ``name`` in session ``dir``, taken now (parallel calls of one
        name get their own numbers)."""
        from .calls import next_number

        key = (dir, name)
        n = next_number(self.ws, dir, name, self._numbers.get(key, 0))
        self._numbers[key] = n
        return n

    def ticket(self) -> dict:
        """A place in the record order, taken when a call is asked (on the script's thread)."""
        ticket: dict[str, Any] = {"state": "pending"}
        self._tickets.append(ticket)
        return ticket

    def done(self, ticket: dict, record: Callable[[], None]) -> None:
        """The call of ``ticket`` is answered: record it once the calls asked before it are."""
        ticket.update(state="done", record=record)
        self.flush()

    @staticmethod
    def abandon(ticket: dict) -> None:
        """The call failed: it records nothing and holds up no later call."""
        ticket["state"] = "abandoned"

    def flush(self, everything: bool = False) -> None:
        """Record the answered calls whose earlier calls are recorded (``everything``: all
        answered ones, dropping calls that will never be answered)."""
        while self._tickets:
            head = self._tickets[0]
            if head["state"] == "pending" and not everything:
                return
            self._tickets.pop(0)
            if head["state"] == "done":
                head["record"]()


def _answers(rec: dict) -> bool:
    """A record that can answer a replayed call (an unanswered search in a replay cannot)."""
    return rec.get("source") != "unanswered"
