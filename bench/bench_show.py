"""`spell show` of a session with 6,000 artifacts: the table beside --json (issue 19).

Run: python bench/bench_show.py [--artifacts 6000]

Both are real `spell` processes (best of 5, byte-compiled modules allowed as in an
install). The peer is the same command with --json, in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spellfs import Workspace, init_workspace  # noqa: E402


def best(cmd: list[str], env: dict, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", type=int, default=6000)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-show-"))
    try:
        root = base / "ws"
        init_workspace(root)
        (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 1000000\n")
        with Workspace.open(root) as ws:
            sid = ws.sessions.create(name="big")
            ws.artifacts.store_many(
                sid,
                [
                    ("tool_result", f"a{i}.txt", f"x{i}", {"tags": ["t"]})
                    for i in range(args.artifacts)
                ],
            )
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cmd = [sys.executable, "-m", "spellfs", "-w", str(root), "show", sid]
        table, js = best(cmd, env), best(cmd + ["--json"], env)
        print(
            f"spell show, {args.artifacts:,} artifacts: table {table:.2f} s, --json {js:.2f} s "
            f"(table at {table / js:.2f}× the JSON time; target ≤ 0.5 s)"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
