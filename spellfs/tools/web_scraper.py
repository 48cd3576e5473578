"""``web_scraper`` (``web-scraper``; a machine tool, off by default): fetch a page and read it.

``{input (or url), selector?, extract_links?, extract_images?, extract_meta?, timeout?}`` ->
``{url, status_code, title, text, selected?, links?, images?, meta?}``: ``text`` is the
page's visible text, ``selected`` the text of each element matching ``selector`` (one simple
CSS selector, :mod:`.html`). The page is read with the standard library's HTML parser;
no JavaScript runs.
"""

from __future__ import annotations

from typing import Any

from .base import Tool
from .html import parse
from .net import exchange, seconds, url_of

__all__ = ["TOOL"]


def _scrape(params: dict, ctx: Any) -> dict:
    url = url_of(params, "input", "url")
    answer = exchange("GET", url, timeout=seconds(params), headers=params.get("headers"))
    page = parse(answer.text, url, params.get("selector"))
    result: dict[str, Any] = {
        "url": url,
        "status_code": answer.status_code,
        "title": page.title,
        "text": page.visible_text(),
    }
    if params.get("selector") is not None:
        result["selected"] = page.selected
    if params.get("extract_links"):
        result["links"] = page.links
    if params.get("extract_images"):
        result["images"] = page.images
    if params.get("extract_meta"):
        result["meta"] = page.meta
    return result


TOOL = Tool(
    "web_scraper",
    "Fetch a web page and read its title, text, links, images and selected elements",
    _scrape,
    category="web",
    machine=True,
    operations=("scrape",),
    parameters={
        "input": "the page URL",
        "selector": "tag, .class or #id",
        "extract_links": "boolean",
        "extract_images": "boolean",
        "extract_meta": "boolean",
    },
)
