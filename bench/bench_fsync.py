"""Save latency while another process writes 1 GiB elsewhere (issue 19).

Run: python bench/bench_fsync.py [--mib 1024] [--saves 20]

Each round stores one 1 KiB artifact and saves a checkpoint, alternating in the
same run between two sessions: with the checkpoint flushing exactly what it names (now: fsync of
those objects, the record files and their directories), and with the old ``os.sync()``
(every dirty page of every process). A background `dd` writes --mib MiB to a file
outside the workspace during both, without fsync of its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spellfs import Workspace, init_workspace  # noqa: E402


def run(root: Path, saves: int, writer_file: Path, mib: int) -> dict[str, list[float]]:
    """Alternate the two kinds of save while one `dd` writes, so both see the same load."""
    real = {}
    with Workspace.open(root) as ws:
        real_fsync = ws.storage.fsync
        kinds = {"os.sync() (before)": lambda paths: os.sync(), "targeted fsync (now)": real_fsync}
        sids = {}
        for label in kinds:
            sids[label] = ws.sessions.create(name=label.split()[0])
            ws.artifacts.store(sids[label], "tool_result", "warm.txt", b"w" * 1024)
            ws.history.save(sids[label])
            real[label] = []
        os.sync()
        writer = subprocess.Popen(
            ["dd", "if=/dev/zero", f"of={writer_file}", "bs=1M", f"count={mib}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)  # let the writer dirty some memory first
            for i in range(saves):
                if writer.poll() is not None:
                    break
                for label, flush in kinds.items():
                    ws.storage.fsync = flush
                    t0 = time.perf_counter()
                    ws.artifacts.store(
                        sids[label], "tool_result", f"a{i}.txt", os.urandom(512).hex()
                    )
                    ws.history.save(sids[label], f"round {i}")
                    real[label].append(time.perf_counter() - t0)
                    time.sleep(0.05)
        finally:
            writer.wait()
            ws.storage.fsync = real_fsync
        os.unlink(writer_file)
    return real


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--saves", type=int, default=20)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-fsync-"))
    try:
        root = base / "ws"
        init_workspace(root)
        results = run(root, args.saves, base / "elsewhere.bin", args.mib)
        medians = {}
        for label, times in results.items():
            if not times:
                print(f"{label}: the writer finished before any save; raise --mib")
                continue
            ms = sorted(t * 1000 for t in times)
            medians[label] = statistics.median(ms)
            print(
                f"{label:22} store+save while dd writes {args.mib} MiB: median "
                f"{medians[label]:7.1f} ms, "
                f"max {ms[-1]:7.1f} ms over {len(ms)} saves"
            )
        if len(medians) == 2:
            old, new = medians.values()
            print(f"targeted fsync: {old / new:.1f}× faster than os.sync() at the median")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
