"""The watcher against real file events: a real observer in a thread, library API only."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from spellfs import Workspace
from spellfs.watch.watcher import Watcher


def wait_for(pred, timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {getattr(pred, '__name__', pred)}"
            )
        time.sleep(interval)


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    leaked = lambda: [t for t in threading.enumerate() if t not in before and t.is_alive()]  # noqa: E731
    try:
        wait_for(lambda: not leaked(), timeout=5)
    except AssertionError:
        raise AssertionError(f"leaked threads: {leaked()}") from None


class Harness:
    """A watcher over ``root`` plus a separate reader workspace, as another process would have."""

    def __init__(self, root: Path, **kw) -> None:
        self.root = root
        self.kw = kw
        self.changes: list[dict] = []
        self.ws = Workspace.open(root)  # the test's own view (actor "api")
        self.sid = self.ws.sessions.create(name="demo")
        self.dir = self.ws.sessions.resolve(self.sid)
        self.files = root / "sessions" / self.dir / "files"
        self.watcher: Watcher | None = None
        self.wws: Workspace | None = None

    def start(self, **kw) -> Watcher:
        self.wws = Workspace.open(self.root, actor="watch")
        self.watcher = Watcher(self.wws, self.changes.append, **{**self.kw, **kw})
        self.watcher.start()
        assert self.watcher.ready.wait(10)
        assert self.watcher.error is None
        return self.watcher

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.wws.close()
            self.watcher = None

    def events(self, kind: str, name: str | None = None) -> list[dict]:
        return [
            c
            for c in list(self.changes)
            if c["event"] == kind and (name is None or c.get("name") == name)
        ]

    def versions(self, name: str) -> list[dict]:
        log = self.ws.log(self.dir)
        log.refresh()
        return list(log.versions.get(name, []))

    def content(self, name: str) -> bytes:
        return self.ws.artifacts.get(self.sid, name)["content"]

    def live(self) -> set[str]:
        return {a["name"] for a in self.ws.artifacts.list(self.sid)}


@pytest.fixture
def h(root: Path):
    harness = Harness(root)
    yield harness
    harness.stop()
    harness.ws.close()


def settle(h: Harness, name: str, count: int, timeout: float = 5.0) -> list[dict]:
    """Wait until ``name`` has ``count`` stored events, then a little longer to catch extras."""
    wait_for(lambda: len(h.events("stored", name)) >= count, timeout)
    time.sleep(h.watcher.quiet * 3)
    return h.events("stored", name)


def marker(h: Harness, files: Path | None = None) -> None:
    """Write a file and wait until the watcher has stored it.

    The watcher settles keys in deadline order, so once a file written now is stored,
    every event from before it has been handled: a "nothing happened" check made after
    this is not merely early, as one made after a fixed sleep could be.
    """
    files = files or h.files
    name = f"marker-{len(h.changes)}.txt"
    (files / name).write_text("marker")
    wait_for(lambda: h.events("stored", name), timeout=30)


def test_written_file_becomes_a_user_input_version(h: Harness) -> None:
    h.start()
    (h.files / "notes.md").write_bytes(b"# notes\n")
    settle(h, "notes.md", 1)
    [rec] = h.versions("notes.md")
    assert rec["type"] == "user_input" and rec["created_by"] == "watch"
    assert h.content("notes.md") == b"# notes\n"
    # the query index is kept current too
    row = h.wws.index.rows[h.dir]
    assert row.artifact_count == 1


def test_rename_over_save_gives_one_version_with_final_content(h: Harness) -> None:
    h.ws.artifacts.store(h.sid, "tool_result", "doc.txt", b"original")
    h.start()
    for tmpname in ("doc.txt.tmp", ".doc.txt.swp", "doc.txt~"):
        tmp = h.files / tmpname
        with open(tmp, "wb") as f:
            f.write(b"half")
            f.flush()
            time.sleep(0.03)
            f.write(b" and the rest: " + tmpname.encode())
        os.rename(tmp, h.files / "doc.txt")
        time.sleep(0.3)
    settle(h, "doc.txt", 3)
    versions = h.versions("doc.txt")
    assert [v["created_by"] for v in versions] == ["api", "watch", "watch", "watch"]
    assert h.content("doc.txt") == b"half and the rest: doc.txt~"
    assert h.live() == {"doc.txt"}  # no temp file ever became an artifact


def test_truncate_and_rewrite_and_library_stores_are_not_doubled(h: Harness) -> None:
    h.start()
    h.ws.artifacts.store(
        h.sid, "tool_result", "out.json", b'{"a": 1}'
    )  # materialised by the library
    h.ws.artifacts.store(h.sid, "tool_result", "out.json", b'{"a": 2}')
    marker(h)
    assert len(h.versions("out.json")) == 2 and not h.events("stored", "out.json")
    with open(h.files / "out.json", "r+b") as f:
        f.truncate(0)
        f.flush()
        time.sleep(0.03)
        f.write(b'{"a": 3,')
        f.flush()
        time.sleep(0.03)
        f.write(b' "b": 4}')
    settle(h, "out.json", 1)
    assert len(h.versions("out.json")) == 3
    assert h.content("out.json") == b'{"a": 3, "b": 4}'


def test_burst_of_quick_writes_records_the_settled_content(h: Harness) -> None:
    h.start()
    with open(h.files / "log.txt", "wb") as f:
        for i in range(40):
            f.write(b"line %d\n" % i)
            f.flush()
            time.sleep(0.005)
    settle(h, "log.txt", 1)
    assert len(h.versions("log.txt")) == 1
    assert h.content("log.txt") == b"".join(b"line %d\n" % i for i in range(40))


def test_revert_to_older_content_is_a_new_version(h: Harness) -> None:
    h.start()
    p = h.files / "a.txt"
    for body, n in ((b"one", 1), (b"two", 2), (b"one", 3)):
        p.write_bytes(body)
        wait_for(lambda n=n: len(h.versions("a.txt")) == n)
    assert [v["hash"] for v in h.versions("a.txt")][0] == h.versions("a.txt")[2]["hash"]


def test_deleted_file_leaves_the_listing(h: Harness) -> None:
    h.ws.artifacts.store(h.sid, "tool_result", "gone.txt", b"bye")
    h.start()
    (h.files / "gone.txt").unlink()
    wait_for(lambda: h.events("deleted", "gone.txt"))
    assert "gone.txt" not in h.live()
    assert h.ws.artifacts.get(h.sid, "gone.txt@1")["content"] == b"bye"  # history kept


def test_spellignore_and_links_out_of_the_workspace(h: Harness, tmp_path: Path) -> None:
    with open(h.root / ".spellignore", "a") as f:
        f.write("*.secret\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    h.start()
    (h.files / "key.secret").write_text("hush")
    (h.files / "link.txt").symlink_to(outside)
    inside = h.root / "inside.txt"
    inside.write_text("in the workspace")
    (h.files / "inlink.txt").symlink_to(inside)
    (h.files / "ok.txt").write_text("fine")
    settle(h, "ok.txt", 1)
    wait_for(lambda: h.events("stored", "inlink.txt"))
    assert h.live() == {"ok.txt", "inlink.txt"}
    assert h.content("inlink.txt") == b"in the workspace"
    warnings = [c["message"] for c in h.events("warning")]
    assert any("link.txt" in w and "out of the workspace" in w for w in warnings)


def test_hand_edited_manifest_valid_and_invalid(h: Harness) -> None:
    other = h.ws.sessions.create(name="other")  # its files are recorded while demo's wait
    other_files = h.root / "sessions" / h.ws.sessions.resolve(other) / "files"
    h.start()
    yaml_path = h.root / "sessions" / h.dir / "session.yaml"
    text = yaml_path.read_text()
    yaml_path.write_text(text.replace("name: demo", "name: renamed"))
    wait_for(lambda: h.events("manifest"))
    assert h.wws.index.rows[h.dir].manifest["name"] == "renamed"
    bad = yaml_path.read_text().replace("status: active", "status: bogus")
    yaml_path.write_text(bad)
    [inv] = wait_for(lambda: h.events("invalid"))
    line = bad.splitlines().index("status: bogus") + 1
    assert inv["error"].startswith(f"sessions/{h.dir}/session.yaml:{line}: status")
    # last good state kept: nothing overwritten, the index still answers with it
    (h.files / "while-broken.txt").write_text("waits")
    marker(h, other_files)
    assert yaml_path.read_text() == bad
    row = h.wws.index.rows[h.dir]
    assert row.manifest["name"] == "renamed" and "status" in row.error
    assert not h.events("stored", "while-broken.txt") and h.versions("while-broken.txt") == []
    # fixed: reported, and what waited is recorded
    yaml_path.write_text(bad.replace("status: bogus", "status: active"))
    wait_for(lambda: [c for c in h.events("manifest") if c.get("fixed")])
    wait_for(lambda: h.events("stored", "while-broken.txt"))


def test_catch_up_after_downtime_hashes_only_what_changed(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("keep.txt", "edit.txt", "drop.txt"):
        h.ws.artifacts.store(h.sid, "tool_result", name, name.encode())
    old = time.time() - 60  # older than the racy window, so the cache can vouch for them
    for p in h.files.iterdir():
        os.utime(p, (old, old))
    h.start()
    h.stop()
    (h.files / "edit.txt").write_text("edited while down")
    (h.files / "new.txt").write_text("made while down")
    (h.files / "drop.txt").unlink()
    import spellfs.watch.handedits as wmod

    hashed: list[str] = []
    real = wmod.hash_path
    monkeypatch.setattr(
        wmod, "hash_path", lambda p, *a: hashed.append(os.path.basename(p)) or real(p, *a)
    )
    time.sleep(h.watcher.quiet if h.watcher else 0.2)  # let the new files leave the settling window
    h.changes.clear()
    h.start()
    wait_for(
        lambda: (
            h.events("stored", "edit.txt")
            and h.events("stored", "new.txt")
            and h.events("deleted", "drop.txt")
        )
    )
    assert h.live() == {"keep.txt", "edit.txt", "new.txt"}
    assert h.content("edit.txt") == b"edited while down"
    assert sorted(hashed) == ["edit.txt", "new.txt"]  # keep.txt's stat was unchanged: not re-read


def test_catch_up_sees_a_same_size_edit_whose_mtime_was_put_back(h: Harness) -> None:
    """`touch -r`, `cp -p`, `rsync -t` while the watcher was down: the ctime still moved (the
    stat cache compares it, as git's index does), so the catch-up reads and records it."""
    h.ws.artifacts.store(h.sid, "tool_result", "same.txt", b"recorded")
    p = h.files / "same.txt"
    old = time.time() - 60  # older than the racy window, so the cache can vouch for it
    os.utime(p, (old, old))
    h.start()
    h.stop()  # the catch-up entered its stat in the cache
    time.sleep(0.01)  # (a later clock tick than that stat's ctime)
    p.write_bytes(b"RECORDED")
    os.utime(p, (old, old))
    h.changes.clear()
    h.start()
    wait_for(lambda: h.events("stored", "same.txt"))
    assert h.content("same.txt") == b"RECORDED"


def test_session_timeout_suspends_idle_sessions(root: Path) -> None:
    (root / "spell.yaml").write_text("sessions:\n  session_timeout_seconds: 1\n")
    h = Harness(root, check_interval=0.2)
    try:
        h.start()
        wait_for(lambda: h.events("suspended"), timeout=6)
        assert h.ws.sessions.get(h.sid)["status"] == "suspended"
        assert not h.events("manifest")  # our own write is not reported as a hand edit
    finally:
        h.stop()
        h.ws.close()


def test_watch_limit_falls_back_to_polling(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from watchdog.observers import inotify

    def refuse(self):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(inotify.InotifyEmitter, "on_thread_start", refuse)
    w = h.start(poll_interval=0.1)
    assert w.mode == "polling"
    assert any("limit on file watches" in c["message"] for c in h.events("warning"))
    (h.files / "polled.txt").write_text("seen by polling")
    wait_for(lambda: h.events("stored", "polled.txt"))


def test_lost_events_trigger_a_rescan(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events the kernel dropped are found again by the rescan an overflow triggers."""
    real_note = Watcher._note

    def lossy_note(self, path, is_dir, event_type):  # the kernel drops lost.txt's events
        if not os.fsdecode(path).endswith("/lost.txt"):
            real_note(self, path, is_dir, event_type)

    monkeypatch.setattr(Watcher, "_note", lossy_note)
    h.start()
    (h.files / "lost.txt").write_text("written while the queue overflowed")
    marker(h)
    assert not h.events("stored", "lost.txt")  # its events really were lost
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost"
    )
    wait_for(lambda: h.events("stored", "lost.txt"), timeout=30)
    assert h.content("lost.txt") == b"written while the queue overflowed"


def test_a_kernel_overflow_through_the_installed_watchdog_triggers_a_rescan(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watchdog has no public overflow event; its inotify reader logs one. Drive the installed
    watchdog's own handling of IN_Q_OVERFLOW (wd -1, as the kernel sends it), so a watchdog
    release that stops logging it, or words it otherwise, fails here rather than in the field."""
    from watchdog.observers import inotify_c

    w = h.start()
    if w.mode != "native":
        pytest.skip("no inotify here")
    scans: list = []
    real = w.catch_up
    monkeypatch.setattr(w, "catch_up", lambda dirs=None: scans.append(dirs) or real(dirs))
    event = inotify_c.InotifyEvent(-1, inotify_c.InotifyConstants.IN_Q_OVERFLOW, 0, b"")
    w.observer._inotify_fd.handle_event(event)  # the observer's own reader, as its thread would
    wait_for(lambda: None in scans)


def test_hand_edit_in_a_completed_session_is_reported_not_recorded(h: Harness) -> None:
    h.ws.artifacts.store(h.sid, "tool_result", "doc.txt", b"original")
    h.ws.sessions.complete(h.sid)
    h.start()
    (h.files / "doc.txt").write_bytes(b"edited after the end")
    wait_for(lambda: any("not recorded" in c.get("message", "") for c in h.events("warning")), 5)
    [warning] = [c for c in h.events("warning") if "not recorded" in c["message"]]
    assert "completed session" in warning["message"] and "spell fork" in warning["message"]
    assert [v["created_by"] for v in h.versions("doc.txt")] == ["api"]
    assert (h.files / "doc.txt").read_bytes() == b"edited after the end"  # the edit stays on disk


def test_hand_edit_resumes_a_suspended_session(h: Harness) -> None:
    h.ws.sessions.suspend(h.sid)
    h.start()
    (h.files / "new.txt").write_bytes(b"back to work")
    settle(h, "new.txt", 1)
    assert h.events("resumed")
    assert h.ws.sessions.get(h.sid)["status"] == "active"
    assert h.content("new.txt") == b"back to work"


def test_a_library_store_between_the_watchers_read_and_its_lock_is_no_hand_edit(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers of one name: the watcher reads writer A's files/ copy, writer B stores
    (taking the session lock first), then the watcher locks: A's copy is stale, not a hand edit."""
    import spellfs.watch.handedits as wmod

    real = wmod.hash_path
    raced: list[str] = []

    def read_then_another_writer_stores(p, *a):
        got = real(p, *a)
        if os.path.basename(p) == "shared.txt" and not raced:
            raced.append(p)
            with Workspace.open(h.root) as other:
                other.artifacts.store(h.sid, "tool_result", "shared.txt", b"v2 by writer B")
        return got

    monkeypatch.setattr(wmod, "hash_path", read_then_another_writer_stores)
    h.start()
    h.ws.artifacts.store(h.sid, "tool_result", "shared.txt", b"v1 by writer A")
    marker(h)
    assert raced, "the watcher never read shared.txt"
    assert [v["created_by"] for v in h.versions("shared.txt")] == ["api", "api"]
    assert not h.events("stored", "shared.txt")
    assert h.content("shared.txt") == b"v2 by writer B"
    assert (h.files / "shared.txt").read_bytes() == b"v2 by writer B"


def test_catch_up_in_a_git_clone_lacking_a_copy_kept_out_of_git_deletes_nothing(
    tmp_path: Path, spell
) -> None:
    """Red-team F10, the watcher's side: a clone has the record of an artifact kept out of git
    but neither its copy nor its object; the catch-up takes that for "not local", not for a
    hand deletion to record."""
    from test_git_commits import identity, ok, run_git

    origin = tmp_path / "origin"
    ok(spell("init", "--git", str(origin)))
    identity(origin)
    (origin / "spell.yaml").write_text("git:\n  max_object_bytes: 1000\n")
    with Workspace.open(origin) as ws:
        sid = ws.sessions.create(name="s")
        ws.artifacts.store(sid, "user_input", "big.bin", os.urandom(5000))
        dir = ws.sessions.resolve(sid)
    assert "kept out of git" in ok(spell("-w", str(origin), "commit", "-m", "c"))
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert not (clone / "sessions" / dir / "files" / "big.bin").exists()
    h = Harness(clone)
    try:
        h.start()
        marker(h)  # the catch-up and every event before this one are handled
        assert h.events("deleted") == []
        assert [a["name"] for a in h.ws.artifacts.list(sid)] == ["big.bin"]
        assert '"op": "delete"' not in (clone / "sessions" / dir / "artifacts.yaml").read_text()
    finally:
        h.stop()
        h.ws.close()


def test_a_watched_hand_edit_keeps_what_the_artifact_was_said_to_be(h: Harness) -> None:
    """The watcher's version of a hand edit keeps the description, tags and custom metadata of
    the version before (rt2 M2): an edit changes the content, not what the artifact is."""
    said = {"description": "the plan", "tags": ["draft"], "owner": "ana"}
    h.ws.artifacts.store(h.sid, "agent_output", "plan.md", b"v1\n", said)
    h.start()
    (h.files / "plan.md").write_bytes(b"v2, by hand\n")
    settle(h, "plan.md", 1)
    meta = h.ws.artifacts.get(h.sid, "plan.md")["metadata"]
    assert h.content("plan.md") == b"v2, by hand\n" and meta["created_by"] == "watch"
    assert (meta["description"], meta["tags"], meta["custom"]) == (
        "the plan",
        ["draft"],
        {"owner": "ana"},
    )


def test_a_sessions_folder_replaced_by_another_is_watched_again(h: Harness) -> None:
    """red-team 3, W1: `cp -a sessions s && rm -rf sessions && mv s sessions` (a restore from a
    copy, a checkout) left the kernel watching the removed folder, and the watcher recorded
    nothing more while saying it watched. It now watches the new folder, says so, and catches
    up with what changed in between."""
    import shutil

    h.start()
    sessions = h.root / "sessions"
    shutil.copytree(sessions, h.root / "s.copy", symlinks=True)
    (h.root / "s.copy" / h.dir / "files" / "between.txt").write_text("made in between")
    shutil.rmtree(sessions)
    os.rename(h.root / "s.copy", sessions)
    wait_for(lambda: h.events("stored", "between.txt"), timeout=30)
    (h.files / "after.txt").write_text("made after")
    wait_for(lambda: h.events("stored", "after.txt"), timeout=30)
    assert h.content("after.txt") == b"made after"
    assert [w for w in h.events("warning") if "sessions/ was replaced" in w["message"]]


def test_a_watcher_whose_workspace_is_moved_away_stops_and_says_why(
    h: Harness, tmp_path: Path
) -> None:
    """red-team 3, W2: a watcher kept acting on the path it was started on: after the
    workspace moved, it suspended and recorded in a workspace made there later. It stops,
    with an error naming why, within about a second."""
    h.start()
    moved = tmp_path / "moved"
    os.rename(h.root, moved)
    wait_for(lambda: h.watcher.error is not None, timeout=30)
    assert "the workspace was moved away from" in str(h.watcher.error)
    os.rename(moved, h.root)  # (the harness closes its workspaces where they were)
