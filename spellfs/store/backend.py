"""The interface both object stores share: on disk (:mod:`.objects`) and in memory
(:mod:`.memory`), with the defaults a backend without packs or loose files keeps."""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterable, Iterator

from ..errors import ObjectNotFound
from .codec import stored_raw

__all__ = ["ObjectStore"]


class ObjectStore:
    """The interface both backends share."""

    threshold: int
    #: No object's content is larger (a compressed one that would be is corrupt): the workspace
    #: sets it from ``sessions.max_artifact_size``, so a crafted pack cannot fill memory.
    limit: int | None = None
    #: Called with an oid that is not local; may bring it in (a remote) and return True.
    fetcher: Callable[[str], bool] | None = None

    def put_bytes(self, data: bytes) -> str: ...
    def put_many(self, datas: list[bytes]) -> list[str]:
        return [self.put_bytes(d) for d in datas]

    def put_stream(self, f: BinaryIO) -> tuple[str, int]: ...
    def get(self, oid: str) -> bytes: ...
    def has(self, oid: str) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...
    def remove(self, oid: str) -> None: ...
    def stored_size(self, oid: str) -> int: ...
    def stored_mtime(self, oid: str) -> float: ...

    def remove_many(self, oids: list[str]) -> None:
        for oid in oids:
            self.remove(oid)

    def is_compressed(self, size: int, head: bytes) -> bool:
        return not stored_raw(size, head, self.threshold)

    def iter_content(self, oid: str) -> Iterator[bytes]:
        yield self.get(oid)

    def verify(self, oid: str) -> None:
        self.get(oid)

    def durable_paths(self, oids: Iterable[str]) -> list[str]:
        """The files to flush so that ``oids`` survive a crash (none in memory)."""
        return []

    def put_loose(self, data: bytes) -> str:
        """Store ``data`` where it is read first (the disk store: a loose file)."""
        return self.put_bytes(data)

    def tidy(self) -> int:
        """Fewer, larger files for the same objects (``spell gc``); return how many went."""
        return 0

    def close(self) -> None:
        """Finish what is pending (nothing in memory)."""

    def packed_only(self) -> list[str]:
        """The objects held only in packs or journals, which `spell commit` writes loose before
        git sees them (none in memory)."""
        return []

    def _missing(self, oid: str) -> ObjectNotFound:
        return ObjectNotFound(
            f"object not found: {oid} (not in the local store"
            f"{' nor on the remote' if self.fetcher else ''}; run `spell fsck`)"
        )
