"""Sessions: create, find, list, change status, delete.

A session is ``sessions/<slug>-<id8>/`` with a hand-editable ``session.yaml``.
Its ``updated_at`` and ``artifact_count`` as reported are derived (manifest and
artifact log), so storing an artifact never rewrites the manifest.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from ..errors import (
    LimitExceeded,
    NotFound,
    SessionNotFound,
    UsageError,
)
from .lifecycle import TRANSITIONS, SessionChanges
from .listing import SessionListing
from .resolver import SessionResolver
from .manifest import LIVE, SESSION_ID, dump_manifest, load_manifest, update_manifest
from ..names import (
    check_display_name,
    check_tags,
    check_word,
    jsonable,
    new_session_id,
    now,
    slugify,
)

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Sessions", "LIVE", "TRANSITIONS"]

_DIRNAME = re.compile(r"[^./][^/]*-[0-9a-f]{8}")  # what a session's directory name looks like


class Sessions(SessionResolver, SessionChanges, SessionListing):
    def __init__(self, ws: "Workspace") -> None:
        self.closing: set[str] = (
            set()
        )  # ids whose SessionEnd hooks are running: they may still store
        self.ws = ws
        self.storage = ws.storage
        self._manifests: dict[str, tuple[Any, dict]] = {}
        self._resolved: dict[str, str] = {}

    def manifest(self, dir: str) -> dict:
        """The manifest as on disk now (hand edits included); a broken one raises."""
        rel = f"sessions/{dir}/session.yaml"
        sig = self.storage.signature(rel)
        if sig is None:
            raise SessionNotFound(f"session not found: {dir}")
        cached = self._manifests.get(dir)
        if cached is not None and cached[0] == sig:
            return cached[1]
        m = load_manifest(self.storage.read(rel), rel, dir)
        self._manifests[dir] = (sig, m)
        return m

    def id(self, ref: Any) -> str:
        return self.manifest(self.resolve(ref))["id"]

    def _write(self, dir: str, m: dict) -> None:
        """Write ``m`` as the session's manifest (atomically); a rewrite keeps the comments a
        person wrote in the file (:func:`~spellfs.model.manifest.update_manifest`)."""
        rel = f"sessions/{dir}/session.yaml"
        try:
            old = self.storage.read(rel)
        except FileNotFoundError:
            self.storage.write(rel, dump_manifest(m))
        else:
            self.storage.write(rel, update_manifest(old, m, rel))
        self._manifests[dir] = (self.storage.signature(rel), m)
        self.ws.index.note_manifest(dir, m)
        if self.ws.run is not None:
            self.ws.run.note_session(dir, m["id"])

    # -- creating --------------------------------------------------------------
    def create(
        self,
        name: str | None = None,
        description: str | None = None,
        tags: Any = None,
        metadata: dict | None = None,
        parent_session_id: str | None = None,
        template: str | None = None,
    ) -> str:
        defaults: dict[str, Any] = {}
        if template:
            defaults = self.template(template)
        name = name if name not in (None, "") else defaults.get("name") or "session"
        self._check_name(name)
        description = (
            description if description not in (None, "") else defaults.get("description", "")
        )
        if not isinstance(description, str):
            raise UsageError("invalid session description: expected a string")
        all_tags = check_tags(defaults.get("tags")) + [
            t for t in check_tags(tags) if t not in (defaults.get("tags") or [])
        ]
        if metadata is not None and not isinstance(metadata, dict):
            raise UsageError("invalid metadata: expected a table of key = value")
        meta = {**(defaults.get("metadata") or {}), **jsonable(metadata or {}, "session metadata")}
        parent = self.id(parent_session_id) if parent_session_id else None
        with self.storage.lock("sessions"):
            self.check_capacity()
            for _ in range(8):
                sid = new_session_id()
                dir = f"{slugify(name)}-{sid[:8]}"
                if not self.storage.exists(f"sessions/{dir}"):
                    break
            stamp = now()
            m = {
                "id": sid,
                "name": name,
                "description": description,
                "status": "active",
                "tags": all_tags,
                "metadata": meta,
                "parent": parent,
                "template": template or None,
                "created_at": stamp,
                "updated_at": stamp,
            }
            try:
                self.storage.mkdir(f"sessions/{dir}/files")
                if (
                    self.ws.run is not None
                ):  # before the first write: the run's world starts without it
                    self.ws.run.note_created(dir, sid)
                self._write(dir, m)
            except (
                BaseException
            ):  # a full disk, an interrupt: no session directory without its manifest
                self.storage.rmtree(f"sessions/{dir}")
                raise
        self._resolved[sid] = dir
        self._announce("SessionStart", "session.created", m)
        return sid

    def _check_name(self, name: Any) -> None:
        """A session name must be a display name, and not another session's directory name (a
        reference by it names that session: the name could never be used)."""
        check_display_name("session name", name)
        if (
            _DIRNAME.fullmatch(name)
            and len(name.encode("utf-8", "replace")) <= 255
            and self.storage.exists(f"sessions/{name}/session.yaml")
        ):
            raise UsageError(
                f"invalid session name: {name!r} is the directory of another session "
                "(a reference by it names that one; choose another name)"
            )
        low = name.lower()
        if SESSION_ID.fullmatch(low) and any(
            d.endswith("-" + low[:8]) and self._id_of(d) == low
            for d in self.storage.listdir("sessions")
        ):
            raise UsageError(
                f"invalid session name: {name!r} is the id of another session "
                "(a reference by it names that one; choose another name)"
            )

    def named(self, name: str) -> list[str]:
        """The directories of the sessions whose name is exactly ``name``."""
        return self._named(name)[0]

    def template(self, name: str) -> dict:
        check_word("template name", name)
        rel = f"templates/{name}.yaml"
        try:
            data = self.storage.read(rel)
        except FileNotFoundError:
            raise NotFound(f"template not found: {name} (looked for {rel})") from None
        from ..store import load_yaml

        doc = load_yaml(data, rel) or {}
        if not isinstance(doc, dict):
            raise UsageError(f"{rel}: expected a mapping (name, description, tags, metadata)")
        unknown = set(doc) - {"name", "description", "tags", "metadata"}
        if unknown:
            raise UsageError(
                f"{rel}: {sorted(unknown)[0]}: unknown field (known: name, description, "
                "tags, metadata)"
            )
        if doc.get("metadata") is not None and not isinstance(doc["metadata"], dict):
            raise UsageError(f"{rel}: metadata: must be a mapping")
        try:
            check_tags(doc.get("tags"))
        except UsageError as exc:
            raise UsageError(f"{rel}: {exc}") from None
        return doc

    def check_capacity(self) -> None:
        """Refuse one more live session when ``max_sessions`` are live (call under the
        ``sessions`` lock: create, fork and import all add one)."""
        limit = self.ws.config.get("sessions.max_sessions")
        # Cheap first: fewer session directories than the limit needs no reading at all.
        if self._dir_count() < limit:
            return
        live = sum(
            1 for r in self.ws.index.refresh_all() if r.manifest and r.manifest["status"] in LIVE
        )
        if live >= limit:
            raise LimitExceeded(
                f"too many live sessions: {live} active or suspended, max_sessions is {limit} "
                "(complete, fail or remove some, or raise sessions.max_sessions in spell.yaml)"
            )

    def _dir_count(self) -> int:
        if self.ws.memory:
            return len(self.storage.listdir("sessions"))
        import os

        try:  # a directory's link count is 2 + its subdirectories: one stat, not a listing
            links = os.stat(self.ws.root / "sessions").st_nlink
        except FileNotFoundError:
            return 0
        if links < 2:  # btrfs and some others keep no such count: list instead
            return len(self.storage.listdir("sessions"))
        return links - 2

    # -- reading ---------------------------------------------------------------
    def info(
        self, dir: str, m: dict | None = None, count: int | None = None, last_at: str | None = None
    ) -> dict:
        """A session as the Lua API's ``Session.get`` returns it."""
        m = m or self.manifest(dir)
        if count is None:
            log = self.ws.log(dir)
            log.refresh()
            count, last_at = log.live_count, log.last_at
        updated = max(m["updated_at"], last_at or "")
        return {
            "id": m["id"],
            "name": m["name"],
            "description": m["description"],
            "status": m["status"],
            "tags": list(m["tags"]),
            "created_at": m["created_at"],
            "updated_at": updated,
            "parent_session_id": m["parent"],
            "custom_metadata": copy.deepcopy(m["metadata"]),  # the caller's: not the cache's
            "artifact_count": count,
            "path": f"sessions/{dir}",
            "template": m["template"],
        }

    def get(self, ref: Any) -> dict:
        """The session's table; ``modified_on_disk`` names artifacts whose ``files/`` copy was
        changed or deleted by hand and not yet recorded (spellfs)."""
        dir = self.resolve(ref)
        info = self.info(dir)
        info["modified_on_disk"] = sorted(self.ws.worktree.modified_names(dir))
        return info

    # -- current session ---------------------------------------------------------
    def set_current(self, ref: Any) -> None:
        self.ws.current_session = None if ref in (None, "") else self.id(ref)

    def get_current(self) -> str | None:
        return self.ws.current_session

    def _announce(self, point: str | None, event: str, m: dict) -> None:
        if point and "hooks" in self.ws.__dict__ and self.ws.hooks.active(point):
            if (
                point == "SessionEnd"
            ):  # its hooks may still store a summary into the session they close
                self.closing.add(m["id"])
            try:
                self.ws.hooks.run(
                    point,
                    m["id"],
                    {"session_id": m["id"], "name": m["name"], "status": m["status"]},
                )
            finally:
                self.closing.discard(m["id"])
        self.ws.publish(event, {"session_id": m["id"], "name": m["name"], "status": m["status"]})
