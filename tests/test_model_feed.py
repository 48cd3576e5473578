"""A process that lists sessions again asks the kernel what changed (model/feed.py): from its
third listing on it looks at no session the queue does not name, and still sees every change.
Real workspaces; the changes come through another Workspace object, a hard link and the shell."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from spellfs import Workspace

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def names(ws: Workspace, tag: str) -> list[str]:
    return sorted(s["name"] for s in ws.sessions.list({"tags": [tag], "limit": None}))


@pytest.fixture
def six(root: Path) -> dict[str, str]:
    with Workspace.open(root) as other:
        return {n: other.sessions.create(name=n, tags=["t"]) for n in "abcdef"}


def _manifest(ws: Workspace, sid: str) -> Path:
    return ws.root / "sessions" / ws.sessions.resolve(sid) / "session.yaml"


def test_listings_look_at_everything_until_the_queue_vouches(root: Path, six: dict) -> None:
    with Workspace.open(root) as ws:
        assert names(ws, "t") == list("abcdef") and ws.index.looked == 6
        assert names(ws, "t") == list("abcdef") and ws.index.looked == 6  # the watch starts
        assert names(ws, "t") == list("abcdef") and ws.index.looked == 0  # the queue vouches
        assert names(ws, "t") == list("abcdef") and ws.index.looked == 0


def test_a_listing_looks_at_what_changed_and_sees_it(root: Path, six: dict, tmp_path) -> None:
    with Workspace.open(root) as ws:
        for _ in range(3):
            names(ws, "t")
        path = _manifest(ws, six["a"])
        path.write_text(path.read_text().replace("- t", "- u"))  # in place, by hand
        assert names(ws, "t") == list("bcdef") and ws.index.looked == 1
        assert names(ws, "u") == ["a"] and ws.index.looked == 0
        with Workspace.open(root) as other:
            other.sessions.create(name="g", tags=["t"])
        assert names(ws, "t") == list("bcdefg") and ws.index.looked == 1
        os.link(_manifest(ws, six["b"]), tmp_path / "alias.yaml")  # an edit through a link
        assert names(ws, "t") == list("bcdefg")
        alias = tmp_path / "alias.yaml"
        alias.write_text(alias.read_text().replace("- t", "- u"))  # (write_text: in place)
        assert names(ws, "t") == list("cdefg") and ws.index.looked == 1
        assert names(ws, "u") == ["a", "b"] and ws.index.looked == 0


def test_a_lost_queue_makes_one_listing_look_at_everything(root: Path, six: dict) -> None:
    with Workspace.open(root) as ws:
        for _ in range(3):
            names(ws, "t")
        limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
        d = ws.root / "sessions" / ws.sessions.resolve(six["c"])
        for i in range(limit + 10):  # creations in a watched session folder, unread
            os.close(os.open(d / f"junk{i}", os.O_CREAT | os.O_RDONLY))
        path = _manifest(ws, six["d"])
        path.write_text(path.read_text().replace("- t", "- u"))  # its event is lost
        with Workspace.open(root) as other:  # and so is this new session's
            other.sessions.create(name="g", tags=["t"])
        assert names(ws, "t") == list("abcefg") and ws.index.looked == 7
        # vouched again, but for the folder made while the queue was lost: never watched, it
        # is stat-ed at every listing
        assert names(ws, "t") == list("abcefg") and ws.index.looked == 1


def test_a_new_session_named_by_the_queue_is_listed_after_other_reads(
    root: Path, six: dict
) -> None:
    """What the queue named is kept until a listing takes it, whatever was read between."""
    with Workspace.open(root) as ws:
        for _ in range(3):
            names(ws, "t")
        with Workspace.open(root) as other:
            other.sessions.create(name="g", tags=["t"])
        ws.artifacts.query({"session_id": six["a"]})  # a read between: drains the queue, the
        # new name kept
        path = _manifest(ws, six["b"])
        path.write_text(path.read_text().replace("name: b", "name: bb"))
        assert ws.sessions.get(six["b"])["name"] == "bb"  # another drain, another name
        assert names(ws, "t") == ["a", "bb", "c", "d", "e", "f", "g"]


def test_the_sessions_folder_moved_away_and_back_is_listed_again(root: Path, six: dict) -> None:
    with Workspace.open(root) as ws:
        for _ in range(3):
            names(ws, "t")
        os.rename(root / "sessions", root / "sessions.moved")
        os.rename(root / "sessions.moved", root / "sessions")
        assert names(ws, "t") == list("abcdef") and ws.index.looked == 6
        assert names(ws, "t") == list("abcdef")


def test_a_memory_workspace_never_watches(six: dict) -> None:
    with Workspace.in_memory() as ws:
        for n in "xyz":
            ws.sessions.create(name=n, tags=["t"])
        for _ in range(4):
            assert names(ws, "t") == ["x", "y", "z"]
        assert ws.index.feed.watch is None


def _count_stats(ws: Workspace, monkeypatch, suffix: str) -> list[str]:
    """The paths ending in ``suffix`` that ``ws`` stats from now on."""
    seen: list[str] = []
    real = ws.storage.signature

    def signature(rel: str):
        if rel.endswith(suffix):
            seen.append(rel)
        return real(rel)

    monkeypatch.setattr(ws.storage, "signature", signature)
    return seen


def _records(ws: Workspace, sid: str) -> str:
    return f"sessions/{ws.sessions.resolve(sid)}/artifacts.yaml"


def _counts(ws: Workspace) -> dict[str, int]:
    return {s["name"]: s["artifact_count"] for s in ws.sessions.list({"tags": ["t"]})}


def test_artifact_counts_come_from_the_queue_too_and_see_a_new_artifact(
    root: Path, six: dict, monkeypatch
) -> None:
    """A listing's artifact counts (each session's artifacts.yaml, which most sessions do not
    have yet) are vouched for by the queue like the manifests: no stat once it vouches, and an
    artifact stored by another process is counted at the next listing."""
    with Workspace.open(root) as other:
        other.artifacts.store(six["a"], "user_input", "x.txt", b"x")
    with Workspace.open(root) as ws:
        for _ in range(3):
            assert _counts(ws) == {**dict.fromkeys("abcdef", 0), "a": 1}
        stats = _count_stats(ws, monkeypatch, "/artifacts.yaml")
        assert _counts(ws) == {**dict.fromkeys("abcdef", 0), "a": 1} and stats == []
        with Workspace.open(root) as other:
            other.artifacts.store(six["a"], "user_input", "y.txt", b"y")
            other.artifacts.store(six["b"], "user_input", "y.txt", b"y")  # its first
        assert _counts(ws) == {**dict.fromkeys("cdef", 0), "a": 2, "b": 1}
        # (only the two that changed; each stat-ed again after its watch is in place)
        assert set(stats) == {_records(ws, six[n]) for n in "ab"}
        stats.clear()
        assert _counts(ws) == {**dict.fromkeys("cdef", 0), "a": 2, "b": 1} and stats == []


def test_an_edit_through_a_hard_link_reaches_a_session_the_listing_left_out(
    root: Path, six: dict, tmp_path
) -> None:
    """A session a listing filters out is vouched for by its stat alone; its session.yaml's
    inode is watched all the same, so an edit through another name for the file is seen."""
    with Workspace.open(root) as other:
        z = other.sessions.create(name="z", tags=["v"])
    with Workspace.open(root) as ws:
        for _ in range(3):
            assert names(ws, "t") == list("abcdef")
        assert ws.index.looked == 0
        os.link(_manifest(ws, z), tmp_path / "alias.yaml")
        alias = tmp_path / "alias.yaml"
        alias.write_text(alias.read_text().replace("- v", "- t"))  # in place, not by sessions/
        assert names(ws, "t") == list("abcdefz") and ws.index.looked == 1


def _flood(folder: Path, prefix: str) -> None:
    """More new files in a watched folder than the kernel queues: the queue overflows."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for i in range(limit + 10):
        os.close(os.open(folder / f"{prefix}{i}", os.O_CREAT | os.O_RDONLY))


def test_a_queue_lost_during_a_listing_makes_the_next_one_look_at_everything(
    root: Path, six: dict, monkeypatch
) -> None:
    """The queue can overflow while a listing runs (another process writing thousands of files),
    after it overflowed once before: the next listing still reads the folder again and finds the
    session whose creation the queue dropped."""
    with Workspace.open(root) as ws:
        for _ in range(3):
            names(ws, "t")
        junk = ws.root / "sessions" / ws.sessions.resolve(six["c"])
        _flood(junk, "first")  # an earlier loss
        assert names(ws, "t") == list("abcdef") and ws.index.looked == 6
        assert names(ws, "t") == list("abcdef") and ws.index.looked == 0
        with Workspace.open(root) as other:
            other.sessions.create(name="g", tags=["t"])  # named by the queue: read in the pass
        start = ws.index.feed.begin_pass

        def begin_pass() -> None:
            start()
            _flood(junk, "second")  # the queue overflows once the listing has begun ...
            with Workspace.open(root) as other:
                other.sessions.create(name="h", tags=["t"])  # ... and drops this creation

        monkeypatch.setattr(ws.index.feed, "begin_pass", begin_pass)
        assert names(ws, "t") == list("abcdefg")  # (h came after the folder was listed)
        monkeypatch.undo()
        assert names(ws, "t") == list("abcdefgh")


def test_a_session_folder_swapped_for_a_link_to_it_is_refused_by_a_warm_listing(
    tmp_path: Path, root: Path, six: dict
) -> None:
    """red-team 3, L2: a long-lived process (a watcher answering listings, `spell ui`) had
    seen the folder was a real one and kept that, so once the queue named it, it followed the
    link put in its place. What the queue names is looked at again, links included."""
    with Workspace.open(root) as ws:
        for _ in range(3):
            assert names(ws, "t") == list("abcdef")
        folder = _manifest(ws, six["b"]).parent
        os.rename(folder, tmp_path / "elsewhere")
        os.symlink(tmp_path / "elsewhere", folder)
        assert names(ws, "t") == list("acdef")
        assert [p for p in ws.sessions.broken if folder.name in p and "symbolic link" in p]


def test_unchanged_holds_until_the_queue_names_a_change_or_loses_track(
    root: Path, six: dict
) -> None:
    """What a watcher's kept answers rest on (watch/listings.py): ``unchanged`` is true only
    while the queue vouches for everything the last full listing found. A hand edit makes it
    false at once (no listing between) until a listing has read the edit; so does a lost
    queue, and a process that is not watching yet."""
    with Workspace.open(root) as ws:
        feed = ws.index.feed
        names(ws, "t")
        assert not feed.unchanged()  # (no watch before the second listing)
        names(ws, "t")
        assert feed.unchanged()
        path = _manifest(ws, six["a"])
        path.write_text(path.read_text().replace("- t", "- u"))
        assert not feed.unchanged()  # (the queue is drained by the question itself)
        assert not feed.unchanged()  # and stays so until a listing reads the edit
        assert names(ws, "t") == list("bcdef")
        assert feed.unchanged()
        _flood(ws.root / "sessions" / ws.sessions.resolve(six["c"]), "junk")
        assert not feed.unchanged()
        assert names(ws, "t") == list("bcdef")
        assert feed.unchanged()


def test_a_listing_the_queue_vouches_for_reads_the_queue_twice_not_once_a_session(
    root: Path, six: dict, monkeypatch
) -> None:
    """Each read of the kernel's queue is a system call: a listing of 10,000 vouched sessions
    makes two (as the listing begins, and once for the chosen rows' artifact logs), not one per
    session (``Index.refresh_records``)."""
    with Workspace.open(root) as ws:
        for _ in range(3):
            names(ws, "t")
        watch = ws.index.feed.watch
        assert watch is not None
        drains: list[int] = []
        real = watch.changed

        def changed():
            drains.append(1)
            return real()

        monkeypatch.setattr(watch, "changed", changed)
        assert names(ws, "t") == list("abcdef") and ws.index.looked == 0
        assert len(drains) <= 2
        path = _manifest(ws, six["a"])
        path.write_text(path.read_text().replace("- t", "- u"))
        drains.clear()
        assert names(ws, "t") == list("bcdef") and len(drains) <= 3  # (one more: a stale row)


def test_a_change_queued_between_a_listing_s_two_passes_keeps_the_session_listed(
    root: Path, six: dict, monkeypatch
) -> None:
    """A listing checks the manifests, then the records of the rows it keeps; a change the queue
    names in between (another process storing) made the second pass take the row's reset
    manifest signature for "no session.yaml" and drop the session, listed then with what it
    held before the change."""
    with Workspace.open(root) as ws:
        for _ in range(3):
            assert _counts(ws) == dict.fromkeys("abcdef", 0)
        real = ws.index.refresh_records

        def store_meanwhile(rows):
            with Workspace.open(root) as other:
                other.artifacts.store(six["a"], "user_input", "x.txt", b"x")
            return real(rows)

        monkeypatch.setattr(ws.index, "refresh_records", store_meanwhile)
        assert _counts(ws) == {**dict.fromkeys("bcdef", 0), "a": 1}
