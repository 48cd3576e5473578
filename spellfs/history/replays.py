"""Replay: re-run a session's recorded runs against a fork and compare the results.

A replay forks the session at a checkpoint — ``--from N``, else the checkpoint
that was latest when the first recorded run began, else the session's creation
state (its manifest, no artifacts, no state) — then runs each recorded run made
after that point again, in order, as ``python -m spellfs -w ROOT run SCRIPT ARGS…``
in a subprocess with the environment:

    SPELL_SESSION=<fork id>   the runtime presets ``Session.getCurrent()`` to it
    SPELL_REPLAY=1            model calls are answered from their records
                              (``live`` with ``opts.live``: call the models again)
    SPELL_SCRIPT_NAME=<name>  the recorded script name, shown in errors and recorded
                              for the run (the file run may be a copy under .spell/)

The script is the one recorded, by hash: the original file when it still has
those bytes, else a copy written from the store under ``.spell/replay/``. After
each run the fork's new artifact records are compared with what the original run
produced, name by name: ``same`` when the content hash matches. Model calls
are compared call by call (``calls``: the run's records in ``calls.yaml`` of the
original and of the fork, in order; see :func:`spellfs.agent.calls.compare_calls`),
which is what tells a ``--live`` replay's different answers apart.

Scripts that name their session explicitly rather than using the current one
will write to that session, not the fork; such a replay reports the artifacts as
``missing``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..agent import call_count, compare_calls
from ..errors import NothingToReplay, ReplayError, UsageError
from .runs import read_runs

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["can_replay", "list_replayable", "replay", "replay_metadata"]

Runner = Callable[[str, list, dict, str], "tuple[int, str]"]
_OPTS = {"from", "live", "name", "timeout"}


def _scripts(ws: "Workspace", runs: list[dict]) -> list[dict]:
    seen: dict[str, dict] = {}
    for r in runs:
        h = r["script_hash"]
        if h not in seen:
            try:
                available = ws.objects.has(h)
            except UsageError:
                available = False
            seen[h] = {"script": r.get("script"), "hash": h, "available": available}
    return list(seen.values())


def can_replay(ws: "Workspace", dir: str) -> bool:
    runs = read_runs(ws, dir)
    return bool(runs) and all(s["available"] for s in _scripts(ws, runs))


def replay_metadata(ws: "Workspace", dir: str) -> dict:
    runs = read_runs(ws, dir)
    m = ws.sessions.manifest(dir)
    scripts = _scripts(ws, runs)
    first = runs[0].get("checkpoint") if runs else None
    return {"session_id": m["id"], "name": m["name"], "can_replay": bool(runs) and all(s["available"] for s in scripts),
            "run_count": len(runs), "checkpoints": len(ws.history.checkpoints(dir)), "from_checkpoint": first,
            "first_run_at": runs[0]["started_at"] if runs else None,
            "last_run_at": runs[-1]["started_at"] if runs else None,
            "scripts": scripts, "runs": runs}


def list_replayable(ws: "Workspace") -> list[dict]:
    out = []
    for dir in sorted(ws.storage.listdir("sessions")):
        if not ws.storage.exists(f"sessions/{dir}/runs.yaml"):
            continue
        try:
            m = ws.sessions.manifest(dir)
            if not can_replay(ws, dir):
                continue
        except Exception:  # a broken session is fsck's business, not a listing's
            continue
        out.append({"session_id": m["id"], "name": m["name"], "status": m["status"], "path": f"sessions/{dir}",
                    "run_count": len(read_runs(ws, dir))})
    return out


def _subprocess_runner(timeout: float | None) -> Runner:
    def run(script: str, args: list, env: dict, cwd: str) -> tuple[int, str]:
        cmd = [sys.executable, "-m", "spellfs", "-w", cwd, "run", script, *args]
        try:
            p = subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return -1, f"timed out after {timeout} seconds"
        return p.returncode, p.stderr.decode("utf-8", "replace")[-2000:]

    return run


def _check_live(ws: "Workspace", dir: str, todo: list[dict]) -> None:
    """``--live`` asks the models again: without a provider the scripts would find Agent nil."""
    from ..agent import read_calls
    from ..config import PROVIDER_HINT
    from ..agent import workspace_providers

    ids = {r.get("run") for r in todo}
    calls = sum(1 for c in read_calls(ws, dir) if c.get("run") in ids)
    if calls and not workspace_providers(ws):
        raise UsageError(f"replay --live calls the models again, but no model provider is configured (the runs "
                         f"made {calls} model call{'s' if calls != 1 else ''}; {PROVIDER_HINT})")


def _script_file(ws: "Workspace", run: dict) -> str:
    """A path holding the recorded script's bytes."""
    from ..store import hash_bytes

    h = run["script_hash"]
    original = ws.root / run.get("script", "")
    if run.get("script") and original.is_file():
        try:
            if hash_bytes(original.read_bytes()) == h:
                return str(original)
        except OSError:
            pass
    if not ws.objects.has(h):
        raise ReplayError(f"cannot replay run {run.get('run', '?')[:8]}: script {run.get('script')} "
                          f"(object {h[:12]}) is no longer in the store")
    target = ws.root / ".spell" / "replay" / h[:16] / Path(run.get("script") or "script.lua").name
    if not target.is_file():
        from ..store import atomic_write

        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, ws.objects.get(h))
    return str(target)


def _outcome(original: list[dict]) -> dict[str, str | None]:
    """name -> final hash (None: deleted) of a run's artifact list."""
    out: dict[str, str | None] = {}
    for a in original:
        out[a["name"]] = None if a.get("op") == "delete" else a.get("hash")
    return out


def replay(ws: "Workspace", dir: str, opts: dict, runner: Runner | None = None) -> dict:
    if not isinstance(opts, dict):
        raise UsageError("invalid replay options: expected a table (from, live, name, timeout)")
    unknown = set(opts) - _OPTS
    if unknown:
        raise UsageError(f"unknown replay option: {sorted(unknown)[0]} (known: {', '.join(sorted(_OPTS))})")
    m = ws.sessions.manifest(dir)
    runs = read_runs(ws, dir)
    if not runs:
        raise NothingToReplay(f"nothing to replay: session {m['id'][:8]} has no recorded runs (runs are recorded by `spell run`)")
    if ws.memory and runner is None:
        raise ReplayError("cannot replay in a memory workspace: the runs are re-run as `spell run` processes")
    history = ws.history
    start = opts.get("from")
    if start in (None, ""):
        start = runs[0].get("checkpoint")
    if start is not None:
        from .checkpoints import checkpoint_number

        start = checkpoint_number(start)
        snap = history.snapshot(dir, start)
        todo = [r for r in runs if (r.get("checkpoint") or 0) >= start]
    else:
        snap = history.live(dir)
        snap.label = None
        todo = runs
    if not todo:
        raise NothingToReplay(f"nothing to replay: no recorded run of session {m['id'][:8]} began after checkpoint {start}")
    for r in todo:
        if not ws.objects.has(r["script_hash"]):
            raise ReplayError(f"cannot replay session {m['id'][:8]}: the script of run {r.get('run', '?')[:8]} "
                              f"({r.get('script')}) is no longer in the store")
    if opts.get("live") and runner is None:
        _check_live(ws, dir, todo)
    name = opts.get("name") or f"{m['name']} (replay)"
    fork_id = history._new_from(dir, snap, {"name": name}, with_content=start is not None)
    fork_dir = ws.sessions.resolve(fork_id)
    run_fn = runner or _subprocess_runner(opts.get("timeout"))
    env = {"SPELL_SESSION": fork_id, "SPELL_REPLAY": "live" if opts.get("live") else "1"}
    log = ws.log(fork_dir)
    results = []
    same_count = differ_count = calls_same = calls_differ = 0
    for r in todo:
        script = _script_file(ws, r) if runner is None else r["script_hash"]
        log.refresh()
        before = log.max_seq
        calls_before = call_count(ws, fork_dir)
        named = {**env, "SPELL_SCRIPT_NAME": r.get("script") or ""}  # errors name the script, not its copy
        status, stderr = run_fn(script, list(r.get("args") or []), named, str(ws.root) if ws.root else "")
        log.refresh()
        produced = _outcome([{"name": x["name"], "hash": x.get("hash"), "op": x.get("op")}
                             for x in sorted(log.records, key=lambda x: x["seq"]) if x["seq"] > before])
        original = _outcome(r.get("artifacts") or [])
        items = []
        for n in sorted(set(original) | set(produced)):
            o, p = original.get(n, "absent"), produced.get(n, "absent")
            verdict = "same" if o == p else "missing" if p == "absent" else "extra" if o == "absent" else "differs"
            items.append({"name": n, "original": None if o == "absent" else o,
                          "replay": None if p == "absent" else p, "result": verdict, "same": verdict == "same"})
            same_count += verdict == "same"
            differ_count += verdict != "same"
        calls = compare_calls(ws, dir, fork_dir, r.get("run"), calls_before)
        calls_same += sum(c["same"] for c in calls)
        calls_differ += sum(not c["same"] for c in calls)
        result = {"run": r.get("run"), "script": r.get("script"), "args": r.get("args") or [],
                  "exit_status": status, "original_exit_status": r.get("exit_status"),
                  "same": status == r.get("exit_status") and all(i["same"] for i in items + calls),
                  "artifacts": items, "calls": calls}
        if status != 0 and stderr:
            result["stderr"] = stderr
        results.append(result)
    return {"session_id": m["id"], "fork_id": fork_id, "fork_path": f"sessions/{fork_dir}",
            "from_checkpoint": start, "runs": results, "same": all(x["same"] for x in results),
            "artifacts_same": same_count, "artifacts_differ": differ_count,
            "calls_same": calls_same, "calls_differ": calls_differ}
