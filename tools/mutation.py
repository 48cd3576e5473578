#!/usr/bin/env python3
"""Mutation testing of the bottom layers, one module at a time (not part of CI's default run).

Why: a suite can pass while the code it claims to guard is wrong (issue #23 found four such
bugs). mutmut changes one operator, constant or call at a time; a mutant the tests do not
notice ("survived") is either a missing assertion or an equivalent change, and each one is
either killed by a new test or listed in tools/mutation-survivors.md with the reason.

Each module is mutated in its own scratch copy (build/mutation/<module>/) and its mutants run
only against the test files that cover it (MODULES below), and within those, mutmut runs only
the tests that execute the mutated function. That keeps it feasible on 2 shared cores.

    .venv/bin/pip install -e '.[test,mutation]'
    .venv/bin/python tools/mutation.py                 # every module below
    .venv/bin/python tools/mutation.py store           # a package prefix ...
    .venv/bin/python tools/mutation.py store/storage   # ... or one module
    .venv/bin/python tools/mutation.py --list-survivors store/storage
    .venv/bin/python tools/mutation.py --functions find,delete model/artifact  # a few functions
    .venv/bin/python tools/mutation.py --again --functions find,delete model/artifact  # theirs

Prints one line per module: killed / total (score %), survivors, timeouts, not covered.
Tests that run `spell` in a subprocess import the unmutated package, so only in-process tests
can kill a mutant; mutants in code reached only by subprocesses count as "no tests".
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "build" / "mutation"

# (test_model_identity.py is left out: its merges run through `spell` subprocesses, which cannot
# kill a mutant, and it took 13 s of every surviving mutant's time; test_model_artifact_log.py
# states the same identities in-process)
_ARTIFACT_TESTS = [
    "test_model_artifact.py",
    "test_model_artifact_log.py",
    "test_model_readonly.py",
    "test_events_hooks.py",
]
_HISTORY_TESTS = ["test_history_checkpoints.py", "test_history_durability.py"]

# module (relative to spellfs/) -> the test files that exercise it in-process
MODULES: dict[str, list[str]] = {
    "store/storage.py": [
        "test_store_storage.py",
        "test_store_records.py",
        "test_history_durability.py",  # FsStorage.fsync as a checkpoint uses it
    ],
    # (split from store/storage.py, unchanged: its figures and survivors are listed there)
    "store/atomic.py": ["test_store_storage.py", "test_store_records.py"],
    "store/memory.py": ["test_store_storage.py", "test_store_records.py"],
    "store/objects.py": ["test_store_objects.py", "test_store_packs.py", "test_store_links.py"],
    "store/backend.py": ["test_store_objects.py"],  # (the memory store runs the same tests)
    "store/packs.py": ["test_store_packs.py", "test_store_links.py"],
    "store/records.py": [
        "test_store_records.py",
        "test_store_objects.py",
        "test_model_artifact.py",
    ],
    # (the object store's folders are checked through real_dir: its tests there and in packs)
    "store/links.py": ["test_store_links.py", "test_store_objects.py", "test_store_packs.py"],
    "store/jsonio.py": ["test_store_jsonio.py", "test_store_records.py"],
    "store/yamlio.py": ["test_store_yamlio.py", "test_model_state.py", "test_model_session.py"],
    "model/artifact.py": _ARTIFACT_TESTS,
    "model/artifact_writes.py": _ARTIFACT_TESTS,  # (the storing half of the same class)
    "model/artifact_log.py": ["test_model_artifact_log.py", "test_model_artifact.py"],
    "model/ignore.py": ["test_model_ignore.py", "test_model_artifact.py", "test_model_worktree.py"],
    # (test_model_artifact.py's queries would cover the artifacts table too, but its 140 tests
    # all refresh the index: a surviving mutant then cost minutes)
    "model/index.py": [
        "test_model_index_cache.py",
        "test_model_session.py",
        "test_model_index.py",
        "test_model_feed.py",  # what a listing stats and trusts (Index.looked, refresh_dir)
    ],
    "model/index_db.py": [
        "test_model_index_db.py",
        "test_model_index_cache.py",
        "test_model_index.py",
        "test_maintenance_checks.py",  # a damaged cache rebuilt and said
    ],
    "model/index_row.py": [
        "test_model_index_cache.py",
        "test_model_session.py",
        "test_model_index.py",
        "test_model_feed.py",  # what a listing stats and trusts (Index.looked, refresh_dir)
    ],
    "model/inflight.py": ["test_model_inflight.py", "test_model_twin.py"],
    "model/twin.py": ["test_model_twin.py"],
    # (the short path's own tests, and the in-flight list's: every single store of theirs takes it)
    "model/single_store.py": ["test_model_single_store.py", "test_model_inflight.py"],
    # (test_model_artifact.py checks each record's fields and each copy: session 11's run found
    # most survivors were killed only there)
    "model/chunk_writes.py": [
        "test_model_chunk_writes.py",
        "test_model_twin.py",
        "test_model_artifact.py",
    ],
    "store/locks.py": ["test_store_locks.py", "test_store_storage.py"],
    # (descriptors kept between stores: their own tests, and the stores that take them)
    "store/kept.py": ["test_store_kept.py", "test_model_single_store.py"],
    "model/leftovers.py": ["test_model_leftovers.py"],
    "model/manifest.py": ["test_model_manifest.py", "test_model_session.py"],
    "model/recall.py": ["test_model_recall.py", "test_model_worktree.py"],
    "model/session.py": [
        "test_model_session.py",
        "test_model_readonly.py",
        "test_events_hooks.py",  # the session hooks and events
        "test_cli_names.py",  # sessions by exact name (in-process parts)
        "test_history_runs.py",  # what a recorded run is told of the sessions it touches
        "test_model_index_cache.py",  # list: a log found broken on the second look
    ],
    "model/lifecycle.py": [
        "test_model_lifecycle.py",  # remove's guards in-process (leftovers' run `spell rm`)
        "test_model_session.py",
        "test_model_readonly.py",
        "test_events_hooks.py",  # the session hooks and events
        "test_cli_names.py",  # sessions by exact name (in-process parts)
        "test_history_runs.py",  # what a recorded run is told of the sessions it touches
        "test_model_worktree.py",  # deletes over hand edits (the guard moved into the library)
        "test_model_leftovers.py",  # what a removal would drop unseen
    ],
    "model/state.py": ["test_model_state.py"],
    "model/statcache.py": ["test_model_statcache.py", "test_model_worktree.py"],
    "model/worktree.py": [
        "test_model_worktree.py",
        "test_model_worktree_property.py",
        "test_model_copyfeed.py",  # the fed scan (_feed, _look_again) and looked()
    ],
    "model/working_copy.py": ["test_model_worktree.py", "test_model_handedits.py"],
    "model/handedits.py": [
        "test_model_handedits.py",  # the export guard and the store guard, in-process
        "test_model_worktree.py",
        "test_model_worktree_property.py",
        "test_model_artifact.py",  # edited_since: a store racing an editor
        "test_history_checkpoints.py",  # edited_since: a restore racing an editor
        "test_git_archive.py",  # record_or_refuse: export over hand edits
    ],
    # (why a missing copy is missing: its in-process tests are the worktree's; the git clone
    # ones run `spell` and cannot kill a mutant)
    "model/absent.py": ["test_model_worktree.py", "test_model_absent.py"],
    "model/copyfeed.py": ["test_model_copyfeed.py"],
    "store/inotify.py": ["test_store_inotify.py", "test_model_session.py"],
    "model/schema.py": [
        "test_model_schema.py",
        "test_maintenance_checks.py",
        "test_model_artifact_log.py",
        "test_model_artifact.py",
    ],
    "model/feed.py": ["test_model_feed.py", "test_model_session.py", "test_model_index_cache.py"],
    # (the listing half of Sessions; test_watch_listings.py's server answers from `matching` in
    # the test's own process, its daemon tests ask a `spell` process and cannot kill a mutant)
    "model/listing.py": [
        "test_model_listing.py",
        "test_model_session.py",
        "test_model_watched.py",
        "test_watch_listings.py",
        "test_model_index.py",
        "test_model_feed.py",
    ],
    "model/watched.py": ["test_model_watched.py", "test_watch_listings.py"],
    "model/mime.py": ["test_model_mime.py"],
    "history/reach.py": [
        "test_history_reach.py",
        "test_maintenance_garbage.py",
        "test_history_checkpoints.py",
    ],
    "history/checkpoints.py": _HISTORY_TESTS,
    # (the restoring half of the same class; restore's guards over unsaved edits are tested
    # in-process in test_history_restores.py, through `spell` in test_model_worktree.py)
    "history/restores.py": [*_HISTORY_TESTS, "test_history_restores.py", "test_model_worktree.py"],
    "history/tree.py": [
        "test_history_tree.py",
        "test_history_checkpoints.py",
        "test_history_durability.py",
        "test_maintenance_garbage.py",  # TreeStore.refs: what gc and push reach
    ],
    # (most replay tests drive `spell run`/`spell replay` subprocesses, which cannot kill a
    # mutant; mutmut runs only the tests that call a mutated function in-process. The in-process
    # replays still run each script in a subprocess: seconds a test, minutes a surviving mutant,
    # so worlds.py, whose functions they all call, is tested by test_history_worlds.py alone)
    "history/runs.py": [
        "test_history_runs.py",
        "test_history_replays.py",
        "test_history_checkpoints.py",  # the checkpoint a run made, can_replay after a run
        "test_maintenance_garbage.py",  # what gc keeps for a recorded run
        "test_history_worlds.py",  # the starting points a world is built from
    ],
    "history/replays.py": ["test_history_replays.py"],
    "history/replayable.py": ["test_history_replays.py"],
    "history/worlds.py": ["test_history_worlds.py"],
    "maintenance/checks.py": ["test_maintenance_checks.py", "test_maintenance_repairs.py"],
    "maintenance/garbage.py": ["test_maintenance_garbage.py"],
    "maintenance/repairs.py": ["test_maintenance_repairs.py", "test_maintenance_checks.py"],
    "maintenance/temps.py": ["test_maintenance_temps.py", "test_maintenance_garbage.py"],
}

# Appended to the scratch copy's conftest.py.
# - A failing property test shrinks its example, which can take longer than mutmut's time
#   limit and then counts as a timeout; a mutant only needs one failing example.
# - mutmut runs each mutant in a process forked from one that already ran the tests, and
#   blake3's thread pool (``max_threads=AUTO``, used by put_stream and stream_content) does
#   not survive a fork: the child's first multi-threaded hash waits forever. That made 54
#   of the objects mutants "time out" whatever they changed. Hashing on one thread gives
#   the same digests; spellfs itself never forks.
# - For the same reason a per-thread cache filled in the parent (yamlio's YAML instance) hides
#   mutants in the code that fills it: each test starts without one.
HARNESS = """

import blake3 as _blake3
import pytest as _pytest
from hypothesis import Phase as _Phase
from hypothesis import settings as _settings

_settings.register_profile(
    "mutation", phases=[_Phase.explicit, _Phase.reuse, _Phase.generate], print_blob=False
)
_settings.load_profile("mutation")

_threaded = _blake3.blake3


def _one_thread(*args, **kwargs):
    kwargs["max_threads"] = 1
    return _threaded(*args, **kwargs)


_one_thread.AUTO = _threaded.AUTO
_blake3.blake3 = _one_thread


@_pytest.fixture(autouse=True)
def _fresh_yaml_instance():
    from spellfs.store import yamlio

    yamlio._local.__dict__.pop("yaml", None)


@_pytest.fixture(autouse=True)
def _fresh_mime_fallback():
    # (made once per process, so a forked mutant would find the parent's and never make one)
    from spellfs.model import mime

    mime._fallback = None
"""

# Per module, when mutmut's default time limit (see prepare) wastes the run: the multiplier.
# store/inotify.py: mutants that make the inotify descriptor blocking (`_open` 1, 2: no
# O_NONBLOCK) or point it at stdout (`fd = +1`) hang the first read of an empty queue, which
# only the time limit ends; at 20 x (its tests' 11 s + 3 s) each hang cost about 5 minutes,
# twice (timeouts are re-run). Its sound mutants run those tests in 11 s: 10 x still leaves
# them 140 s, and a timeout is still re-run alone before it counts.
TIMEOUT_MULTIPLIER: dict[str, float] = {"store/inotify.py": 10.0}

# Per module: mutants that hang the tests by construction (an endless loop, or a read that
# blocks for ever) and were recorded as timeouts. `--again` does not run them again while that
# record stands (a mutant whose function changed is "not checked" and runs): each costs the
# whole time limit, twice, and cannot pass. They still count as timeouts (detected).
KNOWN_HANGS: dict[str, dict[str, str]] = {
    "store/inotify.py": {
        "x__open__mutmut_1": "inotify_init1(None): a blocking queue, whose first read waits",
        "x__open__mutmut_2": "O_NONBLOCK & O_CLOEXEC is 0: the same blocking queue",
        "x__drain__mutmut_32": "pos += 16 - size: the event loop never reaches the end",
        "x__drain__mutmut_30": "pos = 16 + size: one event read for ever, until memory runs out",
        "xǁDirWatchǁ__init____mutmut_6": "fd = +1: drains stdout, a file read at EOF for ever",
        "xǁDirWatchǁclose__mutmut_6": "fd = +1 after close: the same",
        "xǁEntryWatchǁ__init____mutmut_6": "fd = +1: the same",
    },
    "store/storage.py": {
        "xǁFsStorageǁ_set_aside_tail__mutmut_6": "a first window of 0 bytes, times 4, for ever",
        "xǁFsStorageǁ_set_aside_tail__mutmut_22": "cut >= 0 and ...: a file of one unfinished "
        "line (no newline) never leaves the loop",
        "xǁFsStorageǁ_set_aside_tail__mutmut_25": "window != size: the same file, the same loop",
        "x__pread_all__mutmut_23": "offset = len(chunk): a read of more than one chunk re-reads "
        "the same megabyte for ever",
    },
}

# Per module: more lines for the scratch conftest.py (after HARNESS).
# store/inotify.py: libc is loaded once per process (`_libc`), so a forked mutant of `_lib`
# found the parent's handle and its mutated code never ran (all 8 "survived" unexercised).
EXTRA_HARNESS: dict[str, str] = {
    # history/replays.py: mutmut hands pytest a mutant's tests in no set order, and most replay
    # tests start `spell` processes (seconds each on a loaded machine); with -x a mutant ends at
    # its first failing test, so running the quickest first (by the times mutmut measured) lets
    # most mutants die in an in-process test instead of after minutes of subprocesses.
    "history/replays.py": """

def pytest_collection_modifyitems(items):
    import json as _json
    from pathlib import Path as _Path

    stats = _Path(__file__).resolve().parent.parent / "mutmut-stats.json"
    try:
        took = _json.loads(stats.read_bytes())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    items.sort(key=lambda item: took.get(item.nodeid, 0.0))
""",
    # store/yamlio.py: the round-trip instance is made once per thread too (see
    # _fresh_yaml_instance); a forked mutant would use the parent's and never make one
    "store/yamlio.py": """

@_pytest.fixture(autouse=True)
def _fresh_round_trip_instance():
    from spellfs.store import yamlio

    yamlio._local.__dict__.pop("rt", None)
""",
    "store/inotify.py": """

@_pytest.fixture(autouse=True)
def _fresh_libc():
    from spellfs.store import inotify

    inotify._libc = None
""",
}

# helpers the tests import (test_model_inflight imports the watcher harness, test_model_identity
# the git fixtures); copied but not run
SUPPORT = [
    "conftest.py",
    "fakeprovider.py",
    "seaweed.py",
    "test_watch_watcher.py",
    "test_git_commits.py",
    "test_model_feed.py",  # (test_watch_listings imports these two)
    "test_watch_daemon.py",
]


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def scratch(module: str) -> Path:
    return SCRATCH / module.replace("/", ".").removesuffix(".py")


def prepare(module: str, fresh: bool = True) -> Path:
    """A scratch project holding the package, the covering tests and a mutmut config.

    ``fresh=False`` keeps mutmut's earlier results there and only refreshes the package and
    the tests, so a rerun tests just the mutants named to it (mutmut regenerates the mutants
    of functions whose source changed and maps the tests that are new).
    """
    work = scratch(module)
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    (work / "tests").mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        ROOT / "spellfs",
        work / "spellfs",
        ignore=shutil.ignore_patterns("__pycache__"),
        symlinks=True,
        dirs_exist_ok=True,
    )
    tests = [name for name in MODULES[module] if (ROOT / "tests" / name).exists()]
    for name in SUPPORT + tests:
        if (ROOT / "tests" / name).exists():
            shutil.copy2(ROOT / "tests" / name, work / "tests" / name)
    if (ROOT / "examples").is_dir():  # test_history_replays replays the shipped examples
        shutil.copytree(ROOT / "examples", work / "examples", dirs_exist_ok=True)
    with open(work / "tests" / "conftest.py", "a") as conftest:
        conftest.write(HARNESS + EXTRA_HARNESS.get(module, ""))
    (work / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        'source_paths = ["spellfs"]\n'
        'also_copy = ["examples"]\n'
        f'only_mutate = ["spellfs/{module}"]\n'
        f"pytest_add_cli_args_test_selection = {_toml_list(['tests/' + t for t in tests])}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:xdist", "-x", "-q"]\n'
        # the wall-clock limit is (tests' time + constant) * multiplier; mutmut's 1 s * 15
        # timed out sound mutants when the run is niced on a busy machine (see run())
        "timeout_constant = 3.0\n"
        f"timeout_multiplier = {TIMEOUT_MULTIPLIER.get(module, 20.0)}\n"
        "\n[tool.pytest.ini_options]\n"
        'testpaths = ["tests"]\n'
    )
    return work


COUNT = re.compile(r"^\s*(?P<name>\S+): (?P<status>[a-z ]+)$")


def results(work: Path) -> dict[str, list[str]]:
    """mutant name -> status, grouped by status."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    grouped: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        match = COUNT.match(line)
        if match:
            grouped.setdefault(match["status"].strip(), []).append(match["name"])
    return grouped


def mutmut_run(work: Path, max_children: int, names: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": ""}
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def only(functions: list[str]) -> list[str]:
    """mutmut name patterns for the mutants of ``functions`` (methods and module functions)."""
    return [p for f in functions for p in (f"*ǁ{f}__mutmut_*", f"*.x_{f}__mutmut_*")]


def run(
    module: str, max_children: int, again: bool = False, functions: list[str] | None = None
) -> dict[str, list[str]]:
    """Mutate ``module`` and test every mutant; ``again``: only those not killed last time;
    ``functions``: only the mutants of these functions (a change to a few of a large module's
    functions), in a fresh scratch copy; with ``again`` too, only their mutants not killed in
    that copy last time."""
    names: list[str] = []
    chosen = only(functions or [])

    def mine(grouped: dict[str, list[str]]) -> dict[str, list[str]]:
        if not functions:
            return grouped
        return {
            status: [n for n in group if any(fnmatch.fnmatch(n, p) for p in chosen)]
            for status, group in grouped.items()
        }

    if functions and not (again and (scratch(module) / "mutants").is_dir()):
        work = prepare(module)
        mutmut_run(work, max_children, chosen)
        return mine(results(work))
    if again and (scratch(module) / "mutants").is_dir():
        # (with ``functions``: only theirs; the module's other mutants were never run there)
        hangs = KNOWN_HANGS.get(module, {})
        names = [
            name
            for status, group in mine(results(scratch(module))).items()
            if status != "killed"
            for name in group
            if not (status == "timeout" and name.rsplit(".", 1)[-1] in hangs)
        ]
        if not names:
            return mine(results(scratch(module)))
    work = prepare(module, fresh=not names)
    if names:
        # mutmut maps only new tests to the functions they run; a test that changed since
        # would keep its old mapping, so the mapping is made again from all the tests
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    mutmut_run(work, max_children, names)
    grouped = mine(results(work))
    if names and grouped.get("not checked"):
        # the code changed since: mutmut made new mutants of the functions that changed, which
        # the names from the last results could not list
        mutmut_run(work, max_children, grouped["not checked"])
        grouped = mine(results(work))
    # A niced worker on a busy machine can miss the time limit without the mutant being wrong
    # (the objects run of 2026-11-29 at load 11 had 54 timeouts, most in functions no test
    # could even fail). Each timeout is run once more, on its own: one that times out again
    # hangs the tests, which is a real detection (mutmut counts it as killed too). (Not the
    # KNOWN_HANGS: they hang by construction.)
    again_hangs = [
        name
        for name in grouped.get("timeout", [])
        if name.rsplit(".", 1)[-1] not in KNOWN_HANGS.get(module, {})
    ]
    if again_hangs:
        mutmut_run(work, 1, again_hangs)
        grouped = mine(results(work))
    return grouped


def summary(module: str, grouped: dict[str, list[str]]) -> str:
    killed = len(grouped.get("killed", [])) + len(grouped.get("timeout", []))
    total = sum(len(v) for v in grouped.values())
    # "no tests" counts as not killed: nothing in-process would notice the change
    score = 100.0 * killed / total if total else 0.0
    rest = ", ".join(f"{k} {len(v)}" for k, v in sorted(grouped.items()) if k != "killed" and v)
    return f"{module:28} killed {killed:4}/{total:<4} {score:5.1f}%  ({rest or 'none left'})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="module or package prefix under spellfs/")
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutants (1)")
    parser.add_argument(
        "--again", action="store_true", help="rerun only the mutants not killed last time"
    )
    parser.add_argument("--list-survivors", action="store_true")
    parser.add_argument(
        "--functions", help="comma-separated: only the mutants of these functions (one module)"
    )
    args = parser.parse_args()
    chosen = list(MODULES) if not args.targets else []
    for target in args.targets:  # in the order given
        chosen += [
            m for m in MODULES if m.startswith(target.removesuffix(".py")) and m not in chosen
        ]
    if not chosen:
        parser.error(f"no module matches {args.targets}; known: {', '.join(MODULES)}")
    for module in chosen:
        functions = args.functions.split(",") if args.functions else None
        grouped = run(module, args.max_children, args.again, functions)
        print(summary(module, grouped), flush=True)
        if args.list_survivors:
            for status, names in sorted(grouped.items()):
                if status != "killed":
                    for name in names:
                        print(f"    {status}: {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
