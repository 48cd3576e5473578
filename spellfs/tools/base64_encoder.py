"""``base64_encoder``: ``encode``/``decode``, ``variant = "standard"|"url_safe"``.

-> ``{operation, output}`` plus ``encoded`` or ``decoded``; decoding bytes that are not
UTF-8 gives them as a Lua string of bytes.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]


def _base64_encoder(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="encode")
    url = text(params, "variant", default="standard") in ("url_safe", "url", "urlsafe")
    value = params.get("input", params.get("data"))
    if not isinstance(value, (str, bytes)):
        raise UsageError("missing parameter 'input' (text)")
    data = value.encode("utf-8") if isinstance(value, str) else value
    if operation == "encode":
        out = (base64.urlsafe_b64encode if url else base64.b64encode)(data).decode()
        return {"operation": operation, "output": out, "encoded": out}
    if operation == "decode":
        try:
            raw = (base64.urlsafe_b64decode if url else base64.b64decode)(
                data + b"=" * (-len(data) % 4)
            )
        except (binascii.Error, ValueError) as e:
            raise UsageError(f"not base64: {e}") from None
        try:
            decoded: str | bytes = raw.decode("utf-8")
        except UnicodeDecodeError:
            decoded = raw
        return {"operation": operation, "output": decoded, "decoded": decoded}
    raise UsageError(f"unknown operation: {operation} (use encode or decode)")


TOOL = Tool(
    "base64_encoder",
    "Encode and decode Base64",
    _base64_encoder,
    operations=("encode", "decode"),
    parameters={"input": "text", "variant": "standard or url_safe"},
)
