"""``process_executor`` (a machine tool, off by default): run a program in the workspace.

``{executable, arguments = {…}, timeout_ms = 30000, input?}`` -> ``{stdout, stderr,
exit_code, success, timed_out}``. No shell: the executable and its arguments go to the
operating system as given. The working directory is the workspace root; a run that
outlives ``timeout_ms`` is killed and reported as ``timed_out``.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]


def _process_executor(params: dict, ctx: Any) -> dict:
    executable = text(params, "executable", "command")
    arguments = params.get("arguments", params.get("args")) or []
    if not isinstance(arguments, list):
        raise UsageError("parameter 'arguments' must be a list of strings")
    timeout = params.get("timeout_ms", 30000)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError("parameter 'timeout_ms' must be a positive number")
    program = shutil.which(executable)
    if program is None:
        raise UsageError(f"command not found: {executable}")
    stdin = params.get("input")
    try:
        done = subprocess.run(
            [program, *map(str, arguments)],
            cwd=getattr(ctx, "root", None),
            input=stdin.encode() if isinstance(stdin, str) else None,
            capture_output=True,
            timeout=timeout / 1000,
            stdin=None if isinstance(stdin, str) else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        return {
            "executable": executable,
            "stdout": (e.stdout or b"").decode("utf-8", "replace"),
            "stderr": (e.stderr or b"").decode("utf-8", "replace"),
            "exit_code": None,
            "success": False,
            "timed_out": True,
        }
    return {
        "executable": executable,
        "stdout": done.stdout.decode("utf-8", "replace"),
        "stderr": done.stderr.decode("utf-8", "replace"),
        "exit_code": done.returncode,
        "success": done.returncode == 0,
        "timed_out": False,
    }


TOOL = Tool(
    "process_executor",
    "Run a program (no shell) in the workspace, with a timeout",
    _process_executor,
    category="system",
    machine=True,
    operations=("execute",),
    parameters={
        "executable": "program name",
        "arguments": "list of arguments",
        "timeout_ms": "milliseconds",
    },
)
