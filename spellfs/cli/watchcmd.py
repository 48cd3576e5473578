"""The watcher commands: `spell watch` (foreground) and `spell daemon start|stop|status`."""

from __future__ import annotations

import json
import signal
import sys
import threading

import click

from .output import echo_json, json_option, open_workspace, progress


def _printer(as_json: bool, stamp: bool):
    """One line per change: JSON for programs, a sentence for people; warnings on stderr."""
    lock = threading.Lock()

    def emit(c: dict) -> None:
        if c["event"] == "warning":
            line, err = f"warning: {c['message']}", True
        elif as_json:
            line, err = json.dumps(c, ensure_ascii=False, default=str), False
        else:
            line, err = _human(c), False
        if stamp:
            line = f"{c['time'][:19].replace('T', ' ')} {line}"
        with lock:
            click.echo(line, err=err and not stamp)

    return emit


def _human(c: dict) -> str:
    ev = c["event"]
    if ev == "stored":
        return f"stored    {c['path']}  (version {c['version']}, {c['size']} bytes)"
    if ev == "deleted":
        return f"deleted   {c['path']}"
    if ev == "manifest":
        what = "fixed" if c.get("fixed") else "changed " + ", ".join(c.get("fields") or [])
        return f"manifest  {c['path']}  ({what}; status {c['status']})"
    if ev == "invalid":
        return f"invalid   {c['error']}  (last good state kept; fix the file)"
    if ev == "suspended":
        return (
            f"suspended {c['session']}  (idle {c['idle_seconds']} s, over session_timeout_seconds)"
        )
    return f"{ev:<9} {c.get('path', c.get('session', ''))}"


@click.command()
@json_option
@click.option(
    "--poll",
    is_flag=True,
    help="Poll for changes instead of using the OS's notifications (network file systems).",
)
@click.option("--daemon-child", is_flag=True, hidden=True)
@click.pass_context
def watch(ctx: click.Context, as_json: bool, poll: bool, daemon_child: bool) -> None:
    """Record hand edits under sessions/ until interrupted.

    A file created or changed under a session's files/ becomes a new artifact
    version (type user_input, created_by watch); a deleted one leaves the
    listing; a bad session.yaml is reported with its file and line. On start it
    catches up with what changed while nothing watched. While it runs, other
    processes' session listings (spell ls, Session.list) ask it rather than read
    every session.yaml. With --json, one JSON line per change on stdout.
    """
    from ..watch import WatchLock
    from ..watch import Watcher

    ws = open_workspace(ctx, actor="watch")
    lock = WatchLock(ws.root)
    stale = lock.acquire("daemon" if daemon_child else "foreground")
    emit = _printer(as_json and not daemon_child, stamp=daemon_child)
    if stale and stale.get("pid"):
        emit(
            {
                "event": "warning",
                "time": "",
                "message": f"removed a stale pid file (pid {stale['pid']} was not running)",
            }
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    if daemon_child:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    bar = progress if (sys.stderr.isatty() and not daemon_child) else None
    watcher = Watcher(ws, emit, polling=poll, progress=bar, answer_listings=True)
    try:
        watcher.start()
        assert watcher.listings is not None
        for ready in (watcher.ready, watcher.listings.ready):
            while not ready.wait(0.1) and not stop.is_set():
                pass  # catching up; a SIGTERM meanwhile must not wait for it to finish
        if watcher.error is None and not stop.is_set():
            lock.set_state("watching")
            n = len(ws.index.rows)
            click.echo(
                f"{'' if not daemon_child else watcher_stamp()}watching {ws.root} "
                f"({watcher.mode}, {n} sessions)" + ("" if daemon_child else "; Ctrl-C to stop"),
                err=not daemon_child,
            )
        while watcher.error is None and not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
        lock.release()
        if daemon_child:
            click.echo(f"{watcher_stamp()}stopped")
    if watcher.error is not None:
        ctx.exit(1)


def watcher_stamp() -> str:
    from ..names import now

    return now()[:19].replace("T", " ") + " "


@click.group()
def daemon() -> None:
    """Run the watcher in the background (pid and log under .spell/)."""


def _root(ctx: click.Context):
    from ..workspace import find_root
    from ..errors import WorkspaceNotFound

    obj = ctx.find_root().obj or {}
    root = find_root(explicit=obj.get("workspace"))
    if root is None:
        raise WorkspaceNotFound(
            "no workspace here (no spell.yaml or .spell/ in this directory or above; "
            "make one with `spell init`)"
        )
    return root, obj.get("config_file")


@daemon.command()
@json_option
@click.pass_context
def start(ctx: click.Context, as_json: bool) -> None:
    """Start the background watcher (one per workspace)."""
    from ..watch import start_daemon

    root, config_file = _root(ctx)
    info = start_daemon(root, config_file)
    if as_json:
        echo_json(info)
    elif info["already"]:
        click.echo(f"the daemon is already running (pid {info['pid']}, {info['mode']})")
    else:
        if info.get("stale_removed"):
            click.echo(
                f"removed a stale pid file (pid {info['stale_removed'].get('pid')} was not running)"
            )
        click.echo(f"started the daemon (pid {info['pid']}); log: .spell/daemon.log")


@daemon.command()
@json_option
@click.pass_context
def stop(ctx: click.Context, as_json: bool) -> None:
    """Stop the background watcher."""
    from ..watch import stop_daemon

    root, _ = _root(ctx)
    info = stop_daemon(root)
    if as_json:
        echo_json(info)
    elif info["stopped"]:
        click.echo(
            f"stopped the daemon (pid {info['pid']})"
            + (" (killed: it did not stop in time)" if info.get("killed") else "")
        )
    else:
        if info.get("stale_removed"):
            click.echo(
                f"removed a stale pid file (pid {info['stale_removed'].get('pid')} was not running)"
            )
        click.echo("the daemon is not running")


@daemon.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Say whether a watcher runs for this workspace (exit 0 running, 1 not)."""
    from ..watch import daemon_status

    root, _ = _root(ctx)
    info = daemon_status(root)
    if as_json:
        echo_json(info)
    elif info["running"]:
        what = "the daemon" if info["mode"] == "daemon" else "a foreground `spell watch`"
        click.echo(f"{what} is running (pid {info['pid']}, {info['state']}, since {info['since']})")
    else:
        click.echo(
            "the daemon is not running"
            + (f" (stale pid file from pid {info['pid']})" if info["stale"] else "")
        )
    if not info["running"]:
        ctx.exit(1)
