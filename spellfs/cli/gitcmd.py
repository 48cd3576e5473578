"""Sharing commands: status, commit (git), export and import (one session as a tar.zst)."""

from __future__ import annotations

import click

from ..names import printable
from .output import echo_json, hint, json_option, open_workspace, progress


@click.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Per session: changes since its last checkpoint, and what is not committed to git."""
    from ..git import status as git_status

    ws = open_workspace(ctx)
    report = git_status(ws)
    if as_json:
        echo_json(report)
        return
    if not report["git"]:
        click.echo("not a git repository (make one with `spell init --git`)")
    else:
        where = f"on branch {report['branch']}" if report["branch"] else "HEAD detached"
        click.echo(
            where
            + (" — merge in progress: run `spell commit` to finish it" if report["merging"] else "")
        )
    if not report["sessions"]:
        click.echo("no sessions")
    for s in report["sessions"]:
        click.echo(f"{s['path'].split('/', 1)[1]}  {s['name'] or ''}".rstrip())
        if s.get("error"):
            click.echo(f"  error: {s['error']}")
        hand = s.get("unrecorded") or {}
        for kind in ("modified", "added", "deleted"):
            if hand.get(kind):
                click.echo(f"  {kind} by hand, not yet recorded: {', '.join(hand[kind])}")
        for recorded, what in (
            (False, "never recorded (an artifact is a plain file)"),
            (
                True,
                "a recorded artifact's copy replaced by what spellfs cannot record (the record "
                "is kept: remove it, and `spell restore SESSION N --force` writes the copy back)",
            ),
        ):
            names = [n for n in s.get("not_files") or () if n["recorded"] is recorded]
            if names:
                shown = ", ".join(f"{printable(n['name'])} ({n['kind']})" for n in names)
                click.echo(f"  {what}: {shown}")
        if hand.get("not_local"):
            click.echo(
                "  not local (no copy, object not here: `spell pull` fetches it from a remote): "
                f"{', '.join(hand['not_local'])}"
            )
        cp = s["checkpoint"]
        if cp is None:
            if not s.get("error"):  # (else whether there are any is not known)
                click.echo("  no checkpoints")
        elif s["since_checkpoint"] is None:  # (the error above says why)
            click.echo(f"  since checkpoint {cp['number']}: cannot be told")
        else:
            click.echo(f"  since checkpoint {cp['number']}: {_since_text(s['since_checkpoint'])}")
        if "uncommitted" in s:
            paths = s["uncommitted"]
            if paths:
                shown = ", ".join(printable(p) for p in paths[:5]) + (
                    f" and {len(paths) - 5} more" if len(paths) > 5 else ""
                )
                click.echo(f"  not committed: {shown}")
            else:
                click.echo("  committed")
    if report["git"] and (report["workspace"] or report.get("objects")):
        extra = list(report["workspace"])
        if report.get("objects"):
            extra.append(f"{report['objects']} objects")
        click.echo(f"workspace: not committed: {', '.join(extra)}")


def _since_text(since: dict | None) -> str:
    parts = [f"{len(since[k])} {k}" for k in ("added", "removed", "changed") if since and since[k]]
    if since and since["manifest"]:
        parts.append(f"{', '.join(since['manifest'])} edited")
    if since and since["state"]:
        parts.append(f"state: {len(since['state'])} keys")
    return ", ".join(parts) or "no changes"


@click.command()
@click.option("-m", "--message", help="Subject line (default: a summary of the sessions changed).")
@json_option
@click.pass_context
def commit(ctx: click.Context, message: str | None, as_json: bool) -> None:
    """Stage sessions, records, objects, templates and state, and commit them to git."""
    from ..git import commit as git_commit

    ws = open_workspace(ctx)
    result = git_commit(ws, message)
    if as_json:
        echo_json(result.as_dict())
        return
    if result.resolved:
        click.echo(f"resolved {len(result.resolved)} files/ copies from the merged records")
    for dir, hand in result.recorded.items():
        names = [*hand["modified"], *hand["added"], *hand["deleted"]]
        click.echo(f"recorded hand changes in sessions/{dir}: {', '.join(names)}")
    for dir, hand in result.unrecorded.items():
        names = [*hand["modified"], *hand["added"], *hand["deleted"]]
        click.echo(
            f"warning: not recorded (a finished session is read-only): sessions/{dir}: "
            f"{', '.join(names)}",
            err=True,
        )
    for w in result.warnings:
        hint(f"warning: committed a file that does not load: {w}")
    if result.kept_out:
        limit = ws.config.get("git.max_object_bytes")
        click.echo(
            f"kept out of git (above git.max_object_bytes, {limit} bytes): "
            f"{len(result.kept_out)} paths; "
            "they travel through a remote: run `spell push` (see `spell remote add`)"
        )
    if not result.committed:
        click.echo("nothing to commit (the workspace matches the last commit)")
        return
    click.echo(f"[{result.sha[:10]}] {result.message.rstrip()}")


@click.command()
@click.argument("session")
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Archive to write (a tar stream compressed with zstd, e.g. session.tar.zst; "
    "- for stdout).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Record hand changes in files/ first (as `spell save` does) instead of refusing.",
)
@json_option
@click.pass_context
def export(ctx: click.Context, session: str, out: str, force: bool, as_json: bool) -> None:
    """Write SESSION, its history and every object it reaches to one archive (-o - : stdout)."""
    from ..git import export_session

    ws = open_workspace(ctx)
    if out == "-":
        _export_to_stdout(ws, session, as_json, force)
        return
    with progress("exporting") as bar:
        result = export_session(ws, session, out, bar.advance, force=force)
    _say_recorded(result)
    if as_json:
        echo_json(result.__dict__)
    else:
        click.echo(
            f"exported {result.session_id[:8]} to {result.path}: {result.files} files, "
            f"{result.objects} objects"
        )


def _spool(ws) -> "tuple[int, str]":
    import os
    import tempfile

    work = ws.storage.internal("tmp")  # (refused if a link)
    os.makedirs(work, exist_ok=True)
    return tempfile.mkstemp(prefix="stdio-", suffix=".tar.zst", dir=work)


def _say_recorded(result) -> None:
    """On stderr: the hand changes `export --force` recorded first."""
    for kind, names in (result.recorded or {}).items():
        if names:
            click.echo(f"recorded first ({kind} by hand): {', '.join(names)}", err=True)


def _export_to_stdout(ws, session: str, as_json: bool, force: bool = False) -> None:
    """The archive on stdout (like `git archive`), made whole in .spell/tmp first, so a failed
    export writes nothing; the summary goes to stderr."""
    import os
    import shutil
    import sys

    from ..git import export_session

    if as_json:
        raise click.UsageError("--json and -o - both want stdout")
    if sys.stdout.isatty():
        raise click.UsageError(
            "refusing to write an archive to a terminal (redirect or pipe stdout)"
        )
    fd, tmp = _spool(ws)
    os.close(fd)
    try:
        with progress("exporting") as bar:
            result = export_session(ws, session, tmp, bar.advance, force=force)
        _say_recorded(result)
        with open(tmp, "rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()
    finally:
        os.unlink(tmp)
    hint(
        f"exported {result.session_id[:8]} to stdout: {result.files} files, {result.objects} "
        "objects"
    )


@click.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@json_option
@click.pass_context
def import_(ctx: click.Context, file: str, as_json: bool) -> None:
    """Add the session archived in FILE (made by `spell export`; - reads stdin); every object is
    verified."""
    import os
    import shutil
    import sys

    from ..git import import_session

    ws = open_workspace(ctx)
    spooled = None
    if file == "-":  # spooled to .spell/tmp: the import reads its archive twice if it must
        fd, spooled = _spool(ws)
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
    try:
        with progress("importing") as bar:
            result = import_session(ws, spooled or file, advance=bar.advance)
    finally:
        if spooled:
            os.unlink(spooled)
    if as_json:
        echo_json(result.__dict__)
    else:
        click.echo(
            f"imported {result.session_id[:8]} as sessions/{result.dir}: {result.files} files, "
            f"{result.objects} objects ({result.new_objects} new)"
        )
