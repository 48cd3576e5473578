"""Remote commands: ``remote add|list|remove``, ``push``, ``pull`` (SPEC §7)."""

from __future__ import annotations

import click

from .output import echo_json, format_option, json_option, open_workspace, output, progress

REMOTE_OPTION = click.option(
    "--remote",
    "-r",
    "remote_name",
    metavar="NAME",
    help="Remote to use (default: the first in spell.yaml).",
)


@click.group()
def remote() -> None:
    """Object-storage remotes, kept in spell.yaml under `remotes:`.

    URLs are s3://bucket/prefix (any S3-compatible service), gs://bucket/prefix,
    az://container/prefix, https://host/path (WebDAV) or file:///path.
    Credentials are never written to the workspace: they come from obstore's
    credential providers (for S3 the boto3 chain when installed: AWS_* variables,
    AWS_PROFILE with SSO, assume-role or credential_process).
    """


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--endpoint-url", metavar="URL", help="S3 endpoint of a non-AWS service (http(s)://host:port)."
)
@click.option(
    "--region", metavar="REGION", help="S3 region (default: $AWS_REGION, else us-east-1)."
)
@json_option
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    url: str,
    endpoint_url: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Add remote NAME at URL; the first remote added is the default."""
    from ..remote import add_remote

    result = add_remote(open_workspace(ctx), name, url, endpoint_url, region)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"added remote {name}: {url}" + (" (default)" if result["default"] else ""))


@remote.command("list")
@format_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the configured remotes (the default first)."""
    from ..remote import list_remotes

    rows = list_remotes(open_workspace(ctx))
    output(
        rows,
        as_json,
        [
            ("name", "name"),
            ("url", "url"),
            ("endpoint", "endpoint_url"),
            ("region", "region"),
            ("default", lambda r: "*" if r["default"] else ""),
        ],
        empty="no remotes (add one with `spell remote add NAME URL`)",
    )


@remote.command("remove")
@click.argument("name")
@json_option
@click.pass_context
def remove(ctx: click.Context, name: str, as_json: bool) -> None:
    """Remove remote NAME from spell.yaml (nothing on the remote is deleted)."""
    from ..remote import remove_remote

    result = remove_remote(open_workspace(ctx), name)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"removed remote {name}")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _transfer(
    ctx: click.Context,
    verb: str,
    sessions: tuple,
    remote_name: str | None,
    as_json: bool,
    **options: bool,
) -> None:
    from ..remote import sync as remotes

    ws = open_workspace(ctx)
    with progress(f"{verb}ing objects") as bar:
        last = [0]

        def advance(done: int, total: int) -> None:
            bar.total(total)
            bar.advance(max(done - last[0], 0))
            last[0] = max(done, last[0])

        result = getattr(remotes, verb)(ws, sessions or None, remote_name, advance, **options)
    if as_json:
        echo_json(result)
        return
    where = "already there" if verb == "push" else "already local"
    click.echo(
        f"{verb}ed {result['objects']} objects ({_mb(result['bytes'])}) in "
        f"{result['seconds']:.1f} s, "
        f"{result['skipped']} {where}"
        + (f", {result['repaired']} damaged copies replaced" if options.get("verify") else "")
        + f" (remote {result['remote']})"
    )


@click.command()
@click.argument("sessions", nargs=-1, metavar="[SESSION]...")
@REMOTE_OPTION
@click.option(
    "--verify",
    is_flag=True,
    help="Also read back every object the remote has, and replace each copy whose bytes do not "
    "match its id (downloads them all).",
)
@json_option
@click.pass_context
def push(
    ctx: click.Context, sessions: tuple, remote_name: str | None, verify: bool, as_json: bool
) -> None:
    """Upload every object the SESSIONs (default: all) reach that the remote lacks.

    Records, checkpoints and run scripts are all included; uploads are
    create-only, so an interrupted push is finished by running it again. A
    copy on the remote damaged since (a pull says so) is replaced by a push
    with --verify, from the local object, checked first.
    """
    _transfer(ctx, "push", sessions, remote_name, as_json, verify=verify)


@click.command()
@click.argument("sessions", nargs=-1, metavar="[SESSION]...")
@REMOTE_OPTION
@json_option
@click.pass_context
def pull(ctx: click.Context, sessions: tuple, remote_name: str | None, as_json: bool) -> None:
    """Download every object the SESSIONs (default: all) reach that is not local.

    Each object is verified by hash before it enters the store. Without a
    pull, reading an artifact fetches its object from the default remote.
    """
    _transfer(ctx, "pull", sessions, remote_name, as_json)
