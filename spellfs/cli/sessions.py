"""Workspace and session commands: init, new, ls, show, cat, add, status changes, rm."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from ..errors import UsageError
from ..names import printable
from ..workspace import init_workspace
from .output import (
    chosen_format,
    echo_json,
    format_option,
    hint,
    json_option,
    open_workspace,
    output,
    plural,
    progress,
    silence_stdout,
    when,
)

SESSION_COLUMNS = [
    ("id", lambda s: s["id"][:8]),
    ("name", "name"),
    ("status", "status"),
    ("tags", "tags"),
    ("artifacts", "artifact_count"),
    ("updated", lambda s: when(s["updated_at"])),
    ("path", "path"),
]
ARTIFACT_COLUMNS = [
    ("name", "name"),
    ("version", "version"),
    ("type", "artifact_type"),
    ("size", "size"),
    ("mime", "mime_type"),
    ("created", lambda a: when(a["created_at"])),
    ("tags", "tags"),
]


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option(
    "--git",
    "use_git",
    is_flag=True,
    help="Also make it a git repository with .gitignore and .gitattributes.",
)
def init(directory: str, use_git: bool) -> None:
    """Make DIRECTORY (default: here) a workspace."""
    root = Path(directory)
    new = init_workspace(root)
    if use_git:
        from ..git import init_git

        init_git(root)
    where = root.resolve()
    if new:
        click.echo(
            f"Initialised a spellfs workspace in {where}" + (" (with git)" if use_git else "")
        )
    else:
        click.echo(
            f"Already a spellfs workspace: {where}" + ("; git set up for it" if use_git else "")
        )


@click.command()
@click.argument("name")
@click.option("--description", "-d", default="", help="A sentence saying what the session is for.")
@click.option("--template", "-t", metavar="T", help="Take defaults from templates/T.yaml.")
@click.option("--tag", "tags", multiple=True, metavar="T", help="A tag (repeat for more).")
@click.option("--parent", metavar="SESSION", help="Parent session (id, prefix or directory).")
@click.pass_context
def new(
    ctx: click.Context,
    name: str,
    description: str,
    template: str | None,
    tags: tuple,
    parent: str | None,
) -> None:
    """Create a session called NAME and print its id."""
    if not name.strip():
        raise click.BadParameter("a session needs a name", param_hint="NAME")
    ws = open_workspace(ctx)
    sid = ws.sessions.create(
        name=name,
        description=description,
        tags=list(tags),
        template=template,
        parent_session_id=parent,
    )
    click.echo(sid)


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include completed and failed sessions.")
@click.option(
    "--status",
    type=click.Choice(["active", "suspended", "completed", "failed", "all"]),
    help="Only sessions with this status.",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="T",
    help="Only sessions with this tag (repeat: all must match).",
)
@click.option(
    "--sort",
    "sort_by",
    type=click.Choice(["created_at", "updated_at", "name"]),
    default="created_at",
    show_default=True,
    help="Order of the listing.",
)
@click.option("--limit", type=click.IntRange(min=0), help="At most this many.")
@format_option
@click.pass_context
def ls(
    ctx: click.Context,
    show_all: bool,
    status: str | None,
    tags: tuple,
    sort_by: str,
    limit: int | None,
    as_json: bool,
) -> None:
    """List sessions (active and suspended unless --all or --status)."""
    ws = open_workspace(ctx)
    query = {
        "status": "all" if show_all and not status else status,
        "tags": list(tags),
        "sort_by": sort_by,
        "limit": limit,
    }
    sessions = ws.sessions.list({k: v for k, v in query.items() if v not in (None, [])})
    for problem in ws.sessions.broken:
        hint(f"warning: {problem}")
    filtered = status or tags or show_all or limit is not None
    output(
        sessions,
        as_json,
        SESSION_COLUMNS,
        empty="no sessions match"
        if filtered
        else "no sessions (make one with `spell new NAME`; --all shows finished ones)",
    )


@click.command()
@click.argument("session")
@format_option
@click.pass_context
def show(ctx: click.Context, session: str, as_json: bool) -> None:
    """Show a session and its artifacts (--format jsonl, csv or tsv: the artifact listing alone)."""
    ws = open_workspace(ctx)
    info = ws.sessions.get(session)
    info["artifacts"] = ws.artifacts.list(session)
    extra = _session_extras(ws, session)
    info.update(extra)
    if as_json:
        output(info if chosen_format() == "json" else info["artifacts"], True)
        return
    import json

    for key in (
        "id",
        "name",
        "description",
        "status",
        "tags",
        "parent_session_id",
        "created_at",
        "updated_at",
        "path",
        "custom_metadata",
        "artifact_count",
    ):
        value = info.get(key)
        if isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False) if value else ""
        # read from disk (a hand edit, a clone): ESC, BEL or a line break is shown, not sent
        click.echo(f"{key + ':':<19}{'' if value is None else printable(str(value))}")
    usage = extra.get("usage")
    if usage and usage.get("searches"):
        click.echo(f"{'web searches:':<19}{usage['searches']}")
    if usage and usage["calls"]:
        click.echo(
            f"{'model calls:':<19}{usage['calls']} ({usage['replayed']} replayed, "
            f"{usage['cached']} cached), "
            f"{usage['input_tokens']} input + {usage['output_tokens']} output tokens"
        )
        for model, m in sorted(usage["by_model"].items()):
            click.echo(
                f"{'':<19}{model}: {plural(m['calls'], 'call')}, {m['input_tokens']} in + "
                f"{m['output_tokens']} out"
            )
    if info["artifacts"]:
        click.echo()
        output(info["artifacts"], False, ARTIFACT_COLUMNS)


def _session_extras(ws, session: str) -> dict:
    """Figures other areas add to `show` (token usage)."""
    from ..agent import usage_summary

    extras: dict = {}
    usage = usage_summary(ws, session)
    if usage:
        extras["usage"] = usage
    return extras


@click.command()
@click.argument("session")
@click.argument("artifact")
@click.pass_context
def cat(ctx: click.Context, session: str, artifact: str) -> None:
    """Print an artifact's content (ARTIFACT is a name, name@version, or #sequence like #7)."""
    ws = open_workspace(ctx)
    _, rec = ws.artifacts.find(session, artifact)
    local = ws.memory or ws.objects.has(rec["hash"])
    out = sys.stdout.buffer
    for chunk in ws.objects.iter_content(rec["hash"]):
        out.write(chunk)
    out.flush()
    if not local:  # fetched from the remote: a copy kept out of git can be written now
        from ..errors import SpellError

        with contextlib.suppress(SpellError, OSError):  # (else the next command writes it)
            ws.worktree.scan(ws.sessions.resolve(session))


@click.command()
@click.argument("session")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--type", "type_", default="user_input", show_default=True, help="Artifact type.")
@click.option("--name", help="Store under this name (one file only; default: the file's name).")
@click.option(
    "--tag", "tags", multiple=True, metavar="T", help="A tag for the artifacts (repeat for more)."
)
@json_option
@click.pass_context
def add(
    ctx: click.Context,
    session: str,
    files: tuple,
    type_: str,
    name: str | None,
    tags: tuple,
    as_json: bool,
) -> None:
    """Store FILES (or every file under a directory, recursively) as artifacts of SESSION.

    Paths in .spellignore are skipped. Every file is checked before any is stored; a
    large batch is committed in chunks, and each line printed names a stored file.
    """
    ws = open_workspace(ctx)
    from ..model import Ignore, collect_files, file_name

    ignore = Ignore(ws)
    chosen, skipped = collect_files(ws, ignore, files)
    for f, why in skipped:
        hint(f"skipped ({why}): {printable(f)}")
    if name is not None and len(chosen) > 1:
        raise click.UsageError("--name works with one file only")
    if not chosen and skipped:  # (every file given was skipped, each said above)
        raise click.UsageError("nothing to add: every file given was skipped")
    meta = {"tags": list(tags)} if tags else None
    m = ws.sessions.manifest(ws.sessions.resolve(session))
    if (
        m["status"] == "suspended" and chosen
    ):  # a finished one is refused by the store, with the way on
        ws.sessions.resume(session)
        click.echo(f"resumed suspended session {m['id'][:8]} to store into it", err=True)
    results: list[dict] = []
    reader_left = False
    with progress("adding", len(chosen)) as bar:

        def committed(ids: list[dict]) -> None:
            nonlocal reader_left
            batch = [{"file": f, **aid} for f, aid in zip(chosen[len(results) :], ids)]
            results.extend(batch)
            bar.advance(len(batch))
            if as_json or reader_left:
                return
            try:  # acknowledged as each chunk commits: an interrupt loses none of these
                click.echo(
                    "".join(
                        f"stored {name or file_name(r['file'])} as #{r['sequence']} "
                        f"({r['content_hash'][:12]})\n"
                        for r in batch
                    ),
                    nl=False,
                )
            except BrokenPipeError:  # `spell add S DIR | head -1`: the lines are a report of
                reader_left = True  # the add, which goes on to the end (it stopped half way)
                silence_stdout()

        ws.artifacts.store_files(
            session, chosen, type_, meta, [name] if name is not None else None, on_commit=committed
        )
    if as_json:
        echo_json(results)


def _status_command(verb: str, method: str, help_text: str) -> click.Command:
    @click.command(name=verb, help=help_text)
    @click.argument("sessions", nargs=-1, required=True)
    @click.pass_context
    def command(ctx: click.Context, sessions: tuple) -> None:
        ws = open_workspace(ctx)
        for s in sessions:
            m = getattr(ws.sessions, method)(s)
            click.echo(f"{m['id'][:8]} {m['name']}: {m['status']}")

    return command


suspend = _status_command("suspend", "suspend", "Suspend active SESSIONS.")
resume = _status_command("resume", "resume", "Make suspended SESSIONS active again.")
complete = _status_command(
    "complete", "complete", "Mark SESSIONS completed (they leave the default listing)."
)
fail = _status_command("fail", "fail", "Mark SESSIONS failed.")


@click.command()
@click.argument("sessions", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@click.option(
    "--force", is_flag=True, help="Remove even with hand edits in files/ (kept as objects first)."
)
@click.pass_context
def rm(ctx: click.Context, sessions: tuple, yes: bool, force: bool) -> None:
    """Remove SESSIONS' directories (their objects stay until `spell gc`)."""
    ws = open_workspace(ctx)
    for s in sessions:
        dir = ws.sessions.resolve(s)
        if not yes:
            if not sys.stdin.isatty():  # a script, a pipe ("echo n |"), cron: nobody to ask
                raise UsageError(
                    f"not removing sessions/{dir}: nobody to ask (stdin is not a terminal); "
                    "pass -y to remove without asking"
                )
            if not force:  # refuse before asking (the removal checks again, under the lock)
                ws.worktree.keep_as_objects(dir, False, "rm")
            click.confirm(f"Remove sessions/{dir}?", abort=True)
        sid, kept = ws.sessions.remove(dir, force, "rm")
        for name, oid in kept:
            click.echo(f"kept the unrecorded {name} as object {oid} (until `spell gc`)", err=True)
        click.echo(f"removed {sid[:8]} (sessions/{dir})")
