"""Maintenance commands: fsck (and gc, from the history area)."""

from __future__ import annotations

import click

from .output import echo_json, json_option, open_workspace, progress


@click.command()
@json_option
@click.pass_context
def fsck(ctx: click.Context, as_json: bool) -> None:
    """Verify every object and that every record points at an existing object."""
    from ..fsck import fsck as run_fsck

    ws = open_workspace(ctx)
    with progress("verifying objects") as bar:
        report = run_fsck(ws, bar.advance)
    if as_json:
        echo_json(report.as_dict())
    else:
        for p in report.problems:
            click.echo(f"{p.kind}: {p.detail}")
        click.echo(f"{report.objects} objects, {report.sessions} sessions, {report.records} records: "
                   + ("ok" if report.ok else f"{len(report.problems)} problems"))
    if not report.ok:
        ctx.exit(1)
