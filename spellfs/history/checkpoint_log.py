"""The checkpoint log of a session, ``sessions/<dir>/checkpoints.yaml``: its records read
incrementally, and a checkpoint found by number or ``N:TREE`` (two clones merged by git may
have given one number to two checkpoints: never a silent pick).

A mixin of :class:`~spellfs.history.checkpoints.History`: it uses the history's ``ws``,
``storage`` and ``_logs`` cache.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointNotFound, UsageError
from ..names import whole_number
from ..store import parse_records

if TYPE_CHECKING:
    from ..store import Storage
    from ..workspace import Workspace

__all__ = ["CheckpointLog", "checkpoint_number", "checkpoint_ref", "ref_of"]


def checkpoint_number(value: Any) -> int:
    """A checkpoint number from Lua (3, 3.0), the CLI ("3", "#3") or Python."""
    if isinstance(value, bool):
        raise UsageError(f"invalid checkpoint: {value!r} (a checkpoint number, see `spell log`)")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        number = whole_number(value.strip().lstrip("#"))
        if number is not None:
            value = number
    if not isinstance(value, int) or value < 1:
        raise UsageError(
            f"invalid checkpoint: {str(value)[:40]!r} (a checkpoint number ≥ 1, see `spell log`)"
        )
    return value


_TREE_PREFIX = re.compile(r"[0-9a-f]{4,64}\Z")


def checkpoint_ref(value: Any) -> tuple[int, str | None]:
    """A checkpoint reference: a number (:func:`checkpoint_number`), or ``N:TREE`` naming one
    of two checkpoints a git merge of two clones left with one number, by a prefix (≥ 4 hex
    digits) of its tree id (``spell log`` shows ``2:1a2b3c4d`` for those)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and ":" in value:
        number, _, tree = value.strip().partition(":")
        tree = tree.lower()
        if not _TREE_PREFIX.match(tree):
            raise UsageError(
                f"invalid checkpoint: {value[:80]!r} (N:TREE takes at least 4 hex digits of "
                "the tree id, see `spell log`)"
            )
        return checkpoint_number(number), tree
    return checkpoint_number(value), None


def ref_of(rec: dict) -> str:
    """The reference that names exactly the checkpoint record ``rec``: ``N:<tree id>``."""
    return f"{rec['number']}:{rec['tree']}"


def _order(rec: dict) -> tuple:
    """Checkpoints sort by number, then time, then tree id: the same order in every clone after
    a merge (file order depends on which way the merge went)."""
    return (rec["number"], str(rec.get("time", "")), rec["tree"])


class CheckpointLog:
    """The log-reading half of :class:`~spellfs.history.checkpoints.History`."""

    ws: "Workspace"
    storage: "Storage"
    #: dir -> (signature, records, offset read to, next line number, latest record)
    _logs: dict[str, tuple[Any, list[dict], int, int, dict | None]]

    # -- the checkpoint log ----------------------------------------------------------
    def records(self, dir: str) -> list[dict]:
        """The checkpoint records of ``dir`` in file order, read incrementally: a file that only
        grew is read from where the last read ended (a save costs the same after 10 or 10,000
        checkpoints); one replaced (a merge, a repair) is read again whole."""
        rel = f"sessions/{dir}/checkpoints.yaml"
        sig = self.storage.signature(rel)
        if sig is None:
            self._logs.pop(dir, None)
            return []
        hit = self._logs.get(dir)
        if hit is not None and hit[0] == sig:
            return hit[1]
        if hit is not None and hit[0][0] == sig[0] and sig[1] >= hit[2] and sig[0] != 0:
            records, offset, line, latest = list(hit[1]), hit[2], hit[3], hit[4]
        else:
            records, offset, line, latest = [], 0, 1, None
        data = self.storage.read_from(rel, offset) if offset else self.storage.read(rel)
        complete = data[
            : data.rfind(b"\n") + 1
        ]  # an unfinished last line is read once it is finished
        for _, r in parse_records(complete, rel, line):
            if isinstance(r.get("number"), int) and isinstance(r.get("tree"), str):
                records.append(r)
                if latest is None or _order(r) >= _order(latest):
                    latest = r  # after a merge a number may repeat: the later time wins
        self._logs[dir] = (
            sig,
            records,
            offset + len(complete),
            line + complete.count(b"\n"),
            latest,
        )
        return records

    def _find(self, dir: str, number: Any) -> dict:
        n, tree = checkpoint_ref(number)
        hits: dict[str, dict] = {}  # tree -> record: one checkpoint, even if its line repeats
        for rec in self.records(dir):
            if rec["number"] == n and (tree is None or rec["tree"].startswith(tree)):
                hits.setdefault(rec["tree"], rec)
        if len(hits) > 1:
            # after a git merge of two clones that each saved checkpoint n: never a silent pick
            sid = self.ws.sessions.manifest(dir)["id"]
            both = "; ".join(
                f"{r['number']}:{r['tree'][:8]} {str(r.get('message') or '')[:40]!r} "
                f"at {r.get('time')}"
                for r in sorted(hits.values(), key=_order)
            )
            raise UsageError(
                f"ambiguous checkpoint: {n if tree is None else f'{n}:{tree}'} in session "
                f"{sid[:8]} names {len(hits)} checkpoints (a git merge of two clones): {both} "
                "(name one as N:TREE)"
            )
        hit = next(iter(hits.values()), None)
        if hit is None:
            if tree is not None:
                sid = self.ws.sessions.manifest(dir)["id"]
                raise CheckpointNotFound(
                    f"checkpoint not found: {n}:{tree} in session {sid[:8]} (see `spell log "
                    f"{sid[:8]}`)"
                )
            sid = self.ws.sessions.manifest(dir)["id"]
            have = self.records(dir)
            last = have[-1]["number"] if have else 0
            hint = (
                f"it has checkpoints 1–{last}"
                if last > 1
                else "it has checkpoint 1"
                if last
                else "it has no checkpoints"
            )
            raise CheckpointNotFound(
                f"checkpoint not found: {n} in session {sid[:8]} ({hint}; see `spell log "
                f"{sid[:8]}`)"
            )
        return hit

    def _latest(self, dir: str) -> dict | None:
        if not self.records(dir):
            return None
        return self._logs[dir][4]

    def checkpoints(self, session: Any) -> list[dict]:
        """The checkpoint records of a session, oldest first."""
        dir = self.ws.sessions.resolve(session)
        return [dict(r) for r in sorted(self.records(dir), key=_order)]

    def duplicated_numbers(self, dir: str) -> dict[int, list[dict]]:
        """number -> its checkpoint records (in :func:`_order`), for every number that two or
        more checkpoints share after a git merge (``spell log`` shows them as ``N:TREE``)."""
        by: dict[int, dict[str, dict]] = {}
        for rec in self.records(dir):
            by.setdefault(rec["number"], {}).setdefault(rec["tree"], rec)
        return {
            n: sorted(recs.values(), key=_order) for n, recs in sorted(by.items()) if len(recs) > 1
        }

    def latest_number(self, dir: str) -> int | None:
        rec = self._latest(dir)
        return rec["number"] if rec else None

    def latest(self, dir: str) -> dict | None:
        """A copy of the latest checkpoint's record (the one saved last, after a merge too)."""
        rec = self._latest(dir)
        return dict(rec) if rec else None
