"""What a store takes in, before it writes: a local path as pathlib spells it, the name a
file gives by default, its content read whole when small, and a value's kind in a script
writer's words (for errors).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["file_name", "kind_of", "local_path", "read_small"]


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


def read_small(path: str | Path, limit: int = 1 << 20) -> bytes | None:
    """A file's content when it is at most ``limit`` bytes, else None: stream it. Four system
    calls for a small file (a buffered ``open`` takes nine, and a 1 MiB buffer it then
    shrinks)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
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
