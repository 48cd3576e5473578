"""``State``: JSON-able values persisted in ``state.yaml`` files.

Keys ``session:<id>:<rest>`` live in that session's ``state.yaml`` under
``<rest>``; every other key in the workspace's ``state.yaml``. Each file is read
again when it changed on disk and rewritten atomically on every change.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING, Any

from ..errors import LimitExceeded, ManifestError, SpellError, UnsafePath, UsageError
from ..names import jsonable
from ..store import dump_yaml, load_yaml
from ..store.yamlio import MAX_YAML_BYTES, check_loadable

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["State"]

HEADER = b"# spellfs State values (JSON-able); edit by hand if you like\n"


class State:
    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self._cache: dict[str, tuple[Any, dict]] = {}

    def _place(self, key: Any) -> tuple[str, str, str]:
        """(file, key inside it, session id or '') for ``key``."""
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        if not isinstance(key, str) or not key or len(key) > 1000 or "\0" in key:
            raise UsageError(f"invalid State key: {str(key)[:60]!r} (a non-empty string)")
        if key.startswith("session:"):
            ref, sep, rest = key[len("session:") :].partition(":")
            if not sep or not rest:
                raise UsageError(
                    f"invalid State key: {key!r} (session keys look like session:<id>:<name>)"
                )
            dir = self.ws.sessions.resolve(ref)
            return f"sessions/{dir}/state.yaml", rest, self.ws.sessions.manifest(dir)["id"]
        return "state.yaml", key, ""

    def load(self, rel: str) -> dict:
        """The values of one state file (``state.yaml`` or a session's); a ManifestError names file
        and line."""
        storage = self.ws.storage
        sig = storage.signature(rel)
        cached = self._cache.get(rel)
        if cached is not None and cached[0] == sig:
            return cached[1]
        values = {}
        if sig is not None:
            if not self.ws.memory and os.path.islink(storage.path(rel)):
                # (a session's is refused by the storage; the workspace's too: a cloned
                # repository's link would read a file from elsewhere into State and runs)
                raise UnsafePath(
                    f"refused: {rel} is a symbolic link (spellfs never follows links for "
                    "State; remove it)"
                )
            doc = load_yaml(storage.read(rel), rel)
            if doc is not None and not isinstance(doc, dict):
                raise ManifestError(f"{rel}:1: expected a mapping of key: value")
            values = doc or {}
        self._cache[rel] = (sig, values)
        return values

    def get(self, key: Any) -> Any:
        """The stored value; a list or table is the caller's own copy, so changing it changes
        nothing until it is ``set`` (the cache must keep saying what the file says)."""
        rel, k, _ = self._place(key)
        value = self.load(rel).get(k)
        return copy.deepcopy(value) if isinstance(value, (dict, list)) else value

    def set(self, key: Any, value: Any) -> None:
        rel, k, _ = self._place(key)
        value = jsonable(value, f"State value for {k}")
        with self.ws.storage.lock("state"):
            values = dict(self.load(rel))
            if value is None:
                values.pop(k, None)
            else:
                values[k] = value
            self._save(rel, values)

    def delete(self, key: Any) -> bool:
        rel, k, _ = self._place(key)
        with self.ws.storage.lock("state"):
            values = dict(self.load(rel))
            found = values.pop(k, None) is not None
            if found:
                self._save(rel, values)
        return found

    def _save(self, rel: str, values: dict) -> None:
        storage = self.ws.storage
        # (never a file its reader refuses: every later State call, and every checkpoint of the
        # session, would fail on it until it was edited by hand)
        hint = "keep large values as artifacts: Artifact.store"
        try:
            check_loadable(values, rel)
        except ManifestError as exc:
            raise LimitExceeded(f"State value refused: {exc} ({hint})") from None
        data = HEADER + dump_yaml(values) if values else HEADER + b"{}\n"
        if len(data) > MAX_YAML_BYTES:
            raise LimitExceeded(
                f"State value too large: {rel} would be {len(data):,} bytes (limit "
                f"{MAX_YAML_BYTES:,}; {hint})"
            )
        storage.write(rel, data)
        self._cache[rel] = (storage.signature(rel), values)

    def list(self, prefix: Any = None) -> list[str]:
        if isinstance(prefix, bytes):
            prefix = prefix.decode("utf-8", "replace")
        prefix = prefix or ""
        if not isinstance(prefix, str):
            raise UsageError(
                f"invalid State prefix: {prefix!r} (a string, or nothing for all keys)"
            )
        if prefix.startswith("session:") and prefix.count(":") >= 2:
            rel, rest, sid = self._place(prefix + ("" if not prefix.endswith(":") else "x"))
            inner = prefix.split(":", 2)[2]
            return sorted(f"session:{sid}:{k}" for k in self.load(rel) if k.startswith(inner))
        keys = [k for k in self.load("state.yaml") if k.startswith(prefix)]
        if prefix.startswith("session:"):  # "session:" or "session:<id start>": a string prefix
            head = prefix[len("session:") :]  # of the keys of every session whose id it starts
            for row in self.ws.index.refresh_all(records=False):
                sid = row.id
                if row.error:  # its manifest, or only its records (once read), do not load:
                    try:  # the manifest decides (State is in state.yaml, not the records)
                        sid = self.ws.sessions.manifest(row.dir)["id"]
                    except SpellError:
                        continue
                if sid and sid.startswith(head):
                    values = self.load(f"sessions/{row.dir}/state.yaml")
                    keys += (f"session:{sid}:{k}" for k in values)
        return sorted(keys)

    def session_values(self, ref: Any) -> dict:
        """A copy of the session's values (see :meth:`get`)."""
        dir = self.ws.sessions.resolve(ref)
        return copy.deepcopy(self.load(f"sessions/{dir}/state.yaml"))

    def replace_session_values(self, ref: Any, values: dict) -> None:
        """Make the session's values exactly ``values`` (a checkpoint restore, a State backup).
        They are checked as :meth:`set` checks one, and copied: the caller keeps its dict."""
        dir = self.ws.sessions.resolve(ref)
        if not isinstance(values, dict):
            raise UsageError(f"invalid State values: expected a table, got {type(values).__name__}")
        values = jsonable(values, "State values")
        with self.ws.storage.lock("state"):
            self._save(f"sessions/{dir}/state.yaml", values)
