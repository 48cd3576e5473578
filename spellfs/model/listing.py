"""Listing sessions: the query (SPEC §2) checked, the index rows it chooses, in its order.

A mixin of :class:`~spellfs.model.session.Sessions`. :meth:`SessionListing.list` asks a
running watcher first (:mod:`.watched`); :meth:`SessionListing.list_here` is the listing this
process makes by itself, and :meth:`SessionListing.matching` its rows, which the watcher
answers others from (``spellfs/watch/listings.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..names import check_tags, created_bounds, parse_time
from . import watched
from .manifest import LIVE, STATUSES

if TYPE_CHECKING:
    from .index_row import Row

__all__ = ["SessionListing", "SORT_KEYS"]

SORT_KEYS = ("created_at", "updated_at", "name")
_QUERY_KEYS = {
    "status",
    "tags",
    "parent_session_id",
    "created_after",
    "created_before",
    "limit",
    "offset",
    "sort_by",
}


class SessionListing:
    """The listing half of :class:`~spellfs.model.session.Sessions` (it uses the sessions'
    ``ws``, ``id`` and ``info``)."""

    def list(self, query: dict | None = None) -> list[dict]:
        """Sessions matching ``query`` (SPEC §2); broken manifests are left out and kept in
        ``self.broken``. A running watcher answers when it can (:mod:`.watched`): it has
        followed every change, so this process need not look at every session."""
        q = dict(query or {})
        _checked(q)
        answer = None if self.ws.memory else watched.ask(self.ws.root, {"list": q})
        if answer is not None:
            sessions, broken = answer.get("sessions"), answer.get("broken")
            if _well_formed(sessions, broken):
                self.broken = broken
                return sessions
        return self.list_here(q)

    def list_here(self, query: dict) -> list[dict]:
        """:meth:`list` done by this process itself."""
        return [
            self.info(row.dir, m, row.artifact_count, row.last_at)
            for row, m in self.matching(query)
        ]

    def matching(self, query: dict) -> list[tuple["Row", dict]]:
        """The sessions ``query`` lists, in its order: each one's index row (current with the
        files) and manifest. :meth:`list_here` makes its answer of them; a watcher keeps each
        one's encoded answer while its row does not change (``spellfs/watch/listings.py``)."""
        statuses, tags, after, before, sort_by, limit, offset = _checked(query)
        pref = query.get("parent_session_id")
        parent = self.id(pref) if pref else None
        self.broken: list[str] = []
        index = self.ws.index
        needles = [json.dumps(t) for t in tags]
        chosen = []
        for row in index.refresh_all(records=False):
            if row.error or row.status is None:
                self.broken.append(row.error or row.dir)
            elif row.status in statuses and (not tags or row.has_tags(tags, needles)):
                chosen.append(row)
        index.load_manifests(chosen)
        kept, manifests = [], []
        for row in chosen:
            m = row.manifest
            if m is None:  # removed while we looked
                continue
            if parent is not None and m["parent"] != parent:
                continue
            if after is not None or before is not None:
                created = parse_time(m["created_at"], "created_at")
                if (after is not None and created <= after) or (
                    before is not None and created >= before
                ):
                    continue
            kept.append(row)
            manifests.append(m)
        found = []
        for row, m in zip(index.refresh_records(kept), manifests):
            if row.error:  # its artifacts.yaml, read just now, is broken: as a new process says
                self.broken.append(row.error)
                continue
            found.append((row, m))
        index.commit()
        found.sort(
            key=lambda pair: (_sort_value(pair, sort_by), pair[1]["created_at"], pair[1]["id"])
        )
        return found[offset : None if limit is None else offset + limit]


def _checked(q: dict) -> tuple:
    """A listing query's parts, checked: statuses, tags, created bounds, sort key, limit,
    offset."""
    unknown = set(q) - _QUERY_KEYS
    if unknown:
        raise UsageError(
            f"unknown query field: {sorted(unknown)[0]} (known: {', '.join(sorted(_QUERY_KEYS))})"
        )
    status = q.get("status")
    if status in (None, ""):
        statuses: tuple = LIVE
    elif status == "all":
        statuses = STATUSES
    elif status in STATUSES:
        statuses = (status,)
    else:
        raise UsageError(f"invalid status: {status!r} (one of {', '.join(STATUSES)}, all)")
    tags = check_tags(q.get("tags"))
    after, before = created_bounds(q)
    sort_by = q.get("sort_by") or "created_at"
    if sort_by not in SORT_KEYS:
        raise UsageError(f"invalid sort_by: {sort_by!r} (one of {', '.join(SORT_KEYS)})")
    limit, offset = q.get("limit"), q.get("offset") or 0
    for key, value in (("limit", limit), ("offset", offset)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise UsageError(f"invalid {key}: {value!r} (a non-negative integer)")
    return statuses, tags, after, before, sort_by, limit, offset


def _sort_value(pair: tuple["Row", dict], sort_by: str) -> str:
    """A session's ``sort_by`` field as :meth:`Sessions.info` reports it."""
    row, m = pair
    if sort_by == "updated_at":
        return max(m["updated_at"], row.last_at or "")
    return m[sort_by]


_INFO_KEYS = frozenset(
    (
        "id",
        "name",
        "description",
        "status",
        "tags",
        "created_at",
        "updated_at",
        "parent_session_id",
        "custom_metadata",
        "artifact_count",
        "path",
        "template",
    )
)


def _well_formed(sessions: Any, broken: Any) -> bool:
    """Whether a watcher's answer has the shape :meth:`SessionListing.list_here`'s has (one from
    another version of spellfs, or from something else on the socket, is not taken)."""
    return (
        isinstance(sessions, list)
        and isinstance(broken, list)
        and all(isinstance(s, dict) and s.keys() == _INFO_KEYS for s in sessions)
        and all(isinstance(b, str) for b in broken)
    )
