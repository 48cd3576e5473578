"""Replay: re-run a session's recorded runs in the world each one saw, and compare.

Every ``spell run`` records its starting point (:mod:`spellfs.history.runs`). A
replay rebuilds that world as a scratch workspace (:mod:`spellfs.history.worlds`)
and runs the recorded script again there, as
``python -m spellfs -w WORLD run SCRIPT ARGS…`` with the environment:

    SPELL_SESSION=<id>        only when the original run had it (the same id: sessions
                              keep their ids in the world)
    SPELL_REPLAY=1            model calls are answered from the run's records
                              (``live`` with ``opts.live``: call the models again)
    SPELL_REPLAY_CALLS=<file> the original run's call records, which answer them
    SPELL_SCRIPT_NAME=<name>  the recorded script name, shown in errors and recorded
    SPELL_RUN_RESULT=<file>   where the replayed run says which world it recorded

The original workspace is only read: every write of the replayed script lands in
the world, which is removed afterwards unless ``opts.keep`` (then its path is in
the report). The script is the one recorded, by hash.

Which runs: every recorded run of the session (``run``: only the one whose id
starts with it), each in its own world. With ``from`` (a checkpoint of the
session), one world starts with the session at that checkpoint, and the runs
recorded after it (``checkpoint`` ≥ it) run there in order. Runs recorded before
starting points were (no ``world`` field) start from the session alone at the
checkpoint latest when they began, else at its creation.

The report, per run: for every session the run touched or created (created ones
are matched with the replay's by creation order), each artifact the run produced,
``same`` / ``differs`` (with a unified diff for text) / ``missing`` / ``extra``;
each workspace State key the run wrote, the same way; each model call
(:func:`spellfs.agent.comparison.pair_calls`); the exit status then and now.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import NothingToReplay, ReplayError, SpellError, UsageError
from ..store import load_json
from .replay_report import compare_calls_of, compare_sessions, compare_state
from .runs import read_runs

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["replay"]

Runner = Callable[[str, list, dict, str], "tuple[int, str]"]
_OPTS = {"from", "live", "timeout", "run", "keep"}


def _subprocess_runner(timeout: float | None) -> Runner:
    def run(script: str, args: list, env: dict, cwd: str) -> tuple[int, str]:
        cmd = [sys.executable, "-m", "spellfs", "-w", cwd, "run", script, *args]
        full = {
            k: v
            for k, v in os.environ.items()
            if k
            not in ("SPELL_SESSION", "SPELL_WORKSPACE", "SPELL_REPLAY_CALLS", "SPELL_RUN_RESULT")
        }
        try:
            p = subprocess.run(
                cmd, cwd=cwd, env={**full, **env}, capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return -1, f"timed out after {timeout} seconds"
        return p.returncode, p.stderr.decode("utf-8", "replace")[-2000:]

    return run


def _check_live(ws: "Workspace", dir: str, todo: list[dict]) -> None:
    """``--live`` asks the models again: without a provider the scripts would find Agent nil."""
    from ..agent import read_calls, workspace_providers
    from ..config import PROVIDER_HINT

    ids = {r.get("run") for r in todo}
    calls = sum(1 for c in read_calls(ws, dir) if c.get("run") in ids and c.get("kind") != "search")
    if calls and not workspace_providers(ws):
        raise UsageError(
            f"replay --live calls the models again, but no model provider is configured (the runs "
            f"made {calls} model call{'s' if calls != 1 else ''}; {PROVIDER_HINT})"
        )


def _load_world(ws: "Workspace", oid: Any) -> dict | None:
    if not isinstance(oid, str):
        return None
    try:
        data = load_json(ws.objects.get(oid), f"world {oid[:12]}")
    except (SpellError, ValueError) as exc:
        raise ReplayError(
            f"cannot replay: the run's starting point (object {oid[:12]}) cannot be read: {exc}"
        ) from None
    return data if isinstance(data, dict) else None


def _script_bytes(ws: "Workspace", run: dict) -> bytes:
    h = run["script_hash"]
    try:
        return ws.objects.get(h)
    except SpellError:
        raise ReplayError(
            f"cannot replay run {run.get('run', '?')[:8]}: script {run.get('script')} "
            f"(object {h[:12]}) is no longer in the store"
        ) from None


def _select(
    ws: "Workspace", dir: str, m: dict, runs: list[dict], opts: dict
) -> tuple[list[dict], int | str | None]:
    want = opts.get("run")
    if want not in (None, ""):
        want = str(want)
        runs = [r for r in runs if str(r.get("run", "")).startswith(want)]
        if not runs:
            raise NothingToReplay(
                f"run not found: {want} in session {m['id'][:8]} (`spell replay --json` lists "
                "them; Session.getReplayMetadata too)"
            )
        if len({r.get("run") for r in runs}) > 1:
            raise UsageError(
                f"ambiguous run id: {want} matches {len(runs)} runs of session {m['id'][:8]}"
            )
    start = opts.get("from")
    if start in (None, ""):
        return runs, None
    from .checkpoint_log import checkpoint_ref

    number, tree = checkpoint_ref(start)  # N, or N:TREE for one of a merge's two N
    start = number if tree is None else f"{number}:{tree}"
    ws.history.snapshot(dir, start)  # a checkpoint that does not exist (or two) says so here
    [chosen] = {
        c["tree"]
        for c in ws.history.checkpoints(dir)
        if c["number"] == number and c["tree"].startswith(tree or "")
    }
    todo = sorted(  # in the order they ran, not the order a merge left their lines in
        (
            r
            for r in runs
            if (r.get("checkpoint") or 0) >= number and _on_lineage(ws, r, chosen, number)
        ),
        key=lambda r: (str(r.get("started_at") or ""), str(r.get("run") or "")),
    )
    if not todo:
        raise NothingToReplay(
            f"nothing to replay: no recorded run of session {m['id'][:8]} began after "
            f"checkpoint {start}"
        )
    return todo, start


def _on_lineage(ws: "Workspace", run: dict, tree: str, number: int) -> bool:
    """Whether ``run`` started on checkpoint ``tree`` or on one saved on top of it (after a git
    merge, the other clone's run of the same number started on another lineage). A run recorded
    before runs named their checkpoint's tree is taken by its number alone."""
    at = run.get("checkpoint_tree")
    if not isinstance(at, str):
        return True
    for _ in range(max(int(run.get("checkpoint") or 0) - number, 0) + 1):
        if at == tree:
            return True
        try:
            at = ws.history.trees.tree(at).get("parent")
        except SpellError:
            return False
        if not isinstance(at, str):
            return False
    return False


def replay(ws: "Workspace", dir: str, opts: dict, runner: Runner | None = None) -> dict:
    if not isinstance(opts, dict):
        raise UsageError(
            "invalid replay options: expected a table (from, live, run, keep, timeout)"
        )
    unknown = set(opts) - _OPTS
    if unknown:
        raise UsageError(
            f"unknown replay option: {sorted(unknown)[0]} (known: {', '.join(sorted(_OPTS))})"
        )
    m = ws.sessions.manifest(dir)
    runs = read_runs(ws, dir)
    if not runs:
        raise NothingToReplay(
            f"nothing to replay: session {m['id'][:8]} has no recorded runs (runs are "
            "recorded by `spell run`)"
        )
    if ws.memory:
        raise ReplayError(
            "cannot replay in a memory workspace: a replay rebuilds the run's world on disk"
        )
    todo, start = _select(ws, dir, m, runs, opts)
    for r in todo:
        if not ws.objects.has(r["script_hash"]):
            raise ReplayError(
                f"cannot replay session {m['id'][:8]}: the script of run {r.get('run', '?')[:8]} "
                f"({r.get('script')}) is no longer in the store"
            )
    if opts.get("live") and runner is None:
        _check_live(ws, dir, todo)
    from .worlds import sweep_worlds

    sweep_worlds(ws)
    groups = [todo] if start is not None else [[r] for r in todo]
    run_fn = runner or _subprocess_runner(opts.get("timeout"))
    results, worlds = [], []
    for group in groups:
        results.extend(_replay_group(ws, dir, m, group, start, run_fn, opts, worlds))
    totals = {
        "artifacts_same": 0,
        "artifacts_differ": 0,
        "calls_same": 0,
        "calls_differ": 0,
        "state_same": 0,
        "state_differ": 0,
    }
    for r in results:
        for kind, items in (
            ("artifacts", [a for s in r["sessions"] for a in s["artifacts"]]),
            ("calls", r["calls"]),
            ("state", r["state"] + [k for s in r["sessions"] for k in s["state"]]),
        ):
            totals[f"{kind}_same"] += sum(1 for i in items if i["same"])
            totals[f"{kind}_differ"] += sum(1 for i in items if not i["same"])
    return {
        "session_id": m["id"],
        "name": m["name"],
        "from_checkpoint": start,
        "runs": results,
        "same": all(x["same"] for x in results),
        "worlds": worlds,
        "kept": bool(opts.get("keep")),
        **totals,
    }


def _replay_group(
    ws: "Workspace",
    dir: str,
    m: dict,
    group: list[dict],
    start: int | str | None,
    run_fn: Runner,
    opts: dict,
    worlds: list[str],
) -> list[dict]:
    """Build one world and replay ``group`` in it, in order; the world is removed unless kept."""
    from .tree import Snapshot
    from .worlds import build_world, mark_kept, remove_world

    first = _load_world(ws, group[0].get("world"))
    overrides: dict[str, tuple[Snapshot, int | None]] = {}
    if start is not None:
        from .checkpoint_log import checkpoint_ref

        overrides[dir] = (ws.history.snapshot(dir, start), checkpoint_ref(start)[0])
    elif first is None:  # a run recorded before starting points: the session alone
        cp = group[0].get("checkpoint")
        if cp is not None:
            overrides[dir] = (ws.history.snapshot(dir, cp), cp)
        else:
            overrides[dir] = (Snapshot("creation", dict(m), {}, {}), None)
    root = build_world(ws, first, overrides, m["id"])
    results = []
    try:
        world_ws = type(ws)(root, actor="replay")  # a Workspace (history may not import the module)
        try:
            for r in group:
                results.append(_replay_one(ws, world_ws, root, dir, m, r, run_fn, opts))
        finally:
            world_ws.close()
    except BaseException:
        if not opts.get("keep"):
            remove_world(root)
        raise
    if opts.get("keep"):
        mark_kept(root)
        worlds.append(os.path.relpath(root, ws.root))
        for r in results:
            r["world"] = worlds[-1]
    else:
        remove_world(root)
    return results


def _replay_one(
    ws: "Workspace",
    world_ws: "Workspace",
    root: Path,
    dir: str,
    m: dict,
    r: dict,
    run_fn: Runner,
    opts: dict,
) -> dict:
    from ..agent import pair_calls, read_calls
    from ..store import atomic_write

    orig = _load_world(ws, r.get("world"))
    scratch = root / ".spell" / "replay-run"
    scratch.mkdir(parents=True, exist_ok=True)
    script = scratch / (Path(r.get("script") or "script.lua").name or "script.lua")
    atomic_write(script, _script_bytes(ws, r))
    if orig is not None:
        o_dirs = list((orig.get("sessions") or {}).keys())
    else:
        o_dirs = [dir]
    calls = [
        c
        for d in o_dirs
        if ws.storage.exists(f"sessions/{d}/calls.yaml")
        for c in read_calls(ws, d)
        if c.get("run") == r.get("run")
    ]
    calls_file, result_file = scratch / "calls.json", scratch / "result.json"
    atomic_write(
        calls_file, json.dumps(sorted(calls, key=lambda c: c.get("created_at") or "")).encode()
    )
    result_file.unlink(missing_ok=True)
    env = {
        "SPELL_REPLAY": "live" if opts.get("live") else "1",
        "SPELL_SCRIPT_NAME": r.get("script") or "",
        "SPELL_REPLAY_CALLS": str(calls_file),
        "SPELL_RUN_RESULT": str(result_file),
    }
    if r.get("sandbox"):  # a run recorded under --sandbox is replayed under it
        env["SPELL_SANDBOX"] = "1"
    session = orig.get("env_session") if orig is not None else m["id"]
    if session:
        env["SPELL_SESSION"] = session
    status, stderr = run_fn(str(script), list(r.get("args") or []), env, str(root))
    rep = None
    try:
        rep = _load_world(
            world_ws, load_json(result_file.read_bytes(), str(result_file)).get("world")
        )
    except (OSError, ValueError, AttributeError, SpellError):
        pass
    sessions = compare_sessions(ws, world_ws, dir, r, orig, rep)
    o_calls, p_calls = compare_calls_of(ws, world_ws, dir, r, orig, rep)
    calls_cmp = pair_calls(world_ws, o_calls, p_calls)
    state = compare_state(orig, rep)
    target = next((s for s in sessions if s["path"] == f"sessions/{dir}"), None)
    result = {
        "run": r.get("run"),
        "script": r.get("script"),
        "args": r.get("args") or [],
        "exit_status": status,
        "original_exit_status": r.get("exit_status"),
        "replay_run": (rep or {}).get("run"),
        "starting_point": "recorded" if orig else "session only",
        "sessions": sessions,
        "artifacts": target["artifacts"] if target else [],
        "state": state,
        "calls": calls_cmp,
    }
    result["same"] = (
        status == r.get("exit_status")
        and all(s["same"] for s in sessions)
        and all(i["same"] for i in state + calls_cmp)
    )
    if status != 0 and stderr:
        result["stderr"] = stderr
    return result
