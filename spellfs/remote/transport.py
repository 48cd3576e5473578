"""Remotes (SPEC §7): the object store mirrored on S3-compatible storage or a directory.

A remote holds ``<prefix>/objects/ab/cdef…`` with exactly the bytes of the local
``.spell/objects/ab/cdef…`` file, so either side can be checked with the same code.
What a caller may rely on:

- uploads are create-only (``If-None-Match: *``): two machines pushing at once never
  overwrite each other, and an "already exists" answer counts as skipped. Only a push
  with ``verify`` overwrites: it reads back every object the remote has, and replaces a
  copy whose bytes do not match its id with the local one, checked first (both sides
  write the same verified bytes, so a race between two such pushes loses nothing). Objects
  larger than :data:`MULTIPART_ABOVE` go up as a multipart upload after a HEAD
  check, which S3 completes atomically; two pushers racing on the same large object
  can both complete, each writing a whole object that verifies against its id;
- downloads are verified by hash before they enter the local store, large ones
  streamed through a temp file that is removed on any failure;
- every failure is a one-line :class:`RemoteError` naming the remote and the cause;
  credentials come only from obstore's credential providers (for S3 the boto3 chain
  when boto3 is installed: ``AWS_*`` variables, ``AWS_PROFILE`` with SSO, assume-role,
  ``credential_process`` and the profile's region; else the ``AWS_*`` variables) and
  are never written anywhere. ``gs://``, ``az://`` and ``https://`` remotes go through
  ``obstore.store.from_url`` and its providers' own environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Callable, Iterable

from ..errors import IntegrityError, ObjectNotFound, RemoteError
from ..store import CHUNK, FsObjectStore, decode, stream_content, validate_oid
from .concurrency import Budget, each, run
from .connection import connect, remote_error
from .spec import RemoteSpec, parse_remote_url

__all__ = ["Remote", "RemoteSpec", "parse_remote_url", "verify_file"]

#: Bytes of object data a push or pull may hold in memory at once.
MEMORY_BUDGET = 96 << 20
#: Larger objects are uploaded in parts and downloaded through a temp file.
MULTIPART_ABOVE = 16 << 20
PART_SIZE = 8 << 20
PART_CONCURRENCY = 8
#: At or above this many ids, list the remote fan-out directories instead of HEAD per id.
LIST_AT = 1024

Progress = Callable[[int, int], None]


def verify_file(oid: str, path: Path, where: str, limit: int | None = None) -> None:
    """Check a stored object on disk in bounded memory (zstd-framed or raw), decompressed no
    further than ``limit``."""
    with open(path, "rb") as f:
        for _ in stream_content(oid, f, where, limit):
            pass


class Remote:
    """One configured remote; cheap to build, connects on first use."""

    #: No object is decompressed past this (the workspace's limit, :attr:`ObjectStore.limit`).
    limit: int | None = None

    def __init__(self, spec: RemoteSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.scheme, self.location, self.prefix = parse_remote_url(spec.url)
        self._store = None

    # -- plumbing ---------------------------------------------------------------------

    @property
    def store(self):
        if self._store is None:
            self._store = connect(self.spec, self.scheme, self.location, self.prefix)
        return self._store

    @staticmethod
    def key(oid: str) -> str:
        return f"objects/{oid[:2]}/{oid[2:]}"

    def where(self, oid: str) -> str:
        return f"remote {self.name} ({self.spec.url.rstrip('/')}/{self.key(oid)})"

    def _error(self, exc: BaseException) -> RemoteError:
        return remote_error(self.spec, self.location, exc)

    async def _call(self, coro):
        """Await an obstore call, turning its failures into RemoteError."""
        from obstore.exceptions import BaseError

        try:
            return await coro
        except (BaseError, OSError) as exc:
            raise self._error(exc) from None

    async def _preflight(self) -> None:
        """One cheap request so a bad bucket, key or endpoint fails before any transfer."""
        import obstore

        stream = obstore.list(self.store, "objects", chunk_size=1)
        await self._call(anext(aiter(stream), None))

    async def _remote_has(self, oids: list[str]) -> set[str]:
        import obstore

        found: set[str] = set()
        if len(oids) >= LIST_AT:

            async def list_fan(fan: str) -> None:
                async for batch in obstore.list(self.store, f"objects/{fan}", chunk_size=1000):
                    for meta in batch:
                        found.add(fan + meta["path"].rsplit("/", 1)[-1])

            await self._call(each(list_fan, sorted({o[:2] for o in oids})))
            return found & set(oids)

        async def head(oid: str) -> None:
            try:
                await obstore.head_async(self.store, self.key(oid))
                found.add(oid)
            except FileNotFoundError:
                pass

        await self._call(each(head, oids))
        return found

    @staticmethod
    def _ids(oids: Iterable[str]) -> list[str]:
        return list(dict.fromkeys(validate_oid(o) for o in oids))

    # -- public -----------------------------------------------------------------------

    def exists_many(self, oids: Iterable[str]) -> set[str]:
        """The subset of ``oids`` the remote holds."""
        ids = self._ids(oids)

        async def go():
            await self._preflight()
            return await self._remote_has(ids)

        return run(go()) if ids else set()

    def push(
        self,
        store: FsObjectStore,
        oids: Iterable[str],
        progress: Progress | None = None,
        verify: bool = False,
    ) -> dict:
        """Upload the objects the remote lacks; returns counts, bytes sent and seconds. With
        ``verify``, also read back those it has and replace each damaged copy (``repaired``)."""
        return run(self._push(store, self._ids(oids), progress, verify))

    def pull(
        self, store: FsObjectStore, oids: Iterable[str], progress: Progress | None = None
    ) -> dict:
        """Download the objects missing locally, each verified before it is stored."""
        return run(self._pull(store, self._ids(oids), progress))

    def damaged(self, oids: Iterable[str]) -> list[str]:
        """Of ``oids`` (ones the remote holds), those whose copy there does not match its id
        (each read back in bounded memory)."""
        ids = self._ids(oids)
        found: list[str] = []

        async def go():
            await self._preflight()
            await self._call(each(self._damaged(found, Budget(MEMORY_BUDGET)), ids))

        if ids:
            run(go())
        return sorted(found)

    def fetch(self, store: FsObjectStore, oid: str) -> bool:
        """Bring one object in on demand; False if the remote does not have it."""
        validate_oid(oid)
        if store.has(oid):
            return True
        return run(self._download(store, oid, Budget(MEMORY_BUDGET))) is not False

    # -- push -------------------------------------------------------------------------

    async def _push(
        self, local: FsObjectStore, ids: list[str], progress: Progress | None, verify: bool
    ) -> dict:
        import obstore
        from obstore.exceptions import AlreadyExistsError, BaseError, PreconditionError

        start = time.monotonic()
        stats = {"objects": 0, "bytes": 0, "skipped": 0, "repaired": 0}
        if not ids:
            return {**stats, "seconds": 0.0}
        await self._preflight()
        present = await self._remote_has(ids)
        budget = Budget(MEMORY_BUDGET)
        damaged: list[str] = []
        if verify:
            await self._call(each(self._damaged(damaged, budget), sorted(present)))
            present -= set(damaged)
        done, total = [len(present)], len(ids)
        stats["skipped"] = len(present)
        if progress:
            progress(done[0], total)

        async def one(oid: str) -> None:
            path = local.path(oid)
            mode = "create"
            if oid in damaged:  # replaced, by bytes checked here first
                mode = "overwrite"
                await asyncio.to_thread(local.verify, oid)
            try:
                packed = local.packed(oid)
                size = len(packed) if packed is not None else os.stat(path).st_size
                if packed is not None:  # (store/packs.py: small, so one request)
                    await obstore.put_async(self.store, self.key(oid), packed, mode=mode)
                elif size > MULTIPART_ABOVE:
                    async with budget.hold(PART_SIZE * PART_CONCURRENCY):
                        await obstore.put_async(
                            self.store,
                            self.key(oid),
                            path,
                            use_multipart=True,
                            chunk_size=PART_SIZE,
                            max_concurrency=PART_CONCURRENCY,
                        )
                else:
                    async with budget.hold(size):
                        data = (
                            await asyncio.to_thread(path.read_bytes)
                            if size > CHUNK
                            else path.read_bytes()
                        )
                        await obstore.put_async(self.store, self.key(oid), data, mode=mode)
                stats["objects" if mode == "create" else "repaired"] += 1
                stats["bytes"] += size
            except (AlreadyExistsError, PreconditionError):
                if verify and mode == "create":  # there, though not listed: read it back too
                    found: list[str] = []
                    await self._damaged(found, budget)(oid)
                    if found:
                        damaged.append(oid)
                        await one(oid)
                        return
                stats["skipped"] += 1
            except BaseError as exc:
                if mode == "create":
                    raise
                raise RemoteError(
                    f"{self.where(oid)}: the damaged copy there cannot be replaced "
                    f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; remove it "
                    "there, then push again)"
                ) from None
            except FileNotFoundError as exc:
                if exc.filename == str(path) or not local.has(oid):
                    raise ObjectNotFound(
                        f"object not found: {oid} (cannot push it to remote {self.name}; "
                        "run `spell fsck`)"
                    ) from None
                raise self._error(exc) from None
            done[0] += 1
            if progress:
                progress(done[0], total)

        await self._call(each(one, [o for o in ids if o not in present]))
        return {**stats, "seconds": time.monotonic() - start}

    def _damaged(self, damaged: list[str], budget: Budget):
        """A task for :func:`each`: read ``oid`` back from the remote and add it to ``damaged``
        when its bytes do not match its id (in bounded memory: a large one through a temp
        file)."""
        import obstore

        async def check(oid: str) -> None:
            try:
                resp = await obstore.get_async(self.store, self.key(oid))
            except FileNotFoundError:  # listed, or refused as existing, yet not readable
                damaged.append(oid)
                return
            size = resp.meta["size"]
            try:
                if size <= MULTIPART_ABOVE:
                    async with budget.hold(size):
                        data = bytes(await resp.bytes_async())
                        decode(oid, data, self.where(oid), self.limit)
                    return
                async with budget.hold(PART_SIZE):
                    await self._verified_copy(oid, resp, None)
            except IntegrityError:
                damaged.append(oid)

        return check

    # -- pull -------------------------------------------------------------------------

    async def _pull(self, local: FsObjectStore, ids: list[str], progress: Progress | None) -> dict:
        start = time.monotonic()
        want = [o for o in ids if not local.has(o)]
        stats = {"objects": 0, "bytes": 0, "skipped": len(ids) - len(want)}
        if want:
            await self._preflight()
        budget = Budget(MEMORY_BUDGET)
        done = [stats["skipped"]]
        missing: list[str] = []

        async def one(oid: str) -> None:
            size = await self._download(local, oid, budget)
            if size is False:
                missing.append(oid)
            else:
                stats["objects"] += 1
                stats["bytes"] += size
            done[0] += 1
            if progress:
                progress(done[0], len(ids))

        await each(one, want)
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise RemoteError(
                f"remote {self.name} ({self.spec.url}): object not found: "
                f"{sorted(missing)[0]}{more}"
            )
        return {**stats, "seconds": time.monotonic() - start}

    async def _download(self, local: FsObjectStore, oid: str, budget: Budget):
        """Fetch one object into ``local``; its stored size, or False if the remote lacks it."""
        import obstore
        from obstore.exceptions import BaseError

        where = self.where(oid)
        try:
            resp = await obstore.get_async(self.store, self.key(oid))
            size = resp.meta["size"]
            if size <= MULTIPART_ABOVE:
                async with budget.hold(size):
                    data = bytes(await resp.bytes_async())
                    if size > CHUNK:
                        await asyncio.to_thread(local.add_verified, oid, data, where)
                    else:
                        local.add_verified(oid, data, where)
                return size
            async with budget.hold(PART_SIZE):
                await self._verified_copy(oid, resp, local)
            return size
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise self._error(exc) from None
            return False
        except IntegrityError as exc:
            raise IntegrityError(
                str(exc).split(" (run `spell fsck`)")[0] + " (the remote's copy is damaged: "
                "`spell push --verify` from a workspace that has the object replaces it)"
            ) from None
        except (BaseError, OSError) as exc:
            raise self._error(exc) from None

    async def _verified_copy(self, oid: str, resp, local: FsObjectStore | None) -> None:
        """Stream a large object's bytes into a temp file and verify them; then put it into
        ``local`` (None: only verify). IntegrityError when they do not match ``oid``."""
        import tempfile

        if local is not None:
            final = local.path(oid)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.parent / f".tmp-pull-{os.getpid()}-{os.urandom(4).hex()}"
        else:
            fd, name = tempfile.mkstemp(prefix=".tmp-verify-")
            os.close(fd)
            tmp = Path(name)
        try:
            with open(tmp, "wb") as f:
                async for chunk in resp.stream(min_chunk_size=PART_SIZE):
                    await asyncio.to_thread(f.write, chunk)
            await asyncio.to_thread(verify_file, oid, tmp, self.where(oid), self.limit)
            if local is None:
                return
            os.chmod(tmp, 0o444)
            if local.has(oid):
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
