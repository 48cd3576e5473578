"""What `spell init` writes into a new workspace: session templates and `.spellignore`.

The repository's top-level ``templates/`` and ``.spellignore`` link here, so the
files a reader finds at the top of the repository are the ones the wheel ships.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["default_spellignore", "default_templates"]


def default_templates() -> dict[str, bytes]:
    """Template file name -> content, for every shipped session template."""
    root = resources.files(__name__) / "templates"
    return {
        p.name: p.read_bytes()
        for p in sorted(root.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".yaml")
    }


def default_spellignore() -> bytes:
    return (resources.files(__name__) / "spellignore").read_bytes()
