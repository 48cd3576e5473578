"""``spell run script.lua [args…]``: run a Lua 5.4 script against the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import SessionNotFound, UsageError

__all__ = ["run"]


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--sandbox",
    is_flag=True,
    help="No file or process access (io, os.execute, require, …) outside the Tool and Artifact "
    "globals. SPELL_SANDBOX=1 does the same; a replay of a run recorded so sets it.",
)
@click.option(
    "--max-memory",
    metavar="SIZE",
    default=None,
    help="Most memory the script's Lua values may take (e.g. 256M, 1G; 0: no limit; "
    "default 512M with --sandbox, else none).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Stop the script after SECONDS of wall-clock time (0: no limit; default 300 with "
    "--sandbox, else none).",
)
@click.argument("script", metavar="SCRIPT.lua")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(
    ctx: click.Context,
    sandbox: bool,
    max_memory: str | None,
    timeout: float | None,
    script: str,
    args: tuple[str, ...],
) -> None:
    """Run a Lua script; ARGS reach it as arg[1..] (arg[0] is the script).

    The globals Session, Artifact, State, JSON, Event, Hook and Tool (and Agent,
    when a model provider is configured) work on the workspace found as usual; with none found, the
    current directory becomes one. An error in the script prints its file and line and exits 1.
    """
    from ..config import load_config
    from ..workspace import Workspace, find_root, init_workspace

    obj = ctx.find_root().obj or {}
    from ..lua.sandbox import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT

    sandbox = sandbox or os.environ.get("SPELL_SANDBOX", "") == "1"  # (replays of sandboxed runs)

    memory = (
        _size(max_memory) if max_memory is not None else (DEFAULT_MAX_MEMORY if sandbox else None)
    )
    timeout = timeout if timeout is not None else (DEFAULT_TIMEOUT if sandbox else None)
    try:
        code = Path(script).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"script not found: {script}") from None
    except IsADirectoryError:
        raise UsageError(f"not a script file: {script} is a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot read script: {script}: {exc.strerror}") from None
    root = find_root(explicit=obj.get("workspace"))
    if root is None:
        root = Path.cwd()
        init_workspace(root)
        click.echo(f"spell: no workspace found; initialised one in {root}", err=True)
    config_file = obj.get("config_file")
    ws = Workspace(
        root, load_config(root, Path(config_file) if config_file else None), actor="script"
    )
    ctx.call_on_close(ws.close)
    preset = os.environ.get("SPELL_SESSION", "").strip()
    if preset:  # `spell replay` runs scripts this way, against the fork; users may too
        try:
            ws.current_session = ws.sessions.id(preset)
        except SessionNotFound:
            raise SessionNotFound(
                f"session not found: {preset[:64]} (from $SPELL_SESSION)"
            ) from None

    from ..lua.recording import end_run_session
    from ..lua.runtime import ScriptError, run_script
    from ..history import begin_run

    shown = script
    if os.environ.get(
        "SPELL_REPLAY"
    ):  # `spell replay` runs a stored copy; errors name the recorded script
        shown = os.environ.get("SPELL_SCRIPT_NAME", "").strip() or script
    record = begin_run(ws, shown, code, list(args), env_session=preset or None, sandbox=sandbox)
    finished = []

    def finish(status: int, error: str | None) -> None:
        if not finished:
            finished.append(status)
            record.finish(status, error)
            end_run_session(ws, status)

    def on_exit(status: int) -> None:  # os.exit from the script: the process ends inside Lua
        finish(status, None if status == 0 else f"os.exit({status})")
        ws.close()

    # Pure Lua code never returns to Python to notice Ctrl-C, so while the script runs
    # SIGINT ends the process at once, as it does the standalone `lua`. Every write is
    # atomic, and an unfinished run records nothing.
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        run_script(
            ws,
            shown,
            code,
            args,
            sandbox=sandbox,
            on_exit=on_exit,
            max_memory=memory,
            timeout=timeout,
        )
    except ScriptError as exc:
        finish(1, str(exc))
        raise
    except BaseException as exc:
        finish(130 if isinstance(exc, KeyboardInterrupt) else 1, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    finish(0, None)


def _size(text: str) -> int:
    """``256M``, ``1G``, ``65536`` (bytes) as bytes; a bad size is a UsageError."""
    import re

    m = re.fullmatch(r"\s*([0-9]+)\s*([kKmMgG]?)i?[bB]?\s*", text)
    if not m:
        raise UsageError(f"invalid --max-memory: {text!r} (a size like 256M or 1G)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]
