"""Run records: what each `spell run` did to the sessions it touched.

``spell run`` calls :func:`begin_run` before the script starts (which sets
``ws.run``) and :meth:`Run.finish` when it ends. Sessions and artifact
operations tell ``ws.run`` of every session and artifact the script touches;
at finish one record per touched session is appended to
``sessions/<dir>/runs.yaml``::

    - {"run": "<uuid>", "script": "scripts/make.lua", "script_hash": "<oid>", "args": ["a"],
       "started_at": "…Z", "ended_at": "…Z", "exit_status": 0, "checkpoint": 2,
       "artifacts": [{"seq": 7, "name": "out.md", "hash": "<oid>"}, {"seq": 8, "name": "old", "op": "delete"}]}

``script`` is workspace-relative when the script is inside the workspace, else its
file name (no absolute paths in shared files); the script's bytes are kept in the
object store under ``script_hash``, so the run can be replayed after the file
changed or went away. ``checkpoint`` is the session's latest checkpoint when the
run first touched it (null: none yet). A killed run appends nothing.

While a run is in flight, ``.spell/runs/<run>.json`` names its script object so
``spell gc`` does not collect it; finish removes the marker.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..names import now
from ..store import encode_record, parse_records

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Run", "begin_run", "read_runs", "MARKERS"]

MARKERS = ".spell/runs"
MAX_ERROR = 2000


def read_runs(ws: "Workspace", dir: str) -> list[dict]:
    """The run records of one session, oldest first."""
    rel = f"sessions/{dir}/runs.yaml"
    try:
        data = ws.storage.read(rel)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [r for _, r in parse_records(data, rel) if isinstance(r.get("script_hash"), str)]


class Run:
    """One script run being recorded; see the module docstring."""

    def __init__(self, ws: "Workspace", script: str, script_hash: str, args: list[str]) -> None:
        self.ws = ws
        self.id = str(uuid.uuid4())
        self.script = script
        self.script_hash = script_hash
        self.args = [str(a) for a in args]
        self.started_at = now()
        self.sessions: dict[str, str] = {}
        self.checkpoint: dict[str, int | None] = {}
        self.artifacts: dict[str, list[dict]] = {}
        self.finished = False
        self.records: list[dict] = []

    def note_session(self, dir: str, session_id: str) -> None:
        if dir in self.sessions:
            return
        self.sessions[dir] = session_id
        self.artifacts[dir] = []
        try:
            self.checkpoint[dir] = self.ws.history.latest_number(dir)
        except Exception:  # a broken checkpoints.yaml must not break the script
            self.checkpoint[dir] = None

    def note_artifact(self, dir: str, session_id: str, record: dict) -> None:
        self.note_session(dir, session_id)
        if record.get("op") == "delete":
            item = {"seq": record.get("seq"), "name": record["name"], "op": "delete"}
        else:
            item = {"seq": record.get("seq"), "name": record["name"], "hash": record.get("hash")}
        self.artifacts[dir].append(item)

    def finish(self, exit_status: int, error: str | None = None) -> list[dict]:
        """Append this run's record to every session it touched; return the records."""
        if self.finished:
            return self.records
        self.finished = True
        ws = self.ws
        ended = now()
        for dir, sid in self.sessions.items():
            if not ws.storage.exists(f"sessions/{dir}/session.yaml"):
                continue  # the script deleted it
            rec: dict[str, Any] = {"run": self.id, "script": self.script, "script_hash": self.script_hash,
                                   "args": self.args, "started_at": self.started_at, "ended_at": ended,
                                   "exit_status": int(exit_status), "checkpoint": self.checkpoint.get(dir),
                                   "artifacts": self.artifacts.get(dir, [])}
            if error:
                rec["error"] = str(error)[:MAX_ERROR]
            ws.storage.append(f"sessions/{dir}/runs.yaml", encode_record(rec))
            self.records.append({"session_id": sid, **rec})
        ws.storage.remove(f"{MARKERS}/{self.id}.json")
        if ws.run is self:
            ws.run = None
        return self.records


def _script_name(ws: "Workspace", path: Path) -> str:
    if ws.root is not None:
        try:
            rel = Path(os.path.realpath(path)).relative_to(os.path.realpath(ws.root))
            return rel.as_posix()
        except ValueError:
            pass
    return Path(path).name


def begin_run(ws: "Workspace", script_path: Path, script_bytes: bytes, args: list[str]) -> Run:
    """Start recording a run of ``script_path``; sets and returns ``ws.run``."""
    oid = ws.objects.put_bytes(bytes(script_bytes))
    run = Run(ws, _script_name(ws, Path(script_path)), oid, list(args))
    marker = {"run": run.id, "pid": os.getpid(), "script_hash": oid, "started_at": run.started_at}
    ws.storage.write(f"{MARKERS}/{run.id}.json", json.dumps(marker).encode())
    ws.run = run
    return run
