"""Listings a running watcher answers, so that a new process need not stat every session.

A process that lists sessions by itself must look at every ``session.yaml``, since a hand edit
can change any of them: 10,000 stats for 10,000 sessions, before it has read a row. A watcher
(``spell watch``, ``spell daemon start``) already follows the kernel's change queue
(:mod:`.feed`), so its own listings look only at what changed. It answers other processes'
listings over the Unix socket ``.spell/watch.sock``; the server is
:mod:`spellfs.watch.listings`.

Files stay the truth. The kernel queues an event inside the system call that changes a file,
and the watcher drains its queue after the question has arrived, so every change that finished
before a process asked is in its answer. When no watcher answers (none runs, it is starting,
slow or broken, or the answer is not what this module expects), the caller lists by itself,
as it would without a watcher.

The wire format: one line of JSON each way. A question is ``{"list": query, "workspace":
[dev, inode]}``; an answer is ``{"sessions": [...], "broken": [...]}``, or ``{"error": message}``
(the caller then lists by itself, which raises the same error with its own type). The
``workspace`` is the asker's workspace folder as the file system knows it: a watcher answers
only for its own (not after the folder was moved away from it, nor through a socket that is a
link to, or a copy of, another workspace's).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator

__all__ = ["SOCKET", "TIMEOUT", "ask", "identity", "socket_address", "read_line", "encode"]

SOCKET = ".spell/watch.sock"
#: How long a question waits for its answer before the caller lists by itself (seconds).
TIMEOUT = 1.0
#: The longest answer a process reads (10,000 sessions make about 3.5 MB), and question.
MAX_ANSWER = 256 << 20
MAX_QUESTION = 1 << 20
#: ``sun_path`` holds 108 bytes: a longer path is reached through the folder's descriptor.
_SUN_PATH = 100


@contextlib.contextmanager
def socket_address(root: str | os.PathLike) -> Iterator[str]:
    """The socket's address: its path, or, when that is too long for ``sun_path``, a path
    through ``/proc/self/fd`` of the ``.spell`` folder, held open for the ``with`` block."""
    path = os.path.join(os.fspath(root), SOCKET)
    if len(os.fsencode(path)) < _SUN_PATH:
        yield path
        return
    fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


def encode(message: dict) -> bytes:
    """One line of the wire format (TypeError or ValueError for what JSON cannot carry)."""
    return json.dumps(message, ensure_ascii=False).encode() + b"\n"


def read_line(sock: socket.socket, limit: int, timeout: float = TIMEOUT) -> bytes | None:
    """One line (without its newline) read within ``timeout`` seconds in all, or None when the
    peer closed first or sent more than ``limit`` bytes (TimeoutError when it was too slow)."""
    parts: list[bytes] = []
    size = 0
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no whole line in time")
        sock.settimeout(left)
        chunk = sock.recv(1 << 20)
        if not chunk:
            return None
        end = chunk.find(b"\n")
        if end >= 0:
            parts.append(chunk[:end])
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return None


def identity(root: str | os.PathLike) -> list[int]:
    """The workspace folder as the file system knows it (device, inode), whatever its path."""
    st = os.stat(root)
    return [st.st_dev, st.st_ino]


def ask(root: Path | None, question: dict, timeout: float = TIMEOUT) -> dict | None:
    """The watcher's answer to ``question``, or None when no watcher answers in ``timeout``
    seconds (the caller then does the work itself)."""
    if root is None or not os.path.exists(os.path.join(os.fspath(root), SOCKET)):
        return None  # the common case without a watcher: one stat, no socket made
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            with socket_address(root) as address:
                sock.connect(address)
            sock.sendall(encode({**question, "workspace": identity(root)}))
            line = read_line(sock, MAX_ANSWER, timeout)
    except (OSError, TypeError, ValueError):  # refused, gone, timed out; a question not JSON
        return None
    if line is None:
        return None
    try:
        answer: Any = json.loads(line)
    except (ValueError, RecursionError):  # (nested past what the parser takes)
        return None
    if not isinstance(answer, dict) or "error" in answer:
        return None
    return answer
