"""The one error hierarchy of spellfs.

Every error a user can cause is a :class:`SpellError`; the command line turns it
into ``Error: <message>`` and an exit code, the Lua runtime into a Lua error.
Messages read ``what: where`` plus a hint where one helps. ::

    SpellError                      exit 1
    ├── UsageError                  exit 2  bad arguments, bad names, bad values
    │   └── ConfigError                     spell.yaml / TOML: names file and key
    ├── NotFound                    exit 2
    │   ├── WorkspaceNotFound
    │   ├── SessionNotFound
    │   ├── ArtifactNotFound
    │   ├── CheckpointNotFound
    │   └── ObjectNotFound
    ├── ManifestError               exit 1  a YAML file that does not load: names file and line
    │   └── UnsafePath                      a link or special file under sessions/: never followed
    ├── LimitExceeded               exit 1  max_sessions, max_artifact_size, ...
    ├── InvalidTransition           exit 1  e.g. completed -> active
    │   └── SessionNotActive                a store into a suspended, completed or failed session
    ├── UnrecordedChanges           exit 1  would overwrite files/ content no record holds
    ├── IntegrityError              exit 1  an object whose bytes do not match its id
    ├── HookCancelled               exit 1
    ├── ReplayError                 exit 1
    │   └── NothingToReplay         exit 2  no recorded run in that session or after that checkpoint
    ├── ProviderError               exit 1  a model provider failed (never carries a key)
    └── RemoteError                 exit 1  object storage failed: names remote and cause
"""

from __future__ import annotations

__all__ = [
    "ArtifactNotFound",
    "CheckpointNotFound",
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
    "WorkspaceNotFound",
]


class SpellError(Exception):
    """Root of every error spellfs raises on purpose."""

    exit_code = 1


class UsageError(SpellError):
    exit_code = 2


class ConfigError(UsageError):
    pass


class NotFound(SpellError):
    exit_code = 2


class WorkspaceNotFound(NotFound):
    pass


class SessionNotFound(NotFound):
    pass


class ArtifactNotFound(NotFound):
    pass


class CheckpointNotFound(NotFound):
    pass


class ObjectNotFound(NotFound):
    pass


class ManifestError(SpellError):
    pass


class UnsafePath(ManifestError):
    """A symbolic link or special file where spellfs keeps its own files (a hostile clone)."""


class LimitExceeded(SpellError):
    pass


class InvalidTransition(SpellError):
    pass


class SessionNotActive(InvalidTransition):
    """Only active sessions take stores (as in rs-llmspell); the message names the way on."""


class UnrecordedChanges(SpellError):
    """A command would overwrite or delete hand edits no record holds (``spell save`` or
    ``--force``)."""


class IntegrityError(SpellError):
    pass


class HookCancelled(SpellError):
    pass


class ReplayError(SpellError):
    pass


class NothingToReplay(ReplayError):
    """No recorded run to replay: the user named the wrong session or checkpoint."""

    exit_code = 2


class ProviderError(SpellError):
    pass


class RemoteError(SpellError):
    pass
