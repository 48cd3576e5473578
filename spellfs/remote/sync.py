"""Configured remotes (SPEC §7): push, pull, on-demand fetch.

The porcelain over :mod:`spellfs.remote.transport` (the transport); the ``remotes:``
section of spell.yaml is edited by :mod:`spellfs.remote.config`. What a caller
may rely on:

- The first remote in ``spell.yaml`` is the default: the one :func:`push`,
  :func:`pull` and the on-demand fetcher use when no name is given.
- :func:`push` uploads every object the named sessions reach (artifact records,
  checkpoint trees with everything in them, run scripts) that the remote lacks;
  :func:`pull` downloads what is missing locally, each object verified by hash.
  Both are safe to interrupt and re-run: uploads are create-only and downloads
  enter the store only once verified.
- :func:`install_fetcher` gives an object store a fetcher that brings a missing
  object in from the default remote on first read; nothing of the transport (nor
  obstore) is imported until a fetch actually happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..errors import IntegrityError, NotFound, ObjectNotFound, RemoteError, UsageError
from ..history import reachable, session_dirs

if TYPE_CHECKING:
    from ..store import ObjectStore
    from .transport import Remote, RemoteSpec
    from ..workspace import Workspace

__all__ = ["get_remote", "install_fetcher", "pull", "push", "remote_has"]

Progress = Callable[[int, int], None]
#: Seconds a process that used a remote pauses at exit; see :func:`_settled`.
SETTLE_SECONDS = 0.1


# -- the configured remotes -----------------------------------------------------------------


def _spec(name: str, body: dict) -> "RemoteSpec":
    from .transport import RemoteSpec

    return RemoteSpec(name, body["url"], body.get("endpoint_url"), body.get("region"))


def get_remote(ws: "Workspace", name: str | None = None) -> "Remote":
    """The remote called ``name``, or the default one."""
    from .transport import Remote

    remotes = ws.config.remotes
    if not remotes:
        raise UsageError("no remote configured (add one with `spell remote add NAME URL`)")
    if name is None:
        name = next(iter(remotes))
    elif name not in remotes:
        raise NotFound(
            f"remote not found: {name} (configured: {', '.join(remotes)}; see `spell remote list`)"
        )
    remote = Remote(_spec(name, remotes[name]))
    remote.limit = ws.objects.limit  # (no remote object is decompressed past it)
    return remote


def _settled(call: Callable, *args: Any) -> Any:
    """Run a transport call, making sure the process lets obstore's runtime settle before it exits.

    obstore's tokio threads may call into the finished asyncio loop a few
    milliseconds after a call returned (seen after both successes and failures).
    If the interpreter is finalizing by then, that thread is killed while taking
    the GIL and the process aborts (SIGABRT: exit 134 instead of 0 or 1). An
    atexit pause, registered once per process that touched a remote, runs while
    the interpreter is still whole, so those late calls land harmlessly.
    """
    global _exit_pause
    if not _exit_pause:
        import atexit
        import time

        atexit.register(time.sleep, SETTLE_SECONDS)
        _exit_pause = True
    return call(*args)


_exit_pause = False


def remote_has(remote: "Remote", oids: Iterable[str]) -> set[str]:
    """The subset of ``oids`` the remote holds (fsck's on-remote check)."""
    return _settled(remote.exists_many, list(oids))


# -- push / pull -------------------------------------------------------------------------


def _result(remote: "Remote", verb: str, stats: dict, dirs: list[str]) -> dict:
    return {
        "remote": remote.name,
        "url": remote.spec.url,
        "sessions": len(dirs),
        verb: stats["objects"],
        "objects": stats["objects"],
        "bytes": stats["bytes"],
        "skipped": stats["skipped"],
        **({"repaired": stats["repaired"]} if "repaired" in stats else {}),
        "seconds": round(stats["seconds"], 3),
    }


def push(
    ws: "Workspace",
    sessions: Iterable[str] | None = None,
    remote_name: str | None = None,
    progress: Progress | None = None,
    verify: bool = False,
) -> dict:
    """Upload every object the sessions (default: all) reach that the remote lacks; with
    ``verify``, read back those it has and replace each damaged copy.

    Objects that are not local (a clone that never pulled them) are fine when the
    remote already has them; one that is neither local nor on the remote is an
    :class:`ObjectNotFound` after everything else has been pushed.
    """
    import time

    remote = get_remote(ws, remote_name)
    start = time.monotonic()
    store = _fs_store(ws)
    with _fetching_from(store, remote):
        dirs = session_dirs(ws, sessions)
        refs = reachable(ws, dirs)
    local, absent = [], []
    for oid in refs:
        (local if store.has(oid) else absent).append(oid)
    stats = _settled(remote.push, store, local, progress, verify)
    lost: list[str] = []
    if absent:
        there = _settled(remote.exists_many, absent)
        stats["skipped"] += len(there)
        lost = [o for o in absent if o not in there]
    stats["seconds"] = time.monotonic() - start
    if lost:
        more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
        raise ObjectNotFound(
            f"object not found: {lost[0]}{more} (referenced by {refs[lost[0]]}; neither local nor "
            f"on remote {remote.name}; run `spell fsck`)"
        )
    bad = _settled(remote.damaged, sorted(o for o in absent if o not in lost)) if verify else []
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise IntegrityError(
            f"corrupt object {bad[0]}{more}: remote {remote.name}: its copy there is damaged, and "
            "this workspace has no object to replace it with (`spell push --verify` from a "
            "workspace that has it)"
        )
    return _result(remote, "pushed", stats, dirs)


def pull(
    ws: "Workspace",
    sessions: Iterable[str] | None = None,
    remote_name: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Download every object the sessions (default: all) reach that is not local, verified by hash.

    First what the session files name (in bulk), then what the checkpoint trees
    reach, once the trees are local.
    """
    import time

    remote = get_remote(ws, remote_name)
    start = time.monotonic()
    store = _fs_store(ws)
    dirs = session_dirs(ws, sessions)
    total = {"objects": 0, "bytes": 0, "skipped": 0}

    def add(stats: dict) -> None:
        for k in total:
            total[k] += stats[k]

    first = reachable(ws, dirs, deep=False)
    failure: RemoteError | None = None
    try:
        add(_settled(remote.pull, store, list(first), progress))
    except RemoteError as exc:  # objects the remote lacks: fetch everything else, then say so
        failure = exc
    unreadable: dict[str, str] = {}
    with _fetching_from(store, remote) as walk:
        rest = [o for o in reachable(ws, dirs, unreadable=unreadable) if o not in first]
    offset = len(first)
    try:
        stats = _settled(
            remote.pull,
            store,
            rest,
            progress and (lambda done, n: progress(offset + done, offset + n)),
        )
    except RemoteError as exc:
        raise failure or exc from None
    if failure is not None:
        raise failure
    if unreadable:
        tree, why = next(iter(unreadable.items()))
        more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
        raise RemoteError(
            f"remote {remote.name}: pulled what it has, but checkpoint tree "
            f"{tree[:12]}{more} is lost "
            f"(not local, not on the remote): {why.split(': ', 1)[0]} (`spell fsck` lists it)"
        )
    # Objects the tree walk itself fetched (tables, pages) count as pulled, not as already local.
    stats["objects"] += len(walk.fetched)
    stats["skipped"] -= len(walk.fetched)
    stats["bytes"] += sum(store.stored_size(o) for o in walk.fetched)
    add(stats)
    for d in dirs:  # copies kept out of git this clone never had are written now their objects are
        ws.worktree.scan(d)
    total["seconds"] = time.monotonic() - start
    return _result(remote, "pulled", total, dirs)


def _fs_store(ws: "Workspace"):
    if ws.memory:
        raise UsageError("remotes need a workspace on disk (this one is in memory)")
    return ws.objects


class _fetching_from:
    """Within the block, a missing object is fetched from ``remote`` (not only the default)."""

    def __init__(self, store: "ObjectStore", remote: "Remote") -> None:
        self.store, self.remote = store, remote

    def __enter__(self) -> "_fetching_from":
        self.saved = self.store.__dict__.get("fetcher")
        self.fetched: list[str] = []
        self.store.fetcher = self._fetch
        return self

    def _fetch(self, oid: str) -> bool:
        if self.store.has(oid):
            return True
        ok = _settled(self.remote.fetch, self.store, oid)
        if ok:
            self.fetched.append(oid)
        return ok

    def __exit__(self, *exc: Any) -> None:
        if self.saved is None:
            self.store.__dict__.pop("fetcher", None)
        else:
            self.store.fetcher = self.saved


# -- on-demand fetch ---------------------------------------------------------------------


class _Fetcher:
    """A store's fetcher: the default remote, built (and obstore imported) on first use."""

    def __init__(self, store: "ObjectStore", name: str, body: dict) -> None:
        self.store, self.name, self.body = store, name, dict(body)
        self.remote: "Remote | None" = None

    def __call__(self, oid: str) -> bool:
        if self.remote is None:
            from .transport import Remote

            self.remote = Remote(_spec(self.name, self.body))
            self.remote.limit = self.store.limit
        return _settled(self.remote.fetch, self.store, oid)


def install_fetcher(ws: "Workspace", store: "ObjectStore") -> None:
    """Let ``store`` fetch a missing object from the default remote, if one is configured."""
    if ws.config.remotes and not ws.memory:
        name, body = next(iter(ws.config.remotes.items()))
        store.fetcher = _Fetcher(store, name, body)
