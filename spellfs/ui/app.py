"""The ``spell ui`` web application: Starlette routes over :mod:`spellfs.ui.views`.

Read-only and locked down, whatever a page shows:

* any method but GET and HEAD is answered 405 before a route runs;
* every response carries ``X-Content-Type-Options: nosniff``, a
  ``Content-Security-Policy`` allowing only this server's own stylesheet and
  images (no script at all, inline or not), ``Referrer-Policy: no-referrer`` and
  ``X-Frame-Options: DENY``;
* the ``Host`` header must name the address served (a web page elsewhere cannot
  reach this server through DNS rebinding);
* Jinja2 escapes every value; artifact names in URLs are looked up among the
  session's records (never joined to a path), so ``../`` in any encoding is a 404;
* artifact bytes are sent inline only for raster images recognised by their first
  bytes, else as an ``attachment`` of ``application/octet-stream``.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import NotFound, SpellError
from ..workspace import Workspace
from . import views
from .views import number_param
from .preview import image_type
from .runs import runs_page

__all__ = ["CSP", "make_app"]

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'none'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",  # a reload must show the workspace as it is now
}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class Guard:
    """ASGI middleware: 405 for anything but GET/HEAD, a Host check, the security headers."""

    def __init__(self, app: Any, hosts: Iterable[str] | None) -> None:
        self.app = app
        self.hosts = None if hosts is None else {h.lower() for h in hosts}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    headers[k] = v
            await send(message)

        if scope["method"] not in ("GET", "HEAD"):
            response: Response = PlainTextResponse(
                "405 method not allowed: this view is read-only\n",
                status_code=405,
                headers={"allow": "GET, HEAD"},
            )
            await response(scope, receive, secured)
            return
        if self.hosts is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.hosts:
                response = PlainTextResponse(
                    "400 bad request: unexpected Host header\n", status_code=400
                )
                await response(scope, receive, secured)
                return
        await self.app(scope, receive, secured)


def _templates() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True
    )
    env.filters["short"] = lambda s: str(s or "")[:8]
    env.filters["when"] = lambda s: str(s or "")[:19].replace("T", " ")
    env.filters["q"] = lambda s: quote(str(s), safe="")
    env.filters["qp"] = lambda s: quote(str(s), safe="/")
    env.filters["size"] = _size
    return env


def _size(n: Any) -> str:
    n = int(n or 0)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def make_app(root: str | Path, hosts: Iterable[str] | None = LOCAL_HOSTS) -> Any:
    """The ASGI application serving the workspace at ``root`` read-only.

    ``hosts``: the names the ``Host`` header may carry (None: any; tests pass ``testserver``).
    """
    env = _templates()
    ws = Workspace.open(root, actor="ui")
    lock = threading.Lock()  # one workspace object, one request at a time in it
    sort_keys: dict = {}  # the sessions list's sort keys, per manifest signature

    def page(template: str, status: int = 200, **data: Any) -> HTMLResponse:
        html = env.get_template(template).render(root=str(ws.root), **data)
        return HTMLResponse(html, status_code=status)

    def guarded(fn: Callable[..., Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                with lock:
                    return fn(request, **request.path_params)
            except NotFound as exc:
                return page("error.html", 404, message=str(exc))
            except SpellError as exc:
                return page("error.html", 400, message=str(exc))

        return endpoint

    def sessions(request: Request) -> Response:
        try:
            data = views.sessions_page(ws, request.query_params, sort_keys)
        except SpellError as exc:
            data = views.sessions_page(ws, {})
            return page("sessions.html", 400, error=str(exc), **data)
        return page("sessions.html", error=None, **data)

    def session(request: Request, ref: str) -> Response:
        return page("session.html", **views.session_page(ws, ref))

    def artifact(request: Request, ref: str, name: str) -> Response:
        return page("artifact.html", **views.artifact_page(ws, ref, name))

    def raw(request: Request, ref: str, name: str) -> Response:
        v = request.query_params.get("v")
        version = number_param(v, "version", 1) if v else None
        data, rec = views.artifact_bytes(ws, ref, name, version)
        image = image_type(data, rec.get("mime_type"))
        download = request.query_params.get("download") is not None
        if image and not download:
            return Response(data, media_type=image)
        filename = quote(name.rsplit("/", 1)[-1], safe="")
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"content-disposition": f"attachment; filename*=UTF-8''{filename}"},
        )

    def history(request: Request, ref: str) -> Response:
        return page("history.html", **views.history_page(ws, ref))

    def checkpoint(request: Request, ref: str, number: str) -> Response:
        return page("checkpoint.html", **views.checkpoint_page(ws, ref, number))

    def diff(request: Request, ref: str) -> Response:
        q = request.query_params
        return page("diff.html", **views.diff_page(ws, ref, q.get("from"), q.get("to")))

    def runs(request: Request, ref: str) -> Response:
        return page("runs.html", **runs_page(ws, ref))

    def not_found(request: Request, exc: Exception) -> Response:
        return page("error.html", 404, message=f"no such page: {request.url.path}")

    def favicon(request: Request) -> Response:
        return Response(status_code=204)  # none: a browser asks anyway

    routes = [
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route("/", guarded(sessions), methods=["GET"], name="sessions"),
        Route("/s/{ref}", guarded(session), methods=["GET"]),
        Route("/s/{ref}/a/{name:path}", guarded(artifact), methods=["GET"]),
        Route("/s/{ref}/raw/{name:path}", guarded(raw), methods=["GET"]),
        Route("/s/{ref}/history", guarded(history), methods=["GET"]),
        Route("/s/{ref}/checkpoint/{number}", guarded(checkpoint), methods=["GET"]),
        Route("/s/{ref}/diff", guarded(diff), methods=["GET"]),
        Route("/s/{ref}/runs", guarded(runs), methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        ws.close()

    app = Starlette(routes=routes, exception_handlers={404: not_found}, lifespan=lifespan)
    app.state.workspace = ws
    return Guard(app, hosts)
