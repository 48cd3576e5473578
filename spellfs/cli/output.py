"""One place for output: a table for people, ``--json`` for programs, progress on terminals."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Iterable, Sequence

import click

from ..workspace import Workspace

__all__ = ["json_option", "open_workspace", "output", "plural", "progress", "echo_json"]


def plural(n: int, word: str) -> str:
    """``1 session``, ``2 sessions``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (the Lua API's shapes) instead of a table.")(f)


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


def output(data: Any, as_json: bool, columns: Sequence[tuple[str, str | Callable[[dict], Any]]] | None = None,
           title: str | None = None, empty: str = "nothing to show") -> None:
    """Print ``data`` (a list of dicts or a dict) as JSON or as a rich table."""
    if as_json:
        echo_json(data)
        return
    rows: Iterable[dict] = data if isinstance(data, list) else [data]
    rows = list(rows)
    if not rows:
        click.echo(empty)
        return
    cols = columns or [(k, k) for k in rows[0]]
    if len(rows) > PLAIN_ROWS:
        _plain_table(rows, cols, title)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_edge=False, header_style="bold", pad_edge=False)
    for header, _ in cols:
        table.add_column(header)
    for row in rows:
        table.add_row(*[_cell(row, getter) for _, getter in cols])
    # Piped, a row stays one line whatever its length, so `spell ls | grep NAME` finds it.
    width = None if sys.stdout.isatty() else 1 << 16
    Console(soft_wrap=True, highlight=False, width=width).print(table)


#: Longer tables are printed by :func:`_plain_table`: rich lays out 6,000 rows in ~2 s.
PLAIN_ROWS = 500


def _plain_table(rows: list[dict], cols: Sequence[tuple[str, Any]], title: str | None) -> None:
    """The same columns as the rich table, padded with spaces, written at once."""
    cells = [[_cell(row, getter).replace("\n", " ") for _, getter in cols] for row in rows]
    headers = [h for h, _ in cols]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
    click.echo("\n".join(lines))


def _cell(row: dict, getter: str | Callable[[dict], Any]) -> str:
    value = getter(row) if callable(getter) else row.get(getter)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


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
    def __init__(self, label: str, total: int | None) -> None:
        from rich.progress import Progress

        self.progress = Progress(transient=True, console=None)
        self.task = self.progress.add_task(label, total=total)

    def __enter__(self) -> "_Bar":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def total(self, n: int) -> None:
        self.progress.update(self.task, total=n)


def progress(label: str, total: int | None = None) -> _Quiet:
    """A progress bar on a terminal; nothing when output is piped."""
    return _Bar(label, total) if sys.stderr.isatty() else _Quiet()
