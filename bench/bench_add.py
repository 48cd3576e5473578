"""Bulk add (issue 19): `spell add S DIR` beside `git add -A`, `dvc add` and oxen, same files, same
run.

Run: python bench/bench_add.py [--files 20000] [--flat 200000] [--no-peers]

Peers: git from PATH; DVC and oxen (`oxenai`) from their own virtualenv,
bench/.venv-peers (git-ignored), made on first use; a peer that cannot be
installed is skipped with a message. The flat-cost figure stores --flat files
through the library (`Artifacts.store_files`, the path `spell add` takes) and
compares the time per file of the last 10% with the first 10%.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from spellfs import Workspace, init_workspace  # noqa: E402

PEERS = HERE / ".venv-peers"
SPELL = [sys.executable, "-m", "spellfs"]


def peers_python() -> Path | None:
    """The peers' interpreter, installing DVC and oxenai into it the first time."""
    py = PEERS / "bin" / "python"
    if not (PEERS / "bin" / "dvc").exists():
        print(f"installing DVC and oxenai into {PEERS} (once) …", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
            subprocess.run(
                [str(py), "-m", "pip", "install", "-q", "dvc", "oxenai"], check=True, timeout=900
            )
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"skipping DVC and oxen: cannot install them ({exc})")
            return None
    return py


def make_files(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    body = os.urandom(512).hex().encode()
    for i in range(n):
        sub = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir()
        (sub / f"f{i:07d}.txt").write_bytes(body[:-8] + b"%08d" % i)


def workspace(root: Path) -> Path:
    init_workspace(root)
    (root / "spell.yaml").write_text(
        textwrap.dedent("""\
        sessions:
          max_sessions: 1000000
          max_artifacts_per_session: 10000000
        """)
    )
    return root


def timed(cmd: list, cwd: Path, env: dict | None = None) -> float:
    # as installed: byte-compiled modules may be cached (this machine's shell disables that)
    env = {k: v for k, v in (env or os.environ).items() if k != "PYTHONDONTWRITEBYTECODE"}
    # Start with no writeback pending: on this machine's virtual disk, the dirty pages of the
    # files copied in just before (or of the previous peer's run) stall whoever creates files
    # next, which moved one peer's time by up to 6x between runs.
    os.sync()
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def bench_spell(base: Path, data: Path) -> float:
    root = workspace(base / "spell")
    sid = subprocess.run(
        SPELL + ["-w", str(root), "new", "bulk"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return timed(SPELL + ["-w", str(root), "add", sid, str(data)], base)


def bench_git(base: Path, data: Path) -> float:
    repo = base / "git"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    shutil.copytree(data, repo / "data")
    return timed(["git", "add", "-A"], repo)


def bench_dvc(base: Path, data: Path, py: Path) -> float:
    repo = base / "dvc"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([str(py.parent / "dvc"), "init", "-q"], cwd=repo, check=True)
    shutil.copytree(data, repo / "data")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return timed([str(py.parent / "dvc"), "add", "-q", "data"], repo, env)


def bench_oxen(base: Path, data: Path, py: Path) -> float | str:
    repo = base / "oxen"
    repo.mkdir()
    shutil.copytree(data, repo / "data")
    script = textwrap.dedent("""\
        import sys, time
        from oxen import Repo, user
        user.config_user("bench", "bench@example.invalid")  # under the temporary HOME below
        r = Repo(sys.argv[1]); r.init()
        t0 = time.perf_counter(); r.add(sys.argv[1] + "/data"); r.commit("bulk")
        print(time.perf_counter() - t0)
        """)
    home = base / "oxen-home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    out = subprocess.run(
        [str(py), "-c", script, str(repo)], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        return f"skipped: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else 'failed'}"
    return float(out.stdout.strip().splitlines()[-1])


def bench_flat(base: Path, n: int) -> dict:
    data = base / "flat-data"
    make_files(data, n)
    paths = sorted(str(p) for p in data.rglob("*.txt"))
    root = workspace(base / "flat")
    marks: list[tuple[int, float]] = []
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="flat")
        done = [0]

        def committed(ids: list) -> None:
            done[0] += len(ids)
            marks.append((done[0], time.perf_counter()))

        t0 = time.perf_counter()
        ws.artifacts.store_files(sid, paths, "user_input", on_commit=committed)
        total = time.perf_counter() - t0
    tenth = n // 10

    def per_file(lo: int, hi: int) -> float:  # between the commits nearest to files lo and hi
        k0, start = (
            (0, t0) if lo == 0 else max(((k, t) for k, t in marks if k <= lo), default=(0, t0))
        )
        k1, end = next((k, t) for k, t in marks if k >= hi)
        return (end - start) / (k1 - k0)

    first, last = per_file(0, tenth), per_file(n - tenth, n)
    return {
        "n": n,
        "total": total,
        "first_us": first * 1e6,
        "last_us": last * 1e6,
        "ratio": last / first,
    }


def _secs(times: list[float]) -> str:
    return " ".join(f"{t:.2f}" for t in times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument(
        "--flat", type=int, default=200000, help="files for the flat-cost run (0: skip)"
    )
    ap.add_argument("--no-peers", action="store_true", help="skip DVC and oxen")
    ap.add_argument(
        "--rounds", type=int, default=3, help="spell and git runs, in turn (the median counts)"
    )
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-add-"))
    try:
        data = base / "data"
        make_files(data, args.files)
        n = args.files
        print(f"{n:,} files of 1 KiB in {(n + 999) // 1000} directories")
        spells, gits = [], []
        for r in range(args.rounds):  # in turn, so a disk that slows for a minute slows both
            spells.append(bench_spell(base / f"r{r}", data))
            gits.append(bench_git(base / f"r{r}", data))
            shutil.rmtree(base / f"r{r}")
        spell, git = statistics.median(spells), statistics.median(gits)
        each = ", ".join(f"{g / s:.2f}" for s, g in zip(spells, gits))
        print(f"spell add S DIR   {spell:6.2f} s   (median of {args.rounds}: {_secs(spells)})")
        print(
            f"git add -A        {git:6.2f} s   (median of {args.rounds}: {_secs(gits)})   "
            f"spell at {git / spell:.2f}× git's speed (target ≥ 0.8×; each round: {each})"
        )
        py = None if args.no_peers else peers_python()
        if py is not None:
            dvc = bench_dvc(base, data, py)
            print(
                f"dvc add DIR       {dvc:6.2f} s   spell {dvc / spell:.2f}× faster than DVC "
                "(target ≥ 2×)"
            )
            oxen = bench_oxen(base, data, py)
            if isinstance(oxen, float):
                print(
                    f"oxen add+commit   {oxen:6.2f} s   spell {oxen / spell:.2f}× faster than oxen"
                )
            else:
                print(f"oxen add+commit   {oxen}")
        if args.flat:
            f = bench_flat(base, args.flat)
            print(
                f"flat cost: {f['n']:,} files through store_files in {f['total']:.1f} s; first 10% "
                f"{f['first_us']:.0f} µs/file, last 10% {f['last_us']:.0f} µs/file: ratio "
                f"{f['ratio']:.2f} "
                "(target ≤ 1.25)"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
