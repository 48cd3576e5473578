"""The MIME type an artifact gets from its name: one fixed table shipped with spellfs.

Records travel between machines (git, remotes, archives), so the type must not
depend on the machine's ``/etc/mime.types``: the table below decides first, and
stdlib :mod:`mimetypes` with its built-in defaults only (no system files read into
the instance used) answers for suffixes the table lacks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MIME_TYPES", "guess_mime", "mime_for"]

MIME_TYPES: dict[str, str] = {
    # text and markup
    "txt": "text/plain",
    "text": "text/plain",
    "log": "text/plain",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "rst": "text/x-rst",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "html": "text/html",
    "htm": "text/html",
    "css": "text/css",
    "xml": "application/xml",
    "svg": "image/svg+xml",
    "tex": "application/x-tex",
    "ics": "text/calendar",
    "vtt": "text/vtt",
    # data and configuration
    "json": "application/json",
    "jsonl": "application/jsonl",
    "ndjson": "application/x-ndjson",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "toml": "application/toml",
    "ini": "text/plain",
    "cfg": "text/plain",
    "conf": "text/plain",
    "env": "text/plain",
    "sql": "application/sql",
    "parquet": "application/vnd.apache.parquet",
    "sqlite": "application/vnd.sqlite3",
    "db": "application/octet-stream",
    # source code
    "lua": "text/x-lua",
    "py": "text/x-python",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "ts": "text/x-typescript",
    "sh": "application/x-sh",
    "c": "text/x-c",
    "h": "text/x-c",
    "cpp": "text/x-c++",
    "hpp": "text/x-c++",
    "rs": "text/x-rust",
    "go": "text/x-go",
    "java": "text/x-java",
    "rb": "text/x-ruby",
    "ipynb": "application/x-ipynb+json",
    # documents
    "pdf": "application/pdf",
    "rtf": "application/rtf",
    "epub": "application/epub+zip",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    # images, audio, video
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "ico": "image/vnd.microsoft.icon",
    "avif": "image/avif",
    "heic": "image/heic",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    # archives
    "zip": "application/zip",
    "tar": "application/x-tar",
    "gz": "application/gzip",
    "tgz": "application/gzip",
    "tar.gz": "application/gzip",
    "bz2": "application/x-bzip2",
    "xz": "application/x-xz",
    "zst": "application/zstd",
    "tar.zst": "application/zstd",
    "7z": "application/x-7z-compressed",
    # binaries
    "bin": "application/octet-stream",
    "exe": "application/octet-stream",
    "wasm": "application/wasm",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
}

_fallback: Any = None


def guess_mime(suffix: str) -> str | None:
    """The type for a lower-case ``suffix`` (``"md"``, ``"tar.gz"``), or None when unknown."""
    global _fallback
    for key in (suffix, suffix.rpartition(".")[2]):
        if key in MIME_TYPES:
            return MIME_TYPES[key]
    if _fallback is None:
        import mimetypes

        # An instance holds the interpreter's built-in table only, never /etc/mime.types.
        _fallback = mimetypes.MimeTypes()
    # ("x." for an empty suffix: no type has an empty extension)
    return _fallback.guess_type(f"x.{suffix}", strict=False)[0]


_MIME_BY_SUFFIX: dict[str, str | None] = {}


def mime_for(name: str, head: bytes) -> str:
    """The mime type a stored artifact is given: by its name's suffix, else text or bytes by
    its first 4 KiB."""
    after = name.lower().partition(".")[2]  # the last two suffixes: "tar.gz" is not "gz"
    suffix = after if after.count(".") < 2 else ".".join(after.rsplit(".", 2)[-2:])
    guess = _MIME_BY_SUFFIX.get(suffix, "")
    if guess == "":
        if len(_MIME_BY_SUFFIX) > 4096:
            _MIME_BY_SUFFIX.clear()
        guess = _MIME_BY_SUFFIX[suffix] = guess_mime(suffix)
    if guess:
        return guess
    try:
        head[:4096].decode("utf-8")
        return "text/plain"
    except UnicodeDecodeError:
        return "application/octet-stream"
