"""`spell daemon start|stop|status` and `spell watch` as real subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spellfs import Workspace
from spellfs.watch.daemon import PID_FILE, daemon_status

from test_watch_watcher import wait_for

SPELL = [sys.executable, "-m", "spellfs"]


@pytest.fixture
def session(root: Path):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="demo")
        dir = ws.sessions.resolve(sid)
    return sid, root / "sessions" / dir / "files"


@pytest.fixture
def daemon(root: Path, spell):
    """Stop whatever daemon a test started, whatever happened."""
    yield
    if daemon_status(root)["running"]:
        spell("-w", str(root), "daemon", "stop")


def versions(root: Path, sid: str, name: str) -> list[dict]:
    with Workspace.open(root) as ws:
        log = ws.log(ws.sessions.resolve(sid))
        log.refresh()
        return list(log.versions.get(name, []))


def test_daemon_start_records_changes_and_stops(root: Path, session, spell, daemon) -> None:
    sid, files = session
    r = spell("-w", str(root), "daemon", "start")
    assert r.returncode == 0, r.stderr
    assert b"started the daemon" in r.stdout
    pid = daemon_status(root)["pid"]
    r = spell("-w", str(root), "daemon", "start")
    assert r.returncode == 0 and f"already running (pid {pid}".encode() in r.stdout
    r = spell("-w", str(root), "daemon", "status")
    assert r.returncode == 0, r.stdout
    assert re.fullmatch(
        rf"the daemon is running \(pid {pid}, [a-z -]+, since \S+\)\n", r.stdout.decode()
    )

    (files / "hand.md").write_text("typed by a person")
    [rec] = wait_for(lambda: versions(root, sid, "hand.md"))
    assert rec["created_by"] == "watch" and rec["type"] == "user_input"

    r = spell("-w", str(root), "watch")  # one watcher per workspace
    assert r.returncode == 1 and b"already running" in r.stderr

    r = spell("-w", str(root), "daemon", "stop")
    assert r.returncode == 0 and f"stopped the daemon (pid {pid})".encode() in r.stdout
    assert not (root / PID_FILE).exists()
    r = spell("-w", str(root), "daemon", "status")
    assert r.returncode == 1 and b"not running" in r.stdout
    log = (root / ".spell" / "daemon.log").read_text()
    assert "stored    sessions/" in log and "hand.md" in log and "stopped" in log


def test_stale_pid_file_is_cleaned_up(root: Path, session, spell, daemon) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    (root / PID_FILE).write_text(f"{gone.pid} daemon watching 2020-01-01T00:00:00Z\n")
    r = spell("-w", str(root), "daemon", "status")
    assert r.returncode == 1 and b"stale pid file" in r.stdout
    r = spell("-w", str(root), "daemon", "start")
    assert r.returncode == 0, r.stderr
    assert f"removed a stale pid file (pid {gone.pid}".encode() in r.stdout
    info = daemon_status(root)
    assert info["running"] and info["pid"] != gone.pid
    # a pid file naming a *live* process that holds no lock is just as stale
    spell("-w", str(root), "daemon", "stop")
    (root / PID_FILE).write_text(f"{os.getpid()} daemon watching 2020-01-01T00:00:00Z\n")
    r = spell("-w", str(root), "daemon", "stop")
    assert r.returncode == 0 and b"removed a stale pid file" in r.stdout
    assert not (root / PID_FILE).exists()


def test_foreground_watch_json_lines(root: Path, session) -> None:
    sid, files = session
    proc = subprocess.Popen(
        [*SPELL, "-w", str(root), "watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert b"watching" in proc.stderr.readline()
        assert daemon_status(root)["mode"] == "foreground"
        (files / "a.txt").write_text("one")
        line = json.loads(proc.stdout.readline())
        assert line["event"] == "stored" and line["name"] == "a.txt" and line["version"] == 1
        assert line["session_id"] == sid and line["path"].endswith("/files/a.txt")
        (files / "a.txt").unlink()
        line = json.loads(proc.stdout.readline())
        assert line["event"] == "deleted" and line["name"] == "a.txt"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert not (root / PID_FILE).exists()


def test_sigterm_during_catch_up_stops_at_once_and_loses_nothing(
    root: Path, tmp_path: Path
) -> None:
    (root / "spell.yaml").write_text("sessions:\n  max_sessions: 1000\n")
    with Workspace.open(root) as ws:
        for i in range(100):
            files = root / ws.sessions.get(ws.sessions.create(name=f"s{i}"))["path"] / "files"
            files.mkdir(exist_ok=True)
            for j in range(30):
                (files / f"f{j}.txt").write_text(f"written by hand {i} {j}")
    time.sleep(1)  # past the settle time: a catch-up records every file at once, none is deferred
    log = open(tmp_path / "watch.log", "wb")
    proc = subprocess.Popen(
        [*SPELL, "-w", str(root), "watch"], stdout=log, stderr=subprocess.STDOUT
    )
    wait_for(lambda: (tmp_path / "watch.log").read_bytes().count(b"stored") >= 20)  # catching up
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)  # at the next session, not after the other ~3,000 files
    assert proc.returncode == 0
    with Workspace.open(root) as ws:
        recorded = sum(s["artifact_count"] for s in ws.sessions.list({"limit": None}))
        assert 20 <= recorded < 3000
        from spellfs.maintenance.checks import fsck

        assert fsck(ws).ok
        from spellfs.watch.watcher import Watcher

        with Watcher(ws, lambda e: None) as w:  # the next start catches up with the rest
            w.ready.wait(120)
        assert sum(s["artifact_count"] for s in ws.sessions.list({"limit": None})) == 3000


def test_daemon_catches_up_on_start(root: Path, session, spell, daemon) -> None:
    sid, files = session
    (files / "offline.txt").write_text("written while nothing watched")
    t0 = time.monotonic()
    r = spell("-w", str(root), "daemon", "start")
    assert r.returncode == 0, r.stderr
    [rec] = wait_for(lambda: versions(root, sid, "offline.txt"))
    assert rec["created_by"] == "watch"
    assert time.monotonic() - t0 < 15
