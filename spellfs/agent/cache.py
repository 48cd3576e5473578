"""The workspace's answer cache (``agents.cache: true``): an identical request, answered again.

``.spell/agent_cache/ab/<request hash>`` holds the content hash of the response artifact
that answered the request first; the answer itself is read from that object. The cache is
rebuildable (under ``.spell/``, git-ignored) and only ever a shortcut: a missing,
unreadable or unwritable entry is a miss. It is separate from the call records
(:mod:`.calls`), which are the truth and are never skipped: a cached answer is recorded
like any other, with ``source: cache``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import SpellError, UsageError
from .calls import load_answer

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["CACHE_DIR", "cache_get", "cache_put"]

CACHE_DIR = ".spell/agent_cache"


def _cache_rel(request_hash: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", request_hash):
        raise UsageError(f"invalid request hash: {request_hash[:70]!r}")
    return f"{CACHE_DIR}/{request_hash[:2]}/{request_hash}"


def cache_get(ws: "Workspace", request_hash: str) -> dict | None:
    """The answer stored for an identical request, or None (a missing or unreadable entry is a
    miss)."""
    try:
        oid = ws.storage.read(_cache_rel(request_hash)).decode("ascii").strip()
        if not ws.objects.has(oid):
            return None
        return load_answer(ws, {"response": oid})
    except (OSError, SpellError, UnicodeDecodeError):
        return None


def cache_put(ws: "Workspace", request_hash: str, response_oid: str) -> None:
    rel = _cache_rel(request_hash)
    try:
        ws.storage.mkdir(rel.rsplit("/", 1)[0])
        ws.storage.write(rel, response_oid.encode("ascii"))
    except (OSError, SpellError):
        pass  # a cache that cannot be written is only a slower cache
