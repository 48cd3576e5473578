"""A second process for a bulk store: a forked twin that writes part of each chunk.

Python runs one thread at a time, and a bulk add is mostly Python work per file (read, hash,
pack, copy), so its threads overlap only their waiting. On two cores, a forked twin does part
of that work at the same time. The twin is forked before any thread starts, so it inherits
the batch (paths, contents, the hand-edit look) and no lock another thread held. It then works
in lock-step with its parent: it writes its part of a chunk only when told, after the parent
listed the chunk's copies in the in-flight journal, and sends back what it wrote; the parent
builds and appends the records (the commit point), and hands over the next chunk before it
does, so the twin writes meanwhile (:mod:`.artifact_writes`). The twin ignores Ctrl-C and dies
with its parent: the parent kills it and reaps it before any repair of an interrupted chunk,
so nothing is written after that repair.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import threading
from typing import Any, Callable

from ..errors import SpellError
from ..store import write_all

__all__ = ["Twin", "can_fork"]

_HEAD = struct.Struct("<Q")


def can_fork() -> bool:
    """Whether a twin can be forked safely: a POSIX fork, and no other thread running (a fork
    copies only the calling thread, and any lock another one holds stays held in the child)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def _send(fd: int, value: Any) -> None:
    data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    write_all(fd, _HEAD.pack(len(data)) + data)


def _read_exactly(fd: int, n: int) -> bytes | None:
    parts = []
    while n:
        part = os.read(fd, min(n, 1 << 20))
        if not part:
            return None  # the other end closed: it ended, or was killed
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _receive(fd: int) -> tuple[bool, Any]:
    head = _read_exactly(fd, _HEAD.size)
    if head is None:
        return False, None
    data = _read_exactly(fd, _HEAD.unpack(head)[0])
    return (False, None) if data is None else (True, pickle.loads(data))


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a ``kill -9`` of ``spell add``)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the closed pipe ends the twin instead
        pass


def _portable(exc: BaseException) -> BaseException:
    """``exc`` as the parent can unpickle it: itself, or a SpellError saying what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return SpellError(f"{type(exc).__name__}: {exc}")


class Twin:
    """A forked process that runs ``work(task)`` for each task its parent sends, in order."""

    def __init__(self, work: Callable[[Any], Any], at_end: Callable[[], None]) -> None:
        tasks_r, self._tasks = os.pipe()
        self._results, results_w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the twin: never returns
            os.close(self._tasks)
            os.close(self._results)
            _run(work, at_end, tasks_r, results_w, parent)
        self.pid: int | None = pid
        os.close(tasks_r)
        os.close(results_w)

    def submit(self, task: Any) -> None:
        try:
            _send(self._tasks, task)
        except BrokenPipeError:
            pass  # it died: result() says so

    def result(self) -> Any:
        """The result of the task submitted last, or the error it raised."""
        ok, reply = _receive(self._results)
        if not ok:
            raise SpellError(f"the second writer process of this store stopped ({self._end()})")
        done, value = reply
        if not done:
            raise value
        return value

    def _end(self) -> str:
        if self.pid is None:
            return "already reaped"
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:  # reaped for us (a program that ignores SIGCHLD)
            self.pid = None
            return "ended"
        self.pid = None
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.waitstatus_to_exitcode(status)}"

    def close(self, kill: bool = True) -> None:
        """End the twin: killed at once (an error or interrupt in the parent), or told there is
        no more work and let seal what it stored; reaped before this returns, either way."""
        os.close(self._tasks)  # a twin between tasks reads the end, finishes and exits
        if self.pid is not None:
            if kill:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._end()
        os.close(self._results)

    def __enter__(self) -> "Twin":
        return self

    def __exit__(self, kind: type | None, *rest: object) -> None:
        self.close(kill=kind is not None)


def _run(
    work: Callable[[Any], Any],
    at_end: Callable[[], None],
    tasks: int,
    results: int,
    parent: int,
) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills this one
        _die_with_parent()
        if os.getppid() != parent:  # it died before the line above took effect
            return
        while True:
            ok, task = _receive(tasks)
            if not ok:
                break
            try:
                reply = (True, work(task))
            except BaseException as exc:  # every error goes back to the parent, which raises it
                reply = (False, _portable(exc))
            _send(results, reply)
        at_end()
    except BaseException:
        code = 1
    finally:
        os._exit(code)
