"""Tools recorded like model calls: a ``web_search`` is numbered, answered and recorded the way
``Agent`` calls are, through the run's :class:`~spellfs.agent.Recorder`, so ``spell replay``
answers it from the record without the network.

:func:`prepare` runs on the script's thread when the call is asked (after the
``BeforeToolExecution`` hooks): it checks the parameters (:attr:`Tool.request`), picks the
session (made on first need, like an agent's), takes the call number and its place in the
record order, and under a replay finds the recorded answer. ``run()`` is the network part
(:attr:`Tool.fetch`) and may run on a workflow's worker thread; ``finish(result)`` records,
on the script's thread. A failed live search records nothing, as a failed model call; a
search a replay cannot answer (the script asked something else) fails with a message and
is recorded with ``source: unanswered``, so the replay's report pairs it with the original
as ``request differs`` and names both queries.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from .base import Tool

if TYPE_CHECKING:
    from ..agent import Recorder

__all__ = ["prepare"]


def prepare(
    tool: Tool, params: dict, ctx: Any, recorder: "Recorder", session: Callable[[], str]
) -> tuple[Callable[[], dict], Callable[[dict], dict]]:
    """``(run, finish)`` for one call of a recorded tool; both return rs-llmspell's envelope."""
    from ..agent import check_room, read_search, record_search, search_hash

    assert tool.request is not None and tool.fetch is not None
    fetch = tool.fetch
    ws = ctx.workspace
    checked = tool.guard(tool.request, params, ctx)
    if not checked["success"]:  # bad parameters, no provider: nothing is asked or recorded
        return (lambda: checked), (lambda result: result)
    request = checked["result"]

    def where() -> tuple[str, int]:
        dir = ws.sessions.resolve(session())
        check_room(ws, dir)
        return dir, recorder.number(dir, tool.name)

    placed = tool.guard(where)
    if not placed["success"]:
        return (lambda: placed), (lambda result: result)
    dir, number = placed["result"]
    h = search_hash(request)
    known: dict[str, Any] = {"latency": None, "response": None}
    if recorder.replaying:
        rec = recorder.lookup(tool.name, dir, h, number)
        if rec is not None:
            answered = tool.guard(lambda: read_search(ws, rec))
            if answered["success"]:
                known["result"], known["response"] = answered["result"]
                known["source"] = "replay"
            else:
                known["error"] = answered["error"]
        else:
            known["error"] = (
                f"{tool.name}: no recorded answer for this search ({request['provider']}: "
                f"{str(request['query'])[:80]!r}) among the searches the recorded run made; a "
                "replay never searches (use `spell replay --live` to search again)"
            )
            known["source"] = "unanswered"
    ticket = recorder.ticket()

    def run() -> dict:
        if "result" in known:
            return {"success": True, "result": known["result"]}
        if "error" in known:
            if known.get("source") != "unanswered":
                recorder.abandon(ticket)
            return {"success": False, "error": known["error"]}
        started = time.perf_counter()
        out = tool.guard(fetch, request, ctx)
        if not out["success"]:
            recorder.abandon(ticket)  # a failed search records nothing
        known["latency"] = (time.perf_counter() - started) * 1000
        return out

    def record(out: dict) -> None:
        source = known.get("source", "live")
        result = out["result"] if out.get("success") else {"error": out.get("error")}
        record_search(
            ws,
            dir,
            recorder.log(dir),
            tool=tool.name,
            number=number,
            request=request,
            result=result,
            request_hash=h,
            source=source,
            latency_ms=known["latency"],
            response=known["response"],
        )

    def finish(out: dict) -> dict:
        if ticket["state"] != "abandoned":
            recorder.done(ticket, lambda: record(out))
        else:
            recorder.flush()
        return out

    return run, finish
