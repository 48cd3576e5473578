"""The watcher answers other processes' listings (watch/listings.py): the answer is always what
a listing of its own would say, right after a hand edit too, and never a stale kept one."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spellfs import Workspace, init_workspace
from spellfs.errors import SessionNotFound
from spellfs.model import watched
from spellfs.watch.listings import ListingServer

from test_model_feed import _flood
from test_watch_daemon import daemon  # noqa: F401  (the fixture)


@pytest.fixture
def server(root: Path):
    warnings: list[str] = []
    with Workspace.open(root) as own:
        s = ListingServer(own, warnings.append).start()
        assert s.ready.wait(30)
        assert (root / watched.SOCKET).exists(), warnings
        try:
            yield s
        finally:
            s.stop()
    assert warnings == []


def _names(sessions: list[dict]) -> list[str]:
    return [s["name"] for s in sessions]


def _manifest(root: Path, name: str) -> Path:
    [path] = (root / "sessions").glob(f"{name}-*/session.yaml")
    return path


def test_a_listing_is_answered_by_the_watcher_and_matches_its_own(
    root: Path, server: ListingServer
) -> None:
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a", tags=["x"])
        ws.sessions.create(name="b", tags=["y"])
        served = server.served
        own = ws.sessions.list_here({"tags": ["x"]})
        ws.sessions.list_here = None  # (the answer is taken, not made here again)
        got = ws.sessions.list({"tags": ["x"]})
        assert server.served == served + 1
        assert got == own
        assert _names(got) == ["a"]


def test_a_hand_edit_just_made_is_in_the_answer(root: Path, server: ListingServer) -> None:
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a", tags=["x"])
        assert _names(ws.sessions.list({"tags": ["x"]})) == ["a"]
        assert _names(ws.sessions.list({"tags": ["z"]})) == []
    path = _manifest(root, "a")
    stat = path.stat()
    # The same size and mtime (as `cp -p` or `touch -r` leave): a stat cannot tell, the
    # kernel's queue can.
    path.write_text(path.read_text().replace("- x", "- z"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    with Workspace.open(root) as ws:  # a fresh process's view
        served = server.served
        assert _names(ws.sessions.list({"tags": ["z"]})) == ["a"]
        assert _names(ws.sessions.list({"tags": ["x"]})) == []
        assert server.served == served + 2


def test_sessions_made_or_removed_by_hand_are_in_the_answer(
    root: Path, server: ListingServer
) -> None:
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a", tags=["x"])
        ws.sessions.create(name="b", tags=["x"])
        assert _names(ws.sessions.list({"tags": ["x"]})) == ["a", "b"]
    a = _manifest(root, "a").parent
    shutil.copytree(a, root / "sessions" / "copy-0123abcd")
    copy = root / "sessions" / "copy-0123abcd" / "session.yaml"
    copy.write_text(
        copy.read_text()
        .replace("name: a", "name: c")
        .replace(_manifest(root, "a").parent.name[-8:], "0123abcd")
    )
    shutil.rmtree(_manifest(root, "b").parent)
    with Workspace.open(root) as ws:
        assert sorted(_names(ws.sessions.list({"tags": ["x"]}))) == ["a", "c"]


def test_a_broken_manifest_is_reported_as_a_listing_of_ones_own_would(
    root: Path, server: ListingServer
) -> None:
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a")
        ws.sessions.create(name="b")
        ws.sessions.list({})
    _manifest(root, "b").write_text("status: [unclosed\n")
    with Workspace.open(root) as ws:
        assert _names(ws.sessions.list({})) == ["a"]
        [problem] = ws.sessions.broken
        assert "session.yaml" in problem and problem.startswith("sessions/b-")


def test_an_error_is_raised_as_without_a_watcher(root: Path, server: ListingServer) -> None:
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a")
        served = server.served
        with pytest.raises(SessionNotFound, match=re.escape("session not found: nosuch")):
            ws.sessions.list({"parent_session_id": "nosuch"})
        assert server.served == served + 1  # asked; its error answer made us list ourselves


def test_after_stop_there_is_no_socket_and_listings_are_local(root: Path) -> None:
    with Workspace.open(root) as own:
        s = ListingServer(own, lambda m: None).start()
        assert s.ready.wait(30)
        s.stop()
    assert not (root / watched.SOCKET).exists()
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a")
        assert _names(ws.sessions.list({})) == ["a"]
    assert s.served == 0


def test_a_dead_watchers_socket_file_is_replaced(root: Path) -> None:
    import socket

    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(root / watched.SOCKET))
    dead.close()
    with Workspace.open(root) as own, ListingServer(own, lambda m: None) as s:
        assert s.ready.wait(30)
        with Workspace.open(root) as ws:
            ws.sessions.create(name="a")
            assert _names(ws.sessions.list({})) == ["a"]
        assert s.served == 1


def test_answers_kept_for_a_repeated_question_never_hide_a_change(
    root: Path, server: ListingServer
) -> None:
    """Random hand edits, creations, stores and removals between listings: every answer equals
    a listing made from the files alone (a new process with no watcher's help)."""
    rnd = random.Random(1130)
    queries = [{"tags": ["x"]}, {}, {"status": "all"}, {"tags": ["x"], "sort_by": "name"}]
    with Workspace.open(root) as ws:
        for i in range(4):
            ws.sessions.create(name=f"s{i}", tags=["x"])
    for step in range(40):
        dirs = sorted(p.name for p in (root / "sessions").iterdir() if p.is_dir())
        what = rnd.choice(
            ["retag", "retag", "describe", "create", "remove", "store", "store", "nothing"]
        )
        if what in ("retag", "describe") and dirs:
            path = root / "sessions" / rnd.choice(dirs) / "session.yaml"
            text = path.read_text()
            if what == "retag":
                text = text.replace("- x", "- y") if "- x" in text else text.replace("- y", "- x")
            else:
                text = text.replace("description: ", f"description: step {step} ", 1)
            path.write_text(text)  # in place, as an editor that keeps the inode does
        elif what == "create":
            with Workspace.open(root) as other:
                other.sessions.create(name=f"n{step}", tags=["x"])
        elif what == "store" and dirs:
            # a new name (one more), a new version of a name (as many, later) or a deletion
            with Workspace.open(root) as other:
                dir = rnd.choice(dirs)
                have = sorted(a["name"] for a in other.artifacts.list(dir))
                how = rnd.choice(["new", "version", "delete"]) if have else "new"
                if how == "delete":
                    other.artifacts.delete(dir, rnd.choice(have))
                else:
                    name = f"a{step}.txt" if how == "new" else rnd.choice(have)
                    other.artifacts.store(dir, "user_input", name, b"step %d" % step)
        elif what == "remove" and len(dirs) > 1:
            shutil.rmtree(root / "sessions" / rnd.choice(dirs))
        q = rnd.choice(queries)
        with Workspace.open(root) as ws:
            answered = ws.sessions.list(q)
        with Workspace.open(root) as ws:
            own = ws.sessions.list_here(q)
        assert answered == own, (step, what, q)
    assert server.served == 40


def test_a_lost_kernel_queue_never_leaves_a_kept_answer_standing(
    root: Path, server: ListingServer
) -> None:
    """More changes than the kernel queues: the events are lost, the edit among them too; the
    next answer is made from the files again, not the one kept for the same question."""
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a", tags=["x"])
        ws.sessions.create(name="b", tags=["x"])
        for _ in range(2):
            assert _names(ws.sessions.list({"tags": ["x"]})) == ["a", "b"]
    _flood(_manifest(root, "b").parent, "junk")
    path = _manifest(root, "a")
    path.write_text(path.read_text().replace("- x", "- elsewhere"))
    with Workspace.open(root) as ws:
        assert _names(ws.sessions.list({"tags": ["x"]})) == ["b"]


def test_a_stalled_or_flooding_peer_does_not_keep_the_next_one_waiting(
    root: Path, server: ListingServer
) -> None:
    """One peer that never finishes its question, another that sends more than a question
    can be: each is dropped in time, and a listing asked meanwhile is answered."""
    import socket
    import threading

    with Workspace.open(root) as ws:
        ws.sessions.create(name="a")
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.connect(str(root / watched.SOCKET))
    stalled.sendall(b'{"list": ')  # and nothing more
    flood = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    flood.connect(str(root / watched.SOCKET))
    sent: list[int] = []

    def pour() -> None:
        try:
            for _ in range(64):
                flood.sendall(b"x" * (64 << 10))
                sent.append(1)
        except OSError:
            pass  # dropped by the watcher

    pourer = threading.Thread(target=pour)
    pourer.start()
    try:
        with Workspace.open(root) as ws:
            served = server.served
            assert _names(ws.sessions.list({})) == ["a"]
            assert server.served == served + 1
    finally:
        pourer.join(30)
        stalled.close()
        flood.close()
    assert len(sent) < 64  # never read to the end: the watcher let go of it


def test_a_question_nested_past_the_parser_does_not_stop_the_watcher(
    root: Path, server: ListingServer
) -> None:
    """red-team 3, L4: it killed the listing thread (a RecursionError) and its socket."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
        peer.connect(str(root / watched.SOCKET))
        peer.sendall(b'{"list": ' + b"[" * 100000 + b"\n")
        assert b'"error"' in watched.read_line(peer, watched.MAX_ANSWER)
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a")
        served = server.served
        assert _names(ws.sessions.list({})) == ["a"]
        assert server.served == served + 1


def test_a_workspace_moved_away_from_its_watcher_is_listed_from_its_own_files(
    tmp_path: Path, root: Path, server: ListingServer
) -> None:
    """red-team 3, L1: the socket moves with .spell/, the watcher keeps listing the old path
    (nothing there, or another workspace made there since). It answers only for the folder it
    watches: the moved one lists by itself."""
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a")
        assert _names(ws.sessions.list({})) == ["a"]
    moved = tmp_path / "moved"
    os.rename(root, moved)
    init_workspace(root)
    with Workspace.open(root) as impostor:
        impostor.sessions.create(name="impostor")
    with Workspace.open(moved) as ws:
        ws.sessions.create(name="b")
        assert _names(ws.sessions.list({})) == ["a", "b"]


def test_a_socket_linked_to_another_workspaces_watcher_is_not_taken(
    tmp_path: Path, root: Path, server: ListingServer
) -> None:
    """red-team 3, L3: a link (or a hard-link copy of the workspace) reaches another
    workspace's watcher; its answer is for its own workspace, not this one."""
    with Workspace.open(root) as ws:
        ws.sessions.create(name="theirs")
    other = tmp_path / "other"
    init_workspace(other)
    os.symlink(root / watched.SOCKET, other / watched.SOCKET)
    with Workspace.open(other) as ws:
        ws.sessions.create(name="ours")
        assert _names(ws.sessions.list({})) == ["ours"]


def test_the_daemon_answers_listings_and_removes_its_socket_when_stopped(
    root: Path,
    spell,
    daemon,  # noqa: F811
) -> None:
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a", tags=["x"])
    r = spell("-w", str(root), "daemon", "start")
    assert r.returncode == 0, r.stderr
    assert (root / watched.SOCKET).exists()  # ready before `daemon start` returns
    path = _manifest(root, "a")
    path.write_text(path.read_text().replace("- x", "- fresh"))
    r = spell("-w", str(root), "ls", "--tag", "fresh", "--json")
    assert r.returncode == 0, r.stderr
    assert [s["name"] for s in json.loads(r.stdout)] == ["a"]
    r = spell("-w", str(root), "daemon", "stop")
    assert r.returncode == 0, r.stderr
    assert not (root / watched.SOCKET).exists()


def test_a_killed_daemons_socket_does_not_slow_or_change_listings(
    root: Path,
    spell,
    daemon,  # noqa: F811
) -> None:
    with Workspace.open(root) as ws:
        ws.sessions.create(name="a", tags=["x"])
    assert spell("-w", str(root), "daemon", "start").returncode == 0
    from spellfs.watch.daemon import daemon_status

    os.kill(daemon_status(root)["pid"], 9)
    assert (root / watched.SOCKET).exists()  # left behind by the kill
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json, time\n"
            "from spellfs import Workspace\n"
            f"ws = Workspace.open({str(root)!r})\n"
            "t = time.monotonic(); found = ws.sessions.list({'tags': ['x']})\n"
            "print(json.dumps([[s['name'] for s in found], time.monotonic() - t]))",
        ],
        capture_output=True,
        check=True,
    )
    names, took = json.loads(out.stdout)
    assert names == ["a"]
    assert took < watched.TIMEOUT  # refused at once, not waited for
