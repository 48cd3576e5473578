"""Each provider kind's HTTP body and answer: OpenAI chat completions, Anthropic messages.

:func:`build` turns the one request shape into the kind's URL, headers and body;
:func:`parse_openai` and :func:`parse_anthropic` turn its JSON back into one answer shape::

    answer   {text, model, usage: {input_tokens, output_tokens}, finish_reason}

``finish_reason`` uses OpenAI's words: ``stop``, ``length``, ``tool_calls``,
``content_filter`` (Anthropic's ``end_turn``/``max_tokens``/... are mapped onto them).
The formats are separate from the client (:mod:`.client`), which only moves bytes and
retries: a new kind of provider is a change here alone.
"""

from __future__ import annotations

from typing import Any

from .providers import Failure, Provider

__all__ = ["build", "parse_anthropic", "parse_openai"]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def build(provider: Provider, req: dict, key: str | None) -> tuple[str, dict, dict]:
    headers = {"content-type": "application/json"}
    if provider.kind == "openai":
        messages = (
            [{"role": "system", "content": req["system"]}] if req["system"] is not None else []
        )
        body: dict[str, Any] = {"model": req["model"], "messages": messages + req["messages"]}
        if key:
            headers["authorization"] = f"Bearer {key}"
        url = f"{provider.base_url}/chat/completions"
    else:
        # Anthropic takes the system prompt top-level only; system turns are folded into it.
        system = [req["system"]] if req["system"] is not None else []
        system += [m["content"] for m in req["messages"] if m["role"] == "system"]
        body = {
            "model": req["model"],
            "messages": [m for m in req["messages"] if m["role"] != "system"],
            "max_tokens": req["max_tokens"] or DEFAULT_MAX_TOKENS,
        }
        if system:
            body["system"] = "\n\n".join(system)
        if key:
            headers["x-api-key"] = key
        headers["anthropic-version"] = ANTHROPIC_VERSION
        url = f"{provider.base_url}/v1/messages"
    if req["temperature"] is not None:
        body["temperature"] = req["temperature"]
    if provider.kind == "openai" and req["max_tokens"] is not None:
        body["max_tokens"] = req["max_tokens"]
    return url, headers, body


def parse_openai(data: dict, model: str) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise Failure("empty response: no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    text = message.get("content")
    if not isinstance(text, str):
        raise Failure("empty response: no message content")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return _answer(
        text,
        data.get("model") or model,
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        choice.get("finish_reason"),
    )


def parse_anthropic(data: dict, model: str) -> dict[str, Any]:
    content = data.get("content")
    if not isinstance(content, list) or not content:
        raise Failure("empty response: no content")
    texts = [
        b["text"]
        for b in content
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    ]
    if not texts:
        raise Failure("empty response: no text content")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    reason = data.get("stop_reason")
    return _answer(
        "".join(texts),
        data.get("model") or model,
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        _FINISH.get(reason, reason),
    )


def _answer(text: str, model: Any, tokens_in: Any, tokens_out: Any, finish: Any) -> dict[str, Any]:
    usage = {
        k: n if type(n) is int else 0
        for k, n in (("input_tokens", tokens_in), ("output_tokens", tokens_out))
    }
    return {
        "text": text,
        "model": str(model),
        "usage": usage,
        "finish_reason": str(finish) if finish is not None else None,
    }
