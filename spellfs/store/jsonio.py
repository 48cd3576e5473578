"""JSON in, with a nesting-depth limit, for every file and object spellfs reads.

``json.loads`` recurses in C and raises RecursionError near 1,000 levels (a
traceback), and what it returns at 900 levels still breaks the recursive code
after it (conversion to Lua, the index, YAML output). :func:`load_json` refuses
anything nested deeper than :data:`MAX_DEPTH` with an error naming the file
(and line), a :class:`~spellfs.errors.ManifestError` by default.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ManifestError

__all__ = ["MAX_DEPTH", "depth_of", "load_json"]

#: Deepest nesting of lists and mappings accepted in any file spellfs reads.
MAX_DEPTH = 100


def depth_of(value: Any, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of ``value`` (a scalar is 0), counted without recursion; stops past
    ``limit``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return deepest


def too_deep(where: str) -> str:
    return f"{where}: nested deeper than {MAX_DEPTH} levels (refused)"


def load_json(
    text: str | bytes, where: str, error: type[Exception] = ManifestError, **kw: Any
) -> Any:
    """``json.loads`` that refuses deep nesting (``error`` naming ``where``) instead of recursing
    into it.

    Other decoding errors propagate as ``ValueError``, as from ``json.loads``.
    """
    if isinstance(text, (bytes, bytearray)):
        brackets = text.count(b"[") + text.count(b"{")
    else:
        brackets = text.count("[") + text.count("{")
    try:
        value = json.loads(text, **kw)
    except RecursionError:
        raise error(too_deep(where)) from None
    if (
        brackets > MAX_DEPTH and depth_of(value) > MAX_DEPTH
    ):  # only text with that many brackets can be
        raise error(too_deep(where))
    return value
