"""Foundation benchmarks (issue 2): stores, sessions, listing, one big file.

Run: python bench/bench_core.py [--quick]
Prints each figure beside its target, and beside `git hash-object -w --stdin-paths`
on the same files in the same run: spellfs and git take turns block by block (a tenth of the
stores, then git on that block's files; this machine slows for a minute at a time), for
``--rounds`` rounds, and the median ratio counts.
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


def git_peer(base: Path, name: str) -> tuple[Path, float]:
    """A fresh repository for the peer, and what one `git hash-object` run costs with nothing
    to hash (its start-up: taken off each block's time, so blocks cost git nothing extra)."""
    repo = base / name
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    idle = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin-paths"], input=b"", cwd=repo, check=True
        )
        idle.append(time.perf_counter() - t0)
    return repo, statistics.median(idle)


def git_block(repo: Path, start_up: float, paths: list[Path]) -> float:
    """`git hash-object -w --stdin-paths` on ``paths``: its time, less its start-up."""
    t0 = time.perf_counter()
    subprocess.run(
        ["git", "hash-object", "-w", "--stdin-paths"],
        input=("\n".join(str(p) for p in paths) + "\n").encode(),
        cwd=repo,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return max(time.perf_counter() - t0 - start_up, 1e-9)


def bench_stores(base: Path, n: int) -> dict:
    """``n`` single stores in blocks of a tenth; after each block git hashes that block's files
    (the `files/` copies), so a minute when this machine slows is shared by both."""
    root = workspace(base, "stores")
    repo, start_up = git_peer(base, "gitpeer")
    payloads = [os.urandom(512).hex().encode()[:1024] for _ in range(1000)]
    window = max(1, n // 10)
    blocks, gits = [], []
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="bench")
        files = root / "sessions" / ws.sessions.resolve(sid) / "files"
        for start in range(0, n, window):
            names = [f"a{i}.txt" for i in range(start, min(n, start + window))]
            t0 = time.perf_counter()
            for i, name in enumerate(names, start):
                ws.artifacts.store(sid, "tool_result", name, payloads[i % 1000][:-8] + b"%08d" % i)
            blocks.append(time.perf_counter() - t0)
            gits.append(git_block(repo, start_up, [files / name for name in names]))
    return {
        "n": n,
        "rate": n / sum(blocks),
        "git_rate": n / sum(gits),
        "first": window / blocks[0],
        "last": window / blocks[-1],
        "window": window,
    }


def bench_batches(base: Path, n: int) -> dict:
    """The same stores through ``Artifact.store_many``, 1,000 a call (what ``spell add`` and a
    script storing many results take): git's ``hash-object --stdin-paths`` is a batch too, run
    on each call's files after it."""
    root = workspace(base, "batches")
    repo, start_up = git_peer(base, "gitpeer2")
    payloads = [os.urandom(512).hex().encode()[:1024] for _ in range(1000)]
    took, gits = 0.0, 0.0
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="bench")
        files = root / "sessions" / ws.sessions.resolve(sid) / "files"
        for start in range(0, n, 1000):
            part = range(start, min(n, start + 1000))
            t0 = time.perf_counter()
            ws.artifacts.store_many(
                sid,
                [
                    ("tool_result", f"a{i}.txt", payloads[i % 1000][:-8] + b"%08d" % i, None)
                    for i in part
                ],
            )
            took += time.perf_counter() - t0
            gits += git_block(repo, start_up, [files / f"a{i}.txt" for i in part])
    return {"rate": n / took, "git_rate": n / gits}


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
        "--rounds", type=int, default=5, help="rounds of spell and git in turn (the median counts)"
    )
    args = ap.parse_args()
    n_art, n_sess, big_mb = (10_000, 2_000, 128) if args.quick else (100_000, 10_000, 1024)
    base = Path(tempfile.mkdtemp(prefix="spellfs-bench-"))
    singles, batches = [], []
    try:
        for r in range(args.rounds):  # and within each, spell and git take turns (see above)
            singles.append(bench_stores(base / f"r{r}", n_art))
            batches.append(bench_batches(base / f"r{r}", n_art))
            shutil.rmtree(base / f"r{r}")
        sess = bench_sessions(base, n_sess)
        big = bench_big(base, big_mb)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    s = sorted(singles, key=lambda one: one["rate"])[len(singles) // 2]  # the median round
    rate, git_rate = (
        statistics.median(x["rate"] for x in singles),
        statistics.median(x["git_rate"] for x in singles),
    )
    ratio = statistics.median(x["rate"] / x["git_rate"] for x in singles)
    rate_b = statistics.median(x["rate"] for x in batches)
    git_rate_b = statistics.median(x["git_rate"] for x in batches)
    ratio_b = statistics.median(x["rate"] / x["git_rate"] for x in batches)
    each = ", ".join(f"{x['rate'] / x['git_rate']:.2f}" for x in singles)
    each_b = ", ".join(f"{x['rate'] / x['git_rate']:.2f}" for x in batches)
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
            f"spellfs/git = {ratio:.2f}x (>= 1.0; each round: {each})",
        ),
        (
            f"(a2) store_many {s['n']:,} x 1 KiB, 1,000 a call",
            f"{rate_b:,.0f} stores/s; git {git_rate_b:,.0f}/s",
            f"spellfs/git = {ratio_b:.2f}x (>= 1.0; each round: {each_b})",
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
