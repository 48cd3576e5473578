"""rs-llmspell's State backup API, mapped onto checkpoints: a backup is a checkpoint of State.

The workspace's State values (``state.yaml``; per-session values are already versioned
by their sessions' checkpoints) are copied into the state of one session, named
``state-backups`` and tagged ``state-backup``, which is then checkpointed: backup
``backup-<n>`` is that session's checkpoint ``n``. So backups are listed by
``spell log``, kept by git and remotes, and never rewritten.

* ``State.create_backup(incremental?)`` -> ``{success, backup_id, parent_id,
  entry_count, size_bytes, is_incremental}`` (every backup holds all values;
  ``incremental`` only names the previous backup as parent).
* ``State.list_backups()`` -> ``{{id, created_at, entry_count, is_incremental}}``.
* ``State.restore_backup(id)`` -> ``{success, restored_entries}``: the workspace's values
  become the backup's (keys added since are deleted; a backup of the present state is
  made first, so the restore itself can be undone).
* ``State.validate_backup(id)`` -> ``{valid, entry_count}``; ``State.cleanup_backups()``
  -> ``{deleted = 0}`` (checkpoints are never deleted).
* ``State.migrate``, ``migration_status``, ``schema_versions`` stay nil (rs-llmspell's
  scripts test for them and take their "not available" branch); a script that calls one
  anyway gets :data:`MIGRATIONS` added to its error by the runtime.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..history import ref_of

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]

SESSION = "state-backups"
TAG = "state-backup"
MIGRATIONS = (
    "(spellfs has no State schema migrations: State values are plain JSON in state.yaml; "
    "State.create_backup / restore_backup keep versions)"
)


def _backup_session(ws: "Workspace", create: bool) -> str | None:
    for s in ws.sessions.list():
        if TAG in (s.get("tags") or []):
            return s["id"]
    if not create:
        return None
    return ws.sessions.create(
        name=SESSION, description="checkpoints of the workspace's State", tags=[TAG]
    )


def _values(ws: "Workspace") -> dict:
    return {k: ws.state.get(k) for k in ws.state.list()}


def _number(ref: Any) -> int:
    text = str(ref)
    digits = text.removeprefix("backup-")
    if not digits.isdigit():
        raise UsageError(f"not a backup id: {text!r} (backup ids look like backup-3)")
    return int(digits)


def create_backup(ws: "Workspace", incremental: bool = False) -> dict:
    sid = _backup_session(ws, create=True)
    values = _values(ws)
    previous = ws.history.checkpoints(sid)
    ws.state.replace_session_values(sid, values)
    # Each call is a new backup id, even of unchanged values (a user keeps the id it returns).
    number = ws.history.save(
        sid, f"{'incremental' if incremental else 'full'} backup of State", force=True
    )
    return {
        "success": True,
        "backup_id": f"backup-{number}",
        "parent_id": f"backup-{previous[-1]['number']}" if incremental and previous else None,
        "entry_count": len(values),
        "is_incremental": bool(incremental),
        "size_bytes": len(json.dumps(values, sort_keys=True, default=str).encode()),
        "created_at": time.time(),
    }


def list_backups(ws: "Workspace") -> list[dict]:
    sid = _backup_session(ws, create=False)
    if sid is None:
        return []
    out = []
    for rec in ws.history.checkpoints(sid):
        snap = ws.history.snapshot(ws.sessions.resolve(sid), ref_of(rec))
        size = len(json.dumps(snap.state, sort_keys=True, default=str).encode())
        out.append(
            {
                "id": f"backup-{rec['number']}",
                "created_at": _epoch(rec.get("created_at")),
                "entry_count": len(snap.state),
                "size_bytes": size,
                "message": rec.get("message"),
                "is_incremental": "incremental" in (rec.get("message") or ""),
            }
        )
    return out


def _epoch(stamp: Any) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def restore_backup(ws: "Workspace", ref: Any) -> dict:
    """As rs-llmspell: an unknown backup is ``{success = false, error}``, not a Lua error."""
    from ..errors import SpellError

    sid = _backup_session(ws, create=False)
    if sid is None:
        return {"success": False, "error": "no backups yet (State.create_backup makes one)"}
    try:
        number = _number(ref)
        snap = ws.history.snapshot(ws.sessions.resolve(sid), number)  # checks it exists first
    except SpellError as e:
        return {"success": False, "error": str(e)}
    create_backup(ws)  # the present, kept: a restore can be undone
    wanted = dict(snap.state)
    for key in ws.state.list():
        if key not in wanted:
            ws.state.delete(key)
    for key, value in wanted.items():
        ws.state.set(key, value)
    return {"success": True, "backup_id": f"backup-{number}", "restored_entries": len(wanted)}


def install(rt: "Runtime", ws: "Workspace") -> None:
    state = rt.globals[b"State"]
    out = rt.out

    def guarded(fn: Any) -> Any:
        def call(*args: Any) -> Any:
            return out(fn(*args))

        return call

    def validate(ref: Any = None) -> Any:
        sid = _backup_session(ws, create=False)
        if sid is None:
            return out({"valid": False, "error": "no backups"})
        snap = ws.history.snapshot(ws.sessions.resolve(sid), _number(rt.py(ref)))
        return out({"valid": True, "entry_count": len(snap.state)})

    functions = {
        "create_backup": guarded(lambda incremental=None: create_backup(ws, incremental is True)),
        "list_backups": guarded(lambda: list_backups(ws)),
        "restore_backup": guarded(lambda ref=None: restore_backup(ws, rt.py(ref))),
        "validate_backup": validate,
        "cleanup_backups": guarded(
            lambda *_: {"success": True, "deleted": 0, "note": "checkpoints are never deleted"}
        ),
    }
    for name, fn in functions.items():
        state[name.encode()] = rt.function(f"State.{name}", fn)
