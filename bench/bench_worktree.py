"""What the working-copy check costs (issue #16): comparing files/ with the records.

    python bench/bench_worktree.py [--artifacts 10000] [--rounds 15]

One session of ``--artifacts`` small artifacts. Measured, median of ``--rounds``,
interleaved with the peer so load drift hits both alike:

1. ``ws.worktree.scan(dir)`` in a warm process (records already read, as in a
   script, the watcher, or the second check of one command), clean: a stat per
   file, no read. Target <= 30 ms for 10,000.
2. The same with 10 files edited by hand (10 hashes; the cache then holds them).
3. Cold: a new process's view (``Workspace.open`` + the first scan: reading
   ``artifacts.yaml`` and the stat cache) — what a one-shot ``spell status`` pays.
4. The peers: ``git status --porcelain`` over the same ``files/`` (its own index,
   refreshed first), clean and with the 10 edits — git's index is the design copied;
   and the floor, a bare ``os.scandir`` + ``lstat`` loop over the same files.

Figures on a shared machine are noisy: read the ratios against the peer.
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

from spellfs import Workspace, init_workspace  # noqa: E402


def _ms(f) -> float:
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    n = args.artifacts
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        init_workspace(root)
        (root / "spell.yaml").write_text(f"sessions:\n  max_artifacts_per_session: {n + 100}\n")
        ws = Workspace.open(root)
        sid = ws.sessions.create(name="big")
        dir = ws.sessions.resolve(sid)
        t = time.perf_counter()
        for start in range(0, n, 1000):
            ws.artifacts.store_many(
                sid,
                [
                    ("tool_result", f"f{i:06d}.txt", f"artifact {i}\n" * 4, None)
                    for i in range(start, min(n, start + 1000))
                ],
            )
        print(f"setup: {n} artifacts stored in {time.perf_counter() - t:.1f} s")
        files = root / "sessions" / dir / "files"
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": tmp}

        def git(*a: str) -> subprocess.CompletedProcess:
            return subprocess.run(["git", *a], cwd=files, capture_output=True, env=env, check=True)

        git("init", "-q")
        git("add", "-A")
        time.sleep(0.2)  # past the racy window of both indexes
        first = _ms(lambda: ws.worktree.scan(dir))
        print(f"first scan (hashes every file once, fills the stat cache): {first:.0f} ms")
        time.sleep(0.2)
        ws.worktree.scan(dir)  # entries hashed within the racy window are trusted from now on
        git("status", "--porcelain")

        def cold() -> None:
            w = Workspace.open(root)
            w.worktree.scan(dir)
            w.close()

        def floor() -> None:
            for e in os.scandir(files):
                e.stat(follow_symlinks=False)

        clean, peer_clean, cold_ms, floor_ms = [], [], [], []
        for _ in range(args.rounds):
            floor_ms.append(_ms(floor))
            clean.append(_ms(lambda: ws.worktree.scan(dir)))
            peer_clean.append(_ms(lambda: git("status", "--porcelain")))
            cold_ms.append(_ms(cold))
        assert ws.worktree.scan(dir).clean
        edited = [files / f"f{i:06d}.txt" for i in range(0, n, max(1, n // 10))][:10]
        for p in edited:
            with open(p, "a") as f:
                f.write("edited by hand\n")
        time.sleep(0.2)
        dirty, peer_dirty = [], []
        for r in range(args.rounds):
            if r:  # make the edits new again, so each round hashes them as a first look would
                for p in edited:
                    os.utime(p, ns=(time.time_ns(), time.time_ns() - 10**9 + r))
            dirty.append(_ms(lambda: ws.worktree.scan(dir)))
            peer_dirty.append(_ms(lambda: git("status", "--porcelain")))
        wc = ws.worktree.scan(dir)
        assert len(wc.modified) == len(edited), wc.modified
        ws.close()
    med = statistics.median
    print(f"{n} artifacts, median of {args.rounds} (ms):")
    print(f"  scan, warm, clean       {med(clean):7.1f}   target <= 30")
    print(f"  scan, warm, 10 edits    {med(dirty):7.1f}")
    print(
        f"  scan, cold process view {med(cold_ms):7.1f}   (Workspace.open + records + stat cache)"
    )
    print(f"  scandir + lstat floor   {med(floor_ms):7.1f}")
    print(f"  git status, clean       {med(peer_clean):7.1f}   (a subprocess: includes its start)")
    print(f"  git status, 10 edits    {med(peer_dirty):7.1f}")
    print(
        f"  ratio scan/git: clean {med(clean) / med(peer_clean):.2f}, 10 edits "
        f"{med(dirty) / med(peer_dirty):.2f}; "
        f"scan/floor (clean) {med(clean) / med(floor_ms):.2f}"
    )


if __name__ == "__main__":
    main()
