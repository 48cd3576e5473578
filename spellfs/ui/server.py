"""Serving the web view in the foreground with uvicorn until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from ..errors import UsageError
from .deps import check_dependencies

__all__ = ["LOCAL", "serve", "served_hosts"]

LOCAL = ("127.0.0.1", "localhost", "::1")


def served_hosts(host: str, allow: Iterable[str] = ()) -> set[str]:
    """The names a request's ``Host`` header may carry: the loopback names, ``host``, and
    ``allow``. Served on every address (``0.0.0.0``, ``::``), this machine's own names and
    addresses stand for ``host``: the check stays on, or any web page the user visits could
    read the workspace through DNS rebinding (a name of the attacker's, pointed here)."""
    import socket

    from .app import LOCAL_HOSTS

    names = {*LOCAL_HOSTS, *(a.lower() for a in allow)}
    if host not in ("0.0.0.0", "::"):
        return names | {host.lower()}
    for name in {socket.gethostname(), socket.getfqdn()}:
        names.add(name.lower())
        try:
            infos = socket.getaddrinfo(name, None)
        except OSError:
            continue
        for info in infos:
            address = str(info[4][0])
            names.add(f"[{address}]" if ":" in address else address)
    return names


def serve(
    root: str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    on_ready: Callable[[str], None] | None = None,
    allow_hosts: Iterable[str] = (),
) -> None:
    """Serve the workspace at ``root`` on ``host:port`` until interrupted.

    ``on_ready`` is called with the URL once the socket listens (port 0: any free port).
    """
    check_dependencies()
    import socket

    import uvicorn

    from .app import make_app

    app = make_app(root, hosts=served_hosts(host, allow_hosts))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))  # bound here so the URL printed names the real port
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(pick another with --port, or --port 0 for any free one)"
        ) from None
    sock.listen(2048)  # connections made once the URL is printed wait for the server, not fail
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(url)
    server.run(sockets=[sock])
