"""``graphql_query`` (a machine tool, off by default): one GraphQL query or mutation over HTTP.

``{endpoint (or url), query (or input), variables?, operation_name?, headers?, timeout?}``
-> ``{data, errors, status_code}``: the server's ``data`` and ``errors`` as it sent them.
An answer that is not GraphQL JSON, or an HTTP error status, is a failure naming the status.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .base import Tool, text
from .net import exchange, seconds, url_of

__all__ = ["TOOL"]


def _graphql(params: dict, ctx: Any) -> dict:
    url = url_of(params, "endpoint", "url")
    query = text(params, "query", "input")
    variables = params.get("variables") or {}
    if not isinstance(variables, dict):
        raise UsageError("parameter 'variables' must be a table")
    body: dict[str, Any] = {"query": query, "variables": variables}
    name = params.get("operation_name")
    if isinstance(name, str):
        body["operationName"] = name
    answer = exchange(
        "POST", url, timeout=seconds(params), headers=params.get("headers"), payload=body
    )
    doc = answer.json()
    if not isinstance(doc, dict) or not ({"data", "errors"} & set(doc)):
        raise UsageError(f"{url}: HTTP {answer.status_code}, not a GraphQL answer")
    return {
        "data": doc.get("data"),
        "errors": doc.get("errors") or [],
        "status_code": answer.status_code,
    }


TOOL = Tool(
    "graphql_query",
    "Run a GraphQL query or mutation against an endpoint",
    _graphql,
    category="data",
    machine=True,
    operations=("query", "mutation"),
    parameters={
        "endpoint": "the GraphQL URL",
        "query": "the query or mutation text",
        "variables": "table",
        "headers": "table",
    },
)
