"""Artifacts: store, read, list, query and delete the versioned files of a session.

Storing lives in :mod:`.artifact_writes` (the write path and its crash safety); this module
reads, lists, queries and deletes.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from ..errors import ArtifactNotFound, UsageError
from ..names import created_bounds, check_tags, now, parse_time, utc_key, whole_number
from ..store import encode_record
from .artifact_writes import ArtifactWrites
from .store_inputs import require_active

__all__ = ["Artifacts", "KNOWN_TYPES", "require_active"]

KNOWN_TYPES = ("tool_result", "agent_output", "user_input", "system_generated")
_QUERY_KEYS = {
    "session_id",
    "type",
    "name_pattern",
    "tags",
    "created_after",
    "created_before",
    "min_size",
    "max_size",
    "limit",
}


def metadata_of(rec: dict) -> dict:
    """The metadata table of SPEC §2 for one record."""
    return {
        "name": rec["name"],
        "description": rec.get("description", ""),
        "artifact_type": rec.get("type", ""),
        "mime_type": rec.get("mime_type", ""),
        "size": rec.get("size", 0),
        "tags": list(rec.get("tags", ())),
        "custom": dict(rec.get("custom", {})),
        "version": rec.get("version", 1),
        "created_at": rec.get("created_at", ""),
        "created_by": rec.get("created_by", ""),
        "is_compressed": bool(rec.get("compressed", False)),
        "original_size": rec.get("size", 0),
        "content_hash": rec.get("hash", ""),
        "sequence": rec["seq"],
    }


def _deleted_hint(log: Any, name: str | None) -> str:
    """For a deleted artifact: how its versions still read."""
    versions = log.versions.get(name) if name is not None else None
    if not versions or log.is_live(name):
        return ""
    n = len(versions)
    return f" ({name} was deleted; its versions still read as {name}@1" + (
        f"..{name}@{n})" if n > 1 else ")"
    )


class Artifacts(ArtifactWrites):
    # -- reading ---------------------------------------------------------------
    def _log(self, session: Any):
        dir = self.ws.sessions.resolve(session)
        log = self.ws.log(dir)
        log.refresh()
        return dir, log

    def find(self, session: Any, ref: Any) -> tuple[str, dict]:
        """The record ``ref`` names: an id table, a sequence, or a string: a name (latest version;
        an exact name wins), else ``name@version``, else ``#sequence``."""
        dir, log = self._log(session)
        rec = None
        found = None  # the record an id or sequence names: it reads only while its artifact is live
        name = None  # what the reference is about, for the not-found message
        if isinstance(ref, dict):
            seq = ref.get("sequence")
            if isinstance(seq, float) and seq.is_integer():
                seq = int(seq)
            if not isinstance(seq, int):
                raise UsageError(
                    "invalid artifact id: expected {content_hash, session_id, sequence}"
                )
            found, shown = log.find(seq, ref.get("content_hash")), f"#{seq}"
            if ref.get("content_hash") in (None, ""):
                found = self._one(dir, log, seq)
        elif isinstance(ref, int) and not isinstance(ref, bool):
            found, shown = self._one(dir, log, ref), f"#{ref}"
        elif isinstance(ref, (str, bytes)):
            text = ref.decode("utf-8", "replace") if isinstance(ref, bytes) else ref
            shown, name = text[:80], text
            rec = log.latest(text)  # "notes@2" or "#1" may be names too
            base, at, version = text.rpartition("@")
            number = whole_number(version) if at and base else None
            seq = whole_number(text[1:]) if text.startswith("#") else None
            other = None
            if number is not None:  # an explicit version reads from history, deleted or not
                other = log.version(base, number)
            elif seq is not None:
                other = self._one(dir, log, seq)
            if rec is not None and other is not None:
                raise self._two_readings(dir, text, rec, other)
            if rec is None and number is None:
                found = other  # (#seq: live only, below)
            elif rec is None:
                rec = other
        else:
            raise UsageError(f"invalid artifact id: {ref!r}")
        if (
            found is not None
        ):  # after a delete its ids and sequences no longer read, as in rs-llmspell
            name = found["name"]
            rec = found if log.is_live(name) else None
        if rec is None:
            sid = self.ws.sessions.manifest(dir)["id"]
            raise ArtifactNotFound(
                f"artifact not found: {shown} in session {sid[:8]}{_deleted_hint(log, name)}"
            )
        return dir, rec

    def _two_readings(self, dir: str, text: str, named: dict, other: dict) -> UsageError:
        """``text`` is an artifact's name and also reads as another's version or sequence. The
        reference is shown cut; the way on is not: it must be a reference that works."""
        sid = self.ws.sessions.manifest(dir)["id"]
        return UsageError(
            f"ambiguous artifact reference {text[:80]!r} in session {sid[:8]}: the artifact "
            f"named so (#{named.get('seq')}), and {other['name']}@{other.get('version')} "
            f"(#{other.get('seq')}) (name the first as {text}@{named.get('version')}, the "
            f"second as #{other.get('seq')})"
        )

    def _one(self, dir: str, log: Any, seq: int) -> dict | None:
        """The record ``#seq`` names; after a merge of two clones that each appended ``seq``, an
        error listing both (never a silent pick). An id table's content_hash tells them apart."""
        recs = log.find_all(seq)
        if len({r.get("hash") for r in recs}) <= 1:
            return recs[0] if recs else None
        sid = self.ws.sessions.manifest(dir)["id"]
        shown = "; ".join(
            f"{r['name']}@{r.get('version')} ({r.get('hash', '')[:12]}, {r.get('created_at', '')})"
            for r in recs
        )
        raise UsageError(
            f"ambiguous artifact reference #{seq} in session {sid[:8]}: two clones each stored a "
            f"#{seq} and were merged: {shown} (name one as name@version)"
        )

    def get(self, session: Any, ref: Any) -> dict:
        dir, rec = self.find(session, ref)
        return {"content": self.ws.objects.get(rec["hash"]), "metadata": metadata_of(rec)}

    def _item(self, rec: dict, session_id: str | None = None) -> dict:
        meta = metadata_of(rec)
        item = dict(meta)
        item["id"] = {"content_hash": rec["hash"], "session_id": session_id, "sequence": rec["seq"]}
        item["metadata"] = meta
        if session_id is not None:
            item["session_id"] = session_id
        return item

    def list(self, session: Any) -> list[dict]:
        dir, log = self._log(session)
        sid = self.ws.sessions.manifest(dir)["id"]
        live = sorted(log.live(), key=lambda r: (utc_key(r.get("created_at", "")), r["seq"]))
        return self._mark_hand_edits(dir, [self._item(r, sid) for r in live])

    def _mark_hand_edits(self, dir: str, items: list[dict]) -> list[dict]:
        """``modified_on_disk``: the ``files/`` copy differs from this record (a hand edit not yet
        recorded, or deleted by hand); reading the artifact still reads the record."""
        hand = self.ws.worktree.modified_names(dir)
        for item in items:
            item["modified_on_disk"] = item["name"] in hand
        return items

    def query(self, q: dict | None = None) -> list[dict]:
        q = dict(q or {})
        unknown = set(q) - _QUERY_KEYS
        if unknown:
            raise UsageError(
                f"unknown query field: {sorted(unknown)[0]} (known: "
                f"{', '.join(sorted(_QUERY_KEYS))})"
            )
        index = self.ws.index
        if q.get("session_id") not in (None, ""):
            dirs = [self.ws.sessions.resolve(q["session_id"])]
            index.refresh_dir(dirs[0])
        else:
            index.refresh_all()
            dirs = None
        where, params = [], []
        if q.get("type"):
            where.append("type = ?")
            params.append(q["type"])
        for key, op in (("min_size", ">="), ("max_size", "<=")):
            if q.get(key) is not None:
                if isinstance(q[key], bool) or not isinstance(q[key], (int, float)):
                    raise UsageError(f"invalid {key}: {q[key]!r} (a number of bytes)")
                where.append(f"size {op} ?")
                params.append(q[key])
        after, before = created_bounds(q)
        tags = check_tags(q.get("tags"))
        pattern = q.get("name_pattern")
        if pattern is not None and not isinstance(pattern, str):
            raise UsageError("invalid name_pattern: expected a glob string like '*.md'")
        limit = q.get("limit")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise UsageError(f"invalid limit: {limit!r} (a non-negative integer)")
        rows = index.artifact_rows(dirs, " AND ".join(where), params)
        ids = {r.dir: (r.manifest or {}).get("id") for r in index.rows.values()}
        out = []
        for dir, rec in rows:
            if pattern is not None and not fnmatch.fnmatchcase(rec["name"], pattern):
                continue
            if tags and not all(t in rec.get("tags", ()) for t in tags):
                continue
            if after is not None or before is not None:
                t = parse_time(rec.get("created_at", ""), "created_at")
                if (after is not None and t <= after) or (before is not None and t >= before):
                    continue
            if limit is not None and len(out) >= limit:
                break
            out.append(self._item(rec, ids.get(dir)))
        return out

    # -- deleting --------------------------------------------------------------
    def delete(self, session: Any, ref: Any, force: bool = False) -> dict:
        """Delete the artifact ``ref`` names: a deletion record, and its ``files/`` copy goes.

        A copy holding content none of its versions has (a hand edit not yet recorded) stops
        it (:class:`~spellfs.errors.UnrecordedChanges`, as `spell rm` and restore do) unless
        ``force``, which first records that content as a version by ``hand``."""
        dir, rec = self.find(session, ref)
        name = rec["name"]
        ws = self.ws
        sid = ws.sessions.manifest(dir)["id"]
        if "hooks" in ws.__dict__ and ws.hooks.active("BeforeArtifactDelete"):
            ws.hooks.run("BeforeArtifactDelete", sid, {"session_id": sid, "name": name})
        with self.storage.lock(f"s-{dir}"):
            require_active(ws, ws.sessions.manifest(dir), "delete artifacts in")
            log = ws.log(dir)
            log.refresh()
            if not log.is_live(name):
                raise ArtifactNotFound(f"artifact not found: {name} in session {sid[:8]}")
            if ws.worktree.guard_copies(dir, [name], force, "delete"):
                log.refresh()  # the hand edit is a version now; the deletion comes after it
            tomb = {
                "seq": log.max_seq + 1,
                "op": "delete",
                "name": name,
                "created_at": now(),
                "created_by": ws.actor,
            }
            log.append(encode_record(tomb), [tomb])
            self.storage.remove(f"sessions/{dir}/files/{name}")
        if ws.run is not None:
            ws.run.note_artifact(dir, sid, tomb)
        ws.publish("artifact.deleted", {"session_id": sid, "name": name})
        if "hooks" in ws.__dict__ and ws.hooks.active("AfterArtifactDelete"):
            ws.hooks.run("AfterArtifactDelete", sid, {"session_id": sid, "name": name})
        return rec
