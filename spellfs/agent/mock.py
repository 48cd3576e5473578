"""The ``mock`` provider: a deterministic local stand-in for a model, for trying scripts offline.

rs-llmspell's examples name ``model = "mock/test"``. Here ``mock/<any name>`` is always
available wherever ``Agent`` is (no key, no network) and answers
``"mock: " + <the last user message>``, with word counts as token counts and
``finish_reason = "stop"``; ``max_tokens`` cuts the answer to that many words (then the
finish reason is ``length``). Its calls are recorded and replayed like any other
(provider ``mock``, kind ``mock``), so a script can be developed and replayed before a real
provider is configured.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KIND", "answer"]

KIND = "mock"


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """The mock answer to a normalised request (see the module docstring)."""
    messages = request.get("messages") or []
    last = next(
        (
            m.get("content")
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    if not isinstance(last, str):
        last = str(last)
    words = ["mock:", *last.split()]
    finish = "stop"
    limit = request.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < len(words):
        words, finish = words[:limit], "length"
    prompt_words = sum(
        len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict)
    ) + len(str(request.get("system") or "").split())
    return {
        "text": " ".join(words),
        "model": request.get("model"),
        "usage": {"input_tokens": prompt_words, "output_tokens": len(words)},
        "finish_reason": finish,
    }
