"""``file_search``: find text in workspace files.

``{path = ".", pattern, regex = false, case_sensitive = true, recursive = true,
max_depth?, extensions?, file_pattern?, context_lines = 0, max_results = 1000}`` ->
``{matches = {{file, line, column, text, context_before?, context_after?}},
total_matches, files_searched, truncated}``. ``path`` may be a file or a folder, confined
like ``file_operations``'s; spellfs's own files and folders are skipped, as are files that
are not UTF-8 text or larger than 10 MiB.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .base import PROTECTED_TOP, RECORD_FILES, Tool, confine, text

__all__ = ["TOOL"]

MAX_FILE = 10 * 1024 * 1024


def _files(base: Path, root: Path, params: dict) -> list[Path]:
    if base.is_file():
        return [base]
    recursive = params.get("recursive", True) is not False
    depth = params.get("max_depth")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise UsageError("parameter 'max_depth' must be a non-negative integer")
    exts = params.get("extensions")
    if exts is not None and not (isinstance(exts, list) and all(isinstance(e, str) for e in exts)):
        raise UsageError("parameter 'extensions' must be a list of extensions")
    glob = params.get("file_pattern")
    found = []
    for folder, dirs, names in os.walk(base):
        here = Path(folder)
        level = len(here.relative_to(base).parts)
        dirs[:] = sorted(
            d
            for d in dirs
            if recursive
            and (depth is None or level < depth)
            and not (here == root and d in PROTECTED_TOP)
        )
        for name in sorted(names):
            if name in RECORD_FILES or (here == root and name in PROTECTED_TOP):
                continue
            if exts and not any(name.endswith("." + e.lstrip(".")) for e in exts):
                continue
            if isinstance(glob, str) and not fnmatch.fnmatch(name, glob):
                continue
            found.append(here / name)
    return found


def _search(params: dict, ctx: Any) -> dict:
    root, base, _ = confine(ctx, text(params, "path", default="."))
    pattern = text(params, "pattern", "query")
    if not pattern:
        raise UsageError("parameter 'pattern' must not be empty")
    flags = 0 if params.get("case_sensitive", True) is not False else re.IGNORECASE
    try:
        matcher = re.compile(pattern if params.get("regex") else re.escape(pattern), flags)
    except re.error as e:
        raise UsageError(f"invalid regex {pattern[:80]!r}: {e}") from None
    context = params.get("context_lines", 0)
    if isinstance(context, bool) or not isinstance(context, int) or not 0 <= context <= 20:
        raise UsageError("parameter 'context_lines' must be an integer from 0 to 20")
    limit = params.get("max_results", 1000)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise UsageError("parameter 'max_results' must be a positive integer")
    matches: list[dict] = []
    searched, truncated = 0, False
    for file in _files(base, root, params):
        try:
            if file.is_symlink() or file.stat().st_size > MAX_FILE:
                continue
            lines = file.read_bytes().decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        searched += 1
        for i, line in enumerate(lines):
            m = matcher.search(line)
            if not m:
                continue
            if len(matches) >= limit:
                truncated = True
                break
            item: dict[str, Any] = {
                "file": file.relative_to(root).as_posix(),
                "line": i + 1,
                "column": m.start() + 1,
                "text": line,
            }
            if context:
                item["context_before"] = lines[max(0, i - context) : i]
                item["context_after"] = lines[i + 1 : i + 1 + context]
            matches.append(item)
        if truncated:
            break
    return {
        "matches": matches,
        "total_matches": len(matches),
        "files_searched": searched,
        "truncated": truncated,
    }


TOOL = Tool(
    "file_search",
    "Find text (or a regex) in workspace files",
    _search,
    category="filesystem",
    operations=("search",),
    parameters={
        "path": "file or folder",
        "pattern": "text or regex",
        "regex": "boolean",
        "extensions": "list",
        "context_lines": "lines around each match",
    },
)
