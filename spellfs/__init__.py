"""spellfs: a file-system native workspace for scripted LLM work.

Open a workspace and use its verbs::

    from spellfs import Workspace
    with Workspace.open("myspace") as ws:
        sid = ws.sessions.create(name="research", tags=["demo"])
        ws.artifacts.store(sid, "user_input", "notes.md", b"# Notes")
"""

from .config import Config, load_config
from .errors import (
    ArtifactNotFound, CheckpointNotFound, ConfigError, HookCancelled, IntegrityError, InvalidTransition,
    LimitExceeded, ManifestError, NotFound, NothingToReplay, ObjectNotFound, ProviderError, RemoteError,
    ReplayError,
    SessionNotActive, SessionNotFound, SpellError, UnrecordedChanges, UnsafePath, UsageError,
    WorkspaceNotFound,
)
from .workspace import Workspace, find_root, init_workspace

__version__ = "0.1.0"

__all__ = [
    "ArtifactNotFound",
    "CheckpointNotFound",
    "Config",
    "ConfigError",
    "HookCancelled",
    "IntegrityError",
    "InvalidTransition",
    "LimitExceeded",
    "ManifestError",
    "NotFound",
    "NothingToReplay",
    "ObjectNotFound",
    "ProviderError",
    "RemoteError",
    "ReplayError",
    "SessionNotActive",
    "SessionNotFound",
    "SpellError",
    "UnrecordedChanges",
    "UnsafePath",
    "UsageError",
    "Workspace",
    "WorkspaceNotFound",
    "find_root",
    "init_workspace",
    "load_config",
]
