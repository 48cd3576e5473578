"""The content-addressed object store: ids, layout, compression, integrity, bad ids."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import loose
from spellfs import IntegrityError, ObjectNotFound, SpellError, UsageError
from spellfs.store.objects import (
    CHUNK,
    PACKED_MAX,
    ZSTD_MAGIC,
    FsObjectStore,
    hash_bytes,
    validate_oid,
)
from spellfs.store.memory import MemoryObjectStore

THRESHOLD = 1024


@pytest.fixture
def store(tmp_path: Path) -> FsObjectStore:
    return FsObjectStore(tmp_path / "objects", THRESHOLD)


def stored_file(store: FsObjectStore, oid: str) -> Path:
    return store.root / oid[:2] / oid[2:]


def compressible(n: int) -> bytes:
    return (b"the quick brown fox jumps over the lazy dog\n" * (n // 44 + 1))[:n]


def test_put_get_bytes(store: FsObjectStore) -> None:
    oid = store.put_bytes(b"hello")
    assert oid == blake3(b"hello").hexdigest() == hash_bytes(b"hello")
    assert store.get(oid) == b"hello"
    assert store.has(oid)


def test_fan_out_layout(store: FsObjectStore) -> None:
    oid = store.put_bytes(os.urandom(PACKED_MAX + 1))  # (a smaller one goes to the journal)
    path = stored_file(store, oid)
    assert path.is_file()
    assert path.parent.name == oid[:2] and path.name == oid[2:]
    assert path.parent.parent == store.root


def test_small_object_is_stored_byte_identical(store: FsObjectStore) -> None:
    data = b"small and plain\n" * 10
    assert len(data) < THRESHOLD
    oid = store.put_bytes(data)
    assert store.packed(oid) == data  # its stored form in the journal
    loose(store)
    assert stored_file(store, oid).read_bytes() == data
    assert not store.is_compressed(len(data), data[:4])


def test_large_object_is_zstd_and_smaller(store: FsObjectStore) -> None:
    data = compressible(THRESHOLD * 20)
    oid = store.put_bytes(data)
    loose(store)
    raw = stored_file(store, oid).read_bytes()
    assert raw.startswith(ZSTD_MAGIC)
    assert len(raw) < len(data)
    assert store.get(oid) == data
    assert store.is_compressed(len(data), data[:4])


def test_threshold_boundary(store: FsObjectStore) -> None:
    below = b"x" * (THRESHOLD - 1)
    at = b"y" * THRESHOLD
    below_oid, at_oid = store.put_bytes(below), store.put_bytes(at)
    loose(store)
    assert stored_file(store, below_oid).read_bytes() == below
    assert stored_file(store, at_oid).read_bytes().startswith(ZSTD_MAGIC)


def test_content_starting_with_zstd_magic_round_trips(store: FsObjectStore) -> None:
    for data in (
        ZSTD_MAGIC,
        ZSTD_MAGIC + b"not really a frame",
        ZSTD_MAGIC + os.urandom(3 * THRESHOLD),
    ):
        oid = store.put_bytes(data)
        assert oid == hash_bytes(data)
        assert store.get(oid) == data
        assert b"".join(store.iter_content(oid)) == data
        assert store.is_compressed(len(data), data[:4])
        oid2, size = FsObjectStore(store.root.parent / "other", THRESHOLD).put_stream(
            io.BytesIO(data)
        )
        assert (oid2, size) == (oid, len(data))


def test_put_existing_is_a_no_op(store: FsObjectStore) -> None:
    data = compressible(THRESHOLD * 3)
    oid = store.put_bytes(data)
    loose(store)
    path = stored_file(store, oid)
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 10_000_000_000))
    old = path.stat().st_mtime_ns
    assert store.put_bytes(data) == oid
    assert store.put_stream(io.BytesIO(data)) == (oid, len(data))
    assert path.stat().st_mtime_ns == old
    assert path.stat().st_ino == before.st_ino


def test_objects_are_read_only(store: FsObjectStore) -> None:
    oid = store.put_bytes(b"immutable")
    journal = store.packs.where(oid)
    assert journal is not None and os.stat(journal).st_mode & 0o222 == 0
    loose(store)
    assert stored_file(store, oid).stat().st_mode & 0o222 == 0


class CountingReader(io.RawIOBase):
    """A stream of ``total`` bytes that records the size of every read asked of it."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.reads: list[int] = []
        self.hasher = blake3()
        self.n = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        if size is None or size < 0:
            raise AssertionError("put_stream read the whole stream at once")
        size = min(size, self.left)
        chunk = bytes((self.n + i) % 251 for i in range(min(size, 4096))) * (size // 4096 + 1)
        chunk = chunk[:size]
        self.n += size
        self.left -= size
        self.hasher.update(chunk)
        return chunk


def test_put_stream_of_several_mib_reads_in_chunks(store: FsObjectStore) -> None:
    total = 5 * CHUNK + 12345
    reader = CountingReader(total)
    oid, size = store.put_stream(reader)
    assert size == total
    assert oid == reader.hasher.hexdigest()
    assert reader.reads and all(0 < r <= CHUNK for r in reader.reads)
    assert len(reader.reads) >= total // CHUNK
    chunks = list(store.iter_content(oid))
    assert len(chunks) > 1 and all(len(c) <= CHUNK for c in chunks)
    assert blake3(b"".join(chunks)).hexdigest() == oid
    assert stored_file(store, oid).read_bytes().startswith(ZSTD_MAGIC)
    # no temporary files left behind, and the temp area never shows up as an object
    assert list(store) == [oid]
    leftovers = [p for p in store.root.rglob("*") if p.is_file() and p != stored_file(store, oid)]
    assert leftovers == []


def test_put_stream_small_is_plain(store: FsObjectStore) -> None:
    oid, size = store.put_stream(io.BytesIO(b"tiny"))
    assert (oid, size) == (hash_bytes(b"tiny"), 4)
    loose(store)
    assert stored_file(store, oid).read_bytes() == b"tiny"


@pytest.mark.parametrize("big", [False, True], ids=["plain", "compressed"])
def test_flipped_bit_is_an_integrity_error(store: FsObjectStore, big: bool) -> None:
    data = compressible(THRESHOLD * 8) if big else b"some plain content here"
    oid = store.put_bytes(data)
    loose(store)
    path = stored_file(store, oid)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError) as exc:
        store.get(oid)
    assert oid in str(exc.value)
    with pytest.raises(IntegrityError) as exc:
        b"".join(store.iter_content(oid))
    assert oid in str(exc.value)
    with pytest.raises(IntegrityError):
        store.verify(oid)


@pytest.mark.parametrize("big", [False, True], ids=["plain", "compressed"])
def test_truncated_object_is_an_integrity_error(store: FsObjectStore, big: bool) -> None:
    data = compressible(THRESHOLD * 8) if big else b"some plain content here"
    oid = store.put_bytes(data)
    loose(store)
    path = stored_file(store, oid)
    raw = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(raw[: len(raw) - 7])
    with pytest.raises(IntegrityError, match=oid):
        store.get(oid)
    with pytest.raises(IntegrityError, match=oid):
        list(store.iter_content(oid))


def test_iter_content_yields_nothing_of_a_corrupt_small_object(store: FsObjectStore) -> None:
    oid = store.put_bytes(b"original")
    loose(store)
    path = stored_file(store, oid)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    got = []
    with pytest.raises(IntegrityError):
        for chunk in store.iter_content(oid):
            got.append(chunk)
    assert got == []


def test_missing_object(store: FsObjectStore) -> None:
    oid = hash_bytes(b"never stored")
    assert not store.has(oid)
    with pytest.raises(ObjectNotFound, match=oid):
        store.get(oid)
    with pytest.raises(ObjectNotFound, match=oid):
        list(store.iter_content(oid))


BAD_IDS = [
    "../x",
    "../" + "a" * 61,
    "A" * 64,
    "ab",
    "",
    "a" * 63,
    "a" * 65,
    "g" * 64,
    "a" * 63 + "\n",
    "/etc/passwd",
    "aa/" + "b" * 61,
]


@pytest.mark.parametrize("oid", BAD_IDS)
def test_invalid_ids_are_refused_before_touching_the_disk(
    tmp_path: Path, oid: str, monkeypatch
) -> None:
    store = FsObjectStore(tmp_path / "objects", THRESHOLD)
    touched = []
    real_open, real_exists = os.open, os.path.exists

    def spy_open(path, *a, **k):
        touched.append(path)
        return real_open(path, *a, **k)

    def spy_exists(path):
        touched.append(path)
        return real_exists(path)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os.path, "exists", spy_exists)
    with pytest.raises(UsageError):
        validate_oid(oid)
    with pytest.raises(UsageError):
        store.get(oid)
    with pytest.raises(UsageError):
        store.has(oid)
    with pytest.raises(UsageError):
        list(store.iter_content(oid))
    with pytest.raises(UsageError):
        store.remove(oid)
    with pytest.raises(UsageError):
        MemoryObjectStore(THRESHOLD).get(oid)
    assert touched == []
    assert not (tmp_path / "objects").exists()
    assert not (tmp_path / "x").exists()


def test_iteration_lists_exactly_the_objects(store: FsObjectStore) -> None:
    assert list(store) == []
    oids = {
        store.put_bytes(b"one"),
        store.put_bytes(b"two"),
        store.put_bytes(compressible(5 * THRESHOLD)),
    }
    (store.root / "zz").mkdir()
    (store.root / "zz" / "not-an-object").write_bytes(b"junk")
    (store.root / "README").write_bytes(b"junk")
    assert set(store) == oids and len(list(store)) == 3
    for oid in oids:
        assert store.has(oid)


def test_memory_store_contract() -> None:
    store = MemoryObjectStore(THRESHOLD)
    small, big = b"small", compressible(4 * THRESHOLD)
    a, b = store.put_bytes(small), store.put_bytes(big)
    assert store.get(a) == small and store.get(b) == big
    assert store.objects[a] == small
    assert store.objects[b].startswith(ZSTD_MAGIC)
    assert set(store) == {a, b}
    assert store.put_stream(io.BytesIO(big)) == (b, len(big))
    store.objects[a] = b"smalL"
    with pytest.raises(IntegrityError, match=a):
        store.get(a)
    with pytest.raises(ObjectNotFound):
        store.get(hash_bytes(b"absent"))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300) | st.builds(lambda b: ZSTD_MAGIC + b, st.binary(max_size=100)))
def test_round_trip_both_stores(tmp_path: Path, data: bytes) -> None:
    fs = FsObjectStore(tmp_path / "hyp", 64)
    mem = MemoryObjectStore(64)
    for s in (fs, mem):
        oid = s.put_bytes(data)
        assert oid == hash_bytes(data)
        assert s.get(oid) == data
        assert b"".join(s.iter_content(oid)) == data
        assert s.put_stream(io.BytesIO(data)) == (oid, len(data))
        assert s.has(oid)
    loose(fs)
    raw = stored_file(fs, hash_bytes(data)).read_bytes()
    if len(data) < 64 and not data.startswith(ZSTD_MAGIC):
        assert raw == data
    else:
        assert raw.startswith(ZSTD_MAGIC)


# -- found by mutation testing (tools/mutation.py) ----------------------------------------


@pytest.mark.parametrize("kind", ["fs", "memory"])
def test_missing_object_message_is_exact(kind: str, tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "objects", 1024) if kind == "fs" else MemoryObjectStore(1024)
    oid = hash_bytes(b"never stored")
    with pytest.raises(ObjectNotFound) as info:
        store.get(oid)
    assert str(info.value) == f"object not found: {oid} (not in the local store; run `spell fsck`)"
    store.fetcher = lambda wanted: False  # a remote that does not have it either
    with pytest.raises(ObjectNotFound) as info:
        store.get(oid)
    assert str(info.value) == (
        f"object not found: {oid} (not in the local store nor on the remote; run `spell fsck`)"
    )


def test_size_at_the_threshold_is_compressed(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "objects", 64)
    assert store.is_compressed(64, b"abcd") and not store.is_compressed(63, b"abcd")
    assert store.is_compressed(10, ZSTD_MAGIC)


def test_objects_are_read_only_files_and_remove_deletes_them(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "objects", 1024)
    oid = store.put_bytes(b"kept read-only")
    loose(store)
    assert os.stat(store.path(oid)).st_mode & 0o777 == 0o444
    store.remove(oid)
    assert not store.path(oid).exists() and not store.has(oid)


def test_corrupt_object_message_names_the_file(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "objects", 1024)
    oid = store.put_bytes(b"precious")
    loose(store)
    path = store.path(oid)
    os.chmod(path, 0o644)
    path.write_bytes(b"garbled!")
    with pytest.raises(IntegrityError) as info:
        store.get(oid)
    assert str(info.value) == (
        f"corrupt object {oid}: {path}: content does not match its hash (run `spell fsck`)"
    )


def test_a_full_disk_stores_no_part_of_an_object_and_says_so(small_disk: Path) -> None:
    from conftest import fill_disk

    store = FsObjectStore(small_disk / "objects", THRESHOLD)
    kept = store.put_bytes(b"stored before the disk filled")
    journal = store.packs.where(kept)  # small objects are appended to this process's journal
    assert journal is not None
    held = os.path.getsize(journal)
    # small: its stored form (5 KiB) goes to the journal, past the block the journal has;
    # big: its stored form is over PACKED_MAX, a loose file (its fan-out folder exists)
    plain, small, big = b"p" * 500, os.urandom(5000), os.urandom(64 * 1024)
    os.makedirs(store.root / hash_bytes(big)[:2], exist_ok=True)
    fill_disk(small_disk)
    full = (
        "No space left on device"
        " (free some space and retry; nothing stored before this was touched)"
    )
    for data, where in ((small, journal), (big, stored_file(store, hash_bytes(big)))):
        oid = hash_bytes(data)
        with pytest.raises(SpellError) as info:
            store.put_bytes(data)
        assert str(info.value) == f"cannot write {where}: {full}"
        assert not store.has(oid)
    assert os.path.getsize(journal) == held  # no torn entry left behind in the journal
    with pytest.raises(SpellError) as info:
        store.put_stream(io.BytesIO(big))
    assert str(info.value) == f"cannot write {store.root}: {full}"
    with pytest.raises(SpellError) as info:  # an object brought from a remote
        store.add_verified(hash_bytes(plain), plain, "remote:x")
    assert str(info.value) == f"cannot write {stored_file(store, hash_bytes(plain))}: {full}"
    # nothing half-written is left: the objects folder holds the one good object
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert files == [Path(journal)]
    assert store.get(kept) == b"stored before the disk filled"
    os.unlink(small_disk / "filler")
    assert store.put_bytes(big) == hash_bytes(big) and store.get(hash_bytes(big)) == big


def test_an_unmakeable_fan_out_folder_is_named(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "objects", THRESHOLD)
    blocked = os.urandom(PACKED_MAX + 1)  # (a smaller one goes to the journal)
    oid = hash_bytes(blocked)
    store.root.mkdir()
    (store.root / oid[:2]).write_bytes(b"a file where the folder goes")
    with pytest.raises(SpellError) as info:
        store.put_bytes(blocked)
    assert str(info.value) == f"cannot write {store.root / oid[:2]}: File exists"


def test_add_verified_checks_the_bytes_before_storing(tmp_path: Path) -> None:
    """What a remote or an import brings in is stored only if it is what its id says."""
    source = FsObjectStore(tmp_path / "remote", THRESHOLD)
    store = FsObjectStore(tmp_path / "objects", THRESHOLD)
    small, big = b"fetched", compressible(4 * THRESHOLD)
    for data in (small, big):
        oid = source.put_bytes(data)
        loose(source)
        raw = stored_file(source, oid).read_bytes()
        store.add_verified(oid, raw, "remote:x")
        assert stored_file(store, oid).read_bytes() == raw  # stored as it came
        assert os.stat(stored_file(store, oid)).st_mode & 0o777 == 0o444
        assert store.get(oid) == data
        assert store.stored_size(oid) == len(raw)
        store.add_verified(oid, raw, "remote:x")  # again: a no-op
    oid = hash_bytes(b"the real content")
    with pytest.raises(IntegrityError) as info:
        store.add_verified(oid, b"something else", "remote:sessions/x")
    assert str(info.value) == (
        f"corrupt object {oid}: remote:sessions/x: content does not match its hash "
        "(run `spell fsck`)"
    )
    assert not store.has(oid) and sorted(store) == sorted(hash_bytes(d) for d in (small, big))


def test_verify_reads_the_whole_object(tmp_path: Path) -> None:
    for store in (FsObjectStore(tmp_path / "objects", THRESHOLD), MemoryObjectStore(THRESHOLD)):
        oid = store.put_bytes(compressible(3 * THRESHOLD))
        store.verify(oid)
        with pytest.raises(ObjectNotFound):
            store.verify(hash_bytes(b"absent"))


def test_memory_store_remove_and_sizes() -> None:
    store = MemoryObjectStore(THRESHOLD)
    small, big = store.put_bytes(b"small"), store.put_bytes(compressible(4 * THRESHOLD))
    assert store.stored_size(small) == 5
    assert store.stored_size(big) == len(store.objects[big]) < 4 * THRESHOLD
    store.remove(small)
    store.remove(small)  # already gone: no error
    assert not store.has(small) and set(store) == {big}


def test_a_bad_id_is_quoted_in_the_error_and_cut_at_80_characters() -> None:
    with pytest.raises(UsageError) as info:
        validate_oid("../etc/passwd")
    assert str(info.value) == "not an object id: '../etc/passwd'"
    with pytest.raises(UsageError) as info:
        validate_oid("x" * 200)
    assert str(info.value) == f"not an object id: {'x' * 80!r}"


def _unreadable_frame(store: FsObjectStore, data: bytes) -> tuple[str, Path]:
    """Store ``data`` compressed, then break its zstd frame header (a bad disk block)."""
    oid = store.put_bytes(data)
    loose(store)
    path = stored_file(store, oid)
    raw = bytearray(path.read_bytes())
    assert raw.startswith(ZSTD_MAGIC)
    raw[4:12] = b"\xff" * 8
    path.chmod(0o644)
    path.write_bytes(bytes(raw))
    return oid, path


def test_an_unreadable_zstd_frame_is_an_integrity_error_naming_the_file(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "objects", THRESHOLD)
    oid, path = _unreadable_frame(store, compressible(THRESHOLD * 8))
    for read in (store.get, lambda o: b"".join(store.iter_content(o)), store.verify):
        with pytest.raises(IntegrityError) as info:  # zstd's own error never reaches the user
            read(oid)
        message = str(info.value)
        assert message.startswith(f"corrupt object {oid}: {path}: "), message
        assert len(message) > len(f"corrupt object {oid}: {path}: ") and "\n" not in message


def test_a_tampered_object_read_in_chunks_names_the_file(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "objects", THRESHOLD)
    oid = store.put_bytes(b"original")
    loose(store)
    path = stored_file(store, oid)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(IntegrityError) as info:
        list(store.iter_content(oid))
    assert str(info.value) == (
        f"corrupt object {oid}: {path}: content does not match its hash (run `spell fsck`)"
    )


def test_a_corrupt_memory_object_says_memory() -> None:
    store = MemoryObjectStore(THRESHOLD)
    oid = store.put_bytes(b"small")
    store.objects[oid] = b"smalL"
    with pytest.raises(IntegrityError) as info:
        store.get(oid)
    assert str(info.value) == (
        f"corrupt object {oid}: memory: content does not match its hash (run `spell fsck`)"
    )


class ShortReads(io.RawIOBase):
    """A raw stream (a pipe, a socket) that hands over at most ``most`` bytes per read."""

    def __init__(self, data: bytes, most: int) -> None:
        self.data, self.most, self.pos = data, most, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self.most if size is None or size < 0 else min(size, self.most)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk


@pytest.mark.parametrize("size", [THRESHOLD - 1, THRESHOLD, 5 * THRESHOLD + 7])
def test_put_stream_keeps_every_byte_of_short_reads(store: FsObjectStore, size: int) -> None:
    data = os.urandom(size)
    oid, got = store.put_stream(ShortReads(data, 100))
    assert (oid, got) == (hash_bytes(data), size)
    assert store.get(oid) == data


def test_put_stream_stores_exactly_the_threshold_compressed_and_read_only(
    store: FsObjectStore,
) -> None:
    below, at = b"b" * (THRESHOLD - 1), b"a" * THRESHOLD
    below_oid, _ = store.put_stream(io.BytesIO(below))
    oid, _ = store.put_stream(io.BytesIO(at))
    loose(store)
    assert stored_file(store, below_oid).read_bytes() == below
    assert stored_file(store, oid).read_bytes().startswith(ZSTD_MAGIC)
    assert os.stat(stored_file(store, oid)).st_mode & 0o777 == 0o444
    assert store.get(oid) == at


class FailsMidway(io.RawIOBase):
    def __init__(self, good: int, exc: BaseException) -> None:
        self.left, self.exc = good, exc

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise self.exc
        n = min(size, self.left)
        self.left -= n
        return os.urandom(n)


@pytest.mark.parametrize("exc", [ValueError("source went away"), KeyboardInterrupt()])
def test_a_stream_that_fails_midway_leaves_no_temp_and_no_object(
    store: FsObjectStore, exc: BaseException
) -> None:
    with pytest.raises(type(exc)) as info:
        store.put_stream(FailsMidway(3 * THRESHOLD, exc))
    assert info.value is exc  # the source's own error, not one from the clean-up
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_a_streaming_temp_is_where_the_stray_temp_scan_looks(ws) -> None:
    """A put_stream killed midway leaves its temp file; fsck and gc must be able to find it."""
    from spellfs.maintenance.temps import stray_temps

    seen: list[list[str]] = []

    class Watching(io.RawIOBase):
        left = 3 * ws.objects.threshold + 10

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            if self.left < ws.objects.threshold:  # mid-stream: the temp file exists now
                seen.append([rel for rel, _ in stray_temps(ws, grace=-1)])
            n = min(size, self.left)
            self.left -= n
            return os.urandom(n)

    ws.objects.put_stream(Watching())
    assert seen and all(len(found) == 1 for found in seen), seen
    assert seen[0][0].startswith(".spell/objects/tmp/.tmp-")
    assert stray_temps(ws, grace=-1) == []


def test_a_fetcher_brings_a_missing_object_in(tmp_path: Path) -> None:
    remote = FsObjectStore(tmp_path / "remote", THRESHOLD)
    store = FsObjectStore(tmp_path / "objects", THRESHOLD)
    asked: list[str] = []

    def fetch(oid: str) -> bool:
        asked.append(oid)
        if not remote.has(oid):
            return False
        store.add_verified(oid, stored_file(remote, oid).read_bytes(), f"remote:{oid}")
        return True

    store.fetcher = fetch
    data = compressible(3 * THRESHOLD)
    oid = remote.put_bytes(data)
    loose(remote)
    assert store.get(oid) == data and asked == [oid]
    assert b"".join(store.iter_content(oid)) == data and asked == [oid]  # now local
    other = hash_bytes(b"nowhere")
    with pytest.raises(ObjectNotFound):
        store.get(other)
    assert asked == [oid, other]


def test_out_of_inodes_the_temp_cannot_even_be_made_and_the_error_says_so(
    tmp_path: Path,
) -> None:
    import errno
    import subprocess

    disk = tmp_path / "inodes"
    disk.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m,nr_inodes=64", "tmpfs", str(disk)]
        ).returncode
    ):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        store = FsObjectStore(disk / "objects", THRESHOLD)
        single, big = os.urandom(PACKED_MAX + 1), os.urandom(8 * THRESHOLD)  # (single: loose)
        for fan in (hash_bytes(single)[:2], hash_bytes(big)[:2], "tmp"):
            os.makedirs(store.root / fan, exist_ok=True)
        n = 0
        try:
            while True:  # every inode taken: no new file can be made at all
                os.close(os.open(disk / f"f{n}", os.O_WRONLY | os.O_CREAT))
                n += 1
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        full = (
            "No space left on device"
            " (free some space and retry; nothing stored before this was touched)"
        )
        with pytest.raises(SpellError) as info:
            store.put_bytes(single)
        assert str(info.value) == f"cannot write {stored_file(store, hash_bytes(single))}: {full}"
        with pytest.raises(SpellError) as info:
            store.put_stream(io.BytesIO(big))
        assert str(info.value) == f"cannot write {store.root}: {full}"
        assert [p for p in store.root.rglob("*") if p.is_file()] == []
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def test_a_dead_process_temp_of_the_same_name_is_neither_reused_nor_touched(
    store: FsObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temp names are pid, thread and a counter; after a crash the pid can come back with the
    counter at the same value. The new store then writes beside the old temp, not into it."""
    import itertools
    import threading

    from spellfs.store import objects

    monkeypatch.setattr(objects, "_SERIAL", itertools.repeat(7))
    data = os.urandom(PACKED_MAX + 1)  # (a smaller one goes to the journal)
    oid = hash_bytes(data)
    fan = store.root / oid[:2]
    fan.mkdir(parents=True, exist_ok=True)
    stale = fan / f".tmp-{os.getpid()}-{threading.get_ident()}-7"
    stale.write_bytes(b"half of a dead writer's object")
    moved: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moved.append(a), real_replace(a, b))[1])
    assert store.put_bytes(data) == oid
    assert store.get(oid) == data
    assert stale.read_bytes() == b"half of a dead writer's object"
    # its own temp was beside the stale one (where the temp cleanup looks), and read-only
    [tmp] = moved
    assert os.path.dirname(tmp) == str(fan) and tmp.startswith(f"{stale}-")
    assert stat.S_IMODE(os.stat(store.path(oid)).st_mode) == 0o444


def test_a_small_content_held_loose_is_stored_again_packed_and_read_as_one(
    store: FsObjectStore,
) -> None:
    """A store looks for a small object in the packs only (a stat fewer each): one held loose
    (pulled from a remote, or a repair's) gets a second copy in the journal. The loose file is
    left as it was, and the object is read, and listed, as one."""
    data = b"small, and loose as a pull writes it"
    oid = hash_bytes(data)
    store.add_verified(oid, data, "a remote")
    path = stored_file(store, oid)
    before = path.stat()
    assert store.put_bytes(data) == oid
    assert store.packs.where(oid) is not None  # the second copy
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert store.get(oid) == data
    assert list(store).count(oid) == 1
    store.close()  # (its journal sealed into a pack)
    fresh = FsObjectStore(store.root, THRESHOLD)
    assert fresh.get(oid) == data and list(fresh).count(oid) == 1
    path.chmod(0o644)
    path.write_bytes(b"damaged")  # the loose copy goes bad: the packed one still reads
    path.unlink()
    assert FsObjectStore(store.root, THRESHOLD).get(oid) == data
