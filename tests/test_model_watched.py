"""Asking a watcher for a listing (model/watched.py): when no watcher answers, or it answers
badly, the caller lists by itself and gets the same sessions as without a watcher."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from spellfs import Workspace, init_workspace
from spellfs.errors import UsageError
from spellfs.model import watched


def _tagged(ws: Workspace) -> list[str]:
    ws.sessions.create(name="a", tags=["x"])
    ws.sessions.create(name="b", tags=["y"])
    return sorted(s["name"] for s in ws.sessions.list({"tags": ["x"]}))


def test_without_a_watcher_there_is_no_socket_and_nothing_is_asked(ws: Workspace) -> None:
    assert watched.ask(ws.root, {"list": {}}) is None
    assert _tagged(ws) == ["a"]


def test_a_dead_watchers_socket_is_refused_at_once(ws: Workspace) -> None:
    path = ws.root / watched.SOCKET
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays; nobody listens on it
    t = time.monotonic()
    assert watched.ask(ws.root, {"list": {}}) is None
    assert time.monotonic() - t < watched.TIMEOUT  # refused, not waited for
    assert _tagged(ws) == ["a"]


class _Peer:
    """A listening socket that answers each question with ``reply`` (None: never answers)."""

    def __init__(self, root: Path, reply: bytes | None) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with watched.socket_address(root) as address:
            self.server.bind(address)
        self.server.listen(8)
        self.reply = reply
        self.questions: list[bytes] = []
        self.held: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                peer, _ = self.server.accept()
            except OSError:
                return
            try:
                line = watched.read_line(peer, watched.MAX_QUESTION)
            except OSError:
                line = None
            self.questions.append(line or b"")
            if self.reply is None:
                self.held.append(peer)  # silent: the asker must give up by itself
                continue
            with peer:
                peer.sendall(self.reply)

    def close(self) -> None:
        self.server.close()
        for p in self.held:
            p.close()


@pytest.mark.parametrize(
    "reply",
    [
        b'{"error": "invalid status"}\n',
        b"not json\n",
        b'{"sessions": ' + b"[" * 200000 + b"\n",  # deeper than the parser goes
        b'["a list"]\n',
        b'{"sessions": "not a list", "broken": []}\n',
        b'{"sessions": [], "broken": []}',  # no newline: cut short
        b"",  # closed without a word
    ],
)
def test_a_bad_answer_means_the_caller_lists_by_itself(ws: Workspace, reply: bytes) -> None:
    peer = _Peer(ws.root, reply)
    try:
        assert _tagged(ws) == ["a"]
        assert peer.questions  # it was asked
    finally:
        peer.close()


def test_a_silent_watcher_is_given_up_on_after_the_time_limit(ws: Workspace) -> None:
    peer = _Peer(ws.root, None)
    try:
        t = time.monotonic()
        assert watched.ask(ws.root, {"list": {}}, timeout=0.3) is None
        assert 0.3 <= time.monotonic() - t < 5
        assert _tagged(ws) == ["a"]  # (waits TIMEOUT, then lists by itself)
    finally:
        peer.close()


def test_the_answer_is_what_the_watcher_said_and_the_question_is_the_query(ws: Workspace) -> None:
    sid = ws.sessions.create(name="s")
    said = {**ws.sessions.get(sid), "name": "from the watcher"}
    said.pop("modified_on_disk", None)
    peer = _Peer(ws.root, watched.encode({"sessions": [said], "broken": ["b"]}))
    try:
        assert ws.sessions.list({"tags": ["x"], "status": "all"}) == [said]
        assert ws.sessions.broken == ["b"]
        st = os.stat(ws.root)
        assert [json.loads(q) for q in peer.questions] == [
            {"list": {"tags": ["x"], "status": "all"}, "workspace": [st.st_dev, st.st_ino]}
        ]
    finally:
        peer.close()


@pytest.mark.parametrize(
    "answer",
    [
        {"sessions": [1], "broken": []},
        {"sessions": [{"name": "a"}], "broken": []},  # not a session as this version lists one
        {"sessions": [], "broken": [{"a": 1}]},
    ],
)
def test_an_answer_of_another_shape_is_not_taken(ws: Workspace, answer: dict) -> None:
    """Something else on the socket (another version's watcher, a foreign program): its
    answer is not taken, and the caller lists by itself (red-team 3, L5)."""
    peer = _Peer(ws.root, watched.encode(answer))
    try:
        assert _tagged(ws) == ["a"] and ws.sessions.broken == []
        assert peer.questions
    finally:
        peer.close()


def test_a_bad_query_is_refused_before_any_watcher_is_asked(ws: Workspace) -> None:
    peer = _Peer(ws.root, b'{"sessions": [], "broken": []}\n')
    try:
        with pytest.raises(UsageError, match="invalid status: 'nope'"):
            ws.sessions.list({"status": "nope"})
        with pytest.raises(UsageError, match="unknown query field: colour"):
            ws.sessions.list({"colour": "red"})
        assert peer.questions == []
    finally:
        peer.close()


def test_a_workspace_path_too_long_for_a_socket_address_is_reached(tmp_path: Path) -> None:
    root = tmp_path / ("d" * 60) / ("e" * 60) / "ws"
    init_workspace(root)
    assert len(os.fsencode(root / watched.SOCKET)) > 108
    peer = _Peer(root, b'{"sessions": [{"name": "far"}], "broken": []}\n')
    try:
        assert watched.ask(root, {"list": {}}) == {"sessions": [{"name": "far"}], "broken": []}
        assert (root / watched.SOCKET).exists()  # bound at its real path, through /proc
    finally:
        peer.close()


def test_without_a_watcher_not_even_a_socket_is_made(ws: Workspace, monkeypatch) -> None:
    """The common case (no watcher) costs one stat: a listing makes no socket to find out."""
    made: list[tuple] = []

    def no_socket(*args):
        made.append(args)
        raise AssertionError("a socket was made without a watcher")

    monkeypatch.setattr(watched.socket, "socket", no_socket)
    assert watched.ask(ws.root, {"list": {}}) is None
    assert _tagged(ws) == ["a"]
    assert made == []


def test_an_error_answer_is_no_answer(ws: Workspace) -> None:
    peer = _Peer(ws.root, b'{"error": "invalid status"}\n')
    try:
        assert watched.ask(ws.root, {"list": {}}) is None
        assert watched.ask(ws.root, {"list": {}}) is None
        assert len(peer.questions) == 2
    finally:
        peer.close()


def test_an_answer_too_long_for_one_read_is_read_whole(ws: Workspace) -> None:
    """10,000 sessions make an answer of megabytes, which arrives in several reads."""
    sessions = [{"name": f"s{i:07d}", "pad": "x" * 200} for i in range(12_000)]
    reply = json.dumps({"sessions": sessions, "broken": []}).encode() + b"\n"
    assert len(reply) > 2 << 20
    peer = _Peer(ws.root, reply)
    try:
        answer = watched.ask(ws.root, {"list": {}}, timeout=30)
        assert answer is not None and answer["sessions"] == sessions
    finally:
        peer.close()


def test_a_silent_watcher_is_waited_for_as_long_as_the_caller_said(ws: Workspace) -> None:
    peer = _Peer(ws.root, None)
    try:
        t = time.monotonic()
        assert watched.ask(ws.root, {"list": {}}, timeout=2.5) is None
        assert time.monotonic() - t >= 2.5  # (not the default TIMEOUT)
    finally:
        peer.close()


def test_a_watcher_that_stopped_accepting_is_given_up_on(ws: Workspace) -> None:
    """A hung watcher whose queue of connections is full: a connect would wait for ever, and
    the asker gives up within its time limit all the same."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(ws.root / watched.SOCKET))
    server.listen(0)
    waiting = []
    try:
        for _ in range(8):  # fill the backlog (nobody accepts)
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(str(ws.root / watched.SOCKET))
            except BlockingIOError:
                c.close()
                break
            waiting.append(c)
        t = time.monotonic()
        assert watched.ask(ws.root, {"list": {}}, timeout=0.5) is None
        assert time.monotonic() - t < 30
        assert _tagged(ws) == ["a"]
    finally:
        for c in waiting:
            c.close()
        server.close()


def _reading(chunks: list[bytes], pause: float = 0.05) -> socket.socket:
    """One end of a socket pair whose other end sends ``chunks`` one by one, with pauses (so
    they arrive as separate reads when the reader keeps up), then stays open until the reader
    closes its end."""
    ours, theirs = socket.socketpair()

    def send() -> None:
        with theirs:
            try:
                for chunk in chunks:
                    theirs.sendall(chunk)
                    time.sleep(pause)
                theirs.recv(1)  # (until the reader closes its end)
            except OSError:  # the reader gave up and closed first
                pass

    threading.Thread(target=send, daemon=True).start()
    return ours


def test_read_line_gives_the_first_line_only_and_an_empty_one_as_empty() -> None:
    with _reading([b"first\nsecond\n"]) as sock:
        assert watched.read_line(sock, 100) == b"first"
    with _reading([b"\n"]) as sock:
        assert watched.read_line(sock, 100) == b""


def test_read_line_joins_a_line_that_arrives_in_parts() -> None:
    with _reading([b'{"list":', b' {"tags"', b': ["x"]}}\n']) as sock:
        assert watched.read_line(sock, 100, timeout=5) == b'{"list": {"tags": ["x"]}}'


def test_read_line_counts_every_part_against_its_limit() -> None:
    """A flood in small pieces is cut off at the limit, not read until the time runs out."""
    with _reading([b"x" * 10] * 30, pause=0.01) as sock:
        t = time.monotonic()
        assert watched.read_line(sock, 50, timeout=8) is None
        assert time.monotonic() - t < 8
    with _reading([b"x" * 50, b"\n"], pause=0.3) as sock:  # exactly the limit: read
        assert watched.read_line(sock, 50, timeout=5) == b"x" * 50


def test_read_line_times_out_over_the_whole_line() -> None:
    with _reading([b"x"] * 40, pause=0.05) as sock:  # a byte at a time, never a newline
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            watched.read_line(sock, 1000, timeout=0.5)
        assert 0.5 <= time.monotonic() - t < 1.9
