"""Git carries each byte once (issue 19, item 6).

Run: python bench/bench_git_size.py [--artifacts 100] [--kib 100]

A session of --artifacts text artifacts of --kib KiB each is committed with
`spell commit`; the same files are committed by plain git in another repository.
Both are `git gc`-ed and their .git directories measured. Target ≤ 1.2×. Then the
spell repository is cloned and `spell fsck` run on the clone: its first command
rebuilds the objects git left to the files/ copies, and must find everything.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
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


def run(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=ENV, **kw).stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", type=int, default=100)
    ap.add_argument("--kib", type=int, default=100)
    ap.add_argument(
        "--versions",
        type=int,
        default=1,
        help="commits per file (each later one appends a line to every file): history's cost",
    )
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-gitsize-"))
    try:
        rng = random.Random(19)
        data = base / "data"
        data.mkdir()
        for i in range(args.artifacts):
            (data / f"doc{i:03d}.txt").write_bytes(text(rng, args.kib * 1024))
        ws, plain = base / "ws", base / "plain"
        run(SPELL + ["init", "--git", str(ws)])
        sid = run(SPELL + ["-w", str(ws), "new", "docs"]).strip()
        run(["git", "init", "-q", str(plain)])
        for v in range(1, args.versions + 1):
            if v > 1:
                for f in sorted(data.iterdir()):
                    with open(f, "ab") as out:
                        out.write(f"version {v}: {rng.random()}\n".encode())
            run(SPELL + ["-w", str(ws), "add", sid, str(data)])
            run(SPELL + ["-w", str(ws), "commit", "-m", f"docs v{v}"])
            shutil.rmtree(plain / "data", ignore_errors=True)
            shutil.copytree(data, plain / "data")
            run(["git", "add", "-A"], cwd=plain)
            run(["git", "commit", "-qm", f"docs v{v}"], cwd=plain)
        for repo in (ws, plain):
            run(["git", "gc", "-q", "--aggressive", "--prune=now"], cwd=repo)
        a, b = du(ws / ".git"), du(plain / ".git")
        print(
            f"{args.artifacts} text artifacts of {args.kib} KiB, {args.versions} version(s) "
            f"each: spell commit .git {a / 1024:.0f} KiB, "
            f"plain git {b / 1024:.0f} KiB: {a / b:.2f}×"
            + (" (target ≤ 1.2×)" if args.versions == 1 else "")
        )
        clone = base / "clone"
        run(["git", "clone", "-q", str(ws), str(clone)])
        start = time.perf_counter()
        fsck = subprocess.run(SPELL + ["-w", str(clone), "fsck"], capture_output=True, text=True)
        took = time.perf_counter() - start
        print(
            f"fresh clone: first command (`spell fsck`, rebuilding the objects) {took:.2f} s: "
            + (fsck.stdout.strip() if fsck.returncode == 0 else f"FAILED: {fsck.stderr.strip()}")
        )
        if fsck.returncode != 0:
            sys.exit(1)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
