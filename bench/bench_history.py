"""Checkpoint, diff and checkpoint-storage figures.

    python bench/bench_history.py [--artifacts 10000] [--checkpoints 1000]

1. A session of 10,000 artifacts: time a checkpoint (the first, a full table; then
   one after 10 artifacts changed, in this process and in a fresh Workspace whose
   caches are cold). Target <= 500 ms.
2. Diff between two checkpoints of it (cold caches, 10 text artifacts changed).
   Target <= 200 ms.
3. Storage growth: 1,000 checkpoints of a session that gains one artifact per
   checkpoint; bytes of checkpoint data (tree, table, page, manifest and state
   objects as stored, plus checkpoints.yaml), artifact contents aside.
   Target <= 2 MiB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spellfs import Workspace, init_workspace  # noqa: E402

CONFIG = "sessions:\n  max_artifacts_per_session: 1000000\n  max_sessions: 100000\n"


def _workspace(tmp: Path, name: str) -> Path:
    root = tmp / name
    init_workspace(root)
    (root / "spell.yaml").write_text(CONFIG)
    return root


def _ms(f) -> tuple[float, object]:
    t = time.perf_counter()
    value = f()
    return (time.perf_counter() - t) * 1000, value


def bench_large(tmp: Path, n: int) -> dict:
    root = _workspace(tmp, "large")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="large")
        t = time.perf_counter()
        for i in range(n):
            ws.artifacts.store(
                sid,
                "tool_result",
                f"artifact-{i:06d}.md",
                f"# artifact {i}\n\nline a\nline b {i}\n",
            )
        setup = time.perf_counter() - t
        first, _ = _ms(lambda: ws.history.save(sid, "full"))
        for i in range(0, n, n // 10):
            ws.artifacts.store(
                sid,
                "tool_result",
                f"artifact-{i:06d}.md",
                f"# artifact {i}\n\nline a\nline B {i}\n",
            )
        warm, _ = _ms(lambda: ws.history.save(sid, "ten changed"))
    with Workspace.open(root) as ws:
        ws.artifacts.store(sid, "tool_result", "one-more.md", "x")
        cold, _ = _ms(lambda: ws.history.save(sid, "cold"))
    with Workspace.open(root) as ws:
        diff_cold, d = _ms(lambda: ws.history.diff(sid, 1, 2))
        assert d["summary"]["changed"] == 10, d["summary"]
        diff_warm, _ = _ms(lambda: ws.history.diff(sid, 1, 2))
    with Workspace.open(root) as ws:
        diff_now, _ = _ms(lambda: ws.history.diff(sid, 1))
    return {
        "artifacts": n,
        "setup_s": setup,
        "first_ms": first,
        "warm_ms": warm,
        "cold_ms": cold,
        "diff_cold_ms": diff_cold,
        "diff_warm_ms": diff_warm,
        "diff_now_ms": diff_now,
    }


def bench_growth(tmp: Path, n: int) -> dict:
    root = _workspace(tmp, "growth")
    times = []
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="growth")
        dir = ws.sessions.resolve(sid)
        start = set(ws.objects)
        contents = set()
        for i in range(n):
            aid = ws.artifacts.store(
                sid, "tool_result", f"artifact-{i:05d}.md", f"# artifact {i}\n"
            )
            contents.add(aid["content_hash"])
            t = time.perf_counter()
            ws.history.save(sid, f"checkpoint {i + 1}")
            times.append((time.perf_counter() - t) * 1000)
        objects = set(ws.objects) - start - contents
        object_bytes = sum(ws.objects.stored_size(o) for o in objects)
        log_bytes = (root / "sessions" / dir / "checkpoints.yaml").stat().st_size
    return {
        "checkpoints": n,
        "objects": len(objects),
        "object_bytes": object_bytes,
        "log_bytes": log_bytes,
        "total": object_bytes + log_bytes,
        "save_median_ms": statistics.median(times),
        "save_max_ms": max(times),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=int, default=10000)
    p.add_argument("--checkpoints", type=int, default=1000)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        large = bench_large(Path(tmp), a.artifacts)
        growth = bench_growth(Path(tmp), a.checkpoints)
    ok = lambda good: "ok" if good else "OVER TARGET"  # noqa: E731
    worst = max(large["first_ms"], large["warm_ms"], large["cold_ms"])
    print(f"session of {large['artifacts']} artifacts (stored in {large['setup_s']:.1f} s)")
    print(
        f"  checkpoint: first (full table) {large['first_ms']:.0f} ms, after 10 changes "
        f"{large['warm_ms']:.0f} ms, "
        f"fresh process {large['cold_ms']:.0f} ms   target <= 500 ms: {ok(worst <= 500)}"
    )
    print(
        f"  diff checkpoint 1..2 (10 changed): cold {large['diff_cold_ms']:.0f} ms, warm "
        f"{large['diff_warm_ms']:.0f} ms; "
        f"1..now {large['diff_now_ms']:.0f} ms   target <= 200 ms: "
        f"{ok(large['diff_cold_ms'] <= 200)}"
    )
    g = growth
    print(
        f"{g['checkpoints']} checkpoints, one new artifact each: {g['total'] / 1024:.0f} KiB "
        "of checkpoint data "
        f"({g['objects']} objects {g['object_bytes'] / 1024:.0f} KiB + checkpoints.yaml "
        f"{g['log_bytes'] / 1024:.0f} KiB; "
        f"{g['total'] / g['checkpoints']:.0f} B per checkpoint)   target <= 2048 KiB: "
        f"{ok(g['total'] <= 2 << 20)}"
    )
    print(f"  save: median {g['save_median_ms']:.1f} ms, max {g['save_max_ms']:.1f} ms")


if __name__ == "__main__":
    main()
