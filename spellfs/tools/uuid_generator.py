"""``uuid_generator``: v1 (random node), v4, v5, component ids, deterministic ids."""

from __future__ import annotations

import os
import uuid
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]

_NAMESPACES = {
    "dns": uuid.NAMESPACE_DNS,
    "url": uuid.NAMESPACE_URL,
    "oid": uuid.NAMESPACE_OID,
    "x500": uuid.NAMESPACE_X500,
}
_FORMATS = {
    "standard": str,
    "hyphenated": str,
    "simple": lambda u: u.hex,
    "urn": lambda u: u.urn,
    "braced": lambda u: "{%s}" % u,
}


def _uuid_generator(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="generate")
    if operation == "component_id":
        return _component_id(params)
    if operation == "deterministic":
        return _deterministic(params)
    if operation in ("v4", "v7"):  # the reference's shorthand operations
        params = {**params, "version": "v4"}
    elif operation != "generate":
        raise UsageError(
            f"unknown operation: {operation} (use generate, component_id or deterministic)"
        )
    version = text(params, "version", default="v4").lower().removeprefix("v")
    fmt = text(params, "format", default="hyphenated")
    if fmt not in _FORMATS:
        raise UsageError(f"unknown format: {fmt} (use {', '.join(_FORMATS)})")
    if version == "4":
        made = uuid.uuid4()
    elif version == "1":
        made = uuid.uuid1(node=int.from_bytes(os.urandom(6), "big") | 1 << 40)
    elif version == "5":
        space = text(params, "namespace", default="dns")
        try:
            namespace = _NAMESPACES.get(space) or uuid.UUID(space)
        except ValueError:
            raise UsageError(f"invalid namespace: {space}") from None
        made = uuid.uuid5(namespace, text(params, "name"))
    else:
        raise UsageError(f"unknown version: {version} (use v1, v4 or v5)")
    fmt = "hyphenated" if fmt == "standard" else fmt
    return {"uuid": _FORMATS[fmt](made), "version": "v" + version, "format": fmt}


def _component_id(params: dict) -> dict:
    """rs-llmspell's ``prefix_uuid`` ids; ``short`` keeps the first 8 hex digits."""
    prefix = text(params, "prefix", default="component")
    made = uuid.uuid4()
    short = params.get("short") is True
    body = made.hex[:8] if short else str(made)
    return {"uuid": f"{prefix}_{body}", "id": f"{prefix}_{body}", "prefix": prefix, "short": short}


def _deterministic(params: dict) -> dict:
    """The same namespace and name give the same id, run after run (a v5 uuid)."""
    space = text(params, "namespace", default="default")
    name = text(params, "name")
    try:
        namespace = _NAMESPACES.get(space) or uuid.UUID(space)
    except ValueError:  # a free-form namespace, as the reference allows: hash it in
        namespace = uuid.uuid5(uuid.NAMESPACE_URL, "spellfs:" + space)
    return {
        "uuid": str(uuid.uuid5(namespace, name)),
        "namespace": space,
        "name": name,
        "version": "v5",
    }


TOOL = Tool(
    "uuid_generator",
    "Generate UUIDs (v1, v4, v5), component ids and deterministic ids",
    _uuid_generator,
    operations=("generate", "component_id", "deterministic"),
    parameters={
        "version": "v1, v4 or v5",
        "format": "hyphenated, simple, urn, braced",
        "namespace": "for v5/deterministic",
        "name": "for v5/deterministic",
        "prefix": "for component_id",
    },
)
