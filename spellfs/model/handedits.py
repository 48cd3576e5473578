"""What a command does with the hand edits the working copy shows (:mod:`.worktree`).

``spell save`` records them as versions by ``hand``; a store, restore or delete that would
overwrite one refuses, or with ``--force`` keeps it first (nothing is lost); ``spell fsck``
tells an interrupted write from a hand edit. :class:`~spellfs.model.worktree.Worktree`
extends :class:`HandEdits`, which finds the edits with its ``scan``.

A store or restore that rewrites many copies checks them first, then writes for seconds: a
copy an editor saves meanwhile is left as it is (:func:`copies_now`, :func:`edited_since`).
"""

from __future__ import annotations

import os
import stat as statmod
from typing import TYPE_CHECKING, Any

from ..errors import UnrecordedChanges
from ..names import some_of
from .statcache import hash_path, same_stat, settled as _settled

if TYPE_CHECKING:
    from .working_copy import WorkingCopy

__all__ = ["HandEdits", "carried", "copies_now", "edited_since"]


def carried(latest: dict | None, extra: dict | None = None) -> dict:
    """The metadata of a hand edit's version: what the name's ``latest`` record says the
    artifact is (its description, tags and custom metadata) goes on to the new content, as a
    new version stored through the API would be given it; ``extra`` is added to the custom."""
    meta: dict = {k: latest[k] for k in ("description", "tags") if latest and latest.get(k)}
    custom = dict(latest.get("custom") or {}) if latest else {}
    custom.update(extra or {})
    if custom:
        meta["custom"] = custom
    return meta


class HandEdits:
    """The recording and guarding half of :class:`~spellfs.model.worktree.Worktree` (it uses
    the worktree's ``ws``, ``scan``, ``cache`` and ``_lock``)."""

    # -- recording -------------------------------------------------------------------
    def record(self, dir: str) -> WorkingCopy:
        """Record hand edits as new versions (``user_input``, created_by ``hand``), hand deletions
        as deletions and new files as new artifacts (what `spell save` does first); return what
        was recorded. A finished session refuses (:class:`~spellfs.errors.SessionNotActive`)."""
        ws = self.ws
        with ws.storage.lock(f"s-{dir}"):
            wc = self.scan(dir)
            if wc.clean:
                return wc
            self._store_as_hand(dir, sorted(n for n in [*wc.modified, *wc.added]))
            for name in wc.deleted:
                ws.artifacts.delete(dir, name)
        return wc

    def record_or_refuse(self, dir: str, force: bool, doing: str) -> WorkingCopy:
        """Before a command that takes the session as its records say (`spell export`): refuse
        when ``files/`` holds changes no record has (:class:`~spellfs.errors.UnrecordedChanges`,
        naming them), or with ``force`` record them first as `spell save` does; return what was
        recorded (clean: nothing)."""
        wc = self.scan(dir)
        if wc.clean:
            return wc
        if force:
            return self.record(dir)
        names = wc.names()
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        sid = self.ws.sessions.manifest(dir)["id"]
        raise UnrecordedChanges(
            f"{doing} would leave out unrecorded changes: sessions/{dir}/files/: {shown} "
            f"(record them with `spell save {sid[:8]}` first, or pass --force: they are "
            "recorded first, then it goes on)"
        )

    def keep_before_store(
        self, dir: str, names: list[str], seen: dict[str, tuple | None] | None = None
    ) -> list[str]:
        """Before a store overwrites ``files/<name>``: a copy holding content none of the name's
        records has (a hand edit or a file dropped in) is recorded first, as `spell save` would
        (``user_input``, created_by ``hand``), so the store never clobbers it. Call under the
        session lock; returns the names so kept. ``seen`` is given each name's stat as
        :func:`copies_now` takes it (the one this look was based on)."""
        if not self.on_disk:
            return []
        hand = self.unrecorded(dir, names, seen)
        self._store_as_hand(dir, hand)
        return hand

    def unrecorded(
        self, dir: str, names: Any, seen: dict[str, tuple | None] | None = None
    ) -> list[str]:
        """Of ``names``, those whose ``files/`` copy holds content none of the name's records has
        (a stat each, and the stat cache; a read only for a copy whose stat moved), so one
        delete or store costs the same in a session of 10 or 10,000 artifacts. ``seen``, when
        given, is filled with each name's stat key (:func:`copies_now`'s; None: no copy)."""
        if not self.on_disk:
            return []
        ws = self.ws
        log = ws.log(dir)
        base = f"{ws.root}/sessions/{dir}/files/"
        prefix = f"sessions/{dir}/files/"
        hand = []
        for name in dict.fromkeys(names):
            try:
                s = os.lstat(base + name)
            except (FileNotFoundError, NotADirectoryError):
                if seen is not None:
                    seen[name] = None
                continue  # the common case: nothing there to lose
            if seen is not None:
                seen[name] = (s.st_mode, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)
            if not statmod.S_ISREG(s.st_mode):
                continue
            versions = log.versions.get(name, ())
            with self._lock:
                cache = self.cache()
                cache.load(prefix)
                c = cache.entries.get(prefix + name)
            if _settled(c) and same_stat(c, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns):
                digest = c[3]
            else:
                got = hash_path(base + name)
                if got is None:
                    continue  # being written by someone right now; the next look sees it
                digest = got[0]
            if any(v.get("hash") == digest for v in versions):
                continue  # recorded content: the store may replace it
            hand.append(name)
        return hand

    def guard_copies(self, dir: str, names: Any, force: bool, doing: str) -> list[str]:
        """Before a delete removes ``files/<name>`` for ``names`` (``Artifact.delete``): refuse
        when a copy holds content no record of its name has, naming it; with ``force`` record
        it first as a version by ``hand`` (as :meth:`guard`). Call under the session lock."""
        hit = self.unrecorded(dir, names)
        return self._refuse_or_keep(dir, hit, force, doing) if hit else []

    def _store_as_hand(self, dir: str, names: list[str]) -> None:
        """Store the ``files/`` copies at ``names`` as they are, as versions by ``hand``."""
        if names:
            base = f"{self.ws.root}/sessions/{dir}/files/"
            log = self.ws.log(dir)
            self.ws.artifacts.store_files(
                dir,
                [base + n for n in names],
                "user_input",
                [carried(log.latest(n)) for n in names],
                names,
                materialized=True,
                by="hand",
            )

    def keep_as_objects(self, dir: str, force: bool, doing: str) -> list[tuple[str, str]]:
        """Before a command removes the whole session (`spell rm`): refuse over hand edits, or
        with ``force`` store each as an object first; return ``(name, object id)`` kept."""
        wc = self.scan(dir)
        hit = sorted([*wc.modified, *wc.added])
        if not hit:
            return []
        if not force:
            self.guard(dir, None, False, doing)  # raises, naming the files
        kept = []
        for name in hit:
            with open(f"{self.ws.root}/sessions/{dir}/files/{name}", "rb") as f:
                kept.append((name, self.ws.objects.put_stream(f)[0]))
        return kept

    def guard(self, dir: str, names: Any, force: bool, doing: str) -> list[str]:
        """Before rewriting ``files/``: refuse when the files ``names`` would overwrite or delete
        (None: all of them) hold content no record has. With ``force`` that content is first
        recorded as a version (nothing is lost); return what was kept, as ``name@version``."""
        wc = self.scan(dir)
        hit = [n for n in (*wc.modified, *wc.added) if names is None or n in names]
        return self._refuse_or_keep(dir, hit, force, doing) if hit else []

    def _refuse_or_keep(self, dir: str, hit: list[str], force: bool, doing: str) -> list[str]:
        """Refuse (:class:`~spellfs.errors.UnrecordedChanges`, the copies ``hit`` named), or with
        ``force`` record them as versions by ``hand`` first; return them as ``name@version``."""
        ws = self.ws
        sid = ws.sessions.manifest(dir)["id"]
        if not force:
            raise UnrecordedChanges(
                f"{doing} would overwrite or delete unrecorded changes: "
                f"sessions/{dir}/files/: {some_of(hit)} "
                f"(record them with `spell save {sid[:8]}` first, or pass --force: "
                "they are kept first, then it goes on)"
            )
        base = f"{ws.root}/sessions/{dir}/files/"
        hit.sort()
        ws.sessions.closing.add(sid)  # a finished session too: keeping content is not a new store
        log = ws.log(dir)
        try:
            ws.artifacts.store_files(
                dir,
                [base + n for n in hit],
                "user_input",
                [carried(log.latest(n), {"kept_by": doing}) for n in hit],
                hit,
                materialized=True,
                by="hand",
            )
        finally:
            ws.sessions.closing.discard(sid)
        log = ws.log(dir)
        log.refresh()
        return [f"{n}@{log.latest(n)['version']}" for n in hit]

    def problems(self, dir: str) -> list[tuple[str, str, str]]:
        """``(kind, name, detail)`` for ``fsck``, after what every command does first (copies an
        interrupted store left are put back: ``interrupted-write``). Then each ``files/`` entry
        that matches no record or differs from its record: ``stray-copy`` when its content is an
        object no record of the session holds (it looks like an interrupted write: a store of an
        older spellfs killed mid-way, or a record set aside by repair), else ``hand-edit``.
        Neither is removed: without an in-flight list, only a person can tell."""
        ws = self.ws
        wc = self.scan(dir)
        out = [
            (
                "interrupted-write",
                n,
                f"sessions/{dir}/files/{n}: written by a store that never recorded it; "
                "put back as its records say",
            )
            for n in wc.phantoms
        ]
        if wc.clean:
            return out
        log = ws.log(dir)
        referenced = {v.get("hash") for vs in log.versions.values() for v in vs}
        for name, digest in sorted([*wc.modified.items(), *wc.added.items()]):
            where = f"sessions/{dir}/files/{name}"
            what = "differs from its record" if name in wc.modified else "matches no record"
            if digest and digest not in referenced and ws.objects.has(digest):
                out.append(
                    (
                        "stray-copy",
                        name,
                        f"{where}: {what}; looks like an interrupted write (its content is "
                        "an object no record holds; `spell save` records it, or delete it)",
                    )
                )
            else:
                out.append(
                    (
                        "hand-edit",
                        name,
                        f"{where}: {what}; looks like a hand edit (`spell save` records it)",
                    )
                )
        return out

    def modified_names(self, dir: str) -> set[str]:
        """Live artifacts whose copy on disk differs from (or lost) their latest record."""
        wc = self.scan(dir)
        return set(wc.modified) | set(wc.deleted)


def copies_now(ws: Any, dir: str, names: Any) -> dict[str, tuple | None] | None:
    """The stat of each ``files/<name>`` a store or restore is about to rewrite, taken when its
    hand edits were looked at: a copy that moves after this was changed by someone else while
    it ran (None: the memory backend, where no one else writes)."""
    if ws.memory:
        return None
    base = f"{ws.root}/sessions/{dir}/files/"
    return {name: _stat_key(base + name) for name in names}


def _stat_key(path: str) -> tuple | None:
    try:
        s = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (s.st_mode, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)


def edited_since(ws: Any, dir: str, log: Any, name: str, checked: dict) -> bool:
    """Whether ``files/<name>`` was written by someone else since :func:`copies_now` (a name it
    did not look at: since there was no copy), with content none of the name's records has (a
    bulk add or a restore writes its copies over seconds; an editor may save meanwhile). Such a
    copy is left as it is: ``status`` shows it and ``save`` records it, as after a ``git
    pull``; the store's or restore's records still land."""
    path = f"{ws.root}/sessions/{dir}/files/{name}"
    now = _stat_key(path)
    if now is None or now == checked.get(name) or not statmod.S_ISREG(now[0]):
        return False
    got = hash_path(path)
    if got is None:
        return True  # being written right now: not ours to replace
    return all(v.get("hash") != got[0] for v in log.versions.get(name, ()))
