"""One request shape for every provider, in a normal form, and the hash that names it.

::

    request  {model, messages: [{role, content}], system, temperature, max_tokens}

:func:`request_hash` names a request so a replay can answer it from the records without
the network. It is separate from the HTTP client (:mod:`.client`) because recording and
replaying a call need the request's name, never the network.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..errors import UsageError

__all__ = ["normalize_request", "request_hash"]

_REQUEST_KEYS = ("model", "messages", "system", "temperature", "max_tokens")


def normalize_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request with every known key present (None when unset) and checked.

    ``temperature`` becomes a float so 1 and 1.0 are one request; unknown keys are
    kept as given (they take part in :func:`request_hash`, not in the call).
    """
    if not isinstance(request, Mapping):
        raise UsageError("agent request: must be a table")
    out = dict(request)
    for key in _REQUEST_KEYS:
        out.setdefault(key, None)
    if not isinstance(out["model"], str) or not out["model"]:
        raise UsageError("agent request: model must be a non-empty string")
    messages = out["messages"]
    if not isinstance(messages, list) or not messages:
        raise UsageError("agent request: messages must be a non-empty list")
    for i, m in enumerate(messages):
        if not (
            isinstance(m, Mapping)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
        ):
            raise UsageError(f"agent request: messages[{i}] needs string role and content")
    out["messages"] = [{"role": m["role"], "content": m["content"]} for m in messages]
    if out["system"] is not None and not isinstance(out["system"], str):
        raise UsageError("agent request: system must be a string")
    if out["temperature"] is not None:
        if type(out["temperature"]) not in (int, float):
            raise UsageError("agent request: temperature must be a number")
        out["temperature"] = float(out["temperature"])
    mt = out["max_tokens"]
    if mt is not None and (type(mt) is not int or mt < 1):
        raise UsageError("agent request: max_tokens must be a positive integer")
    return out


def request_hash(provider_kind: str, request: Mapping[str, Any]) -> str:
    """BLAKE3 hex of the canonical JSON of kind + normalised request (key order is irrelevant)."""
    from blake3 import blake3

    canon = json.dumps(
        {"kind": provider_kind, "request": normalize_request(request)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return blake3(canon.encode("utf-8")).hexdigest()
