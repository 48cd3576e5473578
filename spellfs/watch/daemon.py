"""One watcher per workspace: the pid file, and the background daemon's start and stop.

``.spell/daemon.pid`` holds one line, ``<pid> <mode> <state> <since>``, and is
``flock``-ed by the watcher that wrote it for as long as it runs (mode
``daemon`` or ``foreground``). The lock, not the pid, says whether a watcher is
running: a pid file nobody holds is stale (the process died, or its pid now
belongs to someone else) and is removed. The daemon's output goes to
``.spell/daemon.log``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import SpellError
from ..names import now, whole_number
from ..store.links import open_own

__all__ = ["WatchLock", "daemon_status", "start_daemon", "stop_daemon", "PID_FILE", "LOG_FILE"]

PID_FILE = ".spell/daemon.pid"
LOG_FILE = ".spell/daemon.log"
LOG_ROTATE_BYTES = 10 << 20


class AlreadyWatched(SpellError):
    """Another watcher holds the workspace."""


def _parse(text: str) -> dict:
    parts = text.split()
    info: dict = {"pid": None, "mode": None, "state": None, "since": None}
    if parts:
        info["pid"] = whole_number(parts[0])
    for key, value in zip(("mode", "state", "since"), parts[1:4]):
        info[key] = value
    return info


class WatchLock:
    """The pid file, locked by the running watcher."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / PID_FILE
        self.fd: int | None = None
        self.mode = ""
        self.since = ""

    def acquire(self, mode: str) -> dict | None:
        """Take the lock or raise :class:`AlreadyWatched`; return the stale pid file's info, if one
        was cleaned."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stale = None
        for _ in range(10):
            fd = open_own(self.path, PID_FILE, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                info = daemon_status(self.path.parent.parent)
                who = (
                    f"spell {'daemon' if info.get('mode') == 'daemon' else 'watch'}, pid "
                    f"{info.get('pid')}"
                )
                hint = (
                    "stop it with `spell daemon stop`"
                    if info.get("mode") == "daemon"
                    else "stop that one first"
                )
                raise AlreadyWatched(
                    f"a watcher is already running for this workspace ({who}; {hint})"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # removed by a watcher that was stopping: take the new file
                os.close(fd)
                continue
            old = os.pread(fd, 200, 0).decode("ascii", "replace")
            if old.strip():
                stale = _parse(old)
            self.fd, self.mode, self.since = fd, mode, now()
            self.set_state("starting")
            return stale
        raise SpellError(f"cannot lock {self.path}: it keeps changing (another watcher starting?)")

    def set_state(self, state: str) -> None:
        assert self.fd is not None
        line = f"{os.getpid()} {self.mode} {state} {self.since}\n".encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, line, 0)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still locked: nobody reads a half-gone watcher as running
        os.close(self.fd)
        self.fd = None


def daemon_status(root: Path) -> dict:
    """``{running, stale, pid, mode, state, since}`` of the workspace's watcher."""
    path = Path(root) / PID_FILE
    try:
        fd = open_own(path, PID_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return {
            "running": False,
            "stale": False,
            "pid": None,
            "mode": None,
            "state": None,
            "since": None,
        }
    try:
        info = _parse(os.pread(fd, 200, 0).decode("ascii", "replace"))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            info.update(running=True, stale=False)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            info.update(running=False, stale=True)
    finally:
        os.close(fd)
    return info


def clean_stale(root: Path) -> dict | None:
    """Remove a pid file no watcher holds; return what it said."""
    info = daemon_status(root)
    if not info["stale"]:
        return None
    path = Path(root) / PID_FILE
    fd = open_own(path, PID_FILE, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # someone took it meanwhile: not stale any more
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.unlink(path)
    finally:
        os.close(fd)
    return info


def _log_tail(root: Path, lines: int = 5) -> str:
    try:
        fd = open_own(Path(root) / LOG_FILE, LOG_FILE, os.O_RDONLY)
        with open(fd, "rb") as f:
            size = os.fstat(fd).st_size
            f.seek(max(0, size - (64 << 10)))  # (the tail is what is shown)
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_daemon(root: Path, config_file: str | None = None, wait: float = 30.0) -> dict:
    """Start the background watcher; return its status (``already`` True when one was running)."""
    root = Path(root)
    info = daemon_status(root)
    if info["running"]:
        return {**info, "already": True}
    stale = clean_stale(root)
    log = root / LOG_FILE
    log.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if log.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log, str(log) + ".1")
    cmd = [sys.executable, "-m", "spellfs", "-w", str(root)]
    if config_file:
        cmd += ["-c", str(Path(config_file).resolve())]
    cmd += ["watch", "--daemon-child"]
    with open(open_own(log, LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        info = daemon_status(root)
        if info["running"] and info["pid"] == proc.pid and info["state"] == "watching":
            proc.returncode = 0  # it lives on by design; no "still running" warning at exit
            return {**info, "already": False, "stale_removed": stale}
        code = proc.poll()
        if code is not None:
            raise SpellError(
                f"the daemon exited while starting (exit {code}); the end of {LOG_FILE}:\n"
                + _log_tail(root)
            )
        time.sleep(0.05)
    raise SpellError(
        f"the daemon did not report ready within {wait:g} s (pid {proc.pid}; see {LOG_FILE})"
    )


def stop_daemon(root: Path, wait: float = 15.0) -> dict:
    """Stop the workspace's watcher (TERM, then KILL after ``wait`` s); return what was stopped."""
    root = Path(root)
    info = daemon_status(root)
    if not info["running"]:
        return {**info, "stopped": False, "stale_removed": clean_stale(root)}
    pid = info["pid"]
    if not pid:
        raise SpellError(f"a watcher holds {PID_FILE} but it names no pid; stop it by hand")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not daemon_status(root)["running"]:
            clean_stale(root)
            return {**info, "stopped": True, "killed": False}
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not daemon_status(root)["running"]:
            break
        time.sleep(0.05)
    clean_stale(root)
    return {**info, "stopped": True, "killed": True}
