"""The query index as a cache (model/index.py): whatever state `.spell/index.sqlite` is in
(damaged, from another version, stale, deleted), answers are the files' answers, and a damaged
cache is rebuilt, never trusted. In-process, real workspaces on disk."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from spellfs import UnsafePath, Workspace


def make(root: Path, n: int = 60) -> dict[str, str]:
    """``n`` sessions, each with one artifact (enough rows for several database pages)."""
    made = {}
    with Workspace.open(root) as ws:
        for i in range(n):
            sid = ws.sessions.create(name=f"s{i:03}", tags=["even" if i % 2 == 0 else "odd"])
            ws.artifacts.store(sid, "user_input", f"a{i}.txt", b"x" * i)
            made[sid] = f"s{i:03}"
        ws.sessions.list({"status": "all"})  # the cache now holds every row
    return made


def names(ws: Workspace, **query) -> list[str]:
    return sorted(s["name"] for s in ws.sessions.list({"status": "all", "limit": None, **query}))


def db_path(root: Path) -> Path:
    return root / ".spell" / "index.sqlite"


def damage(root: Path) -> None:
    """Overwrite every page but the first (the header and the schema) with garbage, as a bad
    disk would: the tables' pages no longer hold what the schema says."""
    path = db_path(root)
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
    size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    pages = path.stat().st_size // size
    assert pages > 3
    with open(path, "r+b") as f:
        f.seek(size)
        f.write(b"\xa5" * size * (pages - 1))


def test_a_file_that_is_not_a_database_is_replaced_when_opened(root: Path) -> None:
    made = make(root, 5)
    db_path(root).write_bytes(b"this is not a database, it is a text file\n" * 100)
    with Workspace.open(root) as ws:
        assert names(ws) == sorted(made.values())
        assert len(ws.artifacts.query()) == 5
    db = sqlite3.connect(db_path(root))
    assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 5


def test_a_cache_of_another_version_is_not_trusted(root: Path) -> None:
    """A row whose signatures still match the file would be trusted as is; from an index of
    another format version no row is."""
    made = make(root, 3)
    db = sqlite3.connect(db_path(root))
    for (text,) in db.execute("SELECT manifest FROM sessions").fetchall():
        m = json.loads(text)
        m["name"] = "from an old cache"
        db.execute("UPDATE sessions SET manifest=? WHERE id=?", (json.dumps(m), m["id"]))
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with Workspace.open(root) as ws:
        assert names(ws) == sorted(made.values())
    db = sqlite3.connect(db_path(root))
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_check_says_nothing_of_a_sound_cache(root: Path) -> None:
    make(root, 3)
    with Workspace.open(root) as ws:
        assert ws.index.check() is None
        assert names(ws) == ["s000", "s001", "s002"]


def test_check_rebuilds_a_damaged_cache_and_says_why(root: Path) -> None:
    made = make(root)
    damage(root)
    with Workspace.open(root) as ws:
        why = ws.index.check()
        assert why and ("malformed" in why or why.startswith("integrity check: "))
        assert ws.index.rebuilt == why
        assert ws.index.check() == why  # said again while this process lives (spell fsck)
        assert names(ws) == sorted(made.values())
        assert names(ws, tags=["even"]) == sorted(n for n in made.values() if int(n[1:]) % 2 == 0)
        assert len(ws.artifacts.query()) == len(made)
    db = sqlite3.connect(db_path(root))
    assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("ask", ["list", "query", "get"])
def test_a_damaged_cache_met_by_a_query_is_rebuilt_and_the_answer_is_right(
    root: Path, ask: str
) -> None:
    made = make(root)
    damage(root)
    with Workspace.open(root) as ws:
        if ask == "list":
            assert names(ws) == sorted(made.values())
        elif ask == "query":
            got = ws.artifacts.query({"limit": None})
            assert sorted(a["name"] for a in got) == sorted(f"a{i}.txt" for i in range(len(made)))
        else:
            sid = next(iter(made))
            assert ws.sessions.get(sid)["artifact_count"] == 1
            assert names(ws) == sorted(made.values())
        assert ws.index.rebuilt is not None and "malformed" in ws.index.rebuilt
    db = sqlite3.connect(db_path(root))
    assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == len(made)


def test_a_deleted_cache_loses_nothing(root: Path) -> None:
    made = make(root, 4)
    with Workspace.open(root) as ws:
        before = ws.artifacts.query()
        for p in (root / ".spell").glob("index.sqlite*"):
            p.unlink()
        ws.index.rebuild("deleted by hand")
        assert names(ws) == sorted(made.values())
        assert ws.artifacts.query() == before


def test_rows_of_sessions_removed_by_another_process_go(root: Path) -> None:
    made = make(root, 3)
    gone = next(iter(made))
    with Workspace.open(root) as ws:
        assert len(ws.artifacts.query()) == 3
        shutil.rmtree(next((root / "sessions").glob(f"*-{gone[:8]}")))
        assert names(ws) == sorted(n for s, n in made.items() if s != gone)
        assert sorted(a["session_id"] for a in ws.artifacts.query()) == sorted(
            s for s in made if s != gone
        )
    db = sqlite3.connect(db_path(root))
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM artifacts").fetchone()[0] == 2


def test_a_manifest_broken_and_mended_by_hand(root: Path) -> None:
    made = make(root, 2)
    sid = next(iter(made))
    path = next((root / "sessions").glob(f"*-{sid[:8]}")) / "session.yaml"
    good = path.read_text()
    with Workspace.open(root) as ws:
        path.write_text(good.replace("status: active", "status: finished"))
        assert names(ws) == [made[s] for s in made if s != sid]
        assert len(ws.sessions.broken) == 1 and ": status: must be one of" in ws.sessions.broken[0]
        path.write_text(good.replace("name: s000", "name: mended"))
        assert names(ws) == sorted(["mended", *(made[s] for s in made if s != sid)])
        assert ws.sessions.broken == []


def test_a_link_in_place_of_a_session_folder_is_listed_as_broken_never_followed(
    root: Path, tmp_path: Path
) -> None:
    made = make(root, 2)
    sid = next(iter(made))
    files = next((root / "sessions").glob(f"*-{sid[:8]}")) / "files"
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(files)
    files.symlink_to(outside)
    for p in (root / ".spell").glob("index.sqlite*"):
        p.unlink()  # the row is made from the files
    with Workspace.open(root) as ws:
        assert names(ws) == [made[s] for s in made if s != sid]
        assert len(ws.sessions.broken) == 1 and files.parent.name in ws.sessions.broken[0]
        with pytest.raises(UnsafePath):
            ws.sessions.get(sid)
    assert list(outside.iterdir()) == []


def test_on_a_full_disk_the_cache_is_kept_in_memory_and_answers_stay_right(
    small_disk: Path,
) -> None:
    """No room for the cache file: this process answers from the files with a cache in memory,
    and leaves the file alone."""
    from conftest import fill_disk
    from spellfs.workspace import init_workspace

    root = small_disk / "ws"
    init_workspace(root)
    made = make(root, 20)
    for p in (root / ".spell").glob("index.sqlite*"):
        p.unlink()
    fill_disk(small_disk)
    with Workspace.open(root) as ws:
        assert names(ws) == sorted(made.values())
        assert len(ws.artifacts.query({"limit": None})) == 20
        assert ws.index.path is None and ws.index.rebuilt is None
        assert names(ws, tags=["odd"]) == sorted(n for n in made.values() if int(n[1:]) % 2)


def test_check_rebuilds_a_cache_whose_check_finds_faults(root: Path) -> None:
    """Damage sqlite reports as findings rather than an error (here a constraint the rows
    break) is damage too."""
    made = make(root, 3)
    db = sqlite3.connect(db_path(root))
    db.execute("PRAGMA writable_schema=ON")
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name='sessions'").fetchone()[0]
    db.execute(
        "UPDATE sqlite_master SET sql=? WHERE name='sessions'",
        (sql.replace("error TEXT", "error TEXT NOT NULL"),),
    )
    db.commit()
    db.close()
    with Workspace.open(root) as ws:
        why = ws.index.check()
        assert why == "integrity check: NULL value in sessions.error"
        assert ws.index.rebuilt == why
        assert names(ws) == sorted(made.values())
    db = sqlite3.connect(db_path(root))
    assert (
        "NOT NULL"
        not in db.execute("SELECT sql FROM sqlite_master WHERE name='sessions'").fetchone()[0]
    )


def test_artifact_queries_read_the_artifacts_table(root: Path) -> None:
    with Workspace.open(root) as ws:
        a = ws.sessions.create(name="a")
        b = ws.sessions.create(name="b")
        ws.artifacts.store(a, "user_input", "small.txt", b"x")
        ws.artifacts.store(a, "tool_result", "big.txt", b"x" * 100)
        ws.artifacts.store(b, "user_input", "other.txt", b"y" * 50)
    with Workspace.open(root) as ws:  # a new process: answers from the cache file
        names_of = lambda q: [r["name"] for r in ws.artifacts.query(q)]  # noqa: E731
        assert names_of({}) == ["small.txt", "big.txt", "other.txt"]  # in order of creation
        assert names_of({"session_id": a}) == ["small.txt", "big.txt"]
        assert names_of({"session_id": b[:8]}) == ["other.txt"]
        assert names_of({"type": "user_input"}) == ["small.txt", "other.txt"]
        assert names_of({"session_id": a, "min_size": 2}) == ["big.txt"]
        assert names_of({"min_size": 50, "max_size": 99}) == ["other.txt"]
        assert names_of({"type": "user_input", "max_size": 10}) == ["small.txt"]
        assert [r["session_id"] for r in ws.artifacts.query({})] == [a, a, b]


def test_the_artifacts_of_some_sessions_come_in_order_of_creation(root: Path) -> None:
    """What the watcher's catch-up asks the cache for: the live artifacts of the sessions it
    names (not the others), oldest first."""
    with Workspace.open(root) as ws:
        sids = [ws.sessions.create(name=n) for n in "abc"]
        for i, name in enumerate(["1.txt", "2.txt", "3.txt", "4.txt"]):
            ws.artifacts.store(sids[i % 3], "user_input", name, b"x")
        dirs = [ws.sessions.resolve(s) for s in sids]
        ws.index.refresh_all()
        got = ws.index.artifact_rows([dirs[2], dirs[0]], "", [])
        assert [(d, rec["name"]) for d, rec in got] == [
            (dirs[0], "1.txt"),
            (dirs[2], "3.txt"),
            (dirs[0], "4.txt"),
        ]


@pytest.mark.parametrize("damaged", [False, True])
def test_the_cache_answers_on_any_thread(root: Path, damaged: bool) -> None:
    """The watcher and `spell ui` query from their own threads with the workspace's one
    connection; so does the connection made again after a damaged file was thrown away."""
    import threading

    made = make(root, 3)
    if damaged:
        db_path(root).write_bytes(b"this is not a database\n" * 100)
    with Workspace.open(root) as ws:
        assert names(ws) == sorted(made.values())
        got: list = []
        thread = threading.Thread(target=lambda: got.append((names(ws), ws.artifacts.query())))
        thread.start()
        thread.join(60)
        assert got and got[0][0] == sorted(made.values()) and len(got[0][1]) == 3


def test_a_row_matches_tags_with_or_without_the_callers_needles(root: Path) -> None:
    """Callers may pass the tags as JSON once per query (``needles``); without them a row makes
    its own, with the same answer."""
    import json as _json

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="t", tags=["a", "b c", "ab"])
        ws.sessions.list()
        row = next(r for r in ws.index.rows.values() if r.id == sid)
        for tags, want in (
            (["a"], True),
            (["a", "ab"], True),
            (["b c"], True),
            (["b"], False),  # "b" is inside "ab" and "b c" as text, but is no tag
            (["a", "zz"], False),
            ([], True),
        ):
            assert row.has_tags(tags) is want, tags
            assert row.has_tags(tags, [_json.dumps(t) for t in tags]) is want, tags


def test_what_is_wrong_with_a_session_folder_is_said_with_its_file(
    root: Path, tmp_path: Path
) -> None:
    """A listing names each broken session by what is wrong and where: a folder copied by hand
    (its id names the other folder), a manifest edited wrong, a files/ link."""
    made = make(root, 3)
    first, second, third = (next((root / "sessions").glob(f"*-{s[:8]}")) for s in made)
    shutil.copytree(first, root / "sessions" / "copy-00000000")
    path = second / "session.yaml"
    path.write_text(path.read_text().replace("status: active", "status: done"))
    shutil.rmtree(third / "files")
    (third / "files").symlink_to(tmp_path)
    for p in (root / ".spell").glob("index.sqlite*"):
        p.unlink()  # the rows are made from the files
    with Workspace.open(root) as ws:
        assert names(ws) == [made[s] for s in made][:1]
        link, copy, edited = sorted(ws.sessions.broken)
        assert copy.startswith("sessions/copy-00000000/session.yaml:")
        assert "does not match the directory copy-00000000" in copy
        assert edited.startswith(f"sessions/{second.name}/session.yaml:")
        assert ": status: must be one of" in edited
        assert link.startswith(f"refused: sessions/{third.name}/files is a symbolic link")


def _free_for_another_writer(root: Path) -> bool:
    """Another process's writer gets the cache at once (no busy wait): nobody holds its lock."""
    other = sqlite3.connect(db_path(root), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        other.close()


def test_between_calls_the_cache_is_free_for_other_processes(root: Path) -> None:
    """A long-lived process (the watcher, `spell ui`, a script) writes the cache in short
    transactions: after each call another `spell` may write it at once, rather than wait the
    busy timeout (30 s) for a lock this process kept, and fail."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="a", tags=["t"])
        assert _free_for_another_writer(root)
        for i in range(3):
            assert [s["name"] for s in ws.sessions.list()] == ["a"]
            assert _free_for_another_writer(root)
            ws.artifacts.store(sid, "user_input", f"{i}.txt", b"x")  # writes the manifest too
            assert _free_for_another_writer(root)
            ws.sessions.update_metadata(sid, {"round": i})
            assert _free_for_another_writer(root)
        assert len(ws.artifacts.query()) == 3
        assert _free_for_another_writer(root)


def _cache_fds(root: Path) -> list[str]:
    """What this process holds open of the cache (its file, -wal and -shm)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # (the listing's own fd is gone by now)
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(db_path(root))):
                held.append(target)
    return held


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc/self/fd")
def test_a_closed_workspace_keeps_no_cache_file_open(root: Path) -> None:
    """A process that opens and closes workspaces (a server, a test runner) must not keep a
    connection, and its files, for each; closed, the cache is whole in its one file (no -wal
    left to copy along with it)."""
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a")
        assert names(ws) == ["a"]
        assert str(db_path(root)) in _cache_fds(root)
    assert _cache_fds(root) == []
    assert not Path(str(db_path(root)) + "-wal").exists()
    with Workspace.open(root) as ws:  # and the file is sound for the next process
        assert names(ws) == ["a"]


def test_a_session_made_by_another_process_shows_in_the_next_listing(root: Path) -> None:
    """Whatever listing it is (the first, the second that starts the kernel's watch, the ones
    that trust it), a session another process made before it is in it."""
    with Workspace.open(root) as ws, Workspace.open(root) as other:
        made = []
        for i in range(5):
            assert names(ws) == made
            made.append(f"n{i}")
            other.sessions.create(name=made[-1])
        assert names(ws) == made


@pytest.mark.parametrize(
    "errors, where, why",
    [
        # damaged once: the file is thrown away and made again from the files
        (["database disk image is malformed"], "on disk", "database disk image is malformed"),
        # no room for it: this process works in memory, the file is left alone
        (["database or disk is full"], "in memory", None),
        # damaged again after the rebuild: in memory too (the damaged file is gone)
        (["file is not a database", "disk I/O error"], "in memory", "file is not a database"),
        # damaged a third time: given up, said
        (["disk I/O error", "disk I/O error", "disk I/O error"], "raised", "disk I/O error"),
        # busy, or a mistake in a statement: raised at once, the cache kept
        (["database is locked"], "raised", None),
    ],
)
def test_what_the_cache_does_when_sqlite_fails(
    root: Path, errors: list[str], where: str, why: str | None
) -> None:
    """Every index method runs through `healing`: each failure below is what SQLite raises;
    the method then either answers after the cache was rebuilt, or the error reaches the
    caller (never an empty answer, never a wipe for a busy file)."""
    from spellfs.model.index_db import healing

    made = make(root, 3)
    left = list(errors)

    def flaky(index, *args, **kwargs):
        if left:
            raise sqlite3.OperationalError(left.pop(0))
        return args, kwargs

    with Workspace.open(root) as ws:
        assert names(ws) == sorted(made.values())
        if where == "raised":
            with pytest.raises(sqlite3.OperationalError, match=errors[-1]):
                healing(flaky)(ws.index, "a", b=1)
            assert ws.index.rebuilt == why
            assert left == []
        else:
            assert healing(flaky)(ws.index, "a", b=1) == (("a",), {"b": 1})
            assert ws.index.rebuilt == why
            assert ws.index.path == (None if where == "in memory" else db_path(root))
        assert names(ws) == sorted(made.values())  # the answers stay the files' answers
        assert len(ws.artifacts.query()) == 3
    # kept, made again, or left alone; only a damaged file is gone
    assert db_path(root).exists() is (why is None or where == "on disk")


def test_what_this_process_wrote_is_not_read_back(root: Path, monkeypatch) -> None:
    """The index keeps each manifest this process writes, with its file's signature: a script
    that updates sessions and lists them is not slowed by reading back what it just wrote (and
    the listing still shows the update)."""
    with Workspace.open(root) as ws:
        a = ws.sessions.create(name="a")
        ws.sessions.create(name="b")
        ws.artifacts.store(a, "user_input", "x.txt", b"x")
        ws.sessions.update_metadata(a, {"round": 1})
        read = ws.storage.read
        reads: list[str] = []
        monkeypatch.setattr(ws.storage, "read", lambda rel, *x: reads.append(rel) or read(rel, *x))
        got = {s["name"]: s for s in ws.sessions.list()}
        assert got["a"]["custom_metadata"] == {"round": 1} and got["a"]["artifact_count"] == 1
        assert got["b"]["custom_metadata"] == {} and got["b"]["artifact_count"] == 0
        assert [r for r in reads if r.endswith("/session.yaml")] == []


def test_a_session_whose_artifact_log_is_broken_is_left_out_of_every_listing(root: Path) -> None:
    """README: a broken hand edit is reported with file and line, and that session is left
    out of listings. An edit to `artifacts.yaml` alone (the manifest unchanged) is caught by
    the listing's second look at the rows it chose: that first listing already leaves the
    session out, as a new process does, and so does every listing after it until it is
    mended."""
    made = make(root, 2)
    sid, other = made
    path = next((root / "sessions").glob(f"*-{sid[:8]}")) / "artifacts.yaml"
    good = path.read_text()
    with Workspace.open(root) as ws:
        assert names(ws) == ["s000", "s001"]
        path.write_text(good + "- {seq: 2, name: b.txt\n")
        for _ in range(3):
            assert names(ws) == ["s001"]
            [problem] = ws.sessions.broken
            assert problem.startswith(f"sessions/{path.parent.name}/artifacts.yaml:2: ")
        with Workspace.open(root) as new:
            assert names(new) == ["s001"] and new.sessions.broken == [problem]
        path.write_text(good)
        assert names(ws) == ["s000", "s001"] and ws.sessions.broken == []
        assert ws.sessions.list({"status": "all"})[0]["artifact_count"] == 1


def test_a_write_waits_for_another_processs_writer(root: Path) -> None:
    """Another process holding the cache's write lock for seconds (its own listing of many
    sessions, a slow disk) delays this process's write to the cache; it is no error, and what
    was written to the files is in the next listing."""
    import subprocess
    import sys

    make(root, 1)
    hold = (
        "import sqlite3, sys, time\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE')\n"
        "print('held', flush=True)\n"
        "time.sleep(7)\n"  # (longer than SQLite's default busy timeout, 5 s)
        "db.execute('COMMIT')\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(db_path(root))], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with Workspace.open(root) as ws:
            ws.sessions.create(name="late")  # (its write to the cache waits for the lock)
            assert names(ws) == ["late", "s000"]
        assert holder.wait(60) == 0
    finally:
        holder.kill()
        holder.wait()


def test_a_session_another_process_deleted_after_a_listing_is_no_trouble(root: Path) -> None:
    """A long-lived process (`spell ui`) keeps the rows of its last listing, their manifests
    still in the cache file; another process deletes one of those sessions, which removes its
    row from the file. Queries that then touch every row still answer."""
    made = make(root, 3)
    gone, kept = list(made)[:2]
    with Workspace.open(root) as ws, Workspace.open(root) as other:
        assert names(ws, tags=["none of them"]) == []  # rows read, no manifest chosen
        other.sessions.delete(gone)
        got = ws.artifacts.query({"session_id": kept})
        assert [(a["session_id"], a["name"]) for a in got] == [(kept, "a1.txt")]
        assert names(ws) == ["s001", "s002"]


def test_a_files_link_made_with_a_manifest_edit_is_caught_by_the_next_listing(
    root: Path, tmp_path: Path
) -> None:
    """A session folder whose manifest changed is looked at again whole, its files/ link
    included (a link put under an unchanged manifest is refused by each read of the files). The
    broken row names its folder: the watcher's catch-up goes by it."""
    made = make(root, 2)
    sid = next(iter(made))
    folder = next((root / "sessions").glob(f"*-{sid[:8]}"))
    with Workspace.open(root) as ws:
        assert names(ws) == ["s000", "s001"]
        path = folder / "session.yaml"
        path.write_text(path.read_text().replace("name: s000", "name: renamed"))
        shutil.rmtree(folder / "files")
        (folder / "files").symlink_to(tmp_path)
        assert names(ws) == ["s001"]
        [problem] = ws.sessions.broken
        assert problem.startswith(f"refused: sessions/{folder.name}/files is a symbolic link")
        broken = [(r.dir, r.error) for r in ws.index.refresh_all() if r.error]
        assert broken == [(folder.name, problem)]


def test_artifacts_another_process_stored_count_in_every_listing(root: Path) -> None:
    """Storing an artifact appends to `artifacts.yaml` and leaves the manifest alone: a listing
    that trusts a session's unchanged manifest still counts its artifacts anew, from the first
    listing on (the second starts the kernel's watch; a stat made before it proves nothing
    about the records)."""
    with Workspace.open(root) as ws, Workspace.open(root) as other:
        sid = ws.sessions.create(name="a")
        ws.sessions.create(name="b")

        def counts() -> dict[str, int]:
            return {s["name"]: s["artifact_count"] for s in ws.sessions.list()}

        assert counts() == {"a": 0, "b": 0}
        for n in range(1, 6):
            other.artifacts.store(sid, "user_input", f"{n}.txt", b"x")
            assert counts() == {"a": n, "b": 0}


def test_a_workspace_in_memory_writes_no_cache_file(tmp_path: Path, monkeypatch) -> None:
    """`Workspace.in_memory()` (scripts, tests) keeps its index in memory: nothing appears in
    the directory it runs in, and its listings and queries answer."""
    monkeypatch.chdir(tmp_path)
    with Workspace.in_memory() as ws:
        sid = ws.sessions.create(name="a")
        ws.artifacts.store(sid, "user_input", "x.txt", b"x")
        assert names(ws) == ["a"]
        assert [a["name"] for a in ws.artifacts.query()] == ["x.txt"]
    assert list(tmp_path.iterdir()) == []
