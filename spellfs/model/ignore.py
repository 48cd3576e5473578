"""``.spellignore``: gitignore-syntax patterns for paths the watcher and ``spell add`` skip."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Ignore"]


class Ignore:
    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self._sig = object()
        self._spec = None

    @property
    def spec(self):
        sig = self.ws.storage.signature(".spellignore")
        if sig != self._sig:
            import pathspec

            lines = []
            if sig is not None:
                lines = self.ws.storage.read(".spellignore").decode("utf-8", "replace").splitlines()
            self._spec = pathspec.GitIgnoreSpec.from_lines(lines)
            self._sig = sig
        return self._spec

    def matches(self, rel: str) -> bool:
        """True when the workspace-relative path ``rel`` is ignored."""
        return self.spec.match_file(rel)

    def matches_path(self, path: Path) -> bool:
        if self.ws.root is None:
            return self.spec.match_file(path.name)
        try:
            rel = os.path.relpath(path.resolve(), self.ws.root)
        except ValueError:
            rel = path.name
        if rel.startswith(".."):
            return self.spec.match_file(path.name)
        return self.spec.match_file(rel)
