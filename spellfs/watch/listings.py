"""The watcher answers other processes' session listings (the asking side and the promise are
:mod:`spellfs.model.watched`).

One thread, one workspace object of its own (its own index connection and kernel change feed;
the watcher's worker keeps its own). It lists twice before it binds the socket, so that its
feed watches every session and a listing looks only at what the kernel's queue names; a process
that asks before then gets no answer and lists by itself. Questions are answered one at a
time: each is a listing of a few milliseconds, and a peer that does not send its question
within the time limit is dropped. An answer is kept for the same question until the kernel's
queue names a change: a script or a page that lists again and again costs one listing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import SpellError
from ..model.watched import (
    MAX_QUESTION,
    SOCKET,
    TIMEOUT,
    encode,
    identity,
    read_line,
    socket_address,
)

if TYPE_CHECKING:
    from ..model.index_row import Row
    from ..workspace import Workspace

__all__ = ["ListingServer"]

#: How long a peer has to send its whole question (a process asking sends it at once): half of
#: what an asker waits for its answer, so one stalled peer cannot make the next give up.
QUESTION_TIME = TIMEOUT / 2


class ListingServer:
    """Answer listings for ``ws``'s workspace on ``.spell/watch.sock`` until :meth:`stop`.

    Only the workspace's one watcher (the holder of its pid file's lock) runs one, so the
    socket file it finds at start is a dead watcher's and is replaced."""

    def __init__(self, ws: "Workspace", warn: Callable[[str], None]) -> None:
        self.root = Path(ws.root) if ws.root is not None else None
        self._own = lambda: type(ws)(ws.root, ws.config, actor="watch")  # (its own connection)
        self.warn = warn
        self.served = 0
        # Answers by question, while the kernel's queue names no change (see Feed.unchanged).
        self._answers: dict[bytes, bytes] = {}
        # Each session's part of an answer, by session folder (see _encoded).
        self._sessions: dict[str, tuple[tuple, bytes]] = {}
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "ListingServer":
        self._thread = threading.Thread(target=self._run, name="spell-listings", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.ready.set()

    def __enter__(self) -> "ListingServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            with self._own() as ws:
                for _ in range(2):  # the second listing starts the feed's watch (model/feed.py)
                    if self._stop.is_set():
                        return
                    ws.sessions.list_here({"status": "all"})
                self._serve(ws)
        except Exception as exc:  # (its socket goes with it: others list by themselves)
            self.warn(
                f"stopped answering listings (other processes list by themselves): "
                f"{type(exc).__name__}: {exc}"
            )
        finally:
            self.ready.set()

    def _serve(self, ws: "Workspace") -> None:
        assert self.root is not None
        path = self.root / SOCKET
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # a dead watcher's (see the class docstring)
            with socket_address(self.root) as address:
                server.bind(address)
            try:
                server.listen(64)
                server.settimeout(0.2)  # how soon a stop is noticed
                self.ready.set()
                while not self._stop.is_set():
                    try:
                        peer, _ = server.accept()
                    except TimeoutError:
                        continue
                    with peer:
                        self._answer(ws, peer)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def _answer(self, ws: "Workspace", peer: socket.socket) -> None:
        try:
            line = read_line(peer, MAX_QUESTION, QUESTION_TIME)
            if line is None:
                return
            if not ws.index.feed.unchanged():
                self._answers.clear()
            data = self._answers.get(line)
            if data is None:
                data = self._listing(ws, line)
                if len(self._answers) < 64:
                    self._answers[line] = data
            self.served += 1  # (before the answer: the asker may look right after it)
            peer.sendall(data)
        except OSError:
            pass  # a peer that went away or was too slow: the next one is served

    def _listing(self, ws: "Workspace", line: bytes) -> bytes:
        try:
            question = json.loads(line)
            query = question["list"]
            if not isinstance(query, dict):
                raise TypeError(f"a query is a mapping, not {type(query).__name__}")
            if question.get("workspace") != identity(self.root):
                raise ValueError("asked for another workspace (moved, or a linked socket)")
            parts = [self._encoded(ws, row, m) for row, m in ws.sessions.matching(query)]
            broken = encode({"broken": ws.sessions.broken})
        except (SpellError, OSError, KeyError, TypeError, ValueError, RecursionError) as exc:
            return encode({"error": str(exc)})  # the asker lists by itself, and says it its way
        # (the answer is made whole before a byte of it is sent)
        return b'{"sessions": [' + b", ".join(parts) + b"], " + broken[1:]

    def _encoded(self, ws: "Workspace", row: "Row", m: dict) -> bytes:
        """One session of an answer, as JSON: kept while its row holds the same manifest (as
        JSON text), count and time, which are all ``Sessions.info`` makes it of."""
        key = (row.json_text, row.artifact_count, row.last_at)
        kept = self._sessions.get(row.dir)
        if kept is None or kept[0] != key:
            if len(self._sessions) > 2 * len(ws.index.rows) + 1000:  # sessions gone since
                self._sessions.clear()
            info = ws.sessions.info(row.dir, m, row.artifact_count, row.last_at)
            kept = self._sessions[row.dir] = (key, encode(info)[:-1])
        return kept[1]
