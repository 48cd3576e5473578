"""The ``Artifact`` global: a thin binding over ``ws.artifacts``.

Content is passed as the Lua string's bytes, so binary content is stored byte
for byte and ``Artifact.get`` hands the same bytes back. Under ``--sandbox``,
``storeFile`` reads only files inside the workspace (relative paths resolve
against the workspace root); otherwise relative paths resolve against the
current directory, as ``io.open`` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]


def install(rt: "Runtime", ws: "Workspace") -> None:
    py, out = rt.py, rt.out

    def metadata(value: Any, fn: str) -> dict | None:
        if value is None:
            return None
        meta = py(value)
        if not isinstance(meta, dict):
            raise UsageError(f"Artifact.{fn}: metadata must be a table, got {rt.lua_type(value)}")
        return meta

    def store(session: Any, type: Any, name: Any, content: Any, meta: Any = None) -> Any:
        if not isinstance(content, bytes):
            raise UsageError(
                f"Artifact.store: content must be a string, got {rt.lua_type(content)}"
            )
        return out(
            ws.artifacts.store(
                py(session),
                rt.text(type, "artifact type"),
                py(name),
                content,
                metadata(meta, "store"),
            )
        )

    def store_file(session: Any, path: Any, type: Any, meta: Any = None) -> Any:
        if not isinstance(path, bytes):
            raise UsageError(f"Artifact.storeFile: path must be a string, got {rt.lua_type(path)}")
        p = Path(os.fsdecode(path))
        if rt.sandbox:
            p = _confined(ws, p)
        return out(
            ws.artifacts.store_file(
                py(session), p, rt.text(type, "artifact type"), metadata(meta, "storeFile")
            )
        )

    def get(session: Any, ref: Any = None) -> Any:
        return out(ws.artifacts.get(py(session), py(ref)))

    def list_(session: Any = None) -> Any:
        return out(ws.artifacts.list(py(session)))

    def query(q: Any = None) -> Any:
        data = py(q) if q is not None else None
        if data is not None and not isinstance(data, dict):
            raise UsageError(f"Artifact.query: expected a query table, got {rt.lua_type(q)}")
        found = ws.artifacts.query(data)
        if (
            ws.run is not None and found
        ):  # a recorded run: the sessions answering are part of its world
            dirs = {(r.manifest or {}).get("id"): r.dir for r in ws.index.rows.values()}
            for sid in {item.get("session_id") for item in found}:
                if sid in dirs:
                    ws.run.note_dir(dirs[sid])
        return out(found)

    def delete(session: Any, ref: Any = None) -> bool:
        ws.artifacts.delete(py(session), py(ref))
        return True

    rt.set_global(
        "Artifact",
        rt.table(
            "Artifact",
            {
                "store": store,
                "storeFile": store_file,
                "get": get,
                "list": list_,
                "query": query,
                "delete": delete,
            },
        ),
    )


def _confined(ws: "Workspace", path: Path) -> Path:
    if ws.root is None:
        raise UsageError("Artifact.storeFile: no files in a memory workspace under --sandbox")
    base = ws.root.resolve()
    full = (base / path).resolve()
    if not full.is_relative_to(base):
        raise UsageError(
            f"Artifact.storeFile: path outside the workspace: {os.fsdecode(path)} "
            "(--sandbox allows only files inside the workspace)"
        )
    inside = full.relative_to(base).parts
    if inside and inside[0].lower() in (".spell", ".git"):  # every session's index, git's config
        raise UsageError(
            f"Artifact.storeFile: path belongs to spellfs, not to scripts: {os.fsdecode(path)} "
            "(--sandbox reads no file under .spell/ or .git/)"
        )
    return full
