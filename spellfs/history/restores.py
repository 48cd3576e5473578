"""Restore and fork: making a session's live files and records equal to a checkpoint.

Nothing here erases: a restore appends records (deletions are records too) and
later checkpoints stay in the log; a fork is a new session whose records point at
the same objects.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .tree import VOLATILE, Snapshot, canonical, same_content
from ..errors import IntegrityError, ObjectNotFound, UnrecordedChanges, UsageError
from ..model import copies_now, edited_since
from ..model.inflight import inflight  # (the package attribute is the submodule)
from ..names import MAX_DISPLAY_NAME, now, usable_name
from ..store import encode_record

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Restores", "fork_name"]

_MANIFEST_FIELDS = ("name", "description", "status", "tags", "metadata", "parent", "template")
#: What a person or script writes into session.yaml (status is the lifecycle, set by commands).
_KEPT_FIELDS = ("name", "description", "tags", "metadata", "parent", "template")


class Restores:
    """The restoring half of :class:`~spellfs.history.checkpoints.History`."""

    def restore(
        self,
        session: Any,
        checkpoint: Any,
        status: str | None = None,
        force: bool = False,
        doing: str = "restore",
    ) -> dict:
        """Make the live session equal to ``checkpoint`` by appending records; erase nothing.

        Files under ``files/`` it would overwrite or delete that hold unrecorded content
        (hand edits) stop it (:class:`~spellfs.errors.UnrecordedChanges`) unless ``force``,
        which first keeps them as versions (``result["kept"]`` names them) and then makes
        every copy equal to the checkpoint. So do ``session.yaml`` and ``state.yaml``
        edits no checkpoint holds; ``force`` first keeps them in a new checkpoint
        (``result["saved"]``). Without ``force``, hand edits it need not touch stay as they
        are (``result["unrecorded"]`` names them)."""
        ws = self.ws
        dir = ws.sessions.resolve(session)
        snap = self.snapshot(dir, checkpoint)
        rel = f"sessions/{dir}/artifacts.yaml"
        with self.storage.lock(f"s-{dir}"):
            # The copies as they are before the guard looks at them: one an editor saves after
            # this, while the copies are rewritten (seconds, in a large session), is left as the
            # editor saved it, for `status` and `save` (as for a store).
            log = ws.log(dir)
            log.refresh()
            checked = copies_now(ws, dir, {*snap.table, *log.table()})
            kept = self.guard_restore(dir, snap, force, doing)
            saved = self.keep_unsaved(dir, snap, force, doing)
            gone_by_hand = ws.worktree.scan(dir).deleted if force else []
            log = ws.log(dir)
            log.refresh()
            live = log.table()
            stamp = now()
            seq = log.max_seq
            new: list[dict] = []
            added = changed = 0
            for name in sorted(snap.table, key=lambda n: (snap.table[n].get("seq", 0), n)):
                rec = snap.table[name]
                cur = live.get(name)
                if cur is not None and same_content(cur, rec):
                    continue
                added += cur is None
                changed += cur is not None
                seq += 1
                copy = {
                    "seq": seq,
                    "name": name,
                    **{k: v for k, v in rec.items() if k not in VOLATILE and k != "name"},
                    "created_at": stamp,
                    "created_by": ws.actor,
                    "restored_from": snap.label,
                }
                new.append(copy)
            gone = sorted(n for n in live if n not in snap.table)
            for name in gone:
                seq += 1
                new.append(
                    {
                        "seq": seq,
                        "op": "delete",
                        "name": name,
                        "created_at": stamp,
                        "created_by": ws.actor,
                        "restored_from": snap.label,
                    }
                )
            # The copies are rewritten after the records land: a restore killed in between
            # leaves the old copies, which the next command (any scan) puts back from the
            # records through the in-flight journal, never taking them for hand edits.
            with inflight(ws, dir) as journal:
                journal.note_many([r["name"] for r in new])
                if new:
                    self.storage.append(rel, b"".join(encode_record(r) for r in new))
                    log.refresh()
                left = [rec["name"] for rec in new if not self._materialize(dir, rec, checked)]
                written = {rec["name"] for rec in new}
                for name in gone_by_hand:  # deleted by hand, recorded content: put back (--force)
                    rec = log.latest(name)
                    if name in snap.table and name not in written and rec is not None:
                        if not self._materialize(dir, rec, checked):
                            left.append(name)
                journal.committed()
            fields = {k: snap.manifest.get(k) for k in _MANIFEST_FIELDS if k in snap.manifest}
            if status is not None:
                fields["status"] = status
            ws.sessions.set_manifest_fields(dir, **fields)
            ws.state.replace_session_values(dir, snap.state)
        sid = ws.sessions.manifest(dir)["id"]
        if ws.run is not None:
            for rec in new:
                ws.run.note_artifact(dir, sid, rec)
        result = {
            "session_id": sid,
            "checkpoint": snap.label,
            "added": added,
            "changed": changed,
            "removed": len(gone),
            "kept": kept,
            "saved": saved,
            # (with force: only the copies an editor saved while it ran)
            "unrecorded": sorted(left) if force else ws.worktree.scan(dir).names(),
        }
        ws.publish("session.restored", result)
        return result

    def guard_restore(
        self, dir: str, snap: Snapshot, force: bool, doing: str = "restore"
    ) -> list[str]:
        """The working-copy guard of a restore: the names it would rewrite must hold no hand
        edit; with ``force`` every hand edit is kept as a version (the restore then makes
        each copy equal to the checkpoint)."""
        if force:
            return self.ws.worktree.guard(dir, None, True, doing)
        log = self.ws.log(dir)
        log.refresh()
        live = log.table()
        names = {n for n, r in snap.table.items() if not same_content(live.get(n), r)}
        names.update(n for n in live if n not in snap.table)
        return self.ws.worktree.guard(dir, names, force, doing) if names else []

    def keep_unsaved(self, dir: str, snap: Snapshot, force: bool, doing: str) -> int | None:
        """The manifest and State guard of a restore: ``session.yaml`` fields and
        ``state.yaml`` values no checkpoint holds (edited by hand, ``State.set``,
        ``update_metadata`` since the last save) stop it
        (:class:`~spellfs.errors.UnrecordedChanges`, naming what changed) unless ``force``,
        which first saves a checkpoint of the session as it is ("kept by restore"); return its
        number (None: nothing to keep)."""
        changes = self.unsaved(dir, snap)
        if not changes:
            return None
        ws = self.ws
        sid = ws.sessions.manifest(dir)["id"]
        if not force:
            raise UnrecordedChanges(
                f"{doing} would discard unsaved changes: {'; '.join(changes)} "
                f"(checkpoint them with `spell save {sid[:8]}` first, or pass --force: a "
                "checkpoint keeps them first, then it goes on)"
            )
        ws.sessions.closing.add(sid)  # a suspended or finished session too: keeping is no store
        try:
            return self.save(dir, f"kept by {doing}")
        finally:
            ws.sessions.closing.discard(sid)

    def unsaved(self, dir: str, snap: Snapshot) -> list[str]:
        """What ``session.yaml`` (its fields but status) and ``state.yaml`` hold now that
        neither ``snap`` nor any checkpoint holds, as ``file (what changed)`` compared with the
        latest checkpoint; [] when one of them holds it (newest first: usually the latest)."""
        from ..store import hash_bytes

        ws = self.ws
        manifest = ws.sessions.manifest(dir)
        state = ws.state.session_values(dir)
        if _same_fields(snap.manifest, manifest) and _same(snap.state, state):
            return []
        want = hash_bytes(canonical(state))
        records = sorted(self.records(dir), key=lambda r: r["number"])
        latest = None
        for rec in reversed(records):
            try:
                t = self.trees.tree(rec["tree"])
                m = self.trees.load_json(t["manifest"], "manifest")
            except (IntegrityError, ObjectNotFound):
                continue  # an unreadable checkpoint holds nothing to compare (fsck reports it)
            if latest is None:
                latest = (rec["number"], t, m)
            if t["state"] == want and isinstance(m, dict) and _same_fields(m, manifest):
                return []
        if latest is None:
            return []
        number, t, m = latest
        m = m if isinstance(m, dict) else {}
        try:
            before = self.trees.load_json(t["state"], "state")
        except (IntegrityError, ObjectNotFound):
            before = {}
        before = before if isinstance(before, dict) else {}
        out = []
        fields = [k for k in _KEPT_FIELDS if not _same(m.get(k), manifest.get(k))]
        if fields:
            out.append(f"sessions/{dir}/session.yaml ({', '.join(fields)} edited)")
        keys = sorted(
            k
            for k in set(before) | set(state)
            if k not in before or k not in state or not _same(before[k], state[k])
        )
        if keys:
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            out.append(f"sessions/{dir}/state.yaml ({shown})")
        if out:
            out[0] = f"since checkpoint {number}: {out[0]}"
        return out or [f"since checkpoint {number}: sessions/{dir}/state.yaml"]

    def _materialize(self, dir: str, rec: dict, checked: dict | None = None) -> bool:
        """Make ``files/<name>`` say what ``rec`` says (a delete record, or content over the copy
        limit: no copy). With ``checked`` (:func:`~spellfs.model.handedits.copies_now`), a copy
        someone saved since with content no record holds is left as it is, and False returned:
        the check is made after the object is read, right before the write."""
        ws = self.ws
        rel = f"sessions/{dir}/files/{rec['name']}"
        data = None
        if rec.get("op") != "delete" and rec.get("size", 0) <= ws.config.get(
            "watch.materialize_max_bytes"
        ):
            data = ws.objects.get(rec["hash"])
        if checked is not None and edited_since(ws, dir, ws.log(dir), rec["name"], checked):
            return False
        if data is None:
            self.storage.remove(rel)
        else:
            self.storage.write(rel, data)
        return True

    def fork(self, session: Any, checkpoint: Any = None, opts: dict | None = None) -> str:
        """A new session made from ``checkpoint`` (default: the latest; none: now); return its id.

        The fork's records point at the same objects (nothing is copied in the
        store); its ``parent_session_id`` is the source session.
        """
        ws = self.ws
        dir = ws.sessions.resolve(session)
        if opts is not None and not isinstance(opts, dict):
            raise UsageError(
                "invalid fork options: expected a table (name, description, tags, metadata)"
            )
        opts = {k: v for k, v in (opts or {}).items() if v is not None}
        unknown = set(opts) - {"name", "description", "tags", "metadata"}
        if unknown:
            raise UsageError(
                f"unknown fork option: {sorted(unknown)[0]} (known: name, description, tags, "
                "metadata)"
            )
        if checkpoint in (None, ""):
            latest = self._latest(dir)
            snap = (
                self.trees.snapshot(latest["tree"], latest["number"]) if latest else self.live(dir)
            )
        else:
            snap = self.snapshot(dir, checkpoint)
        if not opts.get("name"):  # a fork is told apart from its source by name too ("" too)
            opts["name"] = fork_name(ws, ws.sessions.manifest(dir)["name"])
        return self._new_from(dir, snap, opts)

    def _new_from(self, dir: str, snap: Snapshot, opts: dict, with_content: bool = True) -> str:
        ws = self.ws
        source = ws.sessions.manifest(dir)
        m = snap.manifest
        sid = ws.sessions.create(
            name=opts.get("name") or usable_name(m.get("name") or source["name"]),
            description=opts.get("description", m.get("description", "")),
            tags=opts.get("tags", m.get("tags")),
            metadata={**(m.get("metadata") or {}), **(opts.get("metadata") or {})},
            parent_session_id=source["id"],
        )
        new_dir = ws.sessions.resolve(sid)
        try:
            self._fill(new_dir, snap, with_content)
        except (
            BaseException
        ):  # a fork that failed part-way (a full disk) leaves no half-made session
            self.storage.rmtree(f"sessions/{new_dir}")
            ws.index.forget(new_dir)
            raise
        ws.publish(
            "session.forked",
            {"session_id": sid, "parent_session_id": source["id"], "checkpoint": snap.label},
        )
        return sid

    def _fill(self, new_dir: str, snap: Snapshot, with_content: bool) -> None:
        ws = self.ws
        if with_content and snap.table:
            with self.storage.lock(f"s-{new_dir}"):
                records = []
                for seq, rec in enumerate(
                    sorted(snap.table.values(), key=lambda r: (r.get("seq", 0), r["name"])), 1
                ):
                    copy = {
                        "seq": seq,
                        "name": rec["name"],
                        "version": 1,
                        **{
                            k: v
                            for k, v in rec.items()
                            if k not in ("seq", "name", "version", "restored_from")
                        },
                    }
                    records.append(copy)
                    self._materialize(new_dir, copy)
                self.storage.append(
                    f"sessions/{new_dir}/artifacts.yaml",
                    b"".join(encode_record(r) for r in records),
                )
        if with_content and snap.state:
            ws.state.replace_session_values(new_dir, snap.state)


def _same_fields(a: dict, b: dict) -> bool:
    """True when two manifests hold the same hand-editable fields (status aside)."""
    return all(_same(a.get(k), b.get(k)) for k in _KEPT_FIELDS)


def _same(a: Any, b: Any) -> bool:
    """Equal as a checkpoint stores them (JSON): ``true`` is not ``1``, nor ``1.0`` ``1``,
    though Python's ``==`` says they are; a value changed only in its type is a change."""
    try:
        return canonical(a) == canonical(b)
    except (TypeError, ValueError):  # (a hand edit JSON cannot hold, such as keys 1 and "b")
        return a == b


_FORK_SUFFIX = re.compile(r"^(.*) \(fork (\d+)\)$", re.S)


def fork_name(ws: "Workspace", name: str) -> str:
    """``NAME (fork N)``, N one past the highest fork number of NAME so far (a fork of a fork
    of ``X`` is ``X (fork 2)``), so a fork can be named on the command line unambiguously."""
    m = _FORK_SUFFIX.match(name)
    # Room for the suffix; a hand-edited name `spell new` would refuse is made one it takes.
    base = usable_name(m.group(1) if m else name)[: MAX_DISPLAY_NAME - 24].rstrip()
    highest = 0
    for s in ws.sessions.list({"status": "all"}):
        hit = _FORK_SUFFIX.match(s["name"])
        if hit and hit.group(1) == base:
            highest = max(highest, int(hit.group(2)))
    return f"{base} (fork {highest + 1})"
