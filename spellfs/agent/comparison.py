"""Two runs' model calls side by side, call by call: what ``spell replay --live`` reports.

Each pair says whether the replay asked the same and was answered the same (``same``,
``differs``, ``request differs``, ``missing``, ``extra``). It is separate from the call
records (:mod:`.calls`) because it only reads them to compare, for the replay report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import SpellError
from .calls import SEARCH, load_answer, read_calls

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["compare_calls", "pair_calls"]


def _text(ws: "Workspace", oid: Any) -> str | None:
    try:
        return load_answer(ws, {"response": oid})["text"][:200]
    except SpellError:
        return None


def compare_calls(
    ws: "Workspace", original_dir: str, fork_dir: str, run_id: Any, before: int
) -> list[dict]:
    """The calls a replayed run made (records after the first ``before`` in the fork) beside the
    original's.

    Pairs them in order; ``result`` is ``same`` (same request, same answer),
    ``differs`` (same request, another answer), ``request differs``, ``missing``
    (the replay made fewer calls) or ``extra``.
    """
    original = [
        c for c in read_calls(ws, original_dir) if run_id is not None and c.get("run") == run_id
    ]
    return pair_calls(ws, original, read_calls(ws, fork_dir)[before:])


def pair_calls(ws: "Workspace", original: list[dict], produced: list[dict]) -> list[dict]:
    """Two runs' call records side by side, in order (see :func:`compare_calls`); ``ws`` reads the
    texts."""
    out = []
    for i in range(max(len(original), len(produced))):
        o = original[i] if i < len(original) else None
        p = produced[i] if i < len(produced) else None
        ref = o or p
        item = {
            "call": i + 1,
            "agent": ref.get("agent"),
            "kind": ref.get("kind"),
            "model": _label(ref),
            "request_hash": ref.get("request_hash"),
            "original": o.get("response") if o else None,
            "replay": p.get("response") if p else None,
        }
        if o is None:
            result = "extra"
        elif p is None:
            result = "missing"
        elif o.get("request_hash") != p.get("request_hash"):
            result = "request differs"
        elif o.get("response") != p.get("response"):
            result = "differs"
        else:
            result = "same"
        item["result"], item["same"] = result, result == "same"
        if result == "differs":
            item["original_text"], item["replay_text"] = (
                _text(ws, o.get("response")),
                _text(ws, p.get("response")),
            )
        if p is not None:
            item["source"] = p.get("source")
            if o is not None and (p.get("provider"), p.get("model")) != (
                o.get("provider"),
                o.get("model"),
            ):
                item["replay_model"] = _label(p)
        if result == "request differs" and o and p and ref.get("kind") == SEARCH:
            item["original_query"], item["replay_query"] = o.get("query"), p.get("query")
        out.append(item)
    return out


def _label(rec: dict) -> str:
    """``provider/model`` of a model call; the provider of a search."""
    if rec.get("kind") == SEARCH:
        return str(rec.get("provider"))
    return f"{rec.get('provider')}/{rec.get('model')}"
