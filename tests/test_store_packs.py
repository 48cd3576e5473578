"""Packs (store/packs.py): many small objects in one file, found by every read, never lost."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import loose as write_loose
from spellfs import IntegrityError, ObjectNotFound
from spellfs.store.objects import PACK_FROM, PACKED_MAX, ZSTD_MAGIC, FsObjectStore, hash_bytes
from spellfs.store.packfile import open_regular, read_index

THRESHOLD = 1024


@pytest.fixture
def store(tmp_path: Path) -> FsObjectStore:
    return FsObjectStore(tmp_path / "objects", THRESHOLD)


def contents(n: int, tag: str = "c") -> list[bytes]:
    return [f"{tag} {i}\n".encode() * 3 for i in range(n)]


def index_of(store: FsObjectStore, name: str) -> list[tuple[str, int, int]]:
    path = str(store.root / "pack" / name)
    fd = open_regular(path)
    try:
        return read_index(fd, path)
    finally:
        os.close(fd)


def packs_in(store: FsObjectStore) -> list[str]:
    d = store.root / "pack"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def loose(store: FsObjectStore) -> set[str]:
    return {
        fan.name + f.name
        for fan in store.root.iterdir()
        if len(fan.name) == 2
        for f in fan.iterdir()
    }


def test_a_batch_of_new_small_objects_is_one_pack_and_reads_back(store: FsObjectStore) -> None:
    datas = contents(40)
    oids = store.put_many(datas)
    assert oids == [hash_bytes(d) for d in datas]
    assert len(packs_in(store)) == 1 and packs_in(store)[0].endswith(".pack")
    assert loose(store) == set()  # one file for forty objects
    for oid, data in zip(oids, datas):
        assert store.has(oid)
        assert store.get(oid) == data
        assert b"".join(store.iter_content(oid)) == data
        assert store.stored_size(oid) == len(data)  # small: stored as is
    assert list(store) == sorted(oids)
    # a store opened afterwards (another process) finds them too
    again = FsObjectStore(store.root, THRESHOLD)
    assert [again.get(o) for o in oids] == datas


def test_a_small_batch_goes_to_the_journal_and_a_large_object_stays_a_file(
    store: FsObjectStore,
) -> None:
    few = contents(PACK_FROM - 1)
    first = store.put_many(few)
    [journal] = packs_in(store)  # fewer than PACK_FROM: appended as single stores are
    assert journal.endswith(".journal") and loose(store) == set()
    assert [store.get(o) for o in first] == few
    big = os.urandom(PACKED_MAX + 1)  # a stored form above PACKED_MAX: a file of its own
    oids = store.put_many([big, *contents(PACK_FROM, "more")])
    assert loose(store) == {oids[0]}
    assert len([p for p in packs_in(store) if p.endswith(".pack")]) == 1
    assert store.get(oids[0]) == big


def test_what_is_already_stored_is_not_stored_again(store: FsObjectStore) -> None:
    first = store.put_many(contents(20))
    big = os.urandom(PACKED_MAX + 1)  # a loose file (a smaller one goes to the journal)
    loose_one = store.put_bytes(big)
    store.put_many([*contents(20), big])  # nothing new: no second pack
    assert len(packs_in(store)) == 1
    assert loose_one in loose(store) and first[0] not in loose(store)
    # a single store of packed content writes no loose copy (nor a journal entry)
    store.put_bytes(contents(20)[3])
    assert first[3] not in loose(store) and len(packs_in(store)) == 1
    # duplicates within one batch are stored once
    dup = store.put_many([b"same"] * 20 + contents(20, "new"))
    pack_sizes = sorted((store.root / "pack" / p).stat().st_size for p in packs_in(store))
    assert len(pack_sizes) == 2 and store.get(dup[0]) == b"same"


def test_compressed_and_magic_contents_round_trip_packed(store: FsObjectStore) -> None:
    datas = [b"a" * 5000, ZSTD_MAGIC + b"looks framed", b"", *contents(20)]
    oids = store.put_many(datas)
    assert packs_in(store) and not loose(store)
    assert [store.get(o) for o in oids] == datas
    assert store.stored_size(oids[0]) < 5000  # compressed in the pack


@given(batch=st.lists(st.binary(max_size=3000), min_size=PACK_FROM, max_size=60))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_never_loses_content(tmp_path: Path, batch: list[bytes]) -> None:
    store = FsObjectStore(tmp_path / f"o{os.urandom(4).hex()}", THRESHOLD)
    oids = store.put_many(batch)
    fresh = FsObjectStore(store.root, THRESHOLD)
    for oid, data in zip(oids, batch):
        assert fresh.get(oid) == data
    assert set(fresh) == set(oids)


def test_a_flipped_byte_in_a_pack_is_an_integrity_error(store: FsObjectStore) -> None:
    datas = contents(20)
    oids = store.put_many(datas)
    pack = store.root / "pack" / packs_in(store)[0]
    raw = bytearray(pack.read_bytes())
    at = raw.index(datas[5])
    raw[at] ^= 1
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))
    fresh = FsObjectStore(store.root, THRESHOLD)
    with pytest.raises(IntegrityError, match=rf"corrupt object {oids[5]}: .*pack"):
        fresh.get(oids[5])
    with pytest.raises(IntegrityError):
        list(fresh.iter_content(oids[5]))
    assert fresh.get(oids[6]) == datas[6]  # the rest of the pack still reads


@pytest.mark.parametrize("damage", ["truncate", "footer", "entry", "size"])
def test_a_damaged_pack_is_reported_and_breaks_nothing_else(
    store: FsObjectStore, damage: str
) -> None:
    good = store.put_many(contents(20, "good"))
    bad = store.put_many(contents(20, "bad"))
    name = next(n for n in packs_in(store) if index_of(store, n)[0][0] in bad)
    pack = store.root / "pack" / name
    raw = bytearray(pack.read_bytes())
    if damage == "truncate":
        raw = raw[:-3]
    elif damage == "footer":
        raw[-1] ^= 0xFF  # the magic
    elif damage == "entry":
        raw[-30] ^= 0xFF  # the last index entry's offset: points outside the data
    else:
        raw[-23] ^= 0xFF  # the last index entry's size: runs past the data
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))
    fresh = FsObjectStore(store.root, THRESHOLD)
    assert [fresh.get(o) for o in good] == contents(20, "good")
    assert not fresh.has(bad[0])
    with pytest.raises(ObjectNotFound):
        fresh.get(bad[0])
    assert list(fresh.packs.bad) == [name]
    assert "corrupt pack" in fresh.packs.bad[name]


def test_remove_many_rewrites_the_pack_without_them(store: FsObjectStore) -> None:
    datas = contents(30)
    oids = store.put_many(datas)
    before = packs_in(store)
    store.remove_many(oids[:10])
    after = packs_in(store)
    assert len(after) == 1 and after != before  # a new pack, the old one gone
    fresh = FsObjectStore(store.root, THRESHOLD)
    assert [fresh.has(o) for o in oids] == [False] * 10 + [True] * 20
    assert [fresh.get(o) for o in oids[10:]] == datas[10:]
    store.remove_many(oids[10:])
    assert packs_in(store) == [] and list(FsObjectStore(store.root, THRESHOLD)) == []


def test_a_reader_of_a_pack_a_gc_just_rewrote_finds_the_object_in_the_new_one(
    store: FsObjectStore,
) -> None:
    oids = store.put_many(contents(20))
    reader = FsObjectStore(store.root, THRESHOLD)
    assert reader.has(oids[0])  # it knows the old pack
    FsObjectStore(store.root, THRESHOLD).remove_many([oids[19]])  # another process's gc
    assert reader.get(oids[0]) == contents(20)[0]
    assert not reader.has(oids[19])


def test_a_pack_written_by_another_process_is_seen_on_the_next_miss(
    store: FsObjectStore,
) -> None:
    reader = FsObjectStore(store.root, THRESHOLD)
    assert list(reader) == []
    oids = store.put_many(contents(20))
    assert reader.get(oids[7]) == contents(20)[7]


def test_a_crash_after_the_new_pack_and_before_the_old_is_removed_loses_nothing(
    store: FsObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    datas = contents(20)
    oids = store.put_many(datas)
    real = os.unlink

    def crash(path, *a, **kw):
        if str(path).endswith(".pack"):
            raise KeyboardInterrupt  # killed between the two steps
        return real(path, *a, **kw)

    monkeypatch.setattr(os, "unlink", crash)
    with pytest.raises(KeyboardInterrupt):
        store.remove_many(oids[:1])
    monkeypatch.undo()
    fresh = FsObjectStore(store.root, THRESHOLD)
    assert len(packs_in(store)) == 2  # old and new: duplicates, never a loss
    assert [fresh.get(o) for o in oids[1:]] == datas[1:]
    assert sorted(fresh) == sorted(oids)  # each listed once


KILLED_MID_PACK = """
import os, signal, sys
from spellfs.store.objects import FsObjectStore
real = os.rename
def die(src, dst, *a, **kw):
    if str(dst).endswith(".pack"):
        os.kill(os.getpid(), signal.SIGKILL)  # after the data, before the pack is visible
    return real(src, dst, *a, **kw)
os.rename = die
FsObjectStore(__import__("pathlib").Path(sys.argv[1]), 1024).put_many(
    [f"k {i}".encode() for i in range(20)]
)
"""


def test_a_kill_while_a_pack_is_written_leaves_no_pack_and_no_error(
    store: FsObjectStore,
) -> None:
    kept = store.put_many(contents(20))
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_PACK, str(store.root)])
    assert proc.returncode == -signal.SIGKILL
    names = os.listdir(store.root / "pack")
    assert len([n for n in names if n.startswith(".tmp-")]) == 1  # a stray temp, for gc
    fresh = FsObjectStore(store.root, THRESHOLD)
    assert sorted(fresh) == sorted(kept)
    assert not fresh.has(hash_bytes(b"k 1"))
    assert fresh.packs.bad == {}


def test_unpack_writes_every_packed_object_loose_durably_then_removes_the_packs(
    store: FsObjectStore,
) -> None:
    datas = contents(25)
    oids = store.put_many(datas)
    already = store.put_bytes(os.urandom(PACKED_MAX + 1))  # loose already: over PACKED_MAX
    datas.append(b"in this process's journal")
    oids.append(store.put_bytes(datas[-1]))  # a single store: appended to the journal
    made_durable: list[str] = []
    assert store.unpack(made_durable.extend) == 26
    assert packs_in(store) == []
    assert loose(store) == {*oids, already}
    for oid, data in zip(oids, datas):
        assert (store.root / oid[:2] / oid[2:]).read_bytes() == data
    files = {p for p in made_durable if not os.path.isdir(p)}
    assert files == {str(store.root / o[:2] / o[2:]) for o in oids}  # flushed before removal
    assert {str(store.root / o[:2]) for o in oids} <= set(made_durable)
    assert store.unpack(made_durable.extend) == 0


def test_unpack_keeps_the_pack_when_writing_loose_fails(
    store: FsObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    datas = contents(20)
    oids = store.put_many(datas)

    def full(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_write_new", full)
    with pytest.raises(OSError):
        store.unpack(lambda paths: None)
    monkeypatch.undo()
    assert len(packs_in(store)) == 1
    assert [FsObjectStore(store.root, THRESHOLD).get(o) for o in oids] == datas


def test_an_object_in_two_packs_stays_found_when_one_is_removed(
    store: FsObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a crash mid-rewrite an object is in the old pack and the new one; a later gc
    removes the old one: a reader that had found it there finds it in the other."""
    datas = contents(20)
    oids = store.put_many(datas)
    old = packs_in(store)[0]
    real = os.unlink
    monkeypatch.setattr(
        os,
        "unlink",
        lambda p, *a: (
            (_ for _ in ()).throw(KeyboardInterrupt) if str(p).endswith(".pack") else real(p, *a)
        ),
    )
    with pytest.raises(KeyboardInterrupt):
        store.remove_many(oids[:1])
    monkeypatch.undo()
    reader = FsObjectStore(store.root, THRESHOLD)
    assert len(packs_in(store)) == 2 and old in packs_in(store)
    Path(reader.packs.locate(oids[5])[0]).unlink()  # the copy it found goes (a later gc)
    assert reader.get(oids[5]) == datas[5]


def test_a_pack_renamed_in_within_the_same_timestamp_tick_is_still_seen(
    store: FsObjectStore,
) -> None:
    """A look skips the listing while the folder's mtime is unchanged, but only once that mtime
    is older than its look by a second: a pack renamed in later within the same tick keeps it."""
    store.put_many(contents(20))
    folder = store.root / "pack"
    tick = folder.stat().st_mtime_ns  # (just now)
    reader = FsObjectStore(store.root, THRESHOLD)
    assert not reader.has(hash_bytes(b"x"))  # a look at a fresh folder
    oids = FsObjectStore(store.root, THRESHOLD).put_many(contents(20, "later"))
    os.utime(folder, ns=(tick, tick))  # the second rename landed in the same tick
    assert reader.get(oids[0]) == contents(20, "later")[0]
    # once settled, an unchanged folder is not listed again; a change of its mtime is seen
    old = tick - 5 * 10**9
    os.utime(folder, ns=(old, old))
    assert not reader.has(hash_bytes(b"y"))  # a settled look
    listed = []
    reader.packs._names = lambda: listed.append(1) or set()  # type: ignore[method-assign]
    assert not reader.has(hash_bytes(b"z"))
    assert listed == []  # one stat, no listing


def test_stores_in_a_fresh_folders_first_second_list_it_once_and_a_racy_miss_costs_a_copy(
    store: FsObjectStore,
) -> None:
    """A store asks the folder only whether to write an object again: within the second after
    its mtime (when a read would list it each time, above) it is not listed again while that
    mtime stands. A pack another process renamed in within the same tick is then missed by a
    store, which writes a second copy: every read still finds the object, nothing is lost."""
    store.put_bytes(b"first")  # its journal is made: the folder's mtime is now
    store.put_bytes(b"second")  # (one look at the new mtime)
    folder = store.root / "pack"
    real, listed = store.packs._names, []
    store.packs._names = lambda: listed.append(1) or real()  # type: ignore[method-assign]
    oids = [store.put_bytes(b"new %d" % i) for i in range(10)]
    assert listed == []  # racy, yet one stat a store
    tick = folder.stat().st_mtime_ns
    shared = FsObjectStore(store.root, THRESHOLD).put_many(contents(20, "shared"))
    os.utime(folder, ns=(tick, tick))  # its pack landed in the same tick
    assert store.put_bytes(contents(20, "shared")[3]) == shared[3]
    assert listed == []  # missed: stored again in this process's journal
    reader = FsObjectStore(store.root, THRESHOLD)
    assert [reader.get(oid) for oid in oids] == [b"new %d" % i for i in range(10)]
    assert reader.get(shared[3]) == contents(20, "shared")[3]
    assert store.get(shared[5]) == contents(20, "shared")[5]  # a read lists the racy folder
    assert listed == [1]
    assert sorted(reader) == sorted(set(reader))  # each object listed once, copies or not


def test_packed_objects_are_read_only_and_as_old_as_their_pack(store: FsObjectStore) -> None:
    oids = store.put_many(contents(20))
    pack = store.root / "pack" / packs_in(store)[0]
    assert stat.S_IMODE(pack.stat().st_mode) == 0o444
    os.utime(pack, (1_000_000_000, 1_000_000_000))
    assert FsObjectStore(store.root, THRESHOLD).stored_mtime(oids[3]) == 1_000_000_000
    with pytest.raises(FileNotFoundError):
        store.stored_mtime(hash_bytes(b"never stored"))


def test_a_pack_that_cannot_be_written_leaves_nothing_and_says_where(
    small_disk: Path,
) -> None:
    from spellfs.errors import SpellError

    from conftest import fill_disk

    store = FsObjectStore(small_disk / "objects", THRESHOLD)
    store.put_bytes(b"first")  # the folders exist (the pack folder holds its journal)
    before = os.listdir(store.root / "pack")
    (small_disk / "other").mkdir()
    (small_disk / "other" / "pack").write_bytes(b"a file where the folder goes")
    fill_disk(small_disk)
    with pytest.raises(SpellError, match=r"cannot write .*/objects/pack/[0-9a-f]{24}\.pack: "):
        store.put_many([os.urandom(900) for _ in range(40)])
    assert os.listdir(store.root / "pack") == before  # no pack, no temp
    blocked = FsObjectStore(small_disk / "other", THRESHOLD)
    with pytest.raises(SpellError, match=r"cannot write .spell/objects/pack: it is a file, not"):
        blocked.put_many(contents(20))


def test_a_store_looks_for_other_processes_packs_once_a_glance_and_a_miss_costs_a_copy(
    store: FsObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store asks the folder only whether to write an object again, and not again within
    ``_GLANCE_NS`` of its last look: an object another process packed meanwhile is stored a
    second time (never lost), every read still finds each object, and the next look after the
    glance sees the pack (no copy)."""
    import spellfs.store.packs as packs

    store.put_bytes(b"first")  # its journal is made
    monkeypatch.setattr(packs, "_GLANCE_NS", 10**18, raising=False)  # (no run outlasts it)
    store.put_bytes(b"second")
    shared = FsObjectStore(store.root, THRESHOLD).put_many(contents(20, "shared"))
    tick = (store.root / "pack").stat().st_mtime_ns + 1
    os.utime(store.root / "pack", ns=(tick, tick))  # (its mtime moved, whatever the clock's tick)
    assert store.put_bytes(contents(20, "shared")[3]) == shared[3]
    where = store.packs.where(shared[3])
    assert where is not None and where.endswith(".journal")  # stored again: not looked
    monkeypatch.setattr(packs, "_GLANCE_NS", 0)
    assert store.put_bytes(contents(20, "shared")[6]) == shared[6]
    where = store.packs.where(shared[6])
    assert where is not None and where.endswith(".pack")  # looked: no second copy
    assert store.get(shared[5]) == contents(20, "shared")[5]
    reader = FsObjectStore(store.root, THRESHOLD)
    assert [reader.get(o) for o in shared] == contents(20, "shared")
    assert sorted(reader) == sorted(set(reader))


def test_a_store_after_its_own_removal_writes_the_object_again(store: FsObjectStore) -> None:
    datas = contents(20)
    oids = store.put_many(datas)
    store.remove_many(oids[:5])
    assert store.put_many(datas[:5] + contents(20, "x"))[:5] == oids[:5]
    fresh = FsObjectStore(store.root, THRESHOLD)
    assert [fresh.get(o) for o in oids] == datas


def test_a_long_lived_store_writes_again_what_another_process_collected(
    store: FsObjectStore,
) -> None:
    datas = contents(20)
    oids = store.put_many(datas)
    assert store.has(oids[0])  # (it knows where)
    FsObjectStore(store.root, THRESHOLD).remove_many(oids)  # another process's gc
    assert not store.has(oids[0])
    assert store.put_bytes(datas[0]) == oids[0]
    assert FsObjectStore(store.root, THRESHOLD).get(oids[0]) == datas[0]


def test_a_store_writes_again_what_a_gc_collected_within_the_tick_of_its_last_look(
    store: FsObjectStore,
) -> None:
    """A store whose known pack is gone looks afresh, racy or not: a gc that rewrote the pack
    without the object within the same timestamp tick as the store's last look leaves the
    folder's mtime as it was, and trusting the old answer would record an object no longer
    stored."""
    datas = contents(20)
    oids = store.put_many(datas)
    folder = store.root / "pack"
    store.packs.refresh()  # its last look: at the folder as it is now
    tick = folder.stat().st_mtime_ns
    FsObjectStore(store.root, THRESHOLD).remove_many(oids[:5])  # another process's gc
    os.utime(folder, ns=(tick, tick))  # within the same tick
    assert store.put_bytes(datas[0]) == oids[0]
    assert FsObjectStore(store.root, THRESHOLD).get(oids[0]) == datas[0]


@pytest.mark.parametrize("size", [0, 5, 27])
def test_a_pack_file_too_short_to_hold_its_footer_is_bad_not_a_crash(
    store: FsObjectStore, size: int
) -> None:
    good = store.put_many(contents(20))
    (store.root / "pack" / "short.pack").write_bytes(b"SPELLPK1"[:size] + b"\0" * (size - 8))
    fresh = FsObjectStore(store.root, THRESHOLD)
    assert fresh.get(good[0]) == contents(20)[0]
    assert fresh.packs.bad == {
        "short.pack": f"corrupt pack {fresh.packs.dir}/short.pack: {size} bytes, too short"
    }


def test_unpack_with_no_pack_folder_writes_nothing(store: FsObjectStore) -> None:
    store.put_bytes(os.urandom(PACKED_MAX + 1))  # loose (a smaller one goes to the journal)
    assert store.unpack(lambda paths: pytest.fail("nothing to make durable")) == 0


def test_a_batch_goes_on_past_what_is_already_stored_loose(store: FsObjectStore) -> None:
    first = store.put_bytes(contents(20)[0])  # the batch's first is loose already
    write_loose(store)
    oids = store.put_many(contents(20))
    assert oids[0] == first and len(packs_in(store)) == 1
    fresh = FsObjectStore(store.root, THRESHOLD)
    assert [fresh.get(o) for o in oids] == contents(20)
    assert sorted(loose(store)) == [first]  # the other 19 are in the pack


def test_the_memory_store_takes_batches_too() -> None:
    from spellfs.store.memory import MemoryObjectStore

    mem = MemoryObjectStore(THRESHOLD)
    oids = mem.put_many([b"one", b"two"])
    assert [mem.get(o) for o in oids] == [b"one", b"two"]
    mem.remove_many(oids[:1])
    assert not mem.has(oids[0]) and mem.has(oids[1])


def test_iteration_skips_strays_and_links_and_lists_every_object_after_them(
    store: FsObjectStore, tmp_path: Path
) -> None:
    oids = [store.put_bytes(c) for c in contents(30)]
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / ("1" * 62)).write_text("not ours")
    free = sorted({f"{i:02x}" for i in range(256)} - {o[:2] for o in oids})
    (store.root / free[0]).write_text("a file where a fan-out folder goes")
    for fan in free[1:]:  # links all over the folder's order, before and after real fans
        (store.root / fan).symlink_to(tmp_path / "outside")
    assert list(FsObjectStore(store.root, THRESHOLD)) == sorted(oids)
