"""The watcher under load: latency, a burst of files, idle CPU, start-up over many sessions.

    python bench/bench_watch.py [--samples 200] [--burst 10000] [--idle 10] [--sessions 2000]

Runs a real :class:`spellfs.watch.watcher.Watcher` (native inotify observer) in this
process over a temp workspace and measures:

- latency: a file written under ``files/`` to its version recorded (the change
  callback fires right after the record is appended); target p95 <= 500 ms.
- burst: ``--burst`` small files written as fast as Python can; all must be
  recorded with the right content, none lost; time until the last is recorded.
- idle CPU: ``time.process_time()`` of this process over ``--idle`` seconds with
  nothing happening (only the watcher's threads run); target near zero.
- start-up: ``--sessions`` sessions of 2 files each; time to ready on a cold
  start (no stat cache: every file hashed) and a warm one (stat cache hits).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spellfs import Workspace, init_workspace  # noqa: E402
from spellfs.watch.watcher import Watcher  # noqa: E402

CONFIG = (
    "sessions:\n  max_sessions: 100000\n  max_artifacts_per_session: 100000\n  "
    "session_timeout_seconds: 86400\n"
)


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stored: dict[str, float] = {}
        self.warnings: list[str] = []
        self.rescans = 0
        self.cond = threading.Condition(self.lock)

    def __call__(self, change: dict) -> None:
        t = time.monotonic()
        with self.cond:
            if change["event"] == "stored":
                self.stored.setdefault(change["name"], t)
                self.cond.notify_all()
            elif change["event"] == "warning":
                self.warnings.append(change["message"])

    def wait_count(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.stored) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def make_ws(base: Path, name: str) -> Path:
    root = base / name
    init_workspace(root)
    (root / "spell.yaml").write_text(CONFIG)
    return root


def bench_latency_burst_idle(base: Path, samples: int, burst: int, idle: float) -> dict:
    root = make_ws(base, "live")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="bench")
        d = ws.sessions.resolve(sid)
    files = root / "sessions" / d / "files"
    rec = Recorder()
    wws = Workspace.open(root, actor="watch")
    w = Watcher(wws, rec)
    w.start()
    w.ready.wait()
    real = w.catch_up
    w.catch_up = lambda dirs=None: (
        setattr(rec, "rescans", rec.rescans + (dirs is None)),
        real(dirs),
    )[1]
    out: dict = {"mode": w.mode}
    try:
        # latency: one write every 40 ms, each measured on its own
        written: dict[str, float] = {}
        for i in range(samples):
            name = f"lat-{i:05d}.txt"
            t = time.monotonic()
            (files / name).write_bytes(b"latency sample %d\n" % i)
            written[name] = t
            time.sleep(0.04)
        rec.wait_count(samples, 30)
        lat = [(rec.stored[n] - t) * 1000 for n, t in written.items() if n in rec.stored]
        out["latency"] = {
            "n": len(lat),
            "lost": samples - len(lat),
            "p50": pct(lat, 50),
            "p95": pct(lat, 95),
            "max": max(lat),
        }

        # burst
        base_count = len(rec.stored)
        t0 = time.monotonic()
        for i in range(burst):
            (files / f"burst-{i:06d}.txt").write_bytes(b"burst file %d\n" % i)
        t_written = time.monotonic() - t0
        ok = rec.wait_count(base_count + burst, 300)
        t_all = time.monotonic() - t0
        time.sleep(0.5)
        with Workspace.open(root) as ws:
            log = ws.log(d)
            log.refresh()
            from spellfs.store.objects import hash_bytes

            bad = [
                i
                for i in range(burst)
                if (r := log.latest(f"burst-{i:06d}.txt")) is None
                or r["hash"] != hash_bytes(b"burst file %d\n" % i)
            ]
            versions = sum(len(log.versions.get(f"burst-{i:06d}.txt", [])) for i in range(burst))
        out["burst"] = {
            "files": burst,
            "written_s": t_written,
            "all_recorded_s": t_all,
            "complete": ok,
            "missing_or_wrong": len(bad),
            "versions": versions,
            "rescans": rec.rescans,
        }

        # idle CPU
        time.sleep(1.0)
        c0, t0 = time.process_time(), time.monotonic()
        time.sleep(idle)
        cpu, wall = time.process_time() - c0, time.monotonic() - t0
        out["idle"] = {"seconds": wall, "cpu_s": cpu, "cpu_pct": 100 * cpu / wall}
        out["warnings"] = rec.warnings[:5]
    finally:
        w.stop()
        wws.close()
    return out


def bench_startup(base: Path, sessions: int) -> dict:
    root = make_ws(base, "many")
    t0 = time.monotonic()
    with Workspace.open(root) as ws:
        for i in range(sessions):
            sid = ws.sessions.create(name=f"s{i}")
            ws.artifacts.store(sid, "tool_result", "a.txt", b"a %d" % i)
            ws.artifacts.store(sid, "tool_result", "b.txt", b"b %d" % i)
    made = time.monotonic() - t0
    old = (
        time.time() - 60
    )  # out of the stat cache's racy window, as files are after any real downtime
    for dirpath, _, names in os.walk(root / "sessions"):
        for n in names:
            os.utime(os.path.join(dirpath, n), (old, old))
    out = {"sessions": sessions, "files": 2 * sessions, "setup_s": made}
    for label in ("cold", "warm"):
        with Workspace.open(root, actor="watch") as wws:
            rec = Recorder()
            t0 = time.monotonic()
            w = Watcher(wws, rec).start()
            w.ready.wait()
            out[f"{label}_s"] = time.monotonic() - t0
            out[f"{label}_recorded"] = len(rec.stored)
            w.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--burst", type=int, default=10000)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--sessions", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        base = Path(tmp)
        r = bench_latency_burst_idle(base, args.samples, args.burst, args.idle)
        s = bench_startup(base, args.sessions) if args.sessions else None
    lat, b, idle = r["latency"], r["burst"], r["idle"]
    rows = [
        ("observer", r["mode"], ""),
        ("latency p50", f"{lat['p50']:.0f} ms", f"{lat['n']} samples, {lat['lost']} lost"),
        (
            "latency p95",
            f"{lat['p95']:.0f} ms",
            "target <= 500 ms: " + ("ok" if lat["p95"] <= 500 else "MISSED"),
        ),
        ("latency max", f"{lat['max']:.0f} ms", ""),
        (
            f"burst {b['files']} files",
            f"{b['all_recorded_s']:.1f} s",
            f"written in {b['written_s']:.1f} s; {b['files'] / b['all_recorded_s']:.0f} "
            "files/s recorded",
        ),
        (
            "burst lost/wrong",
            str(b["missing_or_wrong"]),
            f"{b['versions']} versions for {b['files']} files; {b['rescans']} overflow rescans",
        ),
        (
            f"idle CPU over {idle['seconds']:.0f} s",
            f"{idle['cpu_pct']:.2f} %",
            f"{idle['cpu_s'] * 1000:.0f} ms CPU",
        ),
    ]
    if s:
        rows += [
            (
                f"start, {s['sessions']} sessions cold",
                f"{s['cold_s']:.2f} s",
                f"{s['files']} files hashed, {s['cold_recorded']} recorded",
            ),
            (
                f"start, {s['sessions']} sessions warm",
                f"{s['warm_s']:.2f} s",
                f"stat cache hits, {s['warm_recorded']} recorded",
            ),
        ]
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b_) for _, b_, _ in rows)
    print(f"{'measure':<{w0}}  {'value':>{w1}}  notes")
    print(f"{'-' * w0}  {'-' * w1}  {'-' * 40}")
    for a, b_, c in rows:
        print(f"{a:<{w0}}  {b_:>{w1}}  {c}")
    if r["warnings"]:
        print("warnings:", *r["warnings"], sep="\n  ")


if __name__ == "__main__":
    main()
