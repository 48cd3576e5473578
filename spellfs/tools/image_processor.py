"""``image_processor``: what an image file in the workspace is (PNG, JPEG, GIF, BMP, WebP).

``{operation = "metadata" | "info" | "get_info" | "extract_metadata" | "detect_format",
file_path (or path, input_path, source_path)}`` -> ``{path, format, kind, size_bytes, …}``
from the file's header (:mod:`.media`); also ``width`` and ``height``. ``resize``,
``thumbnail``, ``convert``, ``rotate``, ``crop`` and ``filter`` need a media library spellfs
does not ship: they fail saying so (rs-llmspell lists them as later-phase features too). A
file that is not an image file is a failure naming its format. Paths are confined like
``file_operations``'s.
"""

from __future__ import annotations

from .media_tool import media_tool

__all__ = ["TOOL"]

TOOL = media_tool(
    "image_processor",
    "image",
    "Read an image file's format, width and height",
    unsupported=("resize", "thumbnail", "convert", "rotate", "crop", "filter"),
)
