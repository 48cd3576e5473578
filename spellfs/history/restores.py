"""Restore and fork: making a session's live files and records equal to a checkpoint.

Nothing here erases: a restore appends records (deletions are records too) and
later checkpoints stay in the log; a fork is a new session whose records point at
the same objects.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .tree import VOLATILE, Snapshot, same_content
from ..errors import UsageError
from ..model.inflight import inflight  # (the package attribute is the submodule)
from ..names import MAX_DISPLAY_NAME, now, usable_name
from ..store import encode_record

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Restores", "fork_name"]

_MANIFEST_FIELDS = ("name", "description", "status", "tags", "metadata", "parent", "template")


class Restores:
    """The restoring half of :class:`~spellfs.history.checkpoints.History`."""

    def restore(
        self, session: Any, checkpoint: Any, status: str | None = None, force: bool = False
    ) -> dict:
        """Make the live session equal to ``checkpoint`` by appending records; erase nothing.

        Files under ``files/`` it would overwrite or delete that hold unrecorded content
        (hand edits) stop it (:class:`~spellfs.errors.UnrecordedChanges`) unless ``force``,
        which first keeps them as versions (``result["kept"]`` names them)."""
        ws = self.ws
        dir = ws.sessions.resolve(session)
        snap = self.snapshot(dir, checkpoint)
        rel = f"sessions/{dir}/artifacts.yaml"
        with self.storage.lock(f"s-{dir}"):
            kept = self.guard_restore(dir, snap, force)
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
                for rec in new:
                    if rec.get("op") == "delete":
                        self.storage.remove(f"sessions/{dir}/files/{rec['name']}")
                    else:
                        self._materialize(dir, rec)
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
        }
        ws.publish("session.restored", result)
        return result

    def guard_restore(self, dir: str, snap: Snapshot, force: bool) -> list[str]:
        """The working-copy guard of a restore: the names it would rewrite must hold no hand
        edit."""
        log = self.ws.log(dir)
        log.refresh()
        live = log.table()
        names = {n for n, r in snap.table.items() if not same_content(live.get(n), r)}
        names.update(n for n in live if n not in snap.table)
        return self.ws.worktree.guard(dir, names, force, "restore") if names else []

    def _materialize(self, dir: str, rec: dict) -> None:
        rel = f"sessions/{dir}/files/{rec['name']}"
        if rec.get("size", 0) > self.ws.config.get("watch.materialize_max_bytes"):
            self.storage.remove(rel)
            return
        self.storage.write(rel, self.ws.objects.get(rec["hash"]))

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
