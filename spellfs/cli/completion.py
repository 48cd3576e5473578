"""Shell completion of session ids and names, artifact names and checkpoint numbers.

click completes commands and options itself (``_SPELL_COMPLETE=bash_source spell``);
:func:`add_completion` gives every argument named ``session``/``sessions``,
``artifact`` and ``checkpoint``/``from_``/``to`` a completer reading the workspace,
in one place, so commands need not repeat it. A completer never raises: a broken
or missing workspace completes to nothing.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import click
from click.shell_completion import CompletionItem

__all__ = ["add_completion"]


def _workspace(ctx: click.Context) -> Any:
    from ..workspace import Workspace

    root = ctx.find_root()
    return Workspace.open(root.params.get("workspace"), root.params.get("config_file"), actor="cli")


def _session_of(ctx: click.Context) -> str | None:
    value = ctx.params.get("session")
    return value if isinstance(value, str) and value else None


def sessions(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """Ids (8 characters, the name as help) and names that start with ``incomplete``."""
    with _workspace(ctx) as ws:
        found = ws.sessions.list({"status": "all"})
    items = [
        CompletionItem(s["id"][:8], help=s["name"]) for s in found if s["id"].startswith(incomplete)
    ]
    items += [
        CompletionItem(s["name"], help=s["id"][:8])
        for s in found
        if s["name"].startswith(incomplete) and incomplete and not s["id"].startswith(incomplete)
    ]
    return items


def artifacts(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    session = _session_of(ctx)
    if session is None:
        return []
    with _workspace(ctx) as ws:
        names = sorted({a["name"] for a in ws.artifacts.list(session)})
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def checkpoints(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    session = _session_of(ctx)
    if session is None:
        return []
    with _workspace(ctx) as ws:
        found = ws.history.checkpoints(session)
    return [
        CompletionItem(str(c["number"]), help=c.get("message") or None)
        for c in found
        if str(c["number"]).startswith(incomplete)
    ]


COMPLETERS: dict[str, Callable[[click.Context, str], list[CompletionItem]]] = {
    "session": sessions,
    "sessions": sessions,
    "artifact": artifacts,
    "checkpoint": checkpoints,
    "from_": checkpoints,
    "to": checkpoints,
}


def _safe(
    fn: Callable[[click.Context, str], list[CompletionItem]], ctx: click.Context, incomplete: str
) -> list[CompletionItem]:
    try:
        return fn(ctx, incomplete)
    except Exception:  # noqa: BLE001 - a completer must never print a traceback into the shell
        return []


def add_completion(cmd: click.Command) -> click.Command:
    """Give ``cmd``'s (and its subcommands') workspace arguments their completers."""
    for param in cmd.params:
        fn = COMPLETERS.get(param.name or "")
        if fn is not None and isinstance(param.type, click.types.StringParamType):
            param.shell_complete = functools.partial(_safe, fn)  # type: ignore[method-assign]
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            add_completion(sub)
    return cmd
