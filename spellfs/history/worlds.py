"""Replay worlds: a scratch workspace rebuilt from a recorded run's starting point.

A world lives in ``.spell/replay/<id>/`` of the original workspace and is a
workspace of its own (``sessions/``, ``state.yaml``, ``spell.yaml``, ``templates/``,
``.spell/``), holding exactly the sessions the run touched, as they were when it
first touched them, and the workspace State keys it read, with the values it read.
Sessions keep their directory names and ids, so ``Session.list``,
``Artifact.query`` and ``State.get`` answer as they did for the original run.

Nothing is copied that need not be: ``.spell/alternates`` names the original's
object directory, which the world reads (objects are immutable; a missing one is
hard-linked in on first read) and never writes; new objects land in the world's own
store. Record files are rebuilt from the recorded prefix of the original
(append-only, so the prefix is what the run saw), ``session.yaml`` and
``state.yaml`` from their recorded objects, and ``files/`` from the artifact
records. Building a world writes only inside its directory.

``.spell/replay/<id>/.spell/replay.json`` says whose world it is (process id,
source session, start time). A world whose process is gone and that was not kept
(``kept`` in that file) is removed by the next replay: a killed replay leaves no
lasting litter. A world that cannot be built (a record file shorter than the run saw)
is removed at once.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ReplayError, SpellError
from ..names import now
from ..store import atomic_write, dump_yaml, encode_record, load_json
from ..store.links import internal_dir
from .runs import RECORD_FILES

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .tree import Snapshot

__all__ = ["REPLAY_DIR", "build_world", "remove_world", "sweep_worlds"]

REPLAY_DIR = ".spell/replay"
_STATE_HEADER = b"# spellfs State values (JSON-able); edit by hand if you like\n"
_MANIFEST_HEADER = (
    b"# spellfs session manifest: name, description, status, tags and metadata may be edited by "
    b"hand\n"
)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_worlds(ws: "Workspace") -> list[str]:
    """Remove worlds left by replays that are gone (killed) and were not kept; return their ids."""
    base = ws.root / REPLAY_DIR
    if not internal_dir(f"{ws.root}/", "replay"):  # (a link there is refused, never swept)
        return []
    removed = []
    for entry in sorted(base.iterdir()):
        if not stat.S_ISDIR(entry.lstat().st_mode):  # a link is no world of ours
            continue
        try:
            info = load_json((entry / ".spell" / "replay.json").read_bytes(), str(entry))
        except (OSError, ValueError, SpellError):
            info = {}
        if info.get("kept") or _alive(info.get("pid")):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


def remove_world(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def mark_kept(root: Path) -> None:
    info_path = root / ".spell" / "replay.json"
    info = load_json(info_path.read_bytes(), str(info_path))
    info["kept"] = True
    atomic_write(info_path, json.dumps(info).encode())


def _prefix(ws: "Workspace", rel: str, length: int) -> bytes:
    """The first ``length`` bytes of an append-only record file of the original."""
    if not length:
        return b""
    try:
        with open(ws.root / rel, "rb") as f:
            data = f.read(length)
    except FileNotFoundError:
        data = b""
    if len(data) < length:
        raise ReplayError(
            f"cannot rebuild the replay's world: {rel} is shorter than when the run read it "
            f"({len(data)} < {length} bytes; was the session removed?)"
        )
    return data


def _materialize(ws: "Workspace", world: Path, dir: str) -> None:
    """``files/`` of one rebuilt session, from its artifact records."""
    from ..model import ArtifactLog
    from ..store import FsStorage

    storage = FsStorage(world)
    try:
        log = ArtifactLog(storage, f"sessions/{dir}/artifacts.yaml")
        log.refresh()
        limit = ws.config.get("watch.materialize_max_bytes")
        for rec in log.live():
            if rec.get("hash") and rec.get("size", 0) <= limit:
                atomic_write(
                    world / "sessions" / dir / "files" / rec["name"], ws.objects.get(rec["hash"])
                )
    finally:
        storage.close()


def _session_from_start(ws: "Workspace", world: Path, dir: str, start: dict) -> None:
    base = world / "sessions" / dir
    (base / "files").mkdir(parents=True, exist_ok=True)
    atomic_write(base / "session.yaml", ws.objects.get(start["manifest"]))
    if start.get("state"):
        atomic_write(base / "state.yaml", ws.objects.get(start["state"]))
    for name in RECORD_FILES:
        if start.get(f"{name}_object"):  # the run deleted the session: its records were kept
            data = ws.objects.get(start[f"{name}_object"])
        else:
            data = _prefix(ws, f"sessions/{dir}/{name}.yaml", int(start.get(name) or 0))
        if data:
            atomic_write(base / f"{name}.yaml", data)
    _materialize(ws, world, dir)


def _session_from_snapshot(
    ws: "Workspace", world: Path, dir: str, snap: "Snapshot", checkpoint: int | None
) -> None:
    """A session at a checkpoint (``--from``), or at its creation (``checkpoint`` None, empty
    table)."""
    from ..model import dump_manifest

    base = world / "sessions" / dir
    (base / "files").mkdir(parents=True, exist_ok=True)
    current = ws.sessions.manifest(dir)
    atomic_write(
        base / "session.yaml", dump_manifest({**current, **snap.manifest, "id": current["id"]})
    )
    if snap.state:
        atomic_write(base / "state.yaml", _STATE_HEADER + dump_yaml(snap.state))
    records = []
    for seq, rec in enumerate(
        sorted(snap.table.values(), key=lambda r: (r.get("seq", 0), r["name"])), 1
    ):
        records.append(
            {
                "seq": seq,
                "name": rec["name"],
                **{k: v for k, v in rec.items() if k not in ("seq", "name", "restored_from")},
            }
        )
    if records:
        atomic_write(base / "artifacts.yaml", b"".join(encode_record(r) for r in records))
    if checkpoint is not None:
        kept = [r for r in ws.history.records(dir) if r.get("number", 0) <= checkpoint]
        if kept:
            atomic_write(base / "checkpoints.yaml", b"".join(encode_record(r) for r in kept))
    _materialize(ws, world, dir)


def build_world(
    ws: "Workspace",
    world_rec: dict | None,
    overrides: dict[str, tuple["Snapshot", int | None]],
    source: str,
) -> Path:
    """Make a scratch workspace from ``world_rec`` (a run's recorded world; None: a legacy run)
    with ``overrides`` (dir -> (snapshot, checkpoint number)) replacing those sessions' starting
    points.
    """
    if ws.root is None:
        raise ReplayError(
            "cannot replay in a memory workspace: a replay rebuilds the run's world on disk"
        )
    root = Path(ws.storage.internal("replay")) / uuid.uuid4().hex[:12]
    (root / ".spell" / "objects").mkdir(parents=True)
    try:
        atomic_write(
            root / ".spell" / "replay.json",
            json.dumps(
                {"pid": os.getpid(), "source": source, "started_at": now(), "kept": False}
            ).encode(),
        )
        atomic_write(
            root / ".spell" / "alternates", os.fspath(ws.root / ".spell" / "objects").encode()
        )
        atomic_write(root / ".spell" / ".gitignore", b"*\n")
        (root / "sessions").mkdir()
        for name in ("spell.yaml", ".spellignore"):
            if (ws.root / name).is_file():
                atomic_write(root / name, (ws.root / name).read_bytes())
        if (ws.root / "templates").is_dir():  # small; a script may create sessions from them
            shutil.copytree(
                ws.root / "templates",
                root / "templates",
                symlinks=False,
                ignore=shutil.ignore_patterns(".*"),
            )
        else:
            (root / "templates").mkdir()
        sessions = (world_rec or {}).get("sessions") or {}
        for dir, item in sessions.items():
            start = item.get("start") if isinstance(item, dict) else None
            if dir in overrides or not isinstance(start, dict):
                continue
            _session_from_start(ws, root, dir, start)
        for dir, (snap, checkpoint) in overrides.items():
            _session_from_snapshot(ws, root, dir, snap, checkpoint)
        values = {
            k: v for k, v in ((world_rec or {}).get("state_start") or {}).items() if v is not None
        }
        if values:
            atomic_write(root / "state.yaml", _STATE_HEADER + dump_yaml(values))
    except BaseException:  # a world that cannot be built (a record file shortened) is not left
        remove_world(root)
        raise
    return root
