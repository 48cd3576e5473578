"""What recording a run's starting point costs, and what a replay costs.

    python bench/bench_replay.py [--sessions 10000] [--runs 200]

1. A workspace of 10,000 sessions; one of them (100 artifacts, a checkpoint,
   session State) is what the script touches: it reads a workspace State key,
   reads one artifact and stores one. Each measured run opens a fresh Workspace
   (as `spell run` does), runs the script through the Lua runtime and closes it,
   alternately with recording off (no ``ws.run``) and on (``begin_run`` ..
   ``finish``: the run record plus the starting point and world object). Target:
   the median of (on - off) <= 2 ms. The starting point of the session alone is
   timed too.
2. One ``spell replay`` of that run (a subprocess: build the world, run the
   script there, compare, remove the world), beside one ``spell run`` of the same
   script, for scale.

Figures are wall-clock medians on a shared machine: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spellfs import Workspace, init_workspace  # noqa: E402

CONFIG = "sessions:\n  max_artifacts_per_session: 1000000\n  max_sessions: 100000\n"
SCRIPT = b"""
local sid = os.getenv("SPELL_SESSION")
local limit = State.get("limit")
local a = Artifact.get(sid, "artifact-0001.md")
Artifact.store(sid, "text", "out.md", a.content .. tostring(limit))
"""


def build(root: Path, n: int) -> str:
    init_workspace(root)
    (root / "spell.yaml").write_text(CONFIG)
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="target", tags=["bench"])
        for i in range(100):
            ws.artifacts.store(sid, "text", f"artifact-{i:04d}.md", f"# artifact {i}\n")
        ws.state.set(f"session:{sid}:step", 1)
        ws.state.set("limit", 3)
        ws.history.save(sid, "start")
        for i in range(n - 1):
            ws.sessions.create(name=f"other {i}")
    return sid


def one_run(root: Path, record: bool) -> float:
    from spellfs.history import begin_run
    from spellfs.lua.runtime import run_script

    t = time.perf_counter()
    ws = Workspace.open(root, actor="script")
    try:
        run = (
            begin_run(ws, root / "bench.lua", SCRIPT, [], os.environ["SPELL_SESSION"])
            if record
            else None
        )
        run_script(ws, "bench.lua", SCRIPT, [])
        if run is not None:
            run.finish(0)
    finally:
        ws.close()
    return (time.perf_counter() - t) * 1000


def bench_recording(root: Path, sid: str, runs: int) -> dict:
    os.environ["SPELL_SESSION"] = sid
    for _ in range(5):  # warm the page cache and imports
        one_run(root, False)
        one_run(root, True)
    off, on = [], []
    for i in range(runs):
        if i % 2:
            off.append(one_run(root, False))
            on.append(one_run(root, True))
        else:
            on.append(one_run(root, True))
            off.append(one_run(root, False))
    from spellfs.history import starting_point

    with Workspace.open(root) as ws:
        dir = ws.sessions.resolve(sid)
        point = []
        for _ in range(runs):
            t = time.perf_counter()
            starting_point(ws, dir)
            point.append((time.perf_counter() - t) * 1000)
    world = []  # the other new cost: the world object written at finish
    for _ in range(runs):
        ws = Workspace.open(root, actor="script")
        try:
            from spellfs.history import begin_run

            run = begin_run(ws, root / "bench.lua", SCRIPT, [], sid)
            ws.artifacts.store(sid, "text", "out.md", "x")
            t = time.perf_counter()
            ws.objects.put_bytes(json.dumps(run._world(0), sort_keys=True).encode())
            world.append((time.perf_counter() - t) * 1000)
            run.finish(0)
        finally:
            ws.close()
    return {
        "world_ms": statistics.median(world),
        "off_ms": statistics.median(off),
        "on_ms": statistics.median(on),
        "added_ms": statistics.median(b - a for a, b in zip(off, on)),
        "starting_point_ms": statistics.median(point),
    }


def bench_replay(root: Path, sid: str) -> dict:
    spell = [sys.executable, "-m", "spellfs", "-w", str(root)]
    env = {**os.environ, "SPELL_SESSION": sid}
    (root / "bench.lua").write_bytes(SCRIPT)
    t = time.perf_counter()
    subprocess.run([*spell, "run", "bench.lua"], env=env, check=True, capture_output=True, cwd=root)
    run_ms = (time.perf_counter() - t) * 1000
    with Workspace.open(root) as ws:
        from spellfs.history import read_runs

        last = read_runs(ws, ws.sessions.resolve(sid))[-1]["run"]
    t = time.perf_counter()
    r = subprocess.run([*spell, "replay", sid, "--run", last], env=env, capture_output=True)
    replay_ms = (time.perf_counter() - t) * 1000
    return {"spell_run_ms": run_ms, "spell_replay_ms": replay_ms, "replay_exit": r.returncode}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        t = time.perf_counter()
        sid = build(root, args.sessions)
        print(f"workspace: {args.sessions} sessions, built in {time.perf_counter() - t:.1f} s")
        rec = bench_recording(root, sid, args.runs)
        print(
            f"run touching one session, recording off: {rec['off_ms']:.2f} ms (median of "
            f"{args.runs})"
        )
        print(f"run touching one session, recording on:  {rec['on_ms']:.2f} ms")
        print(
            f"added by recording (median of paired differences): {rec['added_ms']:.2f} ms "
            f"(target <= 2 ms; ratio on/off {rec['on_ms'] / rec['off_ms']:.2f})"
        )
        print(
            f"starting point of the touched session alone: {rec['starting_point_ms']:.3f} ms; "
            f"the world object at finish: {rec['world_ms']:.3f} ms"
        )
        rep = bench_replay(root, sid)
        print(
            f"`spell run`: {rep['spell_run_ms']:.0f} ms; `spell replay --run R` of it: "
            f"{rep['spell_replay_ms']:.0f} ms (exit {rep['replay_exit']}; "
            f"ratio {rep['spell_replay_ms'] / rep['spell_run_ms']:.1f})"
        )


if __name__ == "__main__":
    main()
