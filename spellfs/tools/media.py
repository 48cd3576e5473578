"""What the media tools read from a file's first bytes: its format and, where the header says
it, dimensions or duration. Standard library only: no decoding, no conversion.

:func:`probe` recognises WAV (channels, sample rate, duration via :mod:`wave`), MP3, FLAC,
OGG, PNG, JPEG, GIF, BMP, WebP (width and height from the header), MP4/MOV, MKV/WebM and
AVI, and says ``unknown`` otherwise.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

__all__ = ["KIND", "probe"]

#: format -> audio, image or video
KIND = {
    "wav": "audio", "mp3": "audio", "flac": "audio", "ogg": "audio",
    "png": "image", "jpeg": "image", "gif": "image", "bmp": "image", "webp": "image",
    "mp4": "video", "mkv": "video", "avi": "video",
}  # fmt: skip


def _format(head: bytes) -> str:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM":
        return "bmp"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    return "unknown"


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _size(fmt: str, data: bytes) -> tuple[int, int] | None:
    try:
        if fmt == "png":
            return struct.unpack(">II", data[16:24])
        if fmt == "gif":
            return struct.unpack("<HH", data[6:10])
        if fmt == "bmp":
            w, h = struct.unpack("<ii", data[18:26])
            return w, abs(h)
        if fmt == "jpeg":
            return _jpeg_size(data)
        if fmt == "webp" and data[12:16] == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h
    except struct.error:
        return None
    return None


def probe(path: Path) -> dict[str, Any]:
    """``{format, kind, size_bytes}`` plus what the header gives (see the module docstring)."""
    with path.open("rb") as f:
        data = f.read(256 * 1024)
    fmt = _format(data[:16])
    info: dict[str, Any] = {
        "format": fmt,
        "kind": KIND.get(fmt, "unknown"),
        "size_bytes": path.stat().st_size,
    }
    if fmt == "wav":
        import wave

        try:
            with wave.open(str(path), "rb") as w:
                rate = w.getframerate()
                info.update(
                    channels=w.getnchannels(),
                    sample_rate=rate,
                    bits_per_sample=w.getsampwidth() * 8,
                    duration_seconds=round(w.getnframes() / rate, 3) if rate else None,
                )
        except (wave.Error, EOFError):
            pass
    size = _size(fmt, data)
    if size:
        info["width"], info["height"] = size
    return info
