"""The one shape of ``audio_processor``, ``image_processor`` and ``video_processor``: read a
confined file's header (:func:`.media.probe`); refuse what needs a media library."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .base import Tool, confine, text
from .media import probe

__all__ = ["media_tool"]

READS = ("metadata", "info", "get_info", "extract_metadata", "detect_format")


def media_tool(name: str, kind: str, description: str, unsupported: tuple[str, ...]) -> Tool:
    def run(params: dict, ctx: Any) -> dict:
        operation = text(params, "operation", default="metadata")
        if operation in unsupported:
            raise UsageError(
                f"{operation} is not supported: spellfs reads {kind} headers only "
                "(no media library)"
            )
        if operation not in READS:
            raise UsageError(f"unknown operation: {operation} (use {', '.join(READS)})")
        raw = text(params, "file_path", "path", "input_path", "source_path", "input")
        _, path, shown = confine(ctx, raw)
        if not path.is_file():
            raise UsageError(f"no such file: {shown}")
        info = probe(path)
        if info["kind"] != kind:
            article = "an" if kind[0] in "aeiou" else "a"
            raise UsageError(f"not {article} {kind} file: {shown} (format: {info['format']})")
        return {"path": shown, **info}

    return Tool(
        name,
        description,
        run,
        category="media",
        operations=READS + unsupported,
        parameters={"operation": ", ".join(READS), "file_path": f"the {kind} file"},
    )
