"""Checkpoints cost O(change) (issue 19).

Run: python bench/bench_checkpoints.py [--rounds 1000]

What is measured: the CPU time (process_time) of ``Session.save`` through the library,
in one warm process, right after one 1 KiB store; the session's files/ are unchanged
by hand (so this is the checkpoint itself, not a scan for hand edits).

1. Saves after one change on a session of 10 artifacts and of 10,000: median CPU.
2. --rounds rounds of (store one artifact, save) from empty: CPU per save of the last
   100 against the first 100, and the bytes of checkpoint data (trees, tables, pages,
   manifests, states) they wrote.
Peer: LangGraph's SqliteSaver grows 4.6 → 21 ms per step on this machine (issue 19).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spellfs import Workspace, init_workspace  # noqa: E402


def workspace(root: Path) -> Path:
    init_workspace(root)
    (root / "spell.yaml").write_text(
        textwrap.dedent("""\
        sessions:
          max_artifacts_per_session: 1000000
        """)
    )
    return root


def save_cpu(ws, sid: str, i: int) -> float:
    ws.artifacts.store(sid, "tool_result", f"x{i}.txt", os.urandom(512).hex())
    t0 = time.process_time()
    ws.history.save(sid, f"round {i}")
    return time.process_time() - t0


def bench_sizes(base: Path, saves: int) -> None:
    for n in (10, 10000):
        with Workspace.open(workspace(base / f"size{n}")) as ws:
            sid = ws.sessions.create(name=f"n{n}")
            ws.artifacts.store_many(
                sid, [("tool_result", f"a{i}.txt", f"body {i}", None) for i in range(n)]
            )
            ws.history.save(sid, "base")
            cpu = [save_cpu(ws, sid, i) for i in range(saves)]
        print(
            f"session of {n:>6,} artifacts: save after one change, median "
            f"{statistics.median(cpu) * 1e3:.2f} ms "
            f"CPU (p90 {sorted(cpu)[int(len(cpu) * 0.9)] * 1e3:.2f} ms; target ≤ 1 ms median)"
        )


def bench_rounds(base: Path, rounds: int) -> None:
    with Workspace.open(workspace(base / "rounds")) as ws:
        sid = ws.sessions.create(name="rounds")
        written: set[str] = set()
        cpu = []
        for i in range(rounds):
            cpu.append(save_cpu(ws, sid, i))
            written.update(ws.history.trees.written)
        size = sum(ws.objects.stored_size(o) for o in written)
    k = max(1, rounds // 10)
    # The first save of a process also pays its one-time imports (about 30 ms): left out of the
    # first window, which would otherwise flatter the ratio.
    first, last = cpu[1 : k + 1], cpu[-k:]
    for how, f in (("mean", statistics.mean), ("median", statistics.median)):
        print(
            f"{rounds:,} rounds of (store, save), {how}: first {k} {f(first) * 1e3:.2f} ms CPU "
            f"per save, last {k} {f(last) * 1e3:.2f} ms: ratio {f(last) / f(first):.2f} "
            "(target ≤ 1.25; LangGraph SqliteSaver 4.6 → 21 ms)"
        )
    print(f"checkpoint data for {rounds:,} checkpoints: {size / 1024:.0f} KiB (target ≤ 2048 KiB)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--saves", type=int, default=200)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-cp-"))
    try:
        bench_sizes(base, args.saves)
        bench_rounds(base, args.rounds)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
