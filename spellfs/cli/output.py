"""One place for output: a table for people, ``--format``/``--json`` for programs, progress on
terminals.

Like sqlite-utils' ``output_options``/``output_rows``: every listing takes
``--format table|json|jsonl|csv|tsv`` (``--json`` is short for ``--format json``)
through :func:`format_option` and prints through :func:`output`. A table on a
terminal is drawn by rich; piped, it is plain aligned text (no box characters,
no padding to a terminal's width). Progress bars and hints go to stderr, so
stdout holds only the result.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Any, Callable, Sequence

import click

from ..names import printable
from ..workspace import Workspace

__all__ = [
    "silence_stdout",
    "FORMATS",
    "chosen_format",
    "echo_json",
    "format_option",
    "hint",
    "json_option",
    "open_workspace",
    "output",
    "plural",
    "progress",
    "quiet",
    "when",
]

FORMATS = ("table", "json", "jsonl", "csv", "tsv")
_FORMAT_KEY = "spellfs.format"


def plural(n: int, word: str) -> str:
    """``1 session``, ``2 sessions``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def json_option(f: Callable) -> Callable:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print JSON (the Lua API's shapes) instead of a table.",
    )(f)


def format_option(f: Callable) -> Callable:
    """``--format table|json|jsonl|csv|tsv`` and ``--json`` (short for ``--format json``).

    The command still receives ``as_json`` (True for every machine format); :func:`output`
    reads the chosen format from the click context.
    """

    @functools.wraps(f)
    def wrapper(*args: Any, fmt: str | None = None, as_json: bool = False, **kwargs: Any) -> Any:
        chosen = fmt or ("json" if as_json else "table")
        click.get_current_context().meta[_FORMAT_KEY] = chosen
        return f(*args, as_json=chosen != "table", **kwargs)

    wrapper = click.option("--json", "as_json", is_flag=True, help="Short for --format json.")(
        wrapper
    )
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        metavar="FORMAT",
        help="table (default), json, jsonl (one object a line), csv or tsv.",
    )(wrapper)


def chosen_format() -> str:
    """The format asked for with --format/--json (json outside a format_option command)."""
    ctx = click.get_current_context(silent=True)
    return (ctx.meta.get(_FORMAT_KEY) if ctx is not None else None) or "json"


def when(stamp: str | None) -> str:
    """An RFC 3339 time to the second, zone kept: ``2026-01-02T03:04:05Z``."""
    if not stamp:
        return ""
    head, zone = stamp[:19], stamp[19:]
    if zone.startswith("."):  # fractional seconds: drop them, keep what follows (Z or +hh:mm)
        zone = zone.lstrip(".0123456789")
    return head + (zone or "Z")


def quiet() -> bool:
    """``spell -q``: no progress, hints or warnings."""
    ctx = click.get_current_context(silent=True)
    obj = (ctx.find_root().obj if ctx is not None else None) or {}
    return obj.get("verbosity", 0) < 0


def hint(message: str) -> None:
    """A message for the person at the terminal, never part of the result: stderr (not with -q)."""
    if not quiet():
        click.echo(message, err=True)


def open_workspace(ctx: click.Context, actor: str = "cli") -> Workspace:
    obj = ctx.find_root().obj or {}
    ws = Workspace.open(obj.get("workspace"), obj.get("config_file"), actor=actor)
    ctx.call_on_close(ws.close)
    if not ws.memory:  # in a git repository: add the merge driver, rewrite files/ after a merge
        from ..git import on_open

        on_open(ws)
    return ws


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_default))


def output(
    data: Any,
    as_json: bool,
    columns: Sequence[tuple[str, str | Callable[[dict], Any]]] | None = None,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """Print ``data`` (a list of dicts or a dict) in the chosen format.

    Machine formats carry every field as the library returns it; the table shows
    ``columns`` (header, key or getter).
    """
    fmt = chosen_format() if as_json else "table"
    if fmt == "json":
        echo_json(data)
        return
    rows: list[dict] = list(data if isinstance(data, list) else [data])
    if fmt == "jsonl":
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, default=_default))
        return
    if fmt in ("csv", "tsv"):
        _delimited(rows, fmt)
        return
    if not rows:
        click.echo(empty)
        return
    cols = columns or [(k, k) for k in rows[0]]
    cells = [[_cell(row, getter) for _, getter in cols] for row in rows]
    headers = [h for h, _ in cols]
    if (
        len(rows) > PLAIN_ROWS or not sys.stdout.isatty()
    ):  # piped (grep/awk/cut), or too long for rich
        _plain_table(headers, cells)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_edge=False, header_style="bold", pad_edge=False)
    for header in headers:
        table.add_column(header)
    for line in cells:  # (Text: a name like "[bold]" or "[link=…]" is shown, not obeyed)
        table.add_row(*(Text(c) for c in line))
    Console(soft_wrap=True, highlight=False).print(table)


def _plain_table(headers: list[str], cells: list[list[str]]) -> None:
    """Plain aligned text, one row a line (for grep/awk/cut), written at once."""
    cells = [[c.replace("\n", " ").replace("\r", " ") for c in line] for line in cells]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    click.echo(
        "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
            for line in [headers, *cells]
        )
    )


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=_default)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _delimited(rows: list[dict], fmt: str) -> None:
    import csv
    import io

    if not rows:
        return
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    buf = io.StringIO()
    if fmt == "csv":
        writer = csv.writer(buf, lineterminator="\n")
    else:  # TSV: tabs and newlines inside a value become spaces, so every row is one line
        writer = csv.writer(
            buf,
            delimiter="\t",
            quoting=csv.QUOTE_NONE,
            escapechar=None,
            lineterminator="\n",
            quotechar=None,
        )
    writer.writerow(keys)
    for row in rows:  # what was read from disk may hold ESC/OSC: shown as \x1b, never sent raw
        values = [printable(_scalar(row.get(k)), keep="\t\n\r") for k in keys]
        if fmt == "tsv":
            values = [v.replace("\t", " ").replace("\r", " ").replace("\n", " ") for v in values]
        writer.writerow(values)
    click.echo(buf.getvalue(), nl=False)


#: Longer tables are printed by :func:`_plain_table` on a terminal too: rich lays out 6,000 rows
#: in ~2 s.
PLAIN_ROWS = 500


def _cell(row: dict, getter: str | Callable[[dict], Any]) -> str:
    """A table cell; control characters (a hand-edited name's ESC or BEL, which a terminal
    would run: set the title, write the clipboard) are shown escaped."""
    value = getter(row) if callable(getter) else row.get(getter)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return printable(", ".join(str(v) for v in value), keep="\n")
    return printable(str(value), keep="\n")


class _Quiet:
    def __enter__(self) -> "_Quiet":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def total(self, n: int) -> None:
        pass


class _Bar(_Quiet):
    """A bar drawn when it advances (at most ten times a second), not by a thread of rich's: a
    process with a second thread cannot fork a bulk add's twin (:mod:`spellfs.model.twin`)."""

    def __init__(self, label: str, total: int | None) -> None:
        from rich.progress import Progress

        from rich.console import Console

        # stderr: `spell fsck --json > out.json` in a terminal keeps the file pure JSON.
        self.progress = Progress(transient=True, console=Console(stderr=True), auto_refresh=False)
        self.task = self.progress.add_task(label, total=total)
        self._drawn = 0.0

    def __enter__(self) -> "_Bar":
        self.progress.start()
        self.progress.refresh()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)
        now = time.monotonic()
        if now - self._drawn >= 0.1:
            self._drawn = now
            self.progress.refresh()

    def total(self, n: int) -> None:
        self.progress.update(self.task, total=n)


def progress(label: str, total: int | None = None) -> _Quiet:
    """A progress bar on a terminal; nothing when output is piped."""
    return _Bar(label, total) if sys.stderr.isatty() and not quiet() else _Quiet()


def silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush of a closed pipe is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
