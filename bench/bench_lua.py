"""The Lua bindings against the library they wrap, and the start-up of `spell run`.

    python bench/bench_lua.py [--stores 2000] [--sessions 200] [--starts 15] [--dir /dev/shm]

Each Lua figure is printed beside its peer measured in the same process, same
workspace, same run (rounds alternate Lua and Python; medians are reported):

* ``Artifact.store`` of 1 KiB (distinct content each time) from a Lua loop vs
  ``ws.artifacts.store`` from a Python loop. Targets: >= 5,000/s from Lua and
  >= 0.8x the Python rate (the binding must not be the bottleneck).
* ``Session.create`` from Lua vs ``ws.sessions.create`` from Python.
* Wall time of ``spell run empty.lua`` (a child process, interpreter start
  included) beside ``python -c pass``. Target: median <= 100 ms.

The bench workspace's spell.yaml raises max_artifacts_per_session and
max_sessions so the limits never trip.
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
from spellfs.lua.runtime import Runtime  # noqa: E402

CONFIG = "sessions:\n  max_artifacts_per_session: 10000000\n  max_sessions: 10000000\n"
PAYLOAD = b"x" * 1016  # + an 8-digit counter = 1 KiB, distinct per store

LUA_STORES = b"""
local sid, n, round = ...
local base = string.rep("x", 1016)
for i = 1, n do
  Artifact.store(sid, "user_input", string.format("lua-%d-%d.txt", round, i), string.format("%08d", i) .. base)
end
"""  # noqa: E501

LUA_SESSIONS = b"""
local n = ...
for i = 1, n do Session.create({name = "lua session", tags = {"bench"}}) end
"""


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_stores(
    ws: Workspace, rt: Runtime, n: int, rounds: int
) -> tuple[list[float], list[float]]:
    py_sid = ws.sessions.create(name="python stores")
    lua_sid = rt.lua.execute(b"return Session.create({name = 'lua stores'})")
    store = ws.artifacts.store
    py_rates, lua_rates = [], []
    # One unmeasured round each first: the object store's 256 fan-out directories and the
    # session folders are made then, not inside whichever loop happens to run first.
    for i in range(1, n + 1):
        store(py_sid, "user_input", f"warm-{i}.txt", b"w%07d" % i + PAYLOAD)
    rt.lua.execute(LUA_STORES, lua_sid, n, -1)
    for r in range(rounds):

        def python_loop(r: int = r) -> None:
            for i in range(1, n + 1):
                store(py_sid, "user_input", f"py-{r}-{i}.txt", b"%08d" % i + PAYLOAD)

        if r % 2:  # alternate who goes first, so drift in the file system favours neither
            lua_rates.append(n / timed(lambda r=r: rt.lua.execute(LUA_STORES, lua_sid, n, r)))
            py_rates.append(n / timed(python_loop))
        else:
            py_rates.append(n / timed(python_loop))
            lua_rates.append(n / timed(lambda r=r: rt.lua.execute(LUA_STORES, lua_sid, n, r)))
    return py_rates, lua_rates


def bench_binding_overhead(ws: Workspace, rt: Runtime, n: int = 20000) -> float:
    """Microseconds the binding adds to one Artifact.store (library call replaced by a stub)."""
    answer = {"content_hash": "0" * 64, "session_id": "s" * 36, "sequence": 1}
    ws.artifacts.store = lambda *a, **k: answer  # an instance attribute shadows the method
    try:
        seconds = timed(
            lambda: rt.lua.execute(
                b"for i = 1, ... do Artifact.store('s', 'user_input', 'n', 'content') end", n
            )
        )
    finally:
        del ws.artifacts.store
    return seconds / n * 1e6


def bench_sessions(
    ws: Workspace, rt: Runtime, n: int, rounds: int
) -> tuple[list[float], list[float]]:
    py_rates, lua_rates = [], []
    for _ in range(rounds):

        def python_loop() -> None:
            for _ in range(n):
                ws.sessions.create(name="python session", tags=["bench"])

        lua_rates.append(n / timed(lambda: rt.lua.execute(LUA_SESSIONS, n)))
        py_rates.append(n / timed(python_loop))
    return py_rates, lua_rates


def bench_startup(root: Path, starts: int) -> tuple[list[float], list[float]]:
    empty = root / "empty.lua"
    empty.write_text("")
    spell = [sys.executable, "-m", "spellfs", "run", str(empty)]
    bare = [sys.executable, "-c", "pass"]
    # As users run it: bytecode caches allowed (a PYTHONDONTWRITEBYTECODE=1 environment would
    # recompile every module on every start and measure the compiler, not spellfs).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for cmd in (spell, bare):  # warm the page cache and write the .pyc files
        subprocess.run(cmd, cwd=root, check=True, capture_output=True, env=env)
    spell_times, bare_times = [], []
    for _ in range(starts):
        spell_times.append(
            timed(lambda: subprocess.run(spell, cwd=root, check=True, capture_output=True, env=env))
        )
        bare_times.append(
            timed(lambda: subprocess.run(bare, cwd=root, check=True, capture_output=True, env=env))
        )
    return spell_times, bare_times


def line(label: str, lua: float, peer: float, unit: str, target: str) -> None:
    print(
        f"{label:<34} {lua:>10,.0f} {unit:<4} {peer:>10,.0f} {unit:<4} {lua / peer:>6.2f}x   "
        f"{target}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--starts", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument(
        "--dir", help="make the bench workspace under DIR (e.g. /dev/shm) instead of $TMPDIR"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lua-", dir=args.dir) as tmp:
        root = Path(tmp) / "ws"
        init_workspace(root)
        (root / "spell.yaml").write_text(CONFIG)
        with Workspace.open(root) as ws:
            rt = Runtime(ws)
            rt.install()
            st_py, st_lua = bench_stores(ws, rt, args.stores, args.rounds)
            se_py, se_lua = bench_sessions(ws, rt, args.sessions, args.rounds)
            overhead = bench_binding_overhead(ws, rt)
        spell_t, bare_t = bench_startup(root, args.starts)

    print(f"{'':<34} {'Lua':>15} {'Python peer':>15} {'ratio':>7}   target")
    store_lua, store_py = statistics.median(st_lua), statistics.median(st_py)
    line(
        f"Artifact.store 1 KiB (x{args.stores})",
        store_lua,
        store_py,
        "/s",
        ">= 5,000/s and >= 0.8x",
    )
    print(
        f"  binding overhead per Artifact.store call (library stubbed out): {overhead:.1f} us; "
        f"one store from Python takes {1e6 / store_py:.0f} us"
    )
    line(
        f"Session.create (x{args.sessions})",
        statistics.median(se_lua),
        statistics.median(se_py),
        "/s",
        "",
    )
    spell_ms, bare_ms = statistics.median(spell_t) * 1000, statistics.median(bare_t) * 1000
    print(
        f"{'spell run empty.lua (median wall)':<34} {spell_ms:>10.0f} ms   {bare_ms:>10.0f} ms   "
        f"{spell_ms / bare_ms:>6.2f}x   <= 100 ms (peer: python -c pass)"
    )
    print(
        f"  spell run min/max {min(spell_t) * 1000:.0f}/{max(spell_t) * 1000:.0f} ms over "
        f"{args.starts} runs"
    )
    ok = store_lua >= 5000 and store_lua >= 0.8 * store_py and spell_ms <= 100
    print("targets met" if ok else "targets NOT met")


if __name__ == "__main__":
    main()
