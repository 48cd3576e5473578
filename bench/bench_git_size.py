"""Git carries each byte once? (issue 19, item 6; a measurement, the change is not made yet)

Run: python bench/bench_git_size.py [--artifacts 100] [--kib 100]

A session of --artifacts text artifacts of --kib KiB each is committed with
`spell commit`; the same files are committed by plain git in another repository.
Both are `git gc`-ed and their .git directories measured. Target ≤ 1.2×.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SPELL = [sys.executable, "-m", "spellfs"]
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@example.invalid",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@example.invalid",
}


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def text(rng: random.Random, size: int) -> bytes:
    words = [f"word{i}" for i in range(5000)]
    out = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", type=int, default=100)
    ap.add_argument("--kib", type=int, default=100)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-gitsize-"))
    try:
        rng = random.Random(19)
        data = base / "data"
        data.mkdir()
        for i in range(args.artifacts):
            (data / f"doc{i:03d}.txt").write_bytes(text(rng, args.kib * 1024))
        ws = base / "ws"
        subprocess.run(
            SPELL + ["init", "--git", str(ws)], check=True, stdout=subprocess.DEVNULL, env=ENV
        )
        sid = subprocess.run(
            SPELL + ["-w", str(ws), "new", "docs"],
            check=True,
            capture_output=True,
            text=True,
            env=ENV,
        ).stdout.strip()
        subprocess.run(
            SPELL + ["-w", str(ws), "add", sid, str(data)],
            check=True,
            stdout=subprocess.DEVNULL,
            env=ENV,
        )
        subprocess.run(
            SPELL + ["-w", str(ws), "commit", "-m", "docs"],
            check=True,
            stdout=subprocess.DEVNULL,
            env=ENV,
        )
        plain = base / "plain"
        plain.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=plain, check=True)
        shutil.copytree(data, plain / "data")
        subprocess.run(["git", "add", "-A"], cwd=plain, check=True)
        subprocess.run(["git", "commit", "-qm", "docs"], cwd=plain, check=True, env=ENV)
        for repo in (ws, plain):
            subprocess.run(["git", "gc", "-q", "--aggressive", "--prune=now"], cwd=repo, check=True)
        a, b = du(ws / ".git"), du(plain / ".git")
        print(
            f"{args.artifacts} text artifacts of {args.kib} KiB: spell commit .git "
            f"{a / 1024:.0f} KiB, "
            f"plain git {b / 1024:.0f} KiB: {a / b:.2f}× (target ≤ 1.2×)"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
