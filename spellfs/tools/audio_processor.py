"""``audio_processor``: what an audio file in the workspace is (WAV, MP3, FLAC, OGG).

``{operation = "metadata" | "info" | "get_info" | "extract_metadata" | "detect_format",
file_path (or path, input_path, source_path)}`` -> ``{path, format, kind, size_bytes, …}``
from the file's header (:mod:`.media`); for WAV also ``channels``, ``sample_rate``,
``bits_per_sample`` and ``duration_seconds``. ``convert``, ``trim`` and ``waveform`` need a
media library spellfs does not ship: they fail saying so (rs-llmspell lists them as
later-phase features too). A file that is not an audio file is a failure naming its
format. Paths are confined like ``file_operations``'s.
"""

from __future__ import annotations

from .media_tool import media_tool

__all__ = ["TOOL"]

TOOL = media_tool(
    "audio_processor",
    "audio",
    "Read an audio file's format (and, for WAV, channels, rate and duration)",
    unsupported=("convert", "trim", "waveform"),
)
