"""A workspace is a folder: finding it, making it, and the services it holds.

:class:`Workspace` owns the configuration, the storage backend, the object store,
the query index, the event bus and hook registry, and hands them to the session,
artifact and state operations, which are the library's public verbs.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config, load_config
from .errors import UsageError, WorkspaceNotFound
from .store import FsStorage, MemoryStorage, atomic_write

if TYPE_CHECKING:
    from .model import Artifacts
    from .model import ArtifactLog
    from .events import EventBus
    from .history import History
    from .hooks import HookRegistry
    from .model import Index
    from .store import ObjectStore
    from .model import Sessions
    from .model import State
    from .model import Ignore, Worktree

__all__ = ["Workspace", "find_root", "init_workspace"]

SPELL_YAML = """\
# spellfs workspace configuration. Every key is optional; the defaults are shown.
# sessions:
#   max_sessions: 100
#   max_artifacts_per_session: 1000
#   artifact_compression_threshold: 10240
#   session_timeout_seconds: 3600
#   storage_backend: fs
#   max_artifact_size: 104857600
#   max_import_bytes: 10737418240   # the most `spell import` writes for one archive
# watch:
#   materialize_max_bytes: 104857600
# git:
#   max_object_bytes: 52428800
# agents:
#   cache: false            # answer an identical model request from the store
#   timeout_seconds: 120    # per model call
#   providers:              # default: from OPENAI_API_KEY / ANTHROPIC_API_KEY / OPENAI_BASE_URL
#     local: {kind: openai, base_url: "http://localhost:11434/v1"}
#     claude: {kind: anthropic, key_env: ANTHROPIC_API_KEY}
# remotes:                  # `spell remote add` writes these
#   origin: {url: "s3://bucket/prefix", endpoint_url: "http://127.0.0.1:8333"}
"""
# Inside .spell/ only the objects are shared; caches, index, locks and logs are not.
SPELL_GITIGNORE = "/*\n!/objects/\n/objects/pack/\n!/.gitignore\n"


def find_root(start: Path | None = None, explicit: str | os.PathLike | None = None) -> Path | None:
    """``--workspace``, else ``$SPELL_WORKSPACE``, else the nearest ancestor with spell.yaml or
    .spell/.

    A folder named by ``--workspace`` or ``$SPELL_WORKSPACE`` must already be a workspace:
    using any folder as one would write ``.spell/`` and ``sessions/`` into a place the user
    never initialised (``spell -w /etc ls``). Raises WorkspaceNotFound (exit 2) before
    anything is written.
    """
    if explicit:
        return _named_root(Path(explicit), "")
    env = os.environ.get("SPELL_WORKSPACE")
    if env:
        return _named_root(Path(env), "from $SPELL_WORKSPACE; ")
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if _is_workspace(d):
            return d
    return None


def _is_workspace(d: Path) -> bool:
    """Whether ``d`` holds a workspace: a ``spell.yaml`` file or a ``.spell/`` folder."""
    return (d / "spell.yaml").is_file() or (d / ".spell").is_dir()


def _named_root(root: Path, source: str) -> Path:
    if not root.is_dir():
        raise WorkspaceNotFound(
            f"workspace not found: {root} ({source}make one with `spell init {root}`)"
        )
    if not _is_workspace(root):
        raise WorkspaceNotFound(
            f"not a workspace: {root} ({source}no spell.yaml or .spell/; make one with "
            f"`spell init {root}`)"
        )
    return root.resolve()


def init_workspace(root: Path) -> bool:
    """Make ``root`` a workspace (idempotent); return True when it was new."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UsageError(f"cannot make a workspace: {root} is a file")
    new = not ((root / "spell.yaml").exists() or (root / ".spell").is_dir())
    from .defaults import default_spellignore, default_templates

    made: list[Path] = []  # what this call created, removed again if it fails part-way
    try:
        for d in ("sessions", "templates", ".spell/objects"):
            for p in reversed([root / d, *(root / d).parents]):
                if not p.exists():
                    p.mkdir()
                    made.append(p)
        files = {
            ".spell/.gitignore": SPELL_GITIGNORE.encode(),
            ".spellignore": default_spellignore(),
        }
        if new:  # the shipped session templates, once: a template the user removed stays removed
            files.update({f"templates/{name}": data for name, data in default_templates().items()})
        files["spell.yaml"] = SPELL_YAML.encode()  # last: it is what makes the folder a workspace
        for name, data in files.items():
            if not (root / name).exists():
                atomic_write(root / name, data)
                made.append(root / name)
    except BaseException:
        for p in reversed(made):
            if p.is_dir():
                import shutil

                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        raise
    return new


#: A file in ``.spell/`` naming another workspace's objects directory this one reads
#: (never writes): a replay's scratch world shares the original's store this way.
ALTERNATES = "alternates"


def _share_objects(store: Any, shared: Path) -> None:
    """Read objects missing here from ``shared`` (read-only): hard-link them in, else copy.

    Objects are immutable and read-only (0o444), so a link exposes nothing to writes;
    new objects are written here only; a packed one is copied out of its pack. Any fetcher
    already installed (a remote) is asked after ``shared``.
    """
    from .store import Packs

    previous = store.__dict__.get("fetcher")
    packs = Packs(os.fspath(shared))

    def fetch(oid: str) -> bool:
        source = shared / oid[:2] / oid[2:]
        if source.is_file():
            target = store.path(oid)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except FileExistsError:
                pass
            except OSError:  # another file system: copy through the verified path
                store.add_verified(oid, source.read_bytes(), str(source))
            return True
        packed = packs.read(oid)
        if packed is not None:
            store.add_verified(oid, packed[0], f"{packed[1]}: {oid}")
            return True
        return bool(previous and previous(oid))

    store.fetcher = fetch


class Workspace:
    """One open workspace. Use as a context manager, or call :meth:`close`."""

    def __init__(self, root: Path | None, config: Config | None = None, actor: str = "api") -> None:
        self.root = Path(root) if root is not None else None
        self.config = config if config is not None else load_config(self.root)
        self.actor = actor
        self.current_session: str | None = None
        #: The script run being recorded (set by `spell run`); told of every session and artifact
        #: it touches.
        self.run: Any = None
        self.memory = self.config.backend == "memory" or self.root is None
        self.storage = MemoryStorage() if self.memory else FsStorage(self.root)
        self._logs: OrderedDict[str, ArtifactLog] = OrderedDict()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike | None = None,
        config_file: str | os.PathLike | None = None,
        actor: str = "api",
    ) -> "Workspace":
        root = find_root(explicit=path)
        if root is None:
            raise WorkspaceNotFound(
                "no workspace here (no spell.yaml or .spell/ in this directory or above; "
                "make one with `spell init`)"
            )
        return cls(root, load_config(root, Path(config_file) if config_file else None), actor=actor)

    @classmethod
    def in_memory(cls, config: Config | None = None) -> "Workspace":
        config = config or Config()
        config.set("sessions.storage_backend", "memory")
        return cls(None, config)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if "objects" in self.__dict__:
            self.objects.close()  # (its journal becomes a pack)
        if "index" in self.__dict__:
            self.index.close()
        if "worktree" in self.__dict__:
            self.worktree.close()
        self.storage.close()

    # -- services, made on first use so a script pays only for what it touches --
    @cached_property
    def objects(self) -> "ObjectStore":
        from .store import FsObjectStore, MemoryObjectStore

        if self.memory:
            return MemoryObjectStore(self.config.threshold)
        assert self.root is not None  # on disk
        store = FsObjectStore(self.root / ".spell" / "objects", self.config.threshold)
        # (trees, records and scripts are smaller than the smallest limit one may set)
        store.limit = max(self.config.get("sessions.max_artifact_size"), 64 << 20)
        if self.config.remotes:  # a missing object is fetched from the default remote on first read
            from .remote import install_fetcher

            install_fetcher(self, store)
        if (self.root / ".gitattributes").is_file():  # shared through git: objects the files/
            from .git import install_rebuilder  # copies carry are rebuilt from them (issue 19)

            install_rebuilder(self, store)
        shared = self.root / ".spell" / ALTERNATES
        if shared.is_file():
            _share_objects(store, Path(shared.read_text("utf-8").strip()))
        return store

    @cached_property
    def index(self) -> "Index":
        from .model import Index

        if self.memory:
            return Index(self, None)
        assert self.root is not None  # on disk
        return Index(self, self.root / ".spell" / "index.sqlite")

    @cached_property
    def events(self) -> "EventBus":
        from .events import EventBus

        return EventBus()

    @cached_property
    def hooks(self) -> "HookRegistry":
        from .hooks import HookRegistry

        return HookRegistry()

    @cached_property
    def sessions(self) -> "Sessions":
        from .model import Sessions

        return Sessions(self)

    @cached_property
    def artifacts(self) -> "Artifacts":
        from .model import Artifacts

        return Artifacts(self)

    @cached_property
    def state(self) -> "State":
        from .model import State

        return State(self)

    @cached_property
    def worktree(self) -> "Worktree":
        """The working-copy view: hand edits under ``files/`` seen without the watcher."""
        from .model import Worktree

        return Worktree(self)

    @cached_property
    def ignore(self) -> "Ignore":
        from .model import Ignore

        return Ignore(self)

    @cached_property
    def history(self) -> "History":
        from .history import History

        return History(self)

    def log(self, dir: str) -> "ArtifactLog":
        """The in-memory view of one session's artifacts.yaml (a small LRU)."""
        log = self._logs.get(dir)
        if log is None:
            from .model import ArtifactLog

            log = self._logs[dir] = ArtifactLog(self.storage, f"sessions/{dir}/artifacts.yaml")
            while len(self._logs) > 64:
                self._logs.popitem(last=False)
        else:
            self._logs.move_to_end(dir)
        return log

    def publish(self, event_type: str, data: Any) -> None:
        if "events" in self.__dict__:
            self.events.publish(event_type, data)
