"""``webpage_monitor`` (``webpage-monitor``; a machine tool, off by default): has a page changed?

``{input (or url), selector?, previous_content?, previous_hash?, ignore_whitespace = true,
timeout?}`` -> ``{url, content, hash, changed, diff?}``. ``content`` is the page's visible
text (or the text of the elements ``selector`` matches, :mod:`.html`), ``hash`` its
SHA-256; ``changed`` compares with ``previous_content`` or ``previous_hash`` (null when
neither is given), and ``diff`` is a unified diff against ``previous_content``.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

from .base import Tool
from .html import parse
from .net import exchange, seconds, url_of

__all__ = ["TOOL"]


def _normal(text: str, squeeze: bool) -> str:
    return " ".join(text.split()) if squeeze else text


def _monitor(params: dict, ctx: Any) -> dict:
    url = url_of(params, "input", "url")
    squeeze = params.get("ignore_whitespace", True) is not False
    answer = exchange("GET", url, timeout=seconds(params), headers=params.get("headers"))
    selector = params.get("selector")
    page = parse(answer.text, url, selector)
    content = _normal("\n".join(page.selected) if selector else page.visible_text(), squeeze)
    digest = hashlib.sha256(content.encode()).hexdigest()
    result: dict[str, Any] = {"url": url, "content": content, "hash": digest, "changed": None}
    previous = params.get("previous_content")
    if isinstance(previous, str):
        before = _normal(previous, squeeze)
        result["changed"] = before != content
        if result["changed"]:
            result["diff"] = "".join(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    content.splitlines(keepends=True),
                    "previous",
                    "current",
                )
            )
    elif isinstance(params.get("previous_hash"), str):
        result["changed"] = params["previous_hash"] != digest
    return result


TOOL = Tool(
    "webpage_monitor",
    "Fetch a page and say whether its text changed since a previous check",
    _monitor,
    category="web",
    machine=True,
    operations=("monitor", "check_changes"),
    parameters={
        "input": "the page URL",
        "selector": "tag, .class or #id",
        "previous_content": "text of the previous check",
        "previous_hash": "hash of the previous check",
    },
)
