"""``text_manipulator``: case, trimming, replacing, splitting and counting text.

``{operation, input, ...}`` -> ``{operation, result, output}`` (both names: rs-llmspell's
scripts read either). ``replace`` takes ``pattern`` (a regular expression) or ``from``
and ``replacement``/``to``; ``substring`` takes 0-based ``start`` and ``end``; ``split``
takes ``delimiter``; ``word_count`` gives a number.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]


def _words(s: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", s))


SIMPLE: dict[str, Callable[[str], Any]] = {
    "uppercase": str.upper,
    "lowercase": str.lower,
    "reverse": lambda s: s[::-1],
    "trim": str.strip,
    "capitalize": str.capitalize,
    "title_case": str.title,
    "snake_case": lambda s: "_".join(w.lower() for w in _words(s)),
    "kebab_case": lambda s: "-".join(w.lower() for w in _words(s)),
    "camel_case": lambda s: "".join(
        w.lower() if i == 0 else w.capitalize() for i, w in enumerate(_words(s))
    ),
    "pascal_case": lambda s: "".join(w.capitalize() for w in _words(s)),
    "normalize_whitespace": lambda s: " ".join(s.split()),
    "word_count": lambda s: len(s.split()),
    "char_count": len,
    "length": len,
}
OPERATIONS = (*SIMPLE, "replace", "substring", "split", "contains")


def _text_manipulator(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation")
    source = text(params, "input", "text")
    if operation in SIMPLE:
        result: Any = SIMPLE[operation](source)
    elif operation == "replace":
        pattern = params.get("pattern")
        replacement = text(params, "replacement", "to", default="")
        if isinstance(pattern, str):
            try:
                result = re.sub(pattern, replacement, source)
            except re.error as e:
                raise UsageError(f"invalid pattern {pattern!r}: {e}") from None
        else:
            result = source.replace(text(params, "from", "find"), replacement)
    elif operation == "substring":
        start, end = params.get("start", 0), params.get("end", len(source))
        if not isinstance(start, int) or not isinstance(end, int):
            raise UsageError("substring needs integer 'start' and 'end'")
        result = source[start:end]
    elif operation == "split":
        result = source.split(text(params, "delimiter", "separator", default=" "))
    elif operation == "contains":
        result = text(params, "pattern", "substring") in source
    else:
        raise UsageError(f"unknown operation: {operation} (use {', '.join(OPERATIONS)})")
    return {"operation": operation, "result": result, "output": result}


TOOL = Tool(
    "text_manipulator",
    "Change case, trim, replace, split and count text",
    _text_manipulator,
    operations=OPERATIONS,
    parameters={
        "input": "the text",
        "pattern": "regular expression for replace",
        "replacement": "replacement text",
    },
)
