"""The ``spell`` command line: argument parsing over the library, nothing more.

Commands live in modules by area and are imported only when named, so
``spell run`` pays for click and the Lua runtime and nothing else. Every
:class:`~spellfs.errors.SpellError` becomes ``Error: <message>`` on stderr and
its exit code (1 failure, 2 usage or not found) here, in one place.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

__all__ = ["main", "cli"]

# command name -> (module under spellfs.cli, attribute)
COMMANDS = {
    "init": ("sessions", "init"),
    "new": ("sessions", "new"),
    "ls": ("sessions", "ls"),
    "show": ("sessions", "show"),
    "cat": ("sessions", "cat"),
    "add": ("sessions", "add"),
    "suspend": ("sessions", "suspend"),
    "resume": ("sessions", "resume"),
    "complete": ("sessions", "complete"),
    "fail": ("sessions", "fail"),
    "rm": ("sessions", "rm"),
    "fsck": ("maintenance", "fsck"),
    "gc": ("maintenance", "gc"),
    "run": ("run", "run"),
    "save": ("history", "save"),
    "log": ("history", "log"),
    "diff": ("history", "diff"),
    "restore": ("history", "restore"),
    "fork": ("history", "fork"),
    "replay": ("history", "replay"),
    "status": ("gitcmd", "status"),
    "commit": ("gitcmd", "commit"),
    "export": ("gitcmd", "export"),
    "import": ("gitcmd", "import_"),
    "watch": ("watchcmd", "watch"),
    "daemon": ("watchcmd", "daemon"),
    "remote": ("remotecmd", "remote"),
    "push": ("remotecmd", "push"),
    "pull": ("remotecmd", "pull"),
    "ui": ("uicmd", "ui"),
}


class _PipeClosed(Exception):
    """stdout's reader closed the pipe; not an OSError, so click lets it through."""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if self._load(n) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple:
        name = args[0] if args else ""
        if args and name not in COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=1)
            if close:
                raise click.UsageError(f"No such command '{name}'; did you mean '{close[0]}'?", ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (`spell cat S f | head -c10`): click would turn the
            # EPIPE into exit 1; like git, stop quietly instead (see main()).
            raise _PipeClosed() from None

    def _load(self, name: str) -> click.Command | None:
        spec = COMMANDS.get(name)
        if spec is None:
            return None
        try:
            module = importlib.import_module(f"spellfs.cli.{spec[0]}")
        except ModuleNotFoundError as exc:
            if exc.name == f"spellfs.cli.{spec[0]}":
                return None  # an area not built yet
            raise
        cmd = getattr(module, spec[1], None)
        if cmd is not None:
            from .completion import add_completion

            add_completion(cmd)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    "-w",
    "workspace",
    metavar="DIR",
    envvar=None,
    help="Workspace folder (default: $SPELL_WORKSPACE, else the nearest folder with spell.yaml or "
    ".spell/).",
)
@click.option(
    "-c",
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="An llmspell-style TOML file whose [runtime.sessions] table overrides spell.yaml.",
)
@click.option(
    "-q",
    "--quiet",
    "quiet",
    is_flag=True,
    help="No progress bars, hints or warnings on stderr (errors still print).",
)
@click.option(
    "-v",
    "--verbose",
    "verbose",
    count=True,
    help="Log what spellfs does on stderr (-vv: more); errors show their traceback.",
)
@click.version_option(package_name="spellfs", prog_name="spell")
@click.pass_context
def cli(
    ctx: click.Context, workspace: str | None, config_file: str | None, quiet: bool, verbose: int
) -> None:
    """spellfs: a file-system native workspace for scripted LLM work.

    Sessions are folders of plain YAML and files under sessions/; every
    artifact version is also kept in a content-addressed store under
    .spell/objects. Run `spell init` to make a workspace, `spell new NAME` to
    start a session, `spell run script.lua` to run a Lua script against it.
    """
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = workspace
    ctx.obj["config_file"] = config_file
    ctx.obj["verbosity"] = -1 if quiet else verbose
    _VERBOSITY[0] = ctx.obj["verbosity"]
    if verbose:
        import logging

        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="spell: %(name)s: %(message)s",
        )


_VERBOSITY = [0]  # -1 quiet, 0 normal, 1+ verbose: read by main() for tracebacks

_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


def _prog_name() -> str:
    """``spellfs`` when run by that name (completion then reads ``_SPELLFS_COMPLETE``)."""
    return "spellfs" if os.path.basename(sys.argv[0] or "") == "spellfs" else "spell"


#: most characters of an error shown: a script's error(string.rep("x", 1e7)) printed 10 MB
ERROR_MAX = 4000


def _bounded(message: str) -> str:
    if len(message) <= ERROR_MAX:
        return message
    return f"{message[:ERROR_MAX]}… ({len(message) - ERROR_MAX:,} more characters)"


def main(argv: list[str] | None = None) -> int:
    from ..errors import SpellError

    _VERBOSITY[0] = 0
    try:
        rc = cli.main(args=argv, prog_name=_prog_name(), standalone_mode=False)
        if isinstance(rc, int) and not isinstance(rc, bool):  # ctx.exit(n) comes back as n here
            return rc
    except SpellError as exc:
        if _VERBOSITY[0] > 0:
            import traceback

            traceback.print_exc()
        click.echo(f"Error: {_bounded(str(exc))}", err=True)
        return exc.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # Ctrl-C: click wraps it so
            click.echo("Interrupted.", err=True)
            return 130
        click.echo("Aborted.", err=True)  # (a prompt answered with end of input)
        return 1
    except _NO_ARGS_IS_HELP as exc:  # `spell` or `spell remote` alone: the help itself
        exc.show()
        return exc.exit_code
    except click.UsageError as exc:  # one line, like every other error, and where to read more
        path = exc.ctx.command_path if exc.ctx is not None else "spell"
        click.echo(f"Error: {exc.format_message().rstrip('.')} (see `{path} --help`)", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except (BrokenPipeError, _PipeClosed):
        from .output import silence_stdout

        silence_stdout()
        return 0
    except OSError as exc:  # the system refused (permissions, a file where a folder should be, …)
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
        return 1
    return 0


def entry() -> None:
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # output still buffered when the reader left
        from .output import silence_stdout

        silence_stdout()
    if "obstore" in sys.modules:
        # obstore's runtime threads may call back into Python while the interpreter
        # finalizes, aborting the process (exit 134). Everything is written and closed
        # by now, so end without finalizing.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
