"""How much a session's model calls used: calls and tokens, in total and per model.

Read from the call records (:mod:`.calls`) for ``spell show`` and ``Session.get``; kept
apart from them because it only counts what the records say and writes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from .calls import SEARCH, read_calls

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["summarize", "usage_summary"]


def usage_summary(ws: "Workspace", session: Any) -> dict | None:
    """Calls and tokens of one session, in total and per ``provider/model``; None without calls.

    Tokens count what providers were asked to process (``source: live``); calls
    answered from records or the cache are counted in ``replayed``/``cached``.
    """
    dir = ws.sessions.resolve(session)
    return summarize(read_calls(ws, dir))


def summarize(records: Iterable[dict]) -> dict | None:
    total = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "replayed": 0, "cached": 0}
    by_model: dict[str, dict] = {}
    searches = 0
    for rec in records:
        if rec.get("kind") == SEARCH:  # not a model call: no tokens, counted apart
            searches += 1
            continue
        key = f"{rec.get('provider')}/{rec.get('model')}"
        m = by_model.setdefault(key, {"calls": 0, "input_tokens": 0, "output_tokens": 0})
        total["calls"] += 1
        m["calls"] += 1
        source = rec.get("source", "live")
        if source == "live":
            for k in ("input_tokens", "output_tokens"):
                n = rec.get(k)
                if type(n) is int:
                    total[k] += n
                    m[k] += n
        elif source == "replay":
            total["replayed"] += 1
        elif source == "cache":
            total["cached"] += 1
    if not total["calls"] and not searches:
        return None
    return {**total, "by_model": by_model, **({"searches": searches} if searches else {})}
