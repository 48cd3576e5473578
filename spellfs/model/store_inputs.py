"""What a store takes in, before it writes: a local path as pathlib spells it, the name a
file gives by default, its content read whole when small, a value's kind in a script
writer's words (for errors), each item checked (and shown to the BeforeArtifactStore
hook) with the record fields its metadata gives, and the session checked to take stores.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import LimitExceeded, SessionNotActive, UsageError
from ..names import check_artifact_name, check_tags, check_word, jsonable
from ..store import file_kind

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = [
    "file_name",
    "kind_of",
    "local_path",
    "open_binary",
    "open_source",
    "prepare",
    "read_small",
    "record_fields",
    "require_active",
    "too_large",
    "not_regular",
]

_META_KEYS = ("mime_type", "description", "tags")


def _plain(path: str) -> bool:
    """Whether pathlib would keep ``path`` as it is (no ``//``, ``.`` part or trailing slash)."""
    return (
        "//" not in path
        and "/./" not in path
        and not path.startswith("./")
        and not path.endswith(("/", "/."))
        and path != "."
    )


def local_path(path: str) -> str:
    """``path`` as ``pathlib.Path`` spells it, without building one for a plain path (a bulk
    add names 20,000): ``a//b/`` is ``a/b``, so ``spell add S notes.md/`` stores notes.md."""
    return path if _plain(path) else os.fspath(Path(path))


def file_name(path: str) -> str:
    """The artifact name a file's path gives by default: its last part, as ``Path.name``."""
    name = local_path(path).rpartition("/")[2]
    return "" if name == "." else name  # (``Path(".")`` has no parts)


def kind_of(value: Any) -> str:
    """A value's kind in a script writer's words (a Lua table arrives as lupa's ``_LuaTable``)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (dict, list, tuple)) or type(value).__name__ == "_LuaTable":
        return "a table"
    return type(value).__name__


def too_large(name: str, size: int, limit: int) -> LimitExceeded:
    """The refusal of an artifact over ``sessions.max_artifact_size`` (checked before a batch,
    and again when a file is read: it may have grown)."""
    return LimitExceeded(
        f"artifact too large: {name} is {size} bytes; max_artifact_size is {limit} "
        "(raise sessions.max_artifact_size in spell.yaml)"
    )


def not_regular(path: str | Path, mode: int) -> UsageError:
    """The refusal of a path to store that is no regular file (checked before a batch, and
    again when it is opened: something else may have been put in its place)."""
    return UsageError(f"not a regular file: {path} ({file_kind(mode)}; store a file)")


def open_source(path: str | Path) -> tuple[int, os.stat_result]:
    """Open a file to store, and its stat: refused in one line when it is not a regular file
    now (it was when the batch was checked, but a FIFO put in its place would block the read
    for ever, and a folder has no content to read)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise not_regular(path, st.st_mode)
    return fd, st


def open_binary(path: str | Path) -> BinaryIO:
    """:func:`open_source` as a file object, for a file streamed in chunks."""
    return os.fdopen(open_source(path)[0], "rb")


def read_small(path: str | Path, limit: int = 1 << 20) -> bytes | None:
    """A file's content when it is at most ``limit`` bytes, else None: stream it. Four system
    calls for a small file (a buffered ``open`` takes nine, and a 1 MiB buffer it then
    shrinks)."""
    fd, st = open_source(path)
    try:
        size = st.st_size
        if size > limit:
            return None
        data = os.read(fd, size + 1)
        while len(data) != size and len(data) <= limit:  # short read, or it changed: read on
            more = os.read(fd, limit + 1 - len(data))
            if not more:
                break
            data += more
    finally:
        os.close(fd)
    return data if len(data) <= limit else None


def prepare(
    ws: "Workspace",
    dir: str,
    type: str,
    name: str,
    content: bytes | str | None,
    path: str | Path | None,
    metadata: dict | None,
) -> tuple[dict, bytes | None, str | Path | None]:
    """Run the BeforeArtifactStore hook and check everything that needs no lock. A file
    stored by path and too big to read up front (``content`` None) goes through the hook
    too, with ``content`` nil: the hook can still cancel it, rename it or give content."""
    if (
        (content is not None or path is not None)
        and "hooks" in ws.__dict__
        and ws.hooks.active("BeforeArtifactStore")
    ):
        sid = ws.sessions.manifest(dir)["id"]
        data = ws.hooks.run(
            "BeforeArtifactStore",
            sid,
            {
                "session_id": sid,
                "type": type,
                "name": name,
                "content": content,
                "metadata": metadata or {},
            },
        )
        type, name, content, metadata = (
            data.get("type", type),
            data.get("name", name),
            data.get("content", content),
            data.get("metadata", metadata),
        )
    name = check_artifact_name(name)
    type = check_word("artifact type", type, 64)
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogateescape")
    elif (content is not None or path is None) and not isinstance(content, bytes):
        if isinstance(content, (bytearray, memoryview)):
            content = bytes(content)
        else:
            raise UsageError(
                f"invalid content for {name}: expected a string, got {kind_of(content)}"
            )
    rec = record_fields(name, type, metadata)
    limit = ws.config.get("sessions.max_artifact_size")
    if content is not None and len(content) > limit:
        raise too_large(name, len(content), limit)
    rec["name"] = name
    return rec, content, path


def record_fields(name: str, type: str, metadata: dict | None) -> dict:
    """The fields a record takes from a store's type and metadata, each checked."""
    rec: dict[str, Any] = {"type": type}
    if metadata is None or (isinstance(metadata, dict) and not metadata):
        return rec
    if not isinstance(metadata, dict):
        raise UsageError(f"invalid metadata for {name}: expected a table")
    meta = jsonable(metadata, f"metadata for {name}")
    if meta.get("mime_type") is not None:
        rec["mime_type"] = (
            check_word("mime_type", meta["mime_type"], 200)
            if "/" not in str(meta["mime_type"])
            else str(meta["mime_type"])[:200]
        )
    if meta.get("description"):
        if not isinstance(meta["description"], str):
            raise UsageError(f"invalid description for {name}: expected a string")
        rec["description"] = meta["description"]
    tags = check_tags(meta.get("tags"))
    if tags:
        rec["tags"] = tags
    custom = dict(meta.get("custom") or {}) if isinstance(meta.get("custom"), dict) else {}
    custom.update((k, v) for k, v in meta.items() if k not in _META_KEYS and k != "custom")
    if custom:
        rec["custom"] = custom
    return rec


def require_active(ws: "Workspace", m: dict, verb: str = "store artifacts in") -> None:
    """Only active sessions take stores (as in rs-llmspell); the error names the way on.

    A SessionEnd hook of the session being closed may still store (a summary, say)."""
    status = m["status"]
    if status == "active" or m["id"] in ws.sessions.closing:
        return
    sid = m["id"][:8]
    way = (
        f"resume it first: `spell resume {sid}`"
        if status == "suspended"
        else f"a finished session is read-only; fork it: `spell fork {sid}`"
    )
    raise SessionNotActive(f"cannot {verb} {status} session {sid} ({way})")
