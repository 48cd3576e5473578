"""``video_processor``: what a video file in the workspace is (MP4/MOV, MKV/WebM, AVI).

``{operation = "metadata" | "info" | "get_info" | "extract_metadata" | "detect_format",
file_path (or path, input_path, source_path)}`` -> ``{path, format, kind, size_bytes, …}``
from the file's header (:mod:`.media`). ``extract_frame``, ``thumbnail`` and ``convert``
need a media library spellfs does not ship: they fail saying so (rs-llmspell lists them as
later-phase features too). A file that is not a video file is a failure naming its format.
Paths are confined like ``file_operations``'s.
"""

from __future__ import annotations

from .media_tool import media_tool

__all__ = ["TOOL"]

TOOL = media_tool(
    "video_processor",
    "video",
    "Read a video file's format and size",
    unsupported=("extract_frame", "thumbnail", "convert"),
)
