"""What the web tools read from HTML, with the standard library's parser: title, visible text,
links, images, ``<meta>`` tags, and the text of elements matching a simple selector.

Selectors are one simple CSS selector: ``tag``, ``.class``, ``#id``, ``tag.class`` or
``tag#id`` (no combinators or attributes); anything else is refused with a message
rather than matched wrongly.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from ..errors import UsageError

__all__ = ["Page", "parse"]

_SELECTOR = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)?(?:([.#])([-\w]+))?\Z")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
_HIDDEN = {"script", "style", "head", "title", "noscript", "template"}


class Page(HTMLParser):
    def __init__(self, base: str, selector: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.title = ""
        self.text: list[str] = []
        self.links: list[dict] = []
        self.images: list[dict] = []
        self.meta: dict[str, str] = {}
        self.selected: list[str] = []
        self._want = _selector(selector) if selector else None
        self._stack: list[tuple[str, bool]] = []  # (tag, matched)
        self._open: list[list[str]] = []  # text of matched elements being read
        self._link: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self._link = {"url": urljoin(self.base, a["href"]), "text": ""}
            self.links.append(self._link)
        elif tag == "img" and a.get("src"):
            self.images.append({"src": urljoin(self.base, a["src"]), "alt": a.get("alt", "")})
        elif tag == "meta" and a.get("content") is not None:
            key = a.get("name") or a.get("property") or a.get("http-equiv")
            if key:
                self.meta[key] = a["content"]
        if tag in _VOID:
            return
        matched = self._want is not None and _matches(self._want, tag, a)
        self._stack.append((tag, matched))
        if matched:
            self._open.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._link = None
        while self._stack:  # close up to the matching start tag (HTML forgives missing ends)
            name, matched = self._stack.pop()
            if matched:
                self.selected.append(" ".join("".join(self._open.pop()).split()))
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        tags = {t for t, _ in self._stack}
        if "title" in tags:
            self.title += data
        if not tags & _HIDDEN:
            self.text.append(data)
        if self._link is not None:
            self._link["text"] += data
        for part in self._open:
            part.append(data)

    def visible_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def _selector(selector: str) -> tuple[str | None, str | None, str | None]:
    m = _SELECTOR.match(selector.strip())
    if not m or not (m.group(1) or m.group(3)):
        raise UsageError(
            f"selector not supported: {selector[:80]!r} (one of tag, .class, #id, tag.class, "
            "tag#id)"
        )
    kind = m.group(2)
    return (
        m.group(1).lower() if m.group(1) else None,
        m.group(3) if kind == "." else None,
        m.group(3) if kind == "#" else None,
    )


def _matches(want: tuple, tag: str, attrs: dict) -> bool:
    name, cls, ident = want
    if name and tag != name:
        return False
    if cls and cls not in attrs.get("class", "").split():
        return False
    return not (ident and attrs.get("id") != ident)


def parse(html: str, base: str, selector: Any = None) -> Page:
    if selector is not None and not isinstance(selector, str):
        raise UsageError("parameter 'selector' must be a string")
    page = Page(base, selector)
    page.feed(html)
    page.close()
    for link in page.links:
        link["text"] = " ".join(link["text"].split())
    page.title = " ".join(page.title.split())
    return page
