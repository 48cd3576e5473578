"""What a hand edit under ``sessions/`` becomes, once its key has settled: a file under
``files/`` a new version or a deletion, a ``session.yaml`` edit a manifest change (or an
``invalid`` report naming file and line). The :class:`~spellfs.watch.watcher.Watcher`'s
half that acts on keys (a mixin, as :class:`~spellfs.watch.catchup.CatchUp` is).

Our own writes are not hand edits: the hash is compared, under the session's
store lock, with the latest record of that name; equal means nothing to do. A
content equal to an *older* version is a new version (the user reverted). The
file is read before the lock is taken, so under it its stat is checked again: a
store that got the lock first has replaced it, and what was read (that store's
predecessor's copy) is not taken for a hand edit; the file is looked at again.
"""

from __future__ import annotations

import os
import stat as statmod
from typing import Any

from ..errors import ManifestError, SessionNotFound, UsageError
from ..model.absent import DELETED, UNWRITTEN, KeptOut, absence, write_back
from ..model import carried
from ..model.inflight import pending, repair_inflight
from ..names import check_artifact_name
from .catchup import StatCache, hash_path, stat_of

__all__ = ["HandEdits"]


class HandEdits:
    """The :class:`~spellfs.watch.watcher.Watcher`'s half that turns settled keys into records
    (a mixin)."""

    ws: Any
    cache: StatCache
    ignore: Any
    _prefix: str
    _real_root: str
    _bad: dict
    _manifests: dict

    # -- files -----------------------------------------------------------------
    def _file(self, dir: str, name: str, st_event: Any, scanned: bool = False) -> None:
        path = f"{self._prefix}{dir}/files/{name}"
        rel = f"sessions/{dir}/files/{name}"
        st = stat_of(path)
        if not scanned and st != st_event:
            self._schedule(("f", dir, name), st)  # still moving
            return
        if dir in self._bad or self.ignore.matches(rel):
            return
        if st is None:
            self._gone(dir, name, rel)
            return
        target = path
        if statmod.S_ISLNK(st[3]):
            target = os.path.realpath(path)
            if not self._inside(target):
                self._warn_once(
                    ("link", rel, target),
                    f"skipped {rel}: a link out of the workspace (to {target})",
                )
                return
            try:
                t = os.stat(target)
            except OSError:
                return
            st = (t.st_ino, t.st_size, t.st_mtime_ns, t.st_mode, t.st_ctime_ns)
        if not statmod.S_ISREG(st[3]):
            return
        try:
            check_artifact_name(name)
        except UsageError as exc:
            self._warn_once(("name", rel), f"skipped {rel}: {exc}")
            return
        digest, data = self.cache.lookup(rel, st), None
        if digest is None:
            got = hash_path(target)
            if got is None or got[2][:3] != st[:3]:
                self._schedule(("f", dir, name), stat_of(path))  # changed while read
                return
            digest, data, _ = got
        self._record(dir, name, rel, target, st, digest, data)

    def _latest(self, dir: str, name: str) -> tuple[dict, Any, dict | None] | None:
        """(manifest, refreshed log, latest record of ``name``), or None when the session is gone or
        broken (and reported); call under the session lock."""
        try:
            m = self.ws.sessions.manifest(dir)
        except SessionNotFound:
            return None
        except ManifestError as exc:
            self._report_bad(dir, exc)
            return None
        log = self.ws.log(dir)
        log.refresh()
        return m, log, log.latest(name)

    def _record(
        self, dir: str, name: str, rel: str, target: str, st: Any, digest: str, data: bytes | None
    ) -> None:
        ws = self.ws
        with ws.storage.lock(f"s-{dir}"):
            found = self._latest(dir, name)
            if found is None:
                return
            m, log, latest = found
            if latest is not None and latest.get("hash") == digest:
                self.cache.put(rel, st, digest)  # our own copy, or nothing new
                return
            now_st = stat_of(target)
            if now_st is None or now_st[:3] != st[:3]:
                # Rewritten since it was read: a store (which writes files/ under this lock)
                # came first, so what was read may be its stale copy. Look again.
                self._schedule(("f", dir, name), stat_of(f"{self._prefix}{dir}/files/{name}"))
                return
            if self._phantom(dir, name):
                return  # a copy a killed store left: put back, never adopted as a hand edit
            m = self._writable(dir, m, rel)
            if m is None:
                return
            meta = carried(latest)
            if data is not None:
                aid = ws.artifacts.store(dir, "user_input", name, data, meta, materialized=True)
            else:
                aid = ws.artifacts.store_file(
                    dir, target, "user_input", name=name, metadata=meta, materialized=True
                )
            rec = log.latest(name) or {}
        if aid["content_hash"] == digest:
            self.cache.put(rel, st, digest)
        else:
            self.cache.drop(rel)
        self._change(
            "stored",
            dir,
            m,
            path=rel,
            name=name,
            version=rec.get("version"),
            hash=aid["content_hash"],
            size=rec.get("size"),
        )

    def _gone(self, dir: str, name: str, rel: str) -> None:
        ws = self.ws
        with ws.storage.lock(f"s-{dir}"):
            found = self._latest(dir, name)
            if found is None:
                return
            m, _, latest = found
            if latest is None:
                self.cache.drop(rel)
                return
            if latest.get("size", 0) > ws.config.get("watch.materialize_max_bytes"):
                return  # too large to have a copy under files/: absence is not a deletion
            why = absence(ws, dir, name, latest, rel in self.cache.entries, KeptOut(ws))
            if why != DELETED:  # not local, or kept out of git and never here: no deletion
                if why == UNWRITTEN:
                    write_back(ws, dir, [name])
                return
            if os.path.lexists(self._prefix + rel[len("sessions/") :]):
                return  # back already; its own event follows
            m = self._writable(dir, m, rel)
            if m is None:
                return
            ws.artifacts.delete(dir, name)
        self.cache.drop(rel)
        self._change("deleted", dir, m, path=rel, name=name)

    def _phantom(self, dir: str, name: str) -> bool:
        """True when ``files/<name>`` was written by a store that never appended its record
        (and has now been put back); call under the session lock."""
        if not pending(self.ws, dir):
            return False
        fixed = repair_inflight(self.ws, dir)
        for n in fixed:
            self._change("put-back", dir, None, path=f"sessions/{dir}/files/{n}", name=n)
        return name in fixed

    def _writable(self, dir: str, m: dict, rel: str) -> dict | None:
        """The manifest of a session that may take a hand edit now, or None (reported).

        A suspended session (the idle timeout suspends them) is resumed by the edit, as
        `spell add` does; a completed or failed one is read-only: the edit stays on disk,
        reported here and by `spell status`, never recorded."""
        if m["status"] == "suspended":
            m = self.ws.sessions.resume(dir)
            self._manifests[dir] = m
            self._change("resumed", dir, m, path=rel, status=m["status"])
        if m["status"] != "active":
            self._warn_once(
                ("finished", rel, m["status"]),
                f"not recorded: {rel} changed by hand in {m['status']} session {m['id'][:8]} "
                f"(a finished session is read-only; fork it: `spell fork {m['id'][:8]}`)",
            )
            return None
        return m

    def _inside(self, real: str) -> bool:
        return real == self._real_root or real.startswith(self._real_root + "/")

    # -- manifests -------------------------------------------------------------
    def _manifest(self, dir: str) -> None:
        try:
            m = self.ws.sessions.manifest(dir)
        except SessionNotFound:
            self._bad.pop(dir, None)
            self._manifests.pop(dir, None)
            return
        except ManifestError as exc:
            self._report_bad(dir, exc)
            return
        was_bad = self._bad.pop(dir, None) is not None
        old = self._manifests.get(dir)
        self._manifests[dir] = m
        if was_bad or (old is not None and old != m):
            changed = sorted(k for k in m if old is None or old.get(k) != m[k])
            self._change(
                "manifest",
                dir,
                m,
                path=f"sessions/{dir}/session.yaml",
                status=m["status"],
                name=m["name"],
                fields=changed,
                fixed=was_bad,
            )
        if was_bad:
            self._schedule(("s", dir), None, delay=0)  # its files waited while it was broken

    def _report_bad(self, dir: str, exc: Exception) -> None:
        msg = str(exc)
        if self._bad.get(dir) != msg:
            self._bad[dir] = msg
            self._change("invalid", dir, None, path=f"sessions/{dir}/session.yaml", error=msg)
