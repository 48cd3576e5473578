"""spellfs: a file-system native workspace for scripted LLM work.

Open a workspace and use its verbs::

    from spellfs import Workspace
    with Workspace.open("myspace") as ws:
        sid = ws.sessions.create(name="research", tags=["demo"])
        ws.artifacts.store(sid, "user_input", "notes.md", b"# Notes")
"""

import os as _os

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)

if _os.name != "posix":  # fcntl locks and POSIX file semantics throughout
    raise ImportError(
        "spellfs needs a POSIX system (Linux, macOS, BSD): it relies on fcntl file locks "
        "and POSIX rename semantics (on Windows, use WSL)"
    )

from .config import Config, load_config
from .errors import (
    ArtifactNotFound,
    CheckpointNotFound,
    ConfigError,
    HookCancelled,
    IntegrityError,
    InvalidTransition,
    LimitExceeded,
    ManifestError,
    NotFound,
    NothingToReplay,
    ObjectNotFound,
    ProviderError,
    RemoteError,
    ReplayError,
    SessionNotActive,
    SessionNotFound,
    SpellError,
    UnrecordedChanges,
    UnsafePath,
    UsageError,
    WorkspaceNotFound,
)
from .workspace import Workspace, find_root, init_workspace

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
