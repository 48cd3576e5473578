"""``web_search`` (a machine tool, off by default): search the web through a configured provider.

``{input (or query), max_results = 5}`` -> ``{query, provider, results = {{title, url,
snippet}}, count}``. The provider comes from spell.yaml, never from the script::

    tools:
      allow: [web_search]
      web_search: {provider: searxng, url: http://localhost:8888}
      # or {provider: brave, key_env: BRAVE_API_KEY}

A script's own ``provider =`` is ignored (named in the result) so a script cannot send
queries somewhere the workspace owner did not choose.

Searches are recorded and replayed like model calls (:mod:`.recorded`): the tool is split
into :func:`search_request` (what is asked, checked before anything is recorded) and
:func:`fetch` (the network).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError, UsageError
from .base import Tool, text

__all__ = ["TOOL", "fetch", "search_request"]

BRAVE = "https://api.search.brave.com/res/v1/web/search"
PROVIDERS = ("searxng", "brave")


def _settings(ctx: Any) -> dict:
    ws = getattr(ctx, "workspace", None)
    settings = ws.config.get("tools.web_search") if ws is not None else None
    if not isinstance(settings, dict) or "provider" not in settings:
        raise ConfigError(
            "web_search: no search provider configured "
            "(add tools.web_search: {provider: searxng, url: …} to spell.yaml)"
        )
    return settings


def search_request(params: dict, ctx: Any) -> dict:
    """The search a call asks for: ``{provider, query, max_results}`` (what is recorded and
    replayed; the provider's URL and key are not part of it). Checks the parameters and that
    a provider is configured, before anything is recorded."""
    query = text(params, "input", "query")
    limit = params.get("max_results", 5)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 50:
        raise UsageError("parameter 'max_results' must be an integer from 1 to 50")
    provider = _settings(ctx)["provider"]
    if provider not in PROVIDERS:
        raise ConfigError(
            f"spell.yaml: tools.web_search.provider: unknown {provider!r} (use searxng or brave)"
        )
    request = {"provider": provider, "query": query, "max_results": limit}
    if isinstance(params.get("provider"), str) and params["provider"] != provider:
        request["ignored_provider"] = params["provider"]
    return request


def fetch(request: dict, ctx: Any) -> dict:
    """Ask the configured provider (the network part); the tool's result."""
    import httpx

    settings = _settings(ctx)
    provider, query, limit = request["provider"], request["query"], request["max_results"]
    timeout = settings.get("timeout_seconds", 20)
    try:
        if provider == "searxng":
            answer = httpx.get(
                str(settings["url"]).rstrip("/") + "/search",
                params={"q": query, "format": "json"},
                timeout=timeout,
            )
            answer.raise_for_status()
            found = [
                {
                    "title": r.get("title", ""),
                    "url": r.get("url", ""),
                    "snippet": r.get("content", ""),
                }
                for r in answer.json().get("results", [])
            ]
        else:
            key = os.environ.get(settings.get("key_env", "BRAVE_API_KEY"), "")
            answer = httpx.get(
                settings.get("url", BRAVE),
                params={"q": query, "count": limit},
                headers={"X-Subscription-Token": key},
                timeout=timeout,
            )
            answer.raise_for_status()
            found = [
                {
                    "title": r.get("title", ""),
                    "url": r.get("url", ""),
                    "snippet": r.get("description", ""),
                }
                for r in answer.json().get("web", {}).get("results", [])
            ]
    except (httpx.HTTPError, ValueError, AttributeError) as e:
        raise UsageError(f"search failed ({provider}): {e}") from None
    found = found[:limit]
    result = {"query": query, "provider": provider, "results": found, "count": len(found)}
    if "ignored_provider" in request:
        result["ignored_provider"] = request["ignored_provider"]
    return result


def _web_search(params: dict, ctx: Any) -> dict:
    return fetch(search_request(params, ctx), ctx)


TOOL = Tool(
    "web_search",
    "Search the web through the provider configured in spell.yaml",
    _web_search,
    category="search",
    machine=True,
    operations=("search",),
    parameters={"input": "the query", "max_results": "1 to 50"},
    request=search_request,
    fetch=fetch,
)
