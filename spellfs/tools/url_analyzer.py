"""``url_analyzer`` (``url-analyzer``): the parts of a URL, without fetching it.

``{input (or url), decode_params = true}`` -> ``{url, valid = true, scheme, host, port,
path, query, fragment, username?, has_password, query_params, is_secure}``. A password is
never echoed (``has_password``; ``url`` shows it as ``***``). ``query_params`` maps each
name to its value (a list when the name repeats), percent-decoded unless
``decode_params = false``. Text that is not an absolute URL with a host is a failure
naming it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}


def _analyze(params: dict, ctx: Any) -> dict:
    raw = text(params, "input", "url")
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError as e:
        raise UsageError(f"invalid URL: {raw[:200]} ({e})") from None
    if not parts.scheme or not parts.hostname:
        raise UsageError(f"invalid URL: {raw[:200]} (no scheme or host)")
    decode = params.get("decode_params", True) is not False
    query: dict[str, Any] = {}
    if decode:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    else:
        pairs = [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in parts.query.split("&")]
        pairs = [p for p in pairs if p[0]]
    for name, value in pairs:
        if name in query:
            query[name] = [
                *(query[name] if isinstance(query[name], list) else [query[name]]),
                value,
            ]
        else:
            query[name] = value
    shown = raw
    if parts.password is not None:  # the URL as given, its password masked
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        shown = parts._replace(netloc=netloc).geturl()
    result: dict[str, Any] = {
        "url": shown,
        "valid": True,
        "scheme": parts.scheme,
        "host": parts.hostname,
        "port": port if port is not None else DEFAULT_PORTS.get(parts.scheme),
        "path": parts.path or "/",
        "query": parts.query,
        "fragment": parts.fragment,
        "has_password": parts.password is not None,
        "query_params": query,
        "is_secure": parts.scheme in ("https", "wss"),
    }
    if parts.username is not None:
        result["username"] = parts.username
    return result


TOOL = Tool(
    "url_analyzer",
    "Split a URL into its parts (nothing is fetched)",
    _analyze,
    category="web",
    operations=("analyze",),
    parameters={"input": "the URL", "decode_params": "percent-decode query values"},
)
