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

import re
from typing import TYPE_CHECKING, Any

from .restores import Restores
from .tree import Snapshot, TreeStore
from ..errors import CheckpointNotFound, IntegrityError, ObjectNotFound, UsageError
from ..names import now, whole_number
from ..store import encode_record, parse_records, validate_oid

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["History", "checkpoint_ref", "ref_of"]


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


class History(Restores):
    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self.storage = ws.storage
        self.trees = TreeStore(ws.objects)
        #: dir -> (signature, records, offset read to, next line number, latest record)
        self._logs: dict[str, tuple[Any, list[dict], int, int, dict | None]] = {}
        #: dir -> (the log's record list, its length, tree) at this process's last save of it
        self._saved: dict[str, tuple[list, int, str]] = {}

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
        from .replays import can_replay

        return can_replay(self.ws, self.ws.sessions.resolve(session))

    def replay(self, session: Any, opts: dict | None = None, runner: Any = None) -> dict:
        from .replays import replay

        return replay(self.ws, self.ws.sessions.resolve(session), opts or {}, runner)

    def replay_metadata(self, session: Any) -> dict:
        from .replays import replay_metadata

        return replay_metadata(self.ws, self.ws.sessions.resolve(session))

    def list_replayable(self) -> list[dict]:
        from .replays import list_replayable

        return list_replayable(self.ws)
