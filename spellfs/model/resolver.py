"""Finding a session from what a user types: an id, a unique id prefix, a directory name, or an
exact name no other session has (SPEC §2), refusing what could mean two sessions.

A mixin of :class:`~spellfs.model.session.Sessions`: it uses the sessions' ``ws``, ``storage``,
``manifest`` and the ``_resolved`` cache.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import ManifestError, SessionNotFound, SpellError, UsageError

if TYPE_CHECKING:
    from ..store import Storage
    from ..workspace import Workspace

__all__ = ["SessionResolver"]


class SessionResolver:
    """The finding half of :class:`~spellfs.model.session.Sessions` (it uses the sessions'
    ``manifest``)."""

    ws: "Workspace"
    storage: "Storage"
    _resolved: dict[str, str]

    # -- finding ---------------------------------------------------------------
    def resolve(self, ref: Any, looked_at_next: bool = False) -> str:
        """The directory name of the session ``ref`` names (id, unique prefix ≥ 4, dir name, or
        an exact name no other session has).

        A recorded run (``ws.run``) is told of every session resolved, so it keeps the
        session's starting point before the script reads or changes it. ``looked_at_next``:
        the caller reads the manifest next (:meth:`manifest`, which refuses a session gone),
        so an answer known from before is not looked at on disk first (a store's one stat).
        """
        dir = self._resolve(ref, looked_at_next)
        if self.ws.run is not None:
            self.ws.run.note_dir(dir)
        return dir

    def _resolve(self, ref: Any, looked_at_next: bool = False) -> str:
        if ref is None or ref == "":
            if self.ws.current_session is None:
                raise SessionNotFound(
                    "no current session (pass a session id, or call Session.setCurrent first)"
                )
            ref = self.ws.current_session
        if isinstance(ref, bytes):
            ref = ref.decode("utf-8", "replace")
        if not isinstance(ref, str):
            raise UsageError(f"invalid session id: expected a string, got {type(ref).__name__}")
        hit = self._resolved.get(ref)
        if hit is not None and (
            looked_at_next or self.storage.exists(f"sessions/{hit}/session.yaml")
        ):
            return hit
        shown = ref[:64] + ("…" if len(ref) > 64 else "")
        if len(ref) > 200 or not ref or any(c in ref for c in "/\\\0") or ref.startswith("."):
            raise SessionNotFound(f"session not found: {shown!r}")
        if len(ref.encode("utf-8", "replace")) <= 255 and self.storage.exists(
            f"sessions/{ref}/session.yaml"
        ):  # (a longer name is no directory's: it is looked up as a name)
            self.storage.isdir(f"sessions/{ref}/files")  # refuses a files/ link (UnsafePath)
            # (no name is looked at: callers pass directories on, a status pass one per session;
            # no session is given another's directory name, see _check_name)
            self._resolved[ref] = ref
            return ref
        if len(ref) < 4:
            named = self._by_name(ref, shown)
            if named is not None:
                return named
            raise UsageError(
                f"session id prefix too short: {shown} (give at least 4 characters)"
                + self._unreadable_hint()
            )
        key = ref.lower()
        candidates = [
            d
            for d in self.storage.listdir("sessions")
            if d[-8:].startswith(key[:8]) and self.storage.exists(f"sessions/{d}/session.yaml")
        ]
        if (
            len(key) > 8
        ):  # a broken manifest cannot be checked: keep it, so its error is what the user sees
            candidates = [d for d in candidates if (self._id_of(d) or key).startswith(key)]
        if not candidates:
            named = self._by_name(ref, shown)
            if named is not None:
                return named
            raise SessionNotFound(
                f"session not found: {shown} (try `spell ls --all`)" + self._unreadable_hint()
            )
        if len(candidates) > 1:
            raise UsageError(
                f"ambiguous session id: {shown} matches {len(candidates)} sessions "
                f"({', '.join(sorted(candidates)[:5])})"
            )
        dir = candidates[0]
        self.storage.isdir(f"sessions/{dir}/files")  # refuses a files/ link (UnsafePath)
        if len(key) == 36:  # a whole id names its session for good (and is never read as a name);
            self._resolved[ref] = dir  # a shorter prefix (like a name) may come to name another
        else:
            self._only(dir, ref, shown, "the id prefix of")
        self._resolved[dir] = dir  # (what callers pass on: not looked up as a name again)
        return dir

    def _by_name(self, ref: str, shown: str) -> str | None:
        """The one session whose name is exactly ``ref`` (ids and prefixes are tried first). A
        manifest that does not load but whose YAML gives that name raises its own error (file
        and line): the session the user means cannot be read."""
        hits, broken = self._named(ref)
        if broken:
            raise ManifestError(broken[0][1])
        if len(hits) > 1:
            listed = ", ".join(f"{self.manifest(d)['id'][:8]} ({d})" for d in sorted(hits)[:10])
            raise UsageError(
                f"ambiguous session name: {shown!r} names {len(hits)} sessions: {listed} "
                "(give an id instead)"
            )
        if not hits:
            return None  # not cached: a rename can give the name to another
        self._resolved[hits[0]] = hits[0]
        return hits[0]

    def _only(self, dir: str, ref: str, shown: str, how: str) -> None:
        """Refuse ``ref``, which is ``how`` (the id prefix) of ``dir``, when it is also another
        session's exact name: two sessions could be meant, none is picked."""
        hits, broken = self._named(ref)
        others = [d for d in sorted(hits) if d != dir]
        unread = [d for d, _ in broken if d != dir]
        if not others and not unread:
            return
        meant = [f"the name of {self._label(d)}" for d in others[:5]]
        meant += [f"the name in sessions/{d}/session.yaml (which does not load)" for d in unread]
        raise UsageError(
            f"ambiguous session: {shown!r} is {how} {self._label(dir)} and "
            f"{', '.join(meant)} (give the whole id)"
        )

    def _label(self, dir: str) -> str:
        """``name (id8)`` of a session for a message; its directory when the manifest does not
        load."""
        try:
            m = self.manifest(dir)
        except SpellError:
            return dir
        return f"{m['name']} ({m['id'][:8]})"

    def _named(self, ref: str) -> tuple[list[str], list[tuple[str, str]]]:
        """(the sessions whose name is exactly ``ref``, ``(dir, error)`` of the manifests that do
        not load but whose YAML gives that name). Names come from the query index (a stat per
        session; manifests read only where changed); the other broken manifests are kept for
        :meth:`_unreadable_hint`."""
        self._unreadable: list[str] = []
        index = self.ws.index
        rows = index.refresh_all(records=False)
        near = index.holding(json.dumps(ref))  # as the index keeps it: the rest are not decoded
        hits, broken = [], []
        for row in rows:
            if row.error:  # its manifest, or only its records, do not load: look at the file
                try:
                    name = self.manifest(row.dir)["name"]
                except ManifestError as exc:
                    if self._raw_name(row.dir) == ref:
                        broken.append((row.dir, str(exc)))
                    else:
                        self._unreadable.append(str(exc))
                    continue
                except SpellError as exc:
                    self._unreadable.append(str(exc))
                    continue
            elif row.dir in near and row.manifest is not None:
                name = row.manifest["name"]
            else:
                continue
            if name == ref:
                hits.append(row.dir)
        return hits, broken

    def _raw_name(self, dir: str) -> Any:
        """The ``name`` a manifest that does not load still gives (its YAML parses, a field is
        wrong); None when even that cannot be read."""
        from ..store import load_yaml

        rel = f"sessions/{dir}/session.yaml"
        try:
            doc = load_yaml(self.storage.read(rel), rel)
        except (SpellError, OSError):
            return None
        return doc.get("name") if isinstance(doc, dict) else None

    def _unreadable_hint(self) -> str:
        """For "not found": a session whose manifest does not load may hold that name."""
        bad = getattr(self, "_unreadable", [])
        if not bad:
            return ""
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        return f"; a manifest that does not load may name it: {bad[0]}{more}"

    def _id_of(self, dir: str) -> str | None:
        """The session id in ``dir``'s manifest; None when the manifest does not load."""
        try:
            return self.manifest(dir)["id"]
        except SpellError:
            return None
