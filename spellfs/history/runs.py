"""Run records: what each `spell run` did to the sessions it touched.

``spell run`` calls :func:`begin_run` before the script starts (which sets
``ws.run``) and :meth:`Run.finish` when it ends. Sessions and artifact
operations tell ``ws.run`` of every session and artifact the script touches;
at finish one record per touched session is appended to
``sessions/<dir>/runs.yaml``::

    - {"run": "<uuid>", "script": "scripts/make.lua", "script_hash": "<oid>", "args": ["a"],
       "started_at": "…Z", "ended_at": "…Z", "exit_status": 0, "checkpoint": 2,
       "artifacts": [{"seq": 7, "name": "out.md", "hash": "<oid>"}, {"seq": 8, "name": "old", "op":
       "delete"}]}

``script`` is workspace-relative when the script is inside the workspace, else its
file name (no absolute paths in shared files); the script's bytes are kept in the
object store under ``script_hash``, so the run can be replayed after the file
changed or went away. ``checkpoint`` is the session's latest checkpoint when the
run first touched it (null: none yet). A killed run appends nothing.

While a run is in flight, ``.spell/runs/<run>.json`` names its script object so
``spell gc`` does not collect it; finish removes the marker.

**Starting point** (what ``spell replay`` rebuilds the run's world from). Every
session the run reads or writes is noted the first time it is touched
(:meth:`Sessions.resolve`, and the sessions ``Session.list``/``Artifact.query``
hand to the script), before the run changes it, as::

    {"id": "<uuid>", "manifest": "<oid of session.yaml>", "state": "<oid of state.yaml>" | null,
     "artifacts": <bytes of artifacts.yaml>, "checkpoints": <bytes>, "calls": <bytes>, "runs":
     <bytes>}

The record files are append-only, so their lengths pin their content then; the two
small YAML files are kept as objects. When the run deletes a session, the recorded
prefixes of its record files are stored as objects too (``<file>_object``). That costs a few stats
and two object writes per touched session, whatever the size of the workspace. Workspace ``State``
keys are noted with their value at first read or write (``state_start``, null: absent).
At finish all of it, plus the sessions the run created (in order), what it produced
in each, which it deleted, and the final value of every State key it wrote (session
keys under their session, ``state_written``), goes
into one JSON object (``world``), named by the ``world`` field of each run record.
With ``$SPELL_RUN_RESULT`` set (``spell replay`` sets it), finish also writes
``{"run": id, "world": oid}`` to that file.
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

__all__ = [
    "Run",
    "begin_run",
    "read_runs",
    "starting_point",
    "world_oids",
    "MARKERS",
    "RECORD_FILES",
]

MARKERS = ".spell/runs"
#: The append-only record files of a session whose lengths a starting point keeps.
RECORD_FILES = ("artifacts", "checkpoints", "calls", "runs")
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

    def __init__(
        self,
        ws: "Workspace",
        script: str,
        script_hash: str,
        args: list[str],
        env_session: str | None = None,
        sandbox: bool = False,
    ) -> None:
        self.ws = ws
        self.id = str(uuid.uuid4())
        self.sandbox = sandbox  # a replay runs it sandboxed too
        self.script = script
        self.script_hash = script_hash
        self.args = [str(a) for a in args]
        self.started_at = now()
        self.sessions: dict[str, str] = {}
        self.checkpoint: dict[str, int | None] = {}
        #: dir -> the tree of that checkpoint: after a git merge two clones' runs can name
        #: the same number; the tree says which lineage a run started on (``replay --from``)
        self.checkpoint_tree: dict[str, str | None] = {}
        self.artifacts: dict[str, list[dict]] = {}
        self.finished = False
        self.records: list[dict] = []
        self.env_session = env_session or None
        #: dir -> starting point (see the module docstring); None: the run created the session.
        self.start: dict[str, dict | None] = {}
        self.created: list[str] = []
        self.deleted: set[str] = set()
        self.state_start: dict[str, Any] = {}
        self.state_written: set[str] = set()
        self.session_state: dict[str, set[str]] = {}
        self.world: str | None = None

    # -- starting points -----------------------------------------------------------------
    def note_dir(self, dir: str) -> None:
        """The run read (or is about to change) session ``dir``: keep its starting point once."""
        if dir in self.start:
            return
        try:
            self.start[dir] = starting_point(self.ws, dir)
        except Exception:  # a broken session is fsck's business; the script sees the error itself
            return

    def note_created(self, dir: str, session_id: str) -> None:
        """Called by Sessions.create before the first write: the session starts absent."""
        if dir not in self.start:
            self.start[dir] = None
            self.created.append(dir)

    def note_deleted(self, dir: str) -> None:
        """Called by Sessions.delete before the files go: keep the recorded prefixes as objects.

        The starting point of a session names its record files by length; once the
        session is gone from the workspace the world could not be rebuilt from them, so
        their prefixes are stored (only now, so an ordinary run never pays for it).
        """
        self.deleted.add(dir)
        start = self.start.get(dir)
        if not start:
            return
        for name in RECORD_FILES:
            length = start.get(name) or 0
            if length and f"{name}_object" not in start:
                data = self.ws.storage.read(f"sessions/{dir}/{name}.yaml")[:length]
                start[f"{name}_object"] = self.ws.objects.put_bytes(data)

    def note_state(self, key: str, written: bool = False) -> None:
        """A workspace State key read (or about to be written): keep its value at first touch."""
        if key not in self.state_start:
            try:
                self.state_start[key] = self.ws.state.load("state.yaml").get(key)
            except Exception:
                self.state_start[key] = None
        if written:
            self.state_written.add(key)

    def note_session_state(self, dir: str, session_id: str, key: str) -> None:
        """The run is about to write session ``dir``'s State key ``key`` (a replay reports it)."""
        self.note_session(dir, session_id)
        self.session_state.setdefault(dir, set()).add(key)

    def _world(self, exit_status: int) -> dict:
        ws = self.ws
        sessions = {}
        for dir in list(self.start) + [d for d in self.sessions if d not in self.start]:
            alive = ws.storage.exists(f"sessions/{dir}/session.yaml")
            item: dict[str, Any] = {
                "id": self.sessions.get(dir) or (self.start.get(dir) or {}).get("id"),
                "start": self.start.get(dir),
                "artifacts": self.artifacts.get(dir, []),
                "deleted": not alive,
            }
            if item["id"] is None and alive:
                item["id"] = ws.sessions.manifest(dir)["id"]
            if alive:
                item["name"] = ws.sessions.manifest(dir)["name"]
            if alive and dir in self.session_state:
                try:
                    values = ws.state.load(f"sessions/{dir}/state.yaml")
                except Exception:
                    values = {}
                item["state_written"] = {k: values.get(k) for k in sorted(self.session_state[dir])}
            sessions[dir] = item
        values = {}
        if self.state_written:
            try:
                current = ws.state.load("state.yaml")
            except Exception:
                current = {}
            values = {k: current.get(k) for k in sorted(self.state_written)}
        return {
            "version": 1,
            "run": self.id,
            "script": self.script,
            "script_hash": self.script_hash,
            "args": self.args,
            "env_session": self.env_session,
            "started_at": self.started_at,
            "exit_status": int(exit_status),
            "sessions": sessions,
            "created": list(self.created),
            "state_start": self.state_start,
            "state_written": values,
        }

    def note_session(self, dir: str, session_id: str) -> None:
        """The run changed session ``dir``: it gets a run record at finish."""
        if dir in self.sessions:
            return
        self.note_dir(dir)
        self.sessions[dir] = session_id
        self.artifacts[dir] = []
        try:
            latest = self.ws.history.latest(dir)
        except Exception:  # a broken checkpoints.yaml must not break the script
            latest = None
        self.checkpoint[dir] = latest["number"] if latest else None
        self.checkpoint_tree[dir] = latest["tree"] if latest else None

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
        result = os.environ.get("SPELL_RUN_RESULT")
        if result or any(
            ws.storage.exists(f"sessions/{d}/session.yaml") for d in self.sessions
        ):  # named
            try:
                self.world = ws.objects.put_bytes(
                    json.dumps(self._world(exit_status), sort_keys=True).encode()
                )
            except Exception:  # recording the world must never cost the run its record
                self.world = None
        for dir, sid in self.sessions.items():
            if not ws.storage.exists(f"sessions/{dir}/session.yaml"):
                continue  # the script deleted it
            rec: dict[str, Any] = {
                "run": self.id,
                "script": self.script,
                "script_hash": self.script_hash,
                "args": self.args,
                "started_at": self.started_at,
                "ended_at": ended,
                "exit_status": int(exit_status),
                "checkpoint": self.checkpoint.get(dir),
                "artifacts": self.artifacts.get(dir, []),
            }
            if self.checkpoint_tree.get(dir):
                rec["checkpoint_tree"] = self.checkpoint_tree[dir]
            if self.world:
                rec["world"] = self.world
            if self.sandbox:
                rec["sandbox"] = True
            if error:
                rec["error"] = str(error)[:MAX_ERROR]
            ws.storage.append(f"sessions/{dir}/runs.yaml", encode_record(rec))
            self.records.append({"session_id": sid, **rec})
        ws.storage.remove(f"{MARKERS}/{self.id}.json")
        if result:  # `spell replay` learns the replayed run's world here
            from ..store import atomic_write

            atomic_write(Path(result), json.dumps({"run": self.id, "world": self.world}).encode())
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


def starting_point(ws: "Workspace", dir: str) -> dict:
    """Session ``dir`` as it is now, cheaply (see the module docstring); O(this session's YAML)."""
    base = f"sessions/{dir}/"
    storage = ws.storage
    manifest = storage.read(base + "session.yaml")
    sid = ws.sessions.manifest(dir)["id"]
    try:
        state = ws.objects.put_bytes(storage.read(base + "state.yaml"))
    except (FileNotFoundError, NotADirectoryError):
        state = None
    point: dict[str, Any] = {"id": sid, "manifest": ws.objects.put_bytes(manifest), "state": state}
    for name in RECORD_FILES:
        sig = storage.signature(base + name + ".yaml")
        point[name] = 0 if sig is None else sig[1]
    return point


def world_oids(world: dict) -> list[str]:
    """The objects a world record names (for gc): session.yaml and state.yaml copies."""
    out = []
    for item in (world.get("sessions") or {}).values():
        start = item.get("start") if isinstance(item, dict) else None
        if isinstance(start, dict):
            names = ("manifest", "state", *(f"{n}_object" for n in RECORD_FILES))
            out.extend(v for v in (start.get(n) for n in names) if isinstance(v, str))
    return out


def begin_run(
    ws: "Workspace",
    script_path: Path,
    script_bytes: bytes,
    args: list[str],
    env_session: str | None = None,
    sandbox: bool = False,
) -> Run:
    """Start recording a run of ``script_path``; sets and returns ``ws.run``."""
    oid = ws.objects.put_bytes(bytes(script_bytes))
    run = Run(ws, _script_name(ws, Path(script_path)), oid, list(args), env_session, sandbox)
    marker = {"run": run.id, "pid": os.getpid(), "script_hash": oid, "started_at": run.started_at}
    ws.storage.write(f"{MARKERS}/{run.id}.json", json.dumps(marker).encode())
    ws.run = run
    return run
