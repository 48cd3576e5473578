"""Maintenance commands: fsck and gc."""

from __future__ import annotations

import click

from .output import echo_json, json_option, open_workspace, plural, progress


@click.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Restore what can be restored (objects from files/ copies or the "
    "remote, unreadable record lines set aside under .spell/repair/) and list what cannot.",
)
@json_option
@click.pass_context
def fsck(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Verify every object, every record file, and that every record points at an existing
    object."""
    from ..maintenance import fsck as run_fsck

    ws = open_workspace(ctx)
    with progress("verifying objects") as bar:
        report = run_fsck(ws, bar.advance)
    fixed: list[str] = []
    if repair and not report.ok:
        from ..maintenance import repair as run_repair

        fixed, _ = run_repair(ws, report)
        report = run_fsck(ws)
    if as_json:
        echo_json({**report.as_dict(), "repaired": fixed})
    else:
        for line in fixed:
            click.echo(f"repaired: {line}")
        for p in report.problems:
            click.echo(f"{p.kind}: {p.detail}")
        on_remote = sum(p.kind == "on-remote" for p in report.problems)
        from ..maintenance.checks import NOT_FAILURES

        failures = sum(p.kind not in NOT_FAILURES for p in report.problems)
        remote_note = (
            f" ({on_remote} objects only on the remote: `spell pull`)" if on_remote else ""
        )
        click.echo(
            f"{plural(report.objects, 'object')}, {plural(report.sessions, 'session')}, "
            f"{plural(report.records, 'record')}{remote_note}: "
            + (
                "ok"
                if report.ok
                else plural(failures, "problem")
                + ("" if repair else " (try `spell fsck --repair`)")
            )
        )
    if not report.ok:
        ctx.exit(1)


@click.command()
@click.option("--dry-run", "-n", is_flag=True, help="List what would be removed; remove nothing.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Spare objects written in the last SECONDS (default 900), so a store in flight is never "
    "hit.",
)
@json_option
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, grace: float | None, as_json: bool) -> None:
    """Remove objects no record, checkpoint or run reaches, listing them with sizes."""
    from ..maintenance import GRACE_SECONDS, gc as run_gc

    ws = open_workspace(ctx)
    with progress("collecting garbage") as bar:
        report = run_gc(
            ws,
            dry_run=dry_run,
            grace=GRACE_SECONDS if grace is None else grace,
            advance=bar.advance,
            total=bar.total,
        )
    if as_json:
        echo_json(report.as_dict())
        return
    verb = "would remove" if dry_run else "removed"
    for item in report.removed:
        click.echo(f"{verb} {item['oid']} {item['size']} bytes")
    click.echo(
        f"{verb} {len(report.removed)} objects, {report.bytes} bytes; kept {report.kept}"
        + (
            f", spared {report.spared} written in the last "
            f"{int(GRACE_SECONDS if grace is None else grace)} s"
            if report.spared
            else ""
        )
        + (
            f"; wrote {report.packs_merged} packs and journals as fewer"
            if report.packs_merged
            else ""
        )
    )
