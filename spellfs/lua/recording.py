"""Where a run records what its scripts do: its session and its call recorder.

A script's agent calls, searches and workflow runs are recorded in the current session,
else ``SPELL_SESSION``, else one automatic session per run (:func:`run_session`), and
numbered by one :class:`~spellfs.agent.recorder.Recorder` per runtime
(:func:`run_recorder`). This is separate from the ``Agent`` global (:mod:`.agent_api`)
because the ``Tool`` and ``Workflow`` globals and ``spell run`` use it too, with no agent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..names import usable_name

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["end_run_session", "recording_session", "run_recorder", "run_session"]


def run_session(ws: "Workspace") -> str:
    """The automatic session of this run, made on first need and named after the script.

    rs-llmspell records nothing, so its scripts call agents (and run workflows) outside any
    session; here such a call is recorded in one session per run rather than refused.
    """
    sid = ws.__dict__.get("_run_session")
    if sid is None:
        import sys
        from pathlib import Path

        script = Path(ws.run.script).stem if ws.run is not None else "script"
        sid = ws.sessions.create(
            name=usable_name(script, "script"),
            description=f"automatic session of a run of {script}",
            tags=["automatic"],
        )
        ws.__dict__["_run_session"] = sid
        print(
            f"spell: recording outside any session: in automatic session {sid[:8]} ({script})",
            file=sys.stderr,
        )
    return sid


def end_run_session(ws: "Workspace", exit_status: int) -> None:
    """The run is over: its automatic session (if it made one) is completed, or failed, so it
    leaves the live sessions (``max_sessions`` counts them) and, like the run, is a record.
    Its status is set directly: the script's hooks are not run after the script."""
    sid = ws.__dict__.pop("_run_session", None)
    if sid is not None:
        ws.sessions.set_manifest_fields(sid, status="completed" if exit_status == 0 else "failed")


def recording_session(ws: "Workspace") -> str:
    """Where a call or workflow run is recorded: the current session, else ``SPELL_SESSION``
    (as ``spell run`` in a session and ``spell replay`` set it), else the run's automatic one."""
    return ws.current_session or (os.environ.get("SPELL_SESSION") or "").strip() or run_session(ws)


def run_recorder(rt: "Runtime", ws: "Workspace") -> Any:
    """The runtime's :class:`~spellfs.agent.recorder.Recorder`, made on first need: agents and
    the ``web_search`` tool share it, so their calls are numbered and recorded in one order."""
    rec = rt.__dict__.get("recorder")
    if rec is None:
        from ..agent import Recorder

        rec = rt.__dict__["recorder"] = Recorder(ws)
    return rec
