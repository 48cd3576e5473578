"""A fake SearXNG search server on 127.0.0.1: ``GET /search?q=…&format=json``.

Answers are deterministic: three results whose titles and URLs are made from the query
(``"<query> result 1"``, ``https://example.test/<slug>/1``…), with ``content`` as the
snippet, as SearXNG's JSON API has them. Every query is logged in ``queries``. Use as
``with FakeSearch() as search:``; closing stops the server and joins its threads.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeSearch"]


class FakeSearch:
    def __init__(self) -> None:
        self.queries: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeSearch:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()


def results(query: str) -> list[dict[str, str]]:
    slug = re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-")
    return [
        {
            "title": f"{query} result {i}",
            "url": f"https://example.test/{slug}/{i}",
            "content": f"about {query}, part {i}",
        }
        for i in (1, 2, 3)
    ]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        args = parse_qs(parts.query)
        if parts.path != "/search" or args.get("format") != ["json"] or "q" not in args:
            body, status = b'{"error": "not found"}', 404
        else:
            query = args["q"][0]
            fake: FakeSearch = self.server.fake  # type: ignore[attr-defined]
            with fake._lock:
                fake.queries.append(query)
            body, status = json.dumps({"query": query, "results": results(query)}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
