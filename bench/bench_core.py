"""Foundation benchmarks (issue 2): stores, sessions, listing, one big file.

Run: python bench/bench_core.py [--quick]
Prints each figure beside its target, and beside `git hash-object -w --stdin-paths`
on the same files in the same run: spellfs and git take turns for ``--rounds`` rounds (this
machine's disk slows for a minute at a time), and the median of each counts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spellfs import Workspace, init_workspace  # noqa: E402


def workspace(base: Path, name: str, extra: str = "") -> Path:
    root = base / name
    root.parent.mkdir(parents=True, exist_ok=True)
    init_workspace(root)
    (root / "spell.yaml").write_text(
        textwrap.dedent(f"""\
        sessions:
          max_sessions: 1000000
          max_artifacts_per_session: 1000000
          max_artifact_size: 2000000000
        {extra}""")
    )
    return root


def bench_stores(base: Path, n: int) -> dict:
    root = workspace(base, "stores")
    payloads = [os.urandom(512).hex().encode()[:1024] for _ in range(1000)]
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="bench")
        window = max(1, n // 10)
        marks = []
        t0 = time.perf_counter()
        for i in range(n):
            body = payloads[i % 1000][:-8] + b"%08d" % i
            ws.artifacts.store(sid, "tool_result", f"a{i}.txt", body)
            if (i + 1) % window == 0:
                marks.append(time.perf_counter())
        total = time.perf_counter() - t0
    first = window / (marks[0] - t0)
    last = window / (marks[-1] - marks[-2])
    files_dir = next((root / "sessions").iterdir()) / "files"
    return {
        "n": n,
        "rate": n / total,
        "first": first,
        "last": last,
        "files_dir": files_dir,
        "window": window,
    }


def bench_batches(base: Path, n: int) -> dict:
    """The same stores through ``Artifact.store_many``, 1,000 a call (what ``spell add`` and a
    script storing many results take): git's ``hash-object --stdin-paths`` is a batch too."""
    root = workspace(base, "batches")
    payloads = [os.urandom(512).hex().encode()[:1024] for _ in range(1000)]
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="bench")
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            ws.artifacts.store_many(
                sid,
                [
                    ("tool_result", f"a{i}.txt", payloads[i % 1000][:-8] + b"%08d" % i, None)
                    for i in range(start, min(n, start + 1000))
                ],
            )
        total = time.perf_counter() - t0
    files_dir = next((root / "sessions").iterdir()) / "files"
    return {"rate": n / total, "files_dir": files_dir}


def bench_git(files_dir: Path, base: Path, repo_name: str = "gitpeer") -> float:
    repo = base / repo_name
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    paths = "\n".join(str(p) for p in files_dir.iterdir()) + "\n"
    n = paths.count("\n")
    t0 = time.perf_counter()
    subprocess.run(
        ["git", "hash-object", "-w", "--stdin-paths"],
        input=paths.encode(),
        cwd=repo,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return n / (time.perf_counter() - t0)


def bench_sessions(base: Path, n: int) -> dict:
    root = workspace(base, "sessions")
    with Workspace.open(root) as ws:
        t0 = time.perf_counter()
        for i in range(n):
            ws.sessions.create(name=f"s{i}", tags=["even" if i % 2 == 0 else "odd", f"g{i % 10}"])
        rate = n / (time.perf_counter() - t0)
    # A listing as a fresh command sees it: new process state, index on disk.
    timings = []
    for _ in range(5):
        with Workspace.open(root) as ws:
            t0 = time.perf_counter()
            found = ws.sessions.list({"tags": ["g3"], "limit": None})
            timings.append(time.perf_counter() - t0)
    with Workspace.open(root) as ws:
        ws.sessions.list({"tags": ["g3"]})
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            ws.sessions.list({"tags": ["g3"]})
            warm.append(time.perf_counter() - t0)
    return {
        "n": n,
        "rate": rate,
        "list_ms": statistics.median(timings) * 1000,
        "list_warm_ms": statistics.median(warm) * 1000,
        "found": len(found),
    }


BIG = """
import resource, sys, time
sys.path.insert(0, {repo!r})
from spellfs import Workspace
ws = Workspace.open({root!r})
sid = ws.sessions.create(name="big")
t0 = time.perf_counter()
ws.artifacts.store_file(sid, {path!r}, "user_input")
dt = time.perf_counter() - t0
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_big(base: Path, size_mb: int) -> dict:
    root = workspace(base, "big")
    path = base / "big.bin"
    with open(path, "wb") as f:  # half random, half repetitive text: some compresses, some does not
        block = os.urandom(1 << 20)
        text = (b"the quick brown fox jumps over the lazy dog\n" * 24000)[: 1 << 20]
        for i in range(size_mb):
            f.write(block if i % 2 else text)
    repo = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run(
        [sys.executable, "-c", BIG.format(repo=repo, root=str(root), path=str(path))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    dt, rss_kb = float(out[0]), int(out[1])
    return {"mb": size_mb, "mbps": size_mb * 1.048576 / dt, "rss_mb": rss_kb / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument(
        "--rounds", type=int, default=3, help="spell and git runs, in turn (the median counts)"
    )
    args = ap.parse_args()
    n_art, n_sess, big_mb = (10_000, 2_000, 128) if args.quick else (100_000, 10_000, 1024)
    base = Path(tempfile.mkdtemp(prefix="spellfs-bench-"))
    singles, gits, batches, gits_b = [], [], [], []
    try:
        for r in range(args.rounds):  # in turn, so a disk that slows for a minute slows both
            s = bench_stores(base / f"r{r}", n_art)
            singles.append(s)
            gits.append(bench_git(s["files_dir"], base / f"r{r}"))
            b = bench_batches(base / f"r{r}", n_art)
            batches.append(b["rate"])
            gits_b.append(bench_git(b["files_dir"], base / f"r{r}", "gitpeer2"))
            shutil.rmtree(base / f"r{r}")
        sess = bench_sessions(base, n_sess)
        big = bench_big(base, big_mb)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    s = sorted(singles, key=lambda one: one["rate"])[len(singles) // 2]  # the median round
    rate, git_rate = statistics.median(x["rate"] for x in singles), statistics.median(gits)
    rate_b, git_rate_b = statistics.median(batches), statistics.median(gits_b)
    each = ", ".join(f"{x['rate'] / g:.2f}" for x, g in zip(singles, gits))
    each_b = ", ".join(f"{x / g:.2f}" for x, g in zip(batches, gits_b))
    rows = [
        (f"(a) store {s['n']:,} x 1 KiB, one session", f"{rate:,.0f} stores/s", ">= 5,000/s"),
        (
            f"    first {s['window']:,} / last {s['window']:,}",
            f"{s['first']:,.0f} / {s['last']:,.0f} per s",
            f"last/first cost {s['first'] / s['last']:.2f} (<= 1.25)",
        ),
        (
            "(b) git hash-object -w --stdin-paths, same files",
            f"{git_rate:,.0f} objects/s",
            f"spellfs/git = {rate / git_rate:.2f}x (>= 1.0; each round: {each})",
        ),
        (
            f"(a2) store_many {s['n']:,} x 1 KiB, 1,000 a call",
            f"{rate_b:,.0f} stores/s; git {git_rate_b:,.0f}/s",
            f"spellfs/git = {rate_b / git_rate_b:.2f}x (>= 1.0; each round: {each_b})",
        ),
        (f"(c) create {sess['n']:,} sessions", f"{sess['rate']:,.0f} sessions/s", ">= 1,000/s"),
        (
            f"(d) tag-filtered list over {sess['n']:,} ({sess['found']} match)",
            f"{sess['list_ms']:.1f} ms fresh, {sess['list_warm_ms']:.1f} ms warm",
            "<= 50 ms",
        ),
        (
            f"(e) store one {big['mb']:,} MiB file",
            f"{big['mbps']:,.0f} MB/s, peak RSS {big['rss_mb']:.0f} MB",
            ">= 300 MB/s, < 150 MB",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"spellfs foundation benchmark ({os.cpu_count()} cores, python {sys.version.split()[0]})")
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:<32}  {target}")


if __name__ == "__main__":
    main()
