"""History of a session: checkpoints, restore, fork, diff and replay (restore and fork in
:mod:`.restores`).

``ws.history`` is the porcelain the CLI (`spell save/log/diff/restore/fork/replay`)
and the Lua ``Session`` global call. Checkpoints are records in
``sessions/<dir>/checkpoints.yaml`` (append-only, one line each)::

    - {"number": 3, "time": "2024-…Z", "message": "draft", "tree": "<oid>", "parent": 2,
       "added": 1, "changed": 0, "removed": 0, "artifacts": 12, "by": "cli"}

naming a tree object (see :mod:`spellfs.history.tree`). Nothing here erases:
restore appends records that make the live session equal to a checkpoint,
and later checkpoints stay in the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .checkpoint_log import CheckpointLog, ref_of
from .restores import Restores
from .tree import Snapshot, TreeStore
from ..errors import IntegrityError, ObjectNotFound, UsageError
from ..names import now
from ..store import encode_record, validate_oid

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["History"]


class History(CheckpointLog, Restores):
    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self.storage = ws.storage
        self.trees = TreeStore(ws.objects)
        #: dir -> (signature, records, offset read to, next line number, latest record)
        self._logs: dict[str, tuple[Any, list[dict], int, int, dict | None]] = {}
        #: dir -> (the log's record list, its length, tree) at this process's last save of it
        self._saved: dict[str, tuple[list, int, str]] = {}

    # -- snapshots -----------------------------------------------------------------
    def live(self, dir: str) -> Snapshot:
        """The session as it is now."""
        log = self.ws.log(dir)
        log.refresh()
        table = {r["name"]: dict(r) for r in log.live()}
        manifest = dict(self.ws.sessions.manifest(dir))
        return Snapshot("now", manifest, table, self.ws.state.session_values(dir))

    def snapshot(self, dir: str, number: Any) -> Snapshot:
        rec = self._find(dir, number)
        return self.trees.snapshot(rec["tree"], rec["number"])

    # -- save / load -------------------------------------------------------------------
    def save(self, session: Any, message: str | None = None, *, force: bool = False) -> int:
        """Checkpoint the session; return the new checkpoint's number.

        With nothing changed since the last checkpoint that one's number is returned and
        none is written, unless ``force`` (a caller whose checkpoints are ids users keep,
        such as State backups, gets a new one each call).
        """
        ws = self.ws
        dir = ws.sessions.resolve(session)
        if message is not None and not isinstance(message, str):
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            else:
                raise UsageError(
                    f"invalid checkpoint message: expected a string, got {type(message).__name__}"
                )
        self.record_worktree(dir)
        m = ws.sessions.manifest(dir)
        if "hooks" in ws.__dict__ and ws.hooks.active("SessionSave"):
            data = ws.hooks.run(
                "SessionSave",
                m["id"],
                {"session_id": m["id"], "name": m["name"], "message": message},
            )
            message = data.get("message", message)
        with self.storage.lock(f"s-{dir}"):
            log = ws.log(dir)
            log.refresh()
            prev = self._latest(dir)
            parent = prev["tree"] if prev else None
            if parent is not None:
                try:
                    self.trees.table(parent)
                except (IntegrityError, ObjectNotFound):
                    # an unreadable parent must not stop new checkpoints: write a full table
                    parent = None
            self.trees.written = []
            manifest = dict(ws.sessions.manifest(dir))
            state = ws.state.session_values(dir)
            changes = self._changes_since(dir, log, parent)
            if changes is not None:  # O(change): only the names the log touched since the parent
                if (
                    not force
                    and parent is not None
                    and not changes
                    and self._same_header(parent, manifest, state)
                ):
                    return prev["number"]  # nothing changed since the last checkpoint: no new one
                tree, counts, size = self.trees.write_changes(manifest, state, changes, parent)
            else:
                table = {r["name"]: dict(r) for r in log.live()}
                if (
                    not force
                    and parent is not None
                    and self.unchanged_since(parent, Snapshot("now", manifest, table, state))
                ):
                    return prev["number"]
                tree, counts = self.trees.write(manifest, state, table, parent, full=False)
                size = len(table)
            self._saved[dir] = (log.records, len(log.records), tree)
            number = (prev["number"] if prev else 0) + 1
            rec = {
                "number": number,
                "time": now(),
                "message": message or "",
                "tree": tree,
                "parent": prev["number"] if prev else None,
                **counts,
                "artifacts": size,
                "by": ws.actor,
                "seq": log.max_seq,
            }
            # What the checkpoint names is on disk before the checkpoint is, and it after.
            self.storage.fsync(self._unsynced(dir, log, prev, self.trees.written))
            rel = f"sessions/{dir}/checkpoints.yaml"
            self.storage.append(rel, encode_record(rec))
            self.storage.fsync([self._abs(rel), self._abs(f"sessions/{dir}")])
        if ws.run is not None:
            ws.run.note_session(dir, m["id"])
        ws.publish(
            "session.saved",
            {"session_id": m["id"], "checkpoint": number, "message": rec["message"], "tree": tree},
        )
        return number

    def record_worktree(self, dir: str) -> Any:
        """Record what is on disk first: hand edits, deletions and new files under ``files/``
        become versions (``user_input``, created_by ``hand``) before a checkpoint names them."""
        return self.ws.worktree.record(dir)

    def unchanged_since(self, tree: str, snap: Snapshot) -> bool:
        """True when ``snap`` (the session now) is what checkpoint tree ``tree`` holds."""
        return (
            self._same_header(tree, snap.manifest, snap.state)
            and self.trees.table(tree) == snap.table
        )

    def _same_header(self, tree: str, manifest: dict, state: dict) -> bool:
        """True when checkpoint tree ``tree`` holds this manifest and state."""
        from ..store import hash_bytes
        from .tree import canonical

        t = self.trees.tree(tree)
        return (
            hash_bytes(canonical(manifest)) == t["manifest"]
            and hash_bytes(canonical(state)) == t["state"]
        )

    def _changes_since(
        self, dir: str, log: Any, parent: str | None
    ) -> dict[str, dict | None] | None:
        """name -> live record (None: gone) for every name appended to the log since this
        process saved ``parent``; None when that is not known (another process saved, the
        log was re-read from the start, e.g. after a git merge): then the whole table is
        compared."""
        hit = self._saved.get(dir)
        if parent is None or hit is None or hit[0] is not log.records or hit[2] != parent:
            return None
        if not self.trees.has_table(parent):
            return None
        changes: dict[str, dict | None] = {}
        for rec in log.records[hit[1] :]:
            name = rec["name"]
            if name not in changes:
                latest = log.latest(name)
                changes[name] = dict(latest) if latest is not None else None
        return changes

    def _abs(self, rel: str) -> str:
        root = self.ws.root
        return f"{root}/{rel}" if root is not None else rel

    def _unsynced(self, dir: str, log: Any, prev: dict | None, written: list[str]) -> list[str]:
        """The files a new checkpoint needs durable: the objects of every artifact record since
        the last checkpoint (its ``seq``), the tree objects just written, the record file, and
        the directories holding them. Older ones were made durable by the checkpoint before.
        None in memory (``storage_backend: memory``, even with a workspace folder)."""
        if self.ws.root is None or self.ws.memory:
            return []
        since = prev.get("seq") if prev is not None else None
        since = (
            since if isinstance(since, int) else 0
        )  # a checkpoint from before "seq": all of them
        oids = list(written)
        older = 0
        for rec in reversed(
            log.records
        ):  # appended in seq order: the walk stops at the last checkpoint
            if rec.get("seq", 0) <= since:
                older += 1
                if (
                    older >= 256
                ):  # a run of older records (not a few merged lines out of order): done
                    break
                continue
            older = 0
            if rec.get("hash"):
                oids.append(rec["hash"])
        valid = []
        for oid in dict.fromkeys(oids):
            try:
                valid.append(validate_oid(oid))
            except UsageError:
                continue  # not an object id (fsck reports the record)
        paths = self.ws.objects.durable_paths(valid)
        paths += [
            self._abs(f"sessions/{dir}/artifacts.yaml"),
            self._abs(f"sessions/{dir}"),
            self._abs("sessions"),
        ]
        return paths

    def load(self, session: Any, force: bool = False) -> str:
        """Restore the latest checkpoint (if any) and make the session active; return its id."""
        dir = self.ws.sessions.resolve(session)
        latest = self._latest(dir)
        if latest is not None:
            self.restore(dir, ref_of(latest), status="active", force=force, doing="load")
        elif self.ws.sessions.manifest(dir)["status"] != "active":
            self.ws.sessions.set_manifest_fields(dir, status="active")
        sid = self.ws.sessions.manifest(dir)["id"]
        self.ws.publish("session.loaded", {"session_id": sid})
        return sid

    # -- diff and replay (in their own modules) ---------------------------------------
    def diff(self, session: Any, from_: Any = None, to: Any = None) -> dict:
        from .diff import diff_snapshots

        dir = self.ws.sessions.resolve(session)
        if from_ in (None, ""):
            latest = self._latest(dir)
            if latest is None:  # nothing saved yet: everything since the session began
                a = Snapshot("creation", dict(self.ws.sessions.manifest(dir)), {}, {})
            else:
                a = self.trees.snapshot(latest["tree"], latest["number"])
        else:
            a = self.snapshot(dir, from_)
        b = self.live(dir) if to in (None, "", "now") else self.snapshot(dir, to)
        d = diff_snapshots(self.ws, a, b)
        if b.label == "now":
            from .diff import diff_unrecorded

            d["unrecorded"] = diff_unrecorded(self.ws, dir)
        return d

    def can_replay(self, session: Any) -> bool:
        from .replayable import can_replay

        return can_replay(self.ws, self.ws.sessions.resolve(session))

    def replay(self, session: Any, opts: dict | None = None, runner: Any = None) -> dict:
        from .replays import replay

        return replay(self.ws, self.ws.sessions.resolve(session), opts or {}, runner)

    def replay_metadata(self, session: Any) -> dict:
        from .replayable import replay_metadata

        return replay_metadata(self.ws, self.ws.sessions.resolve(session))

    def list_replayable(self) -> list[dict]:
        from .replayable import list_replayable

        return list_replayable(self.ws)
