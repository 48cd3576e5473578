"""``file_converter``: rewrite a workspace text file's encoding, line endings or indentation.

``{operation, path, target_path?}`` (``target_path`` defaults to ``path``; both confined
like ``file_operations``'s) with ``operation``:

* ``encoding``: ``from_encoding = "utf-8"``, ``to_encoding`` (any Python codec name);
* ``line_endings``: ``line_ending = "lf" | "crlf" | "cr"``;
* ``indentation``: ``to_tabs = true`` (leading groups of ``tab_width = 4`` spaces become
  tabs) or ``false`` (leading tabs become spaces).

-> ``{path, target_path, operation, size}``. Writes are atomic. Text that does not decode
with ``from_encoding`` is a failure naming the file.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from ..errors import UsageError
from ..store import atomic_replace
from .base import Tool, confine, text

__all__ = ["TOOL"]

ENDINGS = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise UsageError(f"unknown encoding: {name}") from None


def _convert(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation")
    src = text(params, "path", "source_path", "input")
    _, path, shown = confine(ctx, src)
    _, target, target_shown = confine(ctx, text(params, "target_path", "output", default=src))
    source = _codec(text(params, "from_encoding", default="utf-8"))
    try:
        content = path.read_bytes().decode(source)
    except UnicodeDecodeError as e:
        raise UsageError(f"{shown} is not {source} text ({e.reason})") from None
    out_codec = source
    if operation == "encoding":
        out_codec = _codec(text(params, "to_encoding"))
    elif operation == "line_endings":
        ending = ENDINGS.get(text(params, "line_ending", default="lf"))
        if ending is None:
            raise UsageError("parameter 'line_ending' must be lf, crlf or cr")
        content = ending.join(re.split(r"\r\n|\r|\n", content))
    elif operation == "indentation":
        width = params.get("tab_width", 4)
        if isinstance(width, bool) or not isinstance(width, int) or not 0 < width <= 16:
            raise UsageError("parameter 'tab_width' must be an integer from 1 to 16")
        lines = content.splitlines(keepends=True)
        if params.get("to_tabs", True) is not False:
            fixed = []
            for line in lines:
                body = line.lstrip(" ")
                lead = len(line) - len(body)
                fixed.append("\t" * (lead // width) + " " * (lead % width) + body)
            lines = fixed
        else:
            lines = [
                " " * width * (len(line) - len(line.lstrip("\t"))) + line.lstrip("\t")
                for line in lines
            ]
        content = "".join(lines)
    else:
        raise UsageError(
            f"unknown operation: {operation} (use encoding, line_endings or indentation)"
        )
    try:
        data = content.encode(out_codec)
    except UnicodeEncodeError as e:
        raise UsageError(f"{shown}: cannot be written as {out_codec} ({e.reason})") from None
    atomic_replace(target, data, fsync=True, mode=0o600)
    return {"path": shown, "target_path": target_shown, "operation": operation, "size": len(data)}


TOOL = Tool(
    "file_converter",
    "Convert a workspace text file's encoding, line endings or indentation",
    _convert,
    category="filesystem",
    operations=("encoding", "line_endings", "indentation"),
    parameters={
        "path": "the file",
        "target_path": "where to write (default: the file itself)",
        "to_encoding": "for encoding",
        "line_ending": "lf, crlf or cr",
        "to_tabs": "for indentation",
    },
)
