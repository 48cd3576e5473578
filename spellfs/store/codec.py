"""How an object is named and held: BLAKE3 ids, the stored form (raw or one zstd frame), and
reads verified against the id. Shared by every object store (:mod:`.objects`), packs, remotes
and archives.

An object holds its content byte-identical when it is smaller than the compression threshold
(so git stores it once with the ``files/`` copy) and as a zstd frame otherwise. Content that
itself begins with the zstd magic is always framed, so "starts with the magic" alone tells a
reader how to decode. A mismatch with the id is an :class:`IntegrityError`, never wrong data.
"""

from __future__ import annotations

import io

import re
from typing import Any, BinaryIO, Iterator

from ..errors import IntegrityError, UsageError

__all__ = [
    "CHUNK",
    "ZSTD_MAGIC",
    "compressor",
    "decode",
    "encode",
    "hash_bytes",
    "is_oid",
    "stream_content",
    "stored_raw",
    "validate_oid",
]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20
_OID = re.compile(r"[0-9a-f]{64}\Z")


def hash_bytes(data: bytes) -> str:
    hasher = _hasher[0]
    if hasher is None:  # (imported on first use: start-up pays for no hashing it does not do)
        from blake3 import blake3

        hasher = _hasher[0] = blake3
    return hasher(data).hexdigest()


_hasher: list[Any] = [None]


def is_oid(name: str) -> bool:
    """Whether ``name`` is an object id (64 lowercase hex digits)."""
    return bool(_OID.match(name))


def validate_oid(oid: str) -> str:
    """Check an id before it becomes a path: 64 lowercase hex digits, nothing else."""
    if not isinstance(oid, str) or not _OID.match(oid):
        raise UsageError(f"not an object id: {str(oid)[:80]!r}")
    return oid


def compressor():
    import zstandard

    return zstandard.ZstdCompressor(level=3)


def stored_raw(size: int, head: bytes | bytearray, threshold: int) -> bool:
    """Whether a content of ``size`` bytes beginning with ``head`` is stored as it is: below the
    compression threshold, and not beginning as a zstd frame does (which a read would take for
    one)."""
    return size < threshold and not head.startswith(ZSTD_MAGIC)


def encode(data: bytes, threshold: int) -> bytes:
    """The stored form of ``data``."""
    if stored_raw(len(data), data, threshold):
        return data
    return compressor().compress(data)


def _too_large(oid: str, where: str, limit: int) -> IntegrityError:
    return IntegrityError(
        f"object {oid}: {where}: decompresses to more than {limit:,} bytes, more than "
        "sessions.max_artifact_size allows (stored under a higher limit? raise it in spell.yaml; "
        "else the object is corrupt: run `spell fsck`)"
    )


def decode(oid: str, stored: bytes, where: str, limit: int | None = None) -> bytes:
    """Content of a stored object, verified against its id; a compressed one that would
    decompress to more than ``limit`` bytes is corrupt (a crafted pack must not fill memory)."""
    if stored.startswith(ZSTD_MAGIC):
        import zstandard

        try:
            # (a frame that says its size, as whole-object compression writes it, is decompressed
            # in one go: at most ``limit``; one that does not, a streamed store's, in chunks)
            said = zstandard.frame_content_size(stored)
            if limit is not None and said > limit:
                raise _too_large(oid, where, limit)
            if limit is not None and said < 0:  # (verified as it streams)
                return b"".join(stream_content(oid, io.BytesIO(stored), where, limit))
            data = zstandard.ZstdDecompressor().decompressobj().decompress(stored)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"corrupt object {oid}: {where}: {exc}") from None
    else:
        data = stored
    if hash_bytes(data) != oid:
        raise IntegrityError(
            f"corrupt object {oid}: {where}: content does not match its hash (run `spell fsck`)"
        )
    return data


def stream_content(oid: str, f: BinaryIO, where: str, limit: int | None = None) -> Iterator[bytes]:
    """The content of the stored object open in ``f``, in bounded memory, verified.

    Every chunk but the last is yielded as it is read; the last only once the whole
    content hashed to ``oid``, so a consumer that stops at an IntegrityError never
    holds all of a corrupt object as if it were good.
    """
    from blake3 import blake3

    hasher = blake3(max_threads=blake3.AUTO)
    head = f.read(4)
    f.seek(0)
    reader: Any
    if head == ZSTD_MAGIC:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
    else:
        reader = f
    pending = None
    total = 0
    try:
        for chunk in iter(lambda: reader.read(CHUNK), b""):
            total += len(chunk)
            if limit is not None and total > limit:
                raise _too_large(oid, where, limit)
            hasher.update(chunk)
            if pending is not None:
                yield pending
            pending = chunk
    except Exception as exc:
        if type(exc).__name__ == "ZstdError":
            raise IntegrityError(f"corrupt object {oid}: {where}: {exc}") from None
        raise
    if hasher.hexdigest() != oid:
        raise IntegrityError(
            f"corrupt object {oid}: {where}: content does not match its hash (run `spell fsck`)"
        )
    if pending is not None:
        yield pending
