"""Changing a session: its status (the transitions SPEC §2 allows), metadata, deletion.

:class:`~spellfs.model.session.Sessions` extends :class:`SessionChanges`; a change takes the
manifest lock, rewrites ``session.yaml`` and announces itself (hooks, events).
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

from ..errors import InvalidTransition, UnrecordedChanges, UsageError
from ..names import jsonable, now, some_of
from .leftovers import files_now, keep_new, unjudged, unrecorded

__all__ = ["SessionChanges", "TRANSITIONS"]

TRANSITIONS = {
    ("active", "suspended"),
    ("suspended", "active"),
    ("active", "completed"),
    ("active", "failed"),
    ("suspended", "completed"),
    ("suspended", "failed"),
}


class SessionChanges:
    """The changing half of :class:`~spellfs.model.session.Sessions`."""

    # -- changing --------------------------------------------------------------
    def _update(self, ref: Any, change) -> dict:
        dir = self.resolve(ref)
        with self.storage.lock(f"m-{dir}"):
            m = dict(self.manifest(dir))
            change(m)
            m["updated_at"] = now()
            self._write(dir, m)
        return m

    def transition(self, ref: Any, to: str) -> dict:
        def change(m: dict) -> None:
            if (m["status"], to) not in TRANSITIONS:
                allowed = sorted(b for a, b in TRANSITIONS if a == m["status"])
                raise InvalidTransition(
                    f"cannot make session {m['id'][:8]} {to}: it is {m['status']}"
                    + (
                        f" (it can become {', '.join(allowed)})"
                        if allowed
                        else " (a finished session cannot change status)"
                    )
                )
            m["status"] = to

        m = self._update(ref, change)
        point = {"active": "SessionResume", "suspended": "SessionSuspend"}.get(to, "SessionEnd")
        event = {
            "active": "resumed",
            "suspended": "suspended",
            "completed": "completed",
            "failed": "failed",
        }[to]
        self._announce(point, f"session.{event}", m)
        return m

    def suspend(self, ref: Any) -> dict:
        return self.transition(ref, "suspended")

    def resume(self, ref: Any) -> dict:
        return self.transition(ref, "active")

    def complete(self, ref: Any) -> dict:
        return self.transition(ref, "completed")

    def fail(self, ref: Any) -> dict:
        return self.transition(ref, "failed")

    def update_metadata(self, ref: Any, metadata: dict) -> dict:
        if not isinstance(metadata, dict):
            raise UsageError("invalid metadata: expected a table of key = value")
        extra = jsonable(metadata, "session metadata")
        m = self._update(ref, lambda m: m.__setitem__("metadata", {**m["metadata"], **extra}))
        self.ws.publish("session.updated", {"session_id": m["id"]})
        return m

    def set_manifest_fields(self, ref: Any, **fields: Any) -> dict:
        """Replace manifest fields wholesale (restore, hand-edit helpers)."""
        fields = copy.deepcopy(fields)  # the caller keeps its values; the cache keeps these
        return self._update(ref, lambda m: m.update(fields))

    def delete(self, ref: Any, force: bool = False) -> str:
        """Remove the session's directory (its objects stay until `spell gc`); return its id.

        Copies under ``files/`` holding content no record has (hand edits) stop it
        (:class:`~spellfs.errors.UnrecordedChanges`) unless ``force``, which first stores each
        as an object (see :meth:`remove`, which also says which)."""
        return self.remove(ref, force)[0]

    def remove(
        self, ref: Any, force: bool = False, doing: str = "delete"
    ) -> tuple[str, list[tuple[str, str]]]:
        """:meth:`delete`, returning ``(id, [(name, object id)])``: the hand edits kept first."""
        dir = self.resolve(ref)
        m = self.manifest(dir)
        with self.storage.lock(f"s-{dir}"):
            # what files/ holds now: anything written or changed after this is kept at the end
            before = None if self.ws.memory else files_now(self._files(dir))
            kept = self.ws.worktree.keep_as_objects(dir, force, doing)
            if before is not None:
                recorded, more = self._unjudged_first(dir, before, force, doing)
                kept += more
            if self.ws.run is not None:  # the run's starting point must outlive the files
                self.ws.run.note_deleted(dir)
            if before is None:
                self.storage.rmtree(f"sessions/{dir}")
            else:
                kept += [k for k in self._remove_aside(dir, before, recorded) if k not in kept]
        self._manifests.pop(dir, None)
        self._resolved = {k: v for k, v in self._resolved.items() if v != dir}
        self.ws.index.forget(dir)
        if self.ws.current_session in (m["id"], dir):
            self.ws.current_session = None
        self._announce(None, "session.deleted", m)
        return m["id"], kept

    def _files(self, dir: str) -> str:
        return f"{self.ws.root}/sessions/{dir}/files"

    def _unjudged_first(
        self, dir: str, before: dict[str, tuple], force: bool, doing: str
    ) -> tuple[set[str], list[tuple[str, str]]]:
        """Before a removal: the files of ``before`` the hand-edit check skips (dot files,
        editor temporaries, ignored names, sub-folders) that hold content no record has stop it,
        or with ``force`` are kept as objects. Returns every recorded hash, and what was kept."""
        base = self._files(dir)
        log = self.ws.log(dir)
        log.refresh()
        recorded = {v.get("hash") for vs in log.versions.values() for v in vs}
        wc = self.ws.worktree.scan(dir)
        judged = {n for n in log.versions if log.is_live(n)} | set(wc.added) | set(wc.modified)
        hit = unrecorded(base, unjudged(before, judged), recorded)
        if hit and not force:
            raise UnrecordedChanges(
                f"{doing} would delete files no record holds: sessions/{dir}/files/: "
                f"{some_of(hit)} "
                f"(spellfs records none of them: move them out of the session, or pass --force: "
                "they are kept as objects first)"
            )
        kept = []
        for name in hit:
            with open(f"{base}/{name}", "rb") as f:
                kept.append((name, self.ws.objects.put_stream(f)[0]))
        return recorded, kept

    def _remove_aside(
        self, dir: str, before: dict[str, tuple], recorded: set[str]
    ) -> list[tuple[str, str]]:
        """Rename the session's folder aside (no writer can add to it from then on), keep what
        was written or changed since ``before`` as objects, then delete it."""
        rel = f".spell/tmp/removed-{dir}-{time.time_ns()}"
        try:
            os.makedirs(self.storage.tmpdir, exist_ok=True)  # (refused if a link)
            os.rename(f"{self.ws.root}/sessions/{dir}", f"{self.ws.root}/{rel}")
            self.storage.kept.forget(f"sessions/{dir}")  # (its record file, kept open)
        except OSError:  # (sessions/ on another file system: removed in place)
            rel = f"sessions/{dir}"
        kept = keep_new(self.ws, f"{self.ws.root}/{rel}/files", before, recorded)
        self.storage.rmtree(rel)
        return kept
