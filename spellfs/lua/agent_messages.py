"""What a script passes to an agent's ``invoke``, as messages; and the answer as it sees it.

rs-llmspell's scripts invoke an agent with ``{text = ...}``, ``{prompt = ...}`` (and other
spellings), ``{messages = {...}}`` or a bare string, and read ``text`` or ``content`` of
the answer. The conversion lives apart from the ``Agent`` global (:mod:`.agent_api`)
because it is about values, not about creating agents or calling models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["invocation_messages", "shown_answer"]


def invocation_messages(rt: "Runtime", agent: str, input: Any) -> list:
    where = f"agent {agent}: invoke"
    if isinstance(input, (bytes, str)):
        return [{"role": "user", "content": rt.text(input, f"{where}: text")}]
    data = None
    if rt.lua_type(input) == "table":  # callbacks (rs-llmspell's on_error, …) are not sent
        data = {
            (k.decode("utf-8", "replace") if isinstance(k, bytes) else k): rt.py(v)
            for k, v in input.items()
            if rt.lua_type(v) not in ("function", "userdata", "thread")
        }
        if data and all(isinstance(k, int) for k in data):
            data = None
    if not isinstance(data, dict):
        raise UsageError(
            f"{where}: expected {{text = ...}} or {{messages = {{...}}}}, got {rt.lua_type(input)}"
        )
    if data.get("messages") is None and any(k in data for k in _TEXT_KEYS):
        return [{"role": "user", "content": _text_of(data, where)}]
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise UsageError(
            f"{where}: expected {{text = ...}} or {{messages = {{{{role=..., content=...}}, ...}}}}"
        )
    return messages


def shown_answer(answer: dict) -> dict:
    """The answer as scripts see it: rs-llmspell's scripts read ``text`` or ``content``."""
    return {**answer, "content": answer.get("text")} if isinstance(answer, dict) else answer


#: rs-llmspell's spellings of an invocation's text (``prompt`` comes first, then ``text``).
_TEXT_KEYS = ("prompt", "text", "input", "message", "query")


def _text_of(data: dict, where: str) -> str:
    """One user message from rs-llmspell's ``{prompt, text, …}``: the texts, then other fields."""
    parts = []
    for key in _TEXT_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise UsageError(f"{where}: {key} must be a string")
        parts.append(value)
    extra = [
        f"{k}: {v}"
        for k, v in sorted(data.items(), key=lambda kv: str(kv[0]))
        if k not in _TEXT_KEYS and isinstance(v, (str, int, float)) and not isinstance(v, bool)
    ]
    return "\n\n".join(parts + (["\n".join(extra)] if extra else []))
