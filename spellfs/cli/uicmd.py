"""``spell ui``: the read-only web view (the web libraries are the optional ``ui`` extra)."""

from __future__ import annotations

import click

from .output import open_workspace


@click.command()
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but the loopback serves the workspace to the network.",
)
@click.option(
    "--allow-host",
    "allow",
    multiple=True,
    metavar="NAME",
    help="Another name or address browsers reach this server by (repeat); requests naming any "
    "other Host are refused (with --host 0.0.0.0: this machine's own names and addresses too).",
)
@click.option("--open", "open_", is_flag=True, help="Open the view in the default browser.")
@click.pass_context
def ui(ctx: click.Context, port: int, host: str, allow: tuple[str, ...], open_: bool) -> None:
    """Serve a read-only web view of the workspace: sessions, artifacts, history graph, diffs,
    runs and model calls. Runs in the foreground; Ctrl-C stops it."""
    from ..ui import check_dependencies, serve

    check_dependencies()
    ws = open_workspace(ctx)
    root = ws.root
    if root is None:
        raise click.UsageError("spell ui serves a workspace folder")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: serving on {host}: anyone who can reach this address can read the workspace "
            "(no login; use the default 127.0.0.1 to keep it to this machine)",
            err=True,
        )

    def ready(url: str) -> None:
        click.echo(f"spell ui: serving {root} read-only at {url} (Ctrl-C stops)", err=False)
        if open_:
            import webbrowser

            webbrowser.open(url)

    try:
        serve(root, host=host, port=port, on_ready=ready, allow_hosts=allow)
    except (
        KeyboardInterrupt
    ):  # Ctrl-C is how it stops: uvicorn shuts down, then re-raises the signal
        pass
    click.echo("spell ui: stopped", err=True)
