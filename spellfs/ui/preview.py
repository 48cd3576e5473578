"""How an artifact's bytes are shown: text, JSON pretty-printed, an image, or size and hash.

Nothing here produces markup: templates escape everything they are given, and
only the image types a browser cannot run (no SVG) are ever served inline.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from ..errors import SpellError
from ..store import load_json

__all__ = ["INLINE_IMAGES", "PREVIEW_MAX", "preview", "side_by_side"]

PREVIEW_MAX = 256 * 1024  # bytes of text shown on a page; the rest is a download away
INLINE_IMAGES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
    b"BM": "image/bmp",
}


def image_type(data: bytes, mime: str | None) -> str | None:
    """The inline image type of ``data``, judged by its first bytes (never by its name alone)."""
    for magic, kind in _SIGNATURES.items():
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def as_text(data: bytes) -> str | None:
    """``data`` as text when it is UTF-8 without NUL bytes; else None."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def preview(data: bytes, mime: str | None = None, name: str = "") -> dict[str, Any]:
    """``{"kind": "image"|"json"|"text"|"binary", "text", "truncated", "mime"}`` for a template."""
    out: dict[str, Any] = {"kind": "binary", "text": None, "truncated": False, "mime": mime}
    image = image_type(data, mime)
    if image:
        out.update(kind="image", mime=image)
        return out
    text = as_text(data)
    if text is None:
        return out
    # (JSON larger than a page shows is not parsed to pretty-print a part of it: a 35 MB file
    # took a minute and held every other page)
    if ((mime or "").endswith("json") or name.endswith(".json")) and len(data) <= PREVIEW_MAX:
        try:
            text = json.dumps(load_json(text, name), indent=2, ensure_ascii=False)
            out["kind"] = "json"
        except (ValueError, SpellError):  # not JSON, or nested too deep to pretty-print
            out["kind"] = "text"
    else:
        out["kind"] = "text"
    if len(text) > PREVIEW_MAX:
        text, out["truncated"] = text[:PREVIEW_MAX], True
    out["text"] = text
    return out


def side_by_side(a: str, b: str, context: int = 3) -> list[dict[str, Any]]:
    """Rows of a two-column diff: ``{"tag", "left_no", "left", "right_no", "right"}``, with
    unchanged runs longer than ``2 * context`` lines folded into one ``"skip"`` row."""
    left, right = a.splitlines(), b.splitlines()
    rows: list[dict[str, Any]] = []
    # autojunk (as `spell diff`): without it, repetitive lines made this quadratic (minutes)
    for group in difflib.SequenceMatcher(None, left, right).get_grouped_opcodes(context):
        if rows:
            rows.append({"tag": "skip", "left_no": None, "left": "", "right_no": None, "right": ""})
        for tag, i1, i2, j1, j2 in group:
            n = max(i2 - i1, j2 - j1)
            for k in range(n):
                li, rj = i1 + k, j1 + k
                rows.append(
                    {
                        "tag": tag,
                        "left_no": li + 1 if li < i2 else None,
                        "left": left[li] if li < i2 else "",
                        "right_no": rj + 1 if rj < j2 else None,
                        "right": right[rj] if rj < j2 else "",
                    }
                )
    return rows
