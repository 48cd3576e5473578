"""The web tools (graphql_query, api_tester, webhook_caller, web_scraper, webpage_monitor,
sitemap_crawler, email_sender) against local servers: a small HTTP site and a small SMTP
server, both on 127.0.0.1."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from spellfs.tools import ALIASES, MACHINE, TOOLS, available

PAGE = """<html><head><title>The  Page</title><meta name="description" content="about it">
<style>p {color: red}</style></head><body><h1 class="big" id="top">Hello</h1>
<p class="x">One <a href="/a">first link</a></p><p>Two <img src="i.png" alt="pic"></p>
<script>var hidden = 1;</script></body></html>"""


class Site:
    """GET /page, /sitemap.xml, /index.xml, /status/<n>; POST /graphql, /hook (fails the first
    ``hook_failures`` times with 503, then 200 echoing the JSON)."""

    def __init__(self) -> None:
        self.hook_failures = 0
        self.posts: list[Any] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, status: int, body: str, kind: str = "text/html") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                if self.path == "/page":
                    self._send(200, PAGE)
                elif self.path == "/sitemap.xml":
                    urls = "".join(
                        f"<url><loc>{base}/p{i}</loc><lastmod>2024-01-0{i}</lastmod></url>"
                        for i in range(1, 4)
                    )
                    self._send(
                        200,
                        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                        f"{urls}</urlset>",
                        "application/xml",
                    )
                elif self.path == "/index.xml":
                    self._send(
                        200,
                        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                        f"<sitemap><loc>{base}/sitemap.xml</loc></sitemap></sitemapindex>",
                    )
                elif self.path.startswith("/status/"):
                    self._send(int(self.path.rsplit("/", 1)[1]), "{}", "application/json")
                else:
                    self._send(404, "no")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                site.posts.append({"path": self.path, "json": body, "headers": dict(self.headers)})
                if self.path == "/graphql":
                    answer = {"data": {"echo": body["variables"]}, "errors": []}
                    if "broken" in body["query"]:
                        answer = {"data": None, "errors": [{"message": "syntax"}]}
                    self._send(200, json.dumps(answer), "application/json")
                elif self.path == "/hook":
                    if site.hook_failures > 0:
                        site.hook_failures -= 1
                        self._send(503, "busy")
                    else:
                        self._send(200, json.dumps(body), "application/json")
                else:
                    self._send(404, "no")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    with Site() as s:
        yield s


def ok(tool: str, **params: Any) -> dict:
    out = TOOLS[tool].execute(params, None)
    assert out["success"] is True, out
    return out["result"]


def fails(tool: str, **params: Any) -> str:
    out = TOOLS[tool].execute(params, None)
    assert out["success"] is False, out
    return out["error"]


def test_network_tools_are_machine_tools_with_hyphenated_aliases() -> None:
    web = {
        "graphql_query",
        "api_tester",
        "webhook_caller",
        "web_scraper",
        "webpage_monitor",
        "sitemap_crawler",
        "email_sender",
    }
    assert web <= MACHINE
    for name in web:
        assert available(name, [], False) and available(name, [name], True)
        assert available(name, [name], False) is None
    assert ALIASES["email-sender"] == "email_sender" and ALIASES["url-analyzer"] == "url_analyzer"
    from spellfs.config import MACHINE_TOOLS

    assert MACHINE_TOOLS == MACHINE


def test_graphql_sends_query_and_variables_and_returns_data_and_errors(site: Site) -> None:
    got = ok(
        "graphql_query", endpoint=site.url + "/graphql", input="query { x }", variables={"a": 1}
    )
    assert got == {"data": {"echo": {"a": 1}}, "errors": [], "status_code": 200}
    assert site.posts[-1]["json"] == {"query": "query { x }", "variables": {"a": 1}}
    got = ok("graphql_query", endpoint=site.url + "/graphql", query="broken {")
    assert got["data"] is None and got["errors"] == [{"message": "syntax"}]
    assert "not a GraphQL answer" in fails("graphql_query", endpoint=site.url + "/page", query="q")
    assert "must start with http" in fails("graphql_query", endpoint="file:///etc", query="q")


def test_api_tester_checks_the_status(site: Site) -> None:
    got = ok("api_tester", input=site.url + "/status/200", expected_status=200, timeout=5)
    assert got["passed"] is True and got["status_code"] == 200 and got["json"] == {}
    got = ok("api_tester", input=site.url + "/status/404")
    assert got["passed"] is False and got["status_code"] == 404
    got = ok("api_tester", input=site.url + "/hook", method="POST", body={"k": "v"})
    assert got["json"] == {"k": "v"} and got["response_time_ms"] >= 0


def test_webhook_retries_busy_answers_then_gives_up(site: Site) -> None:
    site.hook_failures = 2
    got = ok("webhook_caller", input=site.url + "/hook", payload={"e": 1}, retry_count=3,
             retry_delay=10)  # fmt: skip
    assert (got["status_code"], got["success"], got["attempts"]) == (200, True, 3)
    site.hook_failures = 5
    got = ok("webhook_caller", input=site.url + "/hook", payload={}, retry_count=1, retry_delay=10)
    assert (got["status_code"], got["success"], got["attempts"]) == (503, False, 2)
    ok("webhook_caller", input=site.url + "/hook", headers={"X-Event": "e"}, payload={"p": 2})
    assert site.posts[-1]["headers"].get("X-Event") == "e" and site.posts[-1]["json"] == {"p": 2}


def test_web_scraper_reads_title_text_links_images_meta_and_selectors(site: Site) -> None:
    got = ok("web_scraper", input=site.url + "/page", extract_links=True, extract_images=True,
             extract_meta=True, selector="p.x")  # fmt: skip
    assert got["title"] == "The Page"
    assert got["text"] == "Hello One first link Two"  # no script, no style, no title
    assert got["links"] == [{"url": site.url + "/a", "text": "first link"}]
    assert got["images"] == [{"src": site.url + "/i.png", "alt": "pic"}]
    assert got["meta"] == {"description": "about it"}
    assert got["selected"] == ["One first link"]
    assert ok("web_scraper", input=site.url + "/page", selector="#top")["selected"] == ["Hello"]
    assert "selector not supported" in fails("web_scraper", input=site.url + "/page",
                                             selector="div > p")  # fmt: skip


def test_webpage_monitor_says_what_changed(site: Site) -> None:
    first = ok("webpage_monitor", input=site.url + "/page", selector="h1")
    assert first["content"] == "Hello" and first["changed"] is None
    same = ok("webpage_monitor", input=site.url + "/page", selector="h1",
              previous_hash=first["hash"])  # fmt: skip
    assert same["changed"] is False
    other = ok("webpage_monitor", input=site.url + "/page", selector="h1",
               previous_content="Goodbye")  # fmt: skip
    assert other["changed"] is True and "-Goodbye" in other["diff"] and "+Hello" in other["diff"]


def test_sitemap_crawler_lists_urls_and_follows_an_index(site: Site) -> None:
    got = ok("sitemap_crawler", input=site.url + "/sitemap.xml", max_urls=2)
    assert [u["url"] for u in got["urls"]] == [site.url + "/p1", site.url + "/p2"]
    assert got["urls"][0]["lastmod"] == "2024-01-01" and got["sitemap_count"] == 1
    got = ok("sitemap_crawler", input=site.url + "/index.xml")
    assert got["count"] == 3 and got["sitemap_count"] == 2
    got = ok("sitemap_crawler", input=site.url + "/index.xml", follow_sitemaps=False)
    assert got["count"] == 0 and got["sitemap_count"] == 1
    assert "not a sitemap" in fails("sitemap_crawler", input=site.url + "/status/200")


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib without TLS: EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self) -> None:
        got = self.server.got  # type: ignore[attr-defined]
        self.wfile.write(b"220 fake\r\n")
        while line := self.rfile.readline():
            cmd = line.decode().strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 fake\r\n")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                got.append(cmd)
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go\r\n")
                body = []
                while (part := self.rfile.readline()) not in (b".\r\n", b""):
                    body.append(part.decode())
                got.append("".join(body))
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"502 no\r\n")


def test_email_sender_speaks_smtp_and_refuses_what_it_cannot_do(monkeypatch) -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.got = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = ok("email_sender", provider="smtp", smtp_host="127.0.0.1",
                 smtp_port=server.server_address[1], use_tls=False, to="b@example.test",
                 subject="Hi", body="the body", **{"from": "a@example.test"})  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert got == {"sent": True, "provider": "smtp", "to": ["b@example.test"], "subject": "Hi"}
    mail_from, rcpt, message = server.got  # type: ignore[attr-defined]
    assert "a@example.test" in mail_from and "b@example.test" in rcpt
    assert "Subject: Hi" in message and "the body" in message
    base = {"to": "b@example.test", "from": "a@example.test", "subject": "s", "body": "b"}
    assert "provider not supported: ses" in fails("email_sender", provider="ses", **base)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.delenv("LLMSPELL_API_KEY_SENDGRID", raising=False)
    assert "no API key" in fails("email_sender", provider="sendgrid", **base)
    assert "attachments are not supported" in fails(
        "email_sender", provider="smtp", smtp_host="x", attachments=[{"path": "p"}], **base
    )
    assert "parameter 'to'" in fails("email_sender", **{**base, "to": "nobody"})


def test_a_script_uses_them_by_rs_llmspell_names_once_allowed(spell, root: Path, site) -> None:
    (root / "w.lua").write_text(
        f'local r = Tool.invoke("api-tester", {{input = "{site.url}/status/200"}})\n'
        "print(r.success, r.result and r.result.passed, r.error)\n"
        'print(Tool.exists("web-scraper"), Tool.get("url-analyzer").name)\n'
    )
    r = spell("-w", str(root), "run", "w.lua", cwd=root)
    out = r.stdout.decode().splitlines()
    assert r.returncode == 0 and out[0].startswith("false\tnil\tapi_tester is off")
    assert out[1] == "true\turl_analyzer"
    with (root / "spell.yaml").open("a") as f:
        f.write("tools:\n  allow: [api_tester]\n")
    r = spell("-w", str(root), "run", "w.lua", cwd=root)
    assert r.returncode == 0 and r.stdout.decode().splitlines()[0] == "true\ttrue\tnil"
