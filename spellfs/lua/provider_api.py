"""The ``Provider`` global: which model providers a script's agents can use (rs-llmspell's
``Provider.list()``).

``Provider.list()`` returns one ``{name, kind, capabilities = {supports_streaming,
supports_multimodal, available_models}}`` table per provider configured for this workspace
(the environment's and spell.yaml's ``agents.providers``, as ``Agent`` sees them), then the
built-in ``mock`` provider (:mod:`spellfs.agent.mock`). spellfs sends whole requests (no
streaming, text only) and does not ask providers for their model lists, so those capabilities
are ``false`` and ``{}``. ``Provider.get(name)`` gives one entry or nil. Keys are never shown.
``Provider`` exists whether or not a provider is configured (the list is then ``mock`` alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]


def entries(ws: "Workspace") -> list[dict]:
    """The providers a script can name, configured ones first, then ``mock``."""
    from ..agent import workspace_providers

    found = workspace_providers(ws)  # a bad spell.yaml entry raises its ConfigError here
    kinds = [(p.name, p.kind) for p in found.values()]
    if "mock" not in found:
        kinds.append(("mock", "mock"))
    return [
        {
            "name": name,
            "kind": kind,
            "capabilities": {
                "supports_streaming": False,
                "supports_multimodal": False,
                "available_models": [],
            },
        }
        for name, kind in kinds
    ]


def install(rt: "Runtime", ws: "Workspace") -> None:
    def list_() -> Any:
        return rt.out(entries(ws))

    def get(name: Any = None) -> Any:
        wanted = rt.text(name, "Provider.get: provider name")
        found = next((e for e in entries(ws) if e["name"] == wanted), None)
        return None if found is None else rt.out(found)

    rt.set_global("Provider", rt.table("Provider", {"list": list_, "get": get}))
