"""``sitemap_crawler`` (``sitemap-crawler``; a machine tool, off by default): the URLs a sitemap
lists.

``{input (or url), max_urls = 100, follow_sitemaps = true, timeout?}`` -> ``{urls = {{url,
lastmod?}}, sitemap_count, count}``. A sitemap index's sitemaps are read in turn when
``follow_sitemaps`` (at most 20 sitemaps); reading stops at ``max_urls`` (at most 10,000).
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from ..errors import UsageError
from .base import Tool
from .net import exchange, seconds, url_of

__all__ = ["TOOL"]

MAX_SITEMAPS = 20


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _crawl(params: dict, ctx: Any) -> dict:
    start = url_of(params, "input", "url")
    limit = params.get("max_urls", 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise UsageError("parameter 'max_urls' must be a positive integer")
    limit = min(limit, 10_000)
    follow = params.get("follow_sitemaps", True) is not False
    todo, seen, urls = [start], 0, []
    while todo and seen < MAX_SITEMAPS and len(urls) < limit:
        url = todo.pop(0)
        seen += 1
        answer = exchange("GET", url, timeout=seconds(params))
        if answer.status_code >= 400:
            raise UsageError(f"GET {url}: HTTP {answer.status_code}")
        try:
            root = ElementTree.fromstring(answer.text)
        except ElementTree.ParseError as e:
            raise UsageError(f"{url}: not a sitemap ({e})") from None
        for entry in root:
            fields = {_local(c.tag): (c.text or "").strip() for c in entry}
            if not fields.get("loc"):
                continue
            if _local(root.tag) == "sitemapindex":
                if follow:
                    todo.append(fields["loc"])
            elif len(urls) < limit:
                item = {"url": fields["loc"]}
                if fields.get("lastmod"):
                    item["lastmod"] = fields["lastmod"]
                urls.append(item)
    return {"urls": urls, "sitemap_count": seen, "count": len(urls)}


TOOL = Tool(
    "sitemap_crawler",
    "List the URLs of a sitemap (and of the sitemaps an index names)",
    _crawl,
    category="web",
    machine=True,
    operations=("crawl",),
    parameters={
        "input": "the sitemap URL",
        "max_urls": "at most this many URLs",
        "follow_sitemaps": "read the sitemaps an index names",
    },
)
