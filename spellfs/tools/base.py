"""What every tool shares: the :class:`Tool` record, parameter reading, workspace confinement.

A tool's ``run(params, ctx)`` returns its result table or raises; :meth:`Tool.execute`
turns that into rs-llmspell's envelope ``{success = true, result = {...}}`` or
``{success = false, error = "tool: message"}`` and never raises, whatever ``params`` hold.
``ctx`` carries ``root`` (the workspace folder), ``workspace`` and ``sandbox``.

:func:`confine` is the one gate from a script-given path to the disk: it resolves the path
against ``ctx.root`` (symlinks included), refuses anything outside it, and refuses spellfs's
own files (:data:`PROTECTED_TOP`, :data:`RECORD_FILES` at any depth), so no tool can damage
the workspace's history, configuration or repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import SpellError, UsageError

__all__ = ["PROTECTED_TOP", "RECORD_FILES", "Tool", "confine", "number", "text"]

#: Names at the workspace root that belong to spellfs (or git), not to scripts.
PROTECTED_TOP = frozenset({".git", ".spell", "spell.yaml", ".spellignore", "templates"})
#: spellfs's record files, refused wherever they are (they live under sessions/).
RECORD_FILES = frozenset(
    {"artifacts.yaml", "checkpoints.yaml", "runs.yaml", "calls.yaml", "session.yaml", "state.yaml"}
)


@dataclass(frozen=True)
class Tool:
    """A built-in tool. ``machine`` tools (network, processes, the host) are off by default."""

    name: str
    description: str
    run: Callable[[dict, Any], dict]
    category: str = "utility"
    machine: bool = False
    version: str = "1.0.0"
    operations: tuple[str, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    #: A tool whose answers come from outside (web_search) is recorded and replayed like a
    #: model call: ``request(params, ctx)`` says what is asked, ``fetch(request, ctx)`` asks.
    request: Callable[[dict, Any], dict] | None = None
    fetch: Callable[[dict, Any], dict] | None = None

    def execute(self, params: Any = None, ctx: Any = None) -> dict:
        """Run the tool; failures come back as ``{"success": False, "error": ...}``."""
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return {"success": False, "error": f"{self.name}: parameters must be a table"}
        return self.guard(self.run, params, ctx)

    def guard(self, fn: Callable[..., dict], *args: Any) -> dict:
        """``fn(*args)`` in the envelope: its result, or the failure as ``{success = false}``."""
        try:
            return {"success": True, "result": fn(*args)}
        except SpellError as e:
            return {"success": False, "error": f"{self.name}: {e}"}
        except OSError as e:
            return {"success": False, "error": f"{self.name}: {e.strerror or e}"}
        except Exception as e:  # the contract: a bad call never raises into the script
            return {"success": False, "error": f"{self.name}: {type(e).__name__}: {e}"}

    def schema(self) -> dict:
        """rs-llmspell's ``getSchema()`` shape: name, description, parameters list."""
        params = [
            {"name": n, "type": "string", "description": d, "required": n == "operation"}
            for n, d in self.parameters.items()
        ]
        if self.operations and "operation" not in self.parameters:
            params.insert(
                0,
                {
                    "name": "operation",
                    "type": "string",
                    "required": True,
                    "description": "one of: " + ", ".join(self.operations),
                },
            )
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "category": self.category,
            "parameters": params,
        }


def text(params: dict, *names: str, default: str | None = None) -> str:
    """The first of ``names`` present in ``params``, which must be a string."""
    for name in names:
        value = params.get(name)
        if isinstance(value, str):
            return value
        if value is not None:
            raise UsageError(f"parameter '{name}' must be a string")
    if default is None:
        raise UsageError(f"missing parameter '{names[0]}'")
    return default


def number(params: dict, name: str, default: float | None = None) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"parameter '{name}' must be a number")
    return value


def confine(ctx: Any, raw: str) -> tuple[Path, Path, str]:
    """``(root, resolved path, path shown relative to root)`` or a refusal naming ``raw``."""
    root = getattr(ctx, "root", None)
    if root is None:
        raise UsageError("no base directory for file operations")
    root = Path(root).resolve()
    path = (root / raw).resolve()  # an absolute raw path replaces root here
    if not path.is_relative_to(root):
        raise UsageError(f"path outside the allowed directory: {raw}")
    for candidate in (path, (root / raw).absolute()):  # the target, and the name as written
        try:
            parts = candidate.relative_to(root).parts
        except ValueError:
            continue
        if _protected(parts):
            raise UsageError(f"path belongs to spellfs, not to scripts: {raw}")
    return root, path, path.relative_to(root).as_posix()


def _protected(parts: tuple[str, ...]) -> bool:
    folded = [p.lower() for p in parts if p not in ("", ".")]
    if not folded:
        return False
    if ".." in folded:  # lexical form of a path that resolved inside: judge the resolved one
        return False
    # A ``.git`` anywhere: a repository planted in a sub-folder (its config can run commands
    # for whoever runs git there) is one ``move`` away from the workspace's own.
    return folded[0] in PROTECTED_TOP or folded[-1] in RECORD_FILES or ".git" in folded
