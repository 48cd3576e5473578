"""How fast `spell ui` shows the first page of sessions in a big workspace.

    python bench/bench_ui.py [--sessions 10000] [--repeat 7]

Makes a workspace of ``--sessions`` sessions (a tenth of them with a parent, tags
on all, a few artifacts on some), starts the real server (``spell ui``, uvicorn,
in a subprocess) and times, over HTTP from this process:

1. the first page of ``/`` right after start (cold: the query index is filled then);
2. the first page again, median of ``--repeat`` (warm: what a reload costs);
3. a filtered first page (``?status=completed&tags=t3``) and a search (``?q=session 99``);
4. the floor, in the same run: one ``os.stat`` of every ``session.yaml`` (what showing
   the workspace as on disk now costs at the least);
5. the peer, in the same run: ``spell ls --all --json`` (the same listing as a
   command, which must read every session too), as a ratio.

Target: the warm first page <= 200 ms on 10,000 sessions. Figures are noisy on a
shared machine; the ratio against the peer measured in the same run is the figure
to compare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from spellfs import Workspace, init_workspace  # noqa: E402


def make_workspace(root: Path, n: int) -> None:
    init_workspace(root)
    with open(root / "spell.yaml", "a") as f:
        f.write(f"\nsessions:\n  max_sessions: {n * 2}\n")
    with Workspace.open(root) as ws:
        parents: list[str] = []
        for i in range(n):
            parent = parents[i % len(parents)] if parents and i % 10 == 0 else None
            sid = ws.sessions.create(
                name=f"session {i}",
                description=f"number {i}",
                tags=[f"t{i % 7}"],
                parent_session_id=parent,
            )
            if i % 100 == 0:
                parents.append(sid)
                ws.artifacts.store(sid, "user_input", "notes.md", f"notes {i}\n")
            if i % 3 == 0:
                ws.sessions.complete(sid)


def timed_get(client: httpx.Client, url: str) -> float:
    t = time.perf_counter()
    r = client.get(url)
    elapsed = time.perf_counter() - t
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return elapsed


def stat_all(root: Path) -> float:
    """The floor a page showing the workspace as on disk cannot go below: one stat per
    session.yaml."""
    t = time.perf_counter()
    for d in os.listdir(root / "sessions"):
        os.stat(root / "sessions" / d / "session.yaml")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument(
        "--workspace", type=Path, help="use (and on first use make) this workspace, to run again"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workspace or Path(tmp) / "ws"
        if not (root / "sessions").is_dir():
            t = time.perf_counter()
            make_workspace(root, args.sessions)
            print(f"made {args.sessions} sessions in {time.perf_counter() - t:.1f} s")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "spellfs", "-w", str(root), "ui", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            url = line.split(" at ", 1)[1].split(" ", 1)[0]
            with httpx.Client(base_url=url, timeout=120) as client:
                cold = timed_get(client, "/")
                warm = statistics.median(timed_get(client, "/") for _ in range(args.repeat))
                filtered = statistics.median(
                    timed_get(client, "/?status=completed&tags=t3") for _ in range(args.repeat)
                )
                search = statistics.median(
                    timed_get(client, "/?q=session+99") for _ in range(args.repeat)
                )
                page_50 = statistics.median(
                    timed_get(client, "/?page=50") for _ in range(args.repeat)
                )
                floor = statistics.median(stat_all(root) for _ in range(args.repeat))
        finally:
            proc.terminate()
            proc.wait(10)
        peer = []
        for _ in range(3):
            t = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-m", "spellfs", "-w", str(root), "ls", "--all", "--json"],
                capture_output=True,
                env=env,
            )
            peer.append(time.perf_counter() - t)
            assert r.returncode == 0, r.stderr
        peer_s = statistics.median(peer)
    ms = lambda s: f"{s * 1000:7.1f} ms"  # noqa: E731
    print(f"first page, cold (index filled):   {ms(cold)}")
    print(f"first page, warm (median of {args.repeat}):  {ms(warm)}   target <= 200 ms")
    print(
        f"  floor: stat every session.yaml:  {ms(floor)}   "
        f"(warm first page / floor = {warm / floor:.1f})"
    )
    print(f"filtered (status+tag):             {ms(filtered)}")
    print(f"search (q):                        {ms(search)}")
    print(f"page 50:                           {ms(page_50)}")
    print(
        f"peer `spell ls --all --json`:      {ms(peer_s)}   "
        f"(warm first page / peer = {warm / peer_s:.2f})"
    )


if __name__ == "__main__":
    main()
