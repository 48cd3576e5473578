"""Listing sessions by tag (issue #19, item 4): 10,000 sessions, one tag matched by 1,000.

    python bench/bench_list.py [--sessions 10000] [--rounds 9]

Measured, median of ``--rounds``:

1. fresh: a new process opens the workspace and lists (the index is on disk; every
   ``session.yaml`` is stat-ed once). Target <= 40 ms. Then the same with ``spell daemon``
   running, which the new process asks (``spellfs/model/watched.py``): the same question
   again (the daemon's kept answer), and each time after another process's hand edit (an
   answer made anew, which must show the edit).
2. warm: the same process lists again (from its second listing on, the kernel's change
   queue says which session dirs changed; nothing else is stat-ed). Target <= 20 ms.
3. warm after a hand edit: another process rewrites one ``session.yaml`` in place between
   listings, and the listing shows it.
4. what starting the watch costs, once per process (its second listing).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spellfs import Workspace, init_workspace  # noqa: E402

FRESH = """
import sys, time
sys.path.insert(0, {repo!r})
from spellfs import Workspace
ws = Workspace.open({root!r})
t = time.perf_counter()
found = ws.sessions.list({{"tags": ["g3"], "limit": None}})
ms = (time.perf_counter() - t) * 1000
print(ms, len(found), int(any(s["path"].endswith("/" + {victim!r}) for s in found)))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    n = args.sessions
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        init_workspace(root)
        (root / "spell.yaml").write_text(f"sessions:\n  max_sessions: {n + 10}\n")
        with Workspace.open(root) as ws:
            for i in range(n):
                ws.sessions.create(name=f"s{i}", tags=["even" if i % 2 else "odd", f"g{i % 10}"])
        query = {"tags": ["g3"], "limit": None}
        victim = sorted(p for p in (root / "sessions").iterdir())[0] / "session.yaml"
        code = FRESH.format(repo=str(ROOT), root=str(root), victim=victim.parent.name)

        def fresh_listing() -> tuple[float, int, bool]:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
            ms, found, seen = out.stdout.split()
            return float(ms), int(found), seen == b"1"

        def hand_edit() -> bool:
            """Another process moves the victim in or out of the tag: is it in now?"""
            text = victim.read_text()
            new = (
                text.replace("- g3", "- gX")
                if "- g3" in text
                else text.replace("- g", "- g3\n- g", 1)
            )
            subprocess.run(
                [sys.executable, "-c", f"open({str(victim)!r}, 'w').write({new!r})"], check=True
            )
            return "- g3" in new

        fresh = [fresh_listing()[0] for _ in range(args.rounds)]
        found = fresh_listing()[1]
        # With a watcher running (`spell daemon start`), a new process asks it (model/watched.py)
        spell = [sys.executable, "-m", "spellfs", "-w", str(root), "daemon"]
        subprocess.run([*spell, "start"], check=True, capture_output=True)
        try:
            asked = [fresh_listing()[0] for _ in range(args.rounds)]
            asked_edit = []
            for _ in range(args.rounds):
                expect = hand_edit()
                ms, _, seen = fresh_listing()
                assert seen == expect, "the hand edit was not seen"
                asked_edit.append(ms)
        finally:
            subprocess.run([*spell, "stop"], check=True, capture_output=True)
        with Workspace.open(root) as ws:
            ws.sessions.list(query)
            t = time.perf_counter()
            ws.sessions.list(query)  # starts the watch, then stats every session once more
            start_ms = (time.perf_counter() - t) * 1000
            warm, edited = [], []
            for _ in range(args.rounds):
                t = time.perf_counter()
                ws.sessions.list(query)
                warm.append((time.perf_counter() - t) * 1000)
            for _ in range(args.rounds):
                expect = hand_edit()
                t = time.perf_counter()
                got = ws.sessions.list(query)
                edited.append((time.perf_counter() - t) * 1000)
                seen = victim.parent.name in {s["path"].split("/")[-1] for s in got}
                assert seen == expect, "the hand edit was not seen"
    med = statistics.median
    print(f"{n:,} sessions, tag filter matching {found} (median of {args.rounds}, ms):")
    print(f"  fresh process              {med(fresh):7.1f}   target <= 40 (no watcher running)")
    print(
        f"  fresh, the daemon asked    {med(asked):7.1f}   target <= 40 (the same question again)"
    )
    print(f"  fresh, asked after an edit {med(asked_edit):7.1f}   target <= 40 (answer made anew)")
    print(f"    (each round, sorted: the same question {sorted(round(x) for x in asked)},")
    print(f"     after an edit {sorted(round(x) for x in asked_edit)})")
    print(f"  warm                       {med(warm):7.1f}   target <= 20")
    print(f"  warm, after a hand edit    {med(edited):7.1f}")
    print(f"  starting the watch (once)  {start_ms:7.1f}   (the second listing of a process)")


if __name__ == "__main__":
    main()
