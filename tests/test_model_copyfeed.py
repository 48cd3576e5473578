"""A session scanned often is answered from the kernel's queue (model/copyfeed.py), and that
answer is always the one a full scan gives: every kind of change between two scans is seen.
Real workspaces, real files, edits from this process and from others."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spellfs import Workspace
from spellfs.model.copyfeed import FEED_AFTER

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def truth(root: Path, dir: str) -> tuple:
    """What a full scan by a process that never saw the session says."""
    with Workspace.open(root) as fresh:
        wc = fresh.worktree.scan(dir)
        return wc.modified, wc.added, sorted(wc.deleted)


def fed_scan(ws: Workspace, dir: str) -> tuple:
    wc = ws.worktree.scan(dir)
    return wc.modified, wc.added, sorted(wc.deleted)


class Fed:
    """A workspace whose session of three artifacts is past its full scans: fed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ws = Workspace.open(root)
        self.sid = self.ws.sessions.create(name="fed")
        for name in ("a.txt", "b.txt", "c.txt"):
            self.ws.artifacts.store(self.sid, "tool_result", name, f"{name} v1\n")
        self.dir = self.ws.sessions.resolve(self.sid)
        self.files = root / "sessions" / self.dir / "files"
        for _ in range(FEED_AFTER + 1):
            self.ws.worktree.scan(self.dir)
        assert self.ws.worktree.fed(self.dir)

    def check(self) -> tuple:
        got = fed_scan(self.ws, self.dir)
        assert got == truth(self.root, self.dir)
        return got


@pytest.fixture
def fed(root: Path):
    f = Fed(root)
    yield f
    f.ws.close()


def _same_size_rewrite_mtime_kept(files: Path, _tmp: Path) -> None:
    st = os.stat(files / "a.txt")
    (files / "a.txt").write_text("A.txt v1\n")
    os.utime(files / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns))


def _link_later_then_write(files: Path, tmp: Path) -> None:
    os.link(files / "a.txt", tmp / "alias")
    script = f"open({str(tmp / 'alias')!r}, 'a').write('through the link')"
    subprocess.run([sys.executable, "-c", script], check=True)


def _replace_files_dir(files: Path, tmp: Path) -> None:
    shutil.copytree(files, tmp / "copy")
    (tmp / "copy" / "b.txt").write_text("edited in the copy\n")
    os.rename(files, tmp / "old")
    os.rename(tmp / "copy", files)


def _replace_session_dir(files: Path, tmp: Path) -> None:
    """The records file is the same inode in the new folder (linked): only the folder moved."""
    session = files.parent
    shutil.copytree(session, tmp / "copy", ignore=shutil.ignore_patterns("artifacts.yaml"))
    os.link(session / "artifacts.yaml", tmp / "copy" / "artifacts.yaml")
    (tmp / "copy" / "files" / "c.txt").unlink()
    os.rename(session, tmp / "old")
    os.rename(tmp / "copy", session)


CHANGES = {
    "append": lambda f, t: (f / "a.txt").open("a").write("more\n"),
    "same size, mtime put back": _same_size_rewrite_mtime_kept,
    "new file": lambda f, t: (f / "new.md").write_text("dropped in\n"),
    "delete": lambda f, t: (f / "b.txt").unlink(),
    "rename over": lambda f, t: os.rename(f / "a.txt", f / "b.txt"),
    "editor save (temp, rename)": lambda f, t: (
        (f / ".c.txt.swp").write_text("c edited\n"),
        os.rename(f / ".c.txt.swp", f / "c.txt"),
    ),
    "hard link made later, written": _link_later_then_write,
    "files/ replaced": _replace_files_dir,
    "session folder replaced": _replace_session_dir,
    "file becomes a directory": lambda f, t: ((f / "b.txt").unlink(), (f / "b.txt").mkdir()),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_fed_scan_sees_each_kind_of_change(fed: Fed, tmp_path: Path, change: str) -> None:
    before = fed.check()
    CHANGES[change](fed.files, tmp_path)
    after = fed.check()
    assert after != before or change == "file becomes a directory"
    assert fed.check() == after  # and says it again when nothing more moved


def test_a_fed_scan_looks_only_at_what_changed(fed: Fed, tmp_path: Path) -> None:
    """The promise that makes a save O(change): after one edit, one file is looked at."""
    for i in range(20):
        (fed.files / f"more{i}.txt").write_text("x\n")
    fed.ws.worktree.record(fed.dir)
    assert fed.ws.worktree.looked(fed.dir) == 20  # the 20 new files ...
    assert fed.check() == ({}, {}, []) and fed.ws.worktree.looked(fed.dir) == 20  # ... recorded
    assert fed.check() == ({}, {}, []) and fed.ws.worktree.looked(fed.dir) == 0
    (fed.files / "more7.txt").write_text("edited\n")
    assert list(fed.check()[0]) == ["more7.txt"]
    assert fed.ws.worktree.looked(fed.dir) == 1
    fed.ws.artifacts.store(fed.sid, "tool_result", "a.txt", "stored by us\n")
    fed.ws.history.save(fed.sid, "one store")
    assert fed.ws.worktree.looked(fed.dir) == 1  # the store's name (more7.txt: as it was)
    assert fed.check() == ({}, {}, []) and fed.ws.worktree.looked(fed.dir) == 1  # its record
    assert fed.check() == ({}, {}, []) and fed.ws.worktree.looked(fed.dir) == 0
    os.link(fed.files / "b.txt", tmp_path / "alias")  # linked elsewhere: looked at, once
    assert fed.check() == ({}, {}, []) and fed.ws.worktree.looked(fed.dir) == 1
    assert fed.check() == ({}, {}, []) and fed.ws.worktree.looked(fed.dir) == 0


def test_an_unfed_scan_looks_at_every_entry(ws: Workspace) -> None:
    sid = ws.sessions.create(name="once")
    for name in ("a.txt", "b.txt", "c.txt"):
        ws.artifacts.store(sid, "tool_result", name, name)
    dir = ws.sessions.resolve(sid)
    ws.worktree.scan(dir)
    assert ws.worktree.looked(dir) == 3 and not ws.worktree.fed(dir)


def test_records_another_process_appends_are_looked_at(fed: Fed) -> None:
    (fed.files / "a.txt").write_text("by hand\n")
    assert "a.txt" in fed.check()[0]
    with Workspace.open(fed.root) as other:  # records the edit, then stores over c.txt
        other.worktree.record(fed.dir)
        other.artifacts.store(fed.sid, "tool_result", "c.txt", "v2 from elsewhere\n")
    assert fed.check() == ({}, {}, [])


def test_a_rule_change_makes_a_full_scan(fed: Fed) -> None:
    (fed.files / "scratch.log").write_text("noise\n")
    assert fed.check()[1].keys() == {"scratch.log"}
    (fed.root / ".spellignore").write_text("*.log\n")
    assert fed.check() == ({}, {}, [])


def test_an_overflowing_queue_falls_back_to_a_full_scan(fed: Fed) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for _ in range(limit + 10):  # fill the queue with changes that do not matter ...
        os.utime(fed.files / "c.txt")
    (fed.files / "b.txt").write_text("lost from the queue\n")  # ... so this one's event is lost
    assert "b.txt" in fed.check()[0]
    assert fed.ws.worktree.fed(fed.dir)  # watched again from the full scan on


def test_our_own_stores_and_deletes_keep_the_answer_clean(fed: Fed) -> None:
    for i in range(5):
        fed.ws.artifacts.store(fed.sid, "tool_result", "a.txt", f"v{i + 2}\n")
        fed.ws.artifacts.store(fed.sid, "tool_result", f"n{i}.txt", "n\n")
        assert fed.check() == ({}, {}, [])
    fed.ws.artifacts.delete(fed.sid, "b.txt")
    assert fed.check() == ({}, {}, [])


def test_save_records_a_hand_edit_seen_through_the_feed(fed: Fed) -> None:
    (fed.files / "a.txt").write_text("edited by hand\n")
    fed.ws.history.save(fed.sid, "after the edit")
    latest = fed.ws.log(fed.dir).latest("a.txt")
    assert latest["created_by"] == "hand" and latest["version"] == 2
    assert fed.check() == ({}, {}, [])


def test_a_one_off_command_never_starts_a_feed(ws: Workspace) -> None:
    sid = ws.sessions.create(name="once")
    dir = ws.sessions.resolve(sid)
    for _ in range(FEED_AFTER):
        ws.worktree.scan(dir)
    assert not ws.worktree.fed(dir)


# -- the property: whatever happens between scans, the fed answer is the full scan's ----------

NAMES = ["a.txt", "b.txt", "c.txt", "d.txt"]
op = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(NAMES), st.binary(max_size=12)),
    st.tuples(st.just("append"), st.sampled_from(NAMES), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("same-size"), st.sampled_from(NAMES), st.binary(max_size=0)),
    st.tuples(st.just("unlink"), st.sampled_from(NAMES), st.binary(max_size=0)),
    st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("link-write"), st.sampled_from(NAMES), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("store"), st.sampled_from(NAMES), st.binary(max_size=12)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES), st.binary(max_size=0)),
    st.tuples(st.just("save"), st.sampled_from(NAMES), st.binary(max_size=0)),
)


def _apply(f: Fed, tmp: Path, kind: str, name: str, arg) -> None:
    path = f.files / name
    if kind == "write":
        path.write_bytes(arg)
    elif kind == "append" and path.is_file():
        with open(path, "ab") as out:
            out.write(arg)
    elif kind == "same-size" and path.is_file():
        st_ = os.stat(path)
        data = path.read_bytes()
        path.write_bytes(bytes(b ^ 1 for b in data))
        os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    elif kind == "unlink" and path.is_file():
        path.unlink()
    elif kind == "rename" and path.is_file():
        os.rename(path, f.files / arg)
    elif kind == "link-write" and path.is_file():
        alias = tmp / f"alias{len(list(tmp.iterdir()))}"
        os.link(path, alias)
        with open(alias, "ab") as out:
            out.write(arg)
    elif kind == "store":
        f.ws.artifacts.store(f.sid, "tool_result", name, arg.decode("latin-1"))
    elif kind == "delete" and f.ws.log(f.dir).latest(name) is not None:
        if path.is_file():
            f.ws.worktree.record(f.dir)  # a delete over a hand edit is refused: record first
        f.ws.artifacts.delete(f.sid, name)
    elif kind == "save":
        f.ws.history.save(f.sid, "step")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(op, min_size=1, max_size=12))
def test_the_fed_answer_is_always_a_full_scans(tmp_path_factory, ops) -> None:
    from spellfs import init_workspace

    base = tmp_path_factory.mktemp("prop")
    init_workspace(base / "ws")
    aside = base / "aside"
    aside.mkdir()
    f = Fed(base / "ws")
    try:
        for kind, name, arg in ops:
            _apply(f, aside, kind, name, arg)
            f.check()
    finally:
        f.ws.close()


def _four_fed(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A session of four artifacts f0..f3.txt, checked often enough to be fed, with the feed's
    entry limit lowered to 5; return its folder name and its files/."""
    from spellfs.model import copyfeed

    monkeypatch.setattr(copyfeed, "MAX_ENTRIES", 5)
    sid = ws.sessions.create(name="four")
    dir = ws.sessions.resolve(sid)
    for i in range(4):
        ws.artifacts.store(sid, "tool_result", f"f{i}.txt", f"{i}\n")
    for _ in range(FEED_AFTER + 1):
        ws.worktree.scan(dir)
    return dir, ws.root / "sessions" / dir / "files"


@pytest.mark.parametrize("entries, fed_after", [(5, True), (6, False)])
def test_a_session_with_more_files_than_the_limit_is_stat_ed_not_watched(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, entries: int, fed_after: bool
) -> None:
    """Each watched file counts against the user's inotify limit: past MAX_ENTRIES a session
    is checked by stat every time (the same answers, just not O(change))."""
    dir, files = _four_fed(ws, monkeypatch)
    assert ws.worktree.fed(dir)
    for i in range(4, entries):
        (files / f"f{i}.txt").write_text("by hand")
    assert set(ws.worktree.scan(dir).added) == {f"f{i}.txt" for i in range(4, entries)}
    assert set(ws.worktree.scan(dir).added) == {f"f{i}.txt" for i in range(4, entries)}
    assert ws.worktree.fed(dir) is fed_after
    assert ws.worktree.looked(dir) == (0 if fed_after else entries)


def test_at_most_four_sessions_are_fed_the_oldest_going_first(ws: Workspace) -> None:
    """Each fed session holds an inotify descriptor: the fifth evicts the first fed, which is
    checked by stat again (and can be fed again later)."""
    from spellfs.model.copyfeed import MAX_FEEDS

    dirs = []
    for i in range(MAX_FEEDS + 1):
        sid = ws.sessions.create(name=f"s{i}")
        ws.artifacts.store(sid, "tool_result", "a.txt", f"{i}")
        dirs.append(ws.sessions.resolve(sid))
    assert ws.worktree.looked(dirs[0]) == 0  # never checked in this process
    for d in dirs:
        for _ in range(FEED_AFTER + 1):
            ws.worktree.scan(d)
    assert [ws.worktree.fed(d) for d in dirs] == [False] + [True] * MAX_FEEDS
    for _ in range(FEED_AFTER + 1):
        ws.worktree.scan(dirs[0])
    assert [ws.worktree.fed(d) for d in dirs] == [True, False] + [True] * (MAX_FEEDS - 1)


def test_entries_the_kernel_will_not_watch_are_looked_at_every_time_and_count(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, refused: set[str]
) -> None:
    """An entry refused a watch (the limit reached) is stat-ed at every scan, so a change to it
    through a hard link elsewhere (no event on the directory) is still seen; once it can be
    watched it is not looked at again; refused ones count towards MAX_ENTRIES too."""
    refused.add("f3.txt")
    dir, files = _four_fed(ws, monkeypatch)
    assert ws.worktree.fed(dir)  # 3 watched + 1 refused: within the limit
    assert ws.worktree.scan(dir).clean and ws.worktree.looked(dir) == 1  # f3.txt, each time
    os.link(files / "f3.txt", tmp_path / "alias")
    with open(tmp_path / "alias", "w") as f:
        f.write("3 edited through a link\n")
    assert list(ws.worktree.scan(dir).modified) == ["f3.txt"]
    refused.clear()  # watches free again: the next look at f3.txt watches it
    ws.worktree.scan(dir)
    assert ws.worktree.scan(dir).modified.keys() == {"f3.txt"}
    assert ws.worktree.looked(dir) == 0
    refused.update({"f4.txt", "f5.txt"})
    (files / "f4.txt").write_text("by hand\n")
    (files / "f5.txt").write_text("by hand\n")
    for _ in range(2):  # (the fed scan that meets them, then the full one the count stops)
        assert ws.worktree.scan(dir).added.keys() == {"f4.txt", "f5.txt"}
    assert not ws.worktree.fed(dir)  # 4 watched + 2 refused: past the limit, stat-ed instead
    assert ws.worktree.looked(dir) == 6


def test_a_scan_interrupted_midway_leaves_the_next_one_whole(
    fed: Fed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or any error) while a full scan restarts the feed: the next scan in the same
    process (a long-lived one: the daemon, ``spell ui``) answers in full, not from a half-made
    answer."""
    from spellfs.store.inotify import EntryWatch

    (fed.root / ".spellignore").write_text("*.log\n")  # a rule change: a full scan, feed anew
    follow = EntryWatch.follow

    def interrupted(self: EntryWatch, name: str) -> bool:
        monkeypatch.setattr(EntryWatch, "follow", follow)
        raise KeyboardInterrupt

    monkeypatch.setattr(EntryWatch, "follow", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fed.ws.worktree.scan(fed.dir)
    assert not fed.ws.worktree.fed(fed.dir)
    (fed.files / "b.txt").write_text("edited after the interrupt\n")
    assert list(fed.check()[0]) == ["b.txt"]
    assert fed.ws.worktree.fed(fed.dir)


def _inotify_descriptors() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
        except OSError:
            pass
    return n


def test_a_session_past_the_limit_gives_its_descriptor_back_and_is_never_fed_again(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, watch_starts: list[str]
) -> None:
    """Each inotify descriptor counts against the user's limit (128 by default): a session
    too big to watch closes its own, and is not watched again (and dropped again) every few
    scans for the rest of the process."""
    from spellfs.model import copyfeed

    monkeypatch.setattr(copyfeed, "MAX_ENTRIES", 2)
    before = _inotify_descriptors()
    sid = ws.sessions.create(name="big")
    dir = ws.sessions.resolve(sid)
    for i in range(3):
        ws.artifacts.store(sid, "tool_result", f"f{i}.txt", f"{i}")
    for _ in range(3 * (FEED_AFTER + 1)):
        assert ws.worktree.scan(dir).clean
        # not fed: each scan stats every copy (3), or none once their cache entries are
        # settled (past the racy window: a loaded machine gets there within the loop)
        assert not ws.worktree.fed(dir) and ws.worktree.looked(dir) in (0, 3)
        assert _inotify_descriptors() == before
    assert len(watch_starts) == 1  # the one watch that found it too big


def test_an_evicted_session_is_fed_again_after_as_many_scans_as_a_new_one(
    ws: Workspace,
) -> None:
    from spellfs.model.copyfeed import MAX_FEEDS

    dirs = []
    for i in range(MAX_FEEDS + 1):
        sid = ws.sessions.create(name=f"s{i}")
        ws.artifacts.store(sid, "tool_result", "a.txt", f"{i}")
        dirs.append(ws.sessions.resolve(sid))
        for _ in range(FEED_AFTER + 1):
            ws.worktree.scan(dirs[-1])
    assert not ws.worktree.fed(dirs[0])  # evicted by the fifth
    for _ in range(FEED_AFTER):
        ws.worktree.scan(dirs[0])
        assert not ws.worktree.fed(dirs[0])
    ws.worktree.scan(dirs[0])
    assert ws.worktree.fed(dirs[0]) and not ws.worktree.fed(dirs[1])


def test_a_name_the_queue_reports_whose_stat_was_hashed_is_not_read_again(
    fed: Fed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file opened for writing and closed unwritten (its inode's watch reports it) keeps its
    whole stat: the fed scan looks at it and trusts the stat cache, no read. A hard link made
    elsewhere moves the ctime (as for git's index, it cannot be told from a write whose mtime
    was put back): read once more."""
    from spellfs.model import worktree

    reads: list[str] = []
    real = worktree.hash_path

    def counted(path: str, *args, **kwargs):
        reads.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    def touched(*names: str) -> None:
        for name in names:
            open(fed.files / name, "r+b").close()

    monkeypatch.setattr(worktree, "hash_path", counted)
    (fed.files / "b.txt").write_text("b edited\n")
    time.sleep(0.25)  # past the racy window: a hash taken now vouches for the stat
    assert list(fed_scan(fed.ws, fed.dir)[0]) == ["b.txt"] and reads == ["b.txt"]
    touched("b.txt", "a.txt")
    assert list(fed_scan(fed.ws, fed.dir)[0]) == ["b.txt"]
    # b.txt is not read again; a.txt is read once more only if its cache entry was still racy
    # (stored within the racy window of the cache's write: on a loaded machine it may not be)
    assert fed.ws.worktree.looked(fed.dir) == 2 and reads in (["b.txt"], ["b.txt", "a.txt"])
    reads.clear()
    touched("b.txt", "a.txt")
    assert list(fed_scan(fed.ws, fed.dir)[0]) == ["b.txt"]
    assert fed.ws.worktree.looked(fed.dir) == 2 and reads == []
    time.sleep(0.01)  # (a later clock tick than the cached ctimes)
    os.link(fed.files / "b.txt", tmp_path / "alias")
    assert list(fed_scan(fed.ws, fed.dir)[0]) == ["b.txt"]
    assert fed.ws.worktree.looked(fed.dir) == 1 and reads == ["b.txt"]


def test_deletions_seen_by_the_feed_come_in_order_and_are_not_looked_at_again(
    fed: Fed,
) -> None:
    (fed.files / "b.txt").unlink()
    assert fed_scan(fed.ws, fed.dir)[2] == ["b.txt"]
    (fed.files / "a.txt").unlink()
    wc = fed.ws.worktree.scan(fed.dir)
    assert wc.deleted == ["a.txt", "b.txt"]  # as a full scan gives them: sorted
    assert fed.ws.worktree.scan(fed.dir).deleted == ["a.txt", "b.txt"]
    assert fed.ws.worktree.looked(fed.dir) == 0  # the names gone are watched by no one


def test_a_fed_scan_keeps_to_the_materialize_limit(root: Path) -> None:
    """Records another process appends name copies that are not on disk: one above the limit
    was never written there (not a deletion), one of exactly the limit was."""
    with open(root / "spell.yaml", "a") as f:
        f.write("watch:\n  materialize_max_bytes: 10\n")
    with Workspace.open(root) as ws:
        assert ws.config.get("watch.materialize_max_bytes") == 10
        sid = ws.sessions.create(name="limit")
        ws.artifacts.store(sid, "tool_result", "a.txt", "a\n")
        dir = ws.sessions.resolve(sid)
        for _ in range(FEED_AFTER + 1):
            ws.worktree.scan(dir)
        assert ws.worktree.fed(dir)
        with Workspace.open(root) as other:
            other.artifacts.store(sid, "tool_result", "big.bin", b"x" * 11)
            other.artifacts.store(sid, "tool_result", "edge.bin", b"y" * 10)
        files = root / "sessions" / dir / "files"
        assert sorted(p.name for p in files.iterdir()) == ["a.txt", "edge.bin"]
        # (fed: the names the queue and the records gave, the kernel's "#<inode>" of the
        # unnamed file edge.bin was written through among them)
        assert ws.worktree.scan(dir).clean and ws.worktree.fed(dir)
        (files / "edge.bin").unlink()
        with Workspace.open(root) as other:
            other.artifacts.store(sid, "tool_result", "big.bin", b"z" * 11)
        assert ws.worktree.scan(dir).deleted == ["edge.bin"]
        assert ws.worktree.looked(dir) == 2
