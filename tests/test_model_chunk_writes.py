"""A batch's chunks (spellfs/model/chunk_writes.py): the cycle collector pauses for a batch and
is left as it was found, whatever the batch's end."""

from __future__ import annotations

import gc
import os

import pytest

from spellfs import LimitExceeded, Workspace


@pytest.mark.parametrize("collecting", [True, False])
def test_a_store_leaves_the_cycle_collector_as_it_found_it(ws: Workspace, collecting: bool) -> None:
    sid = ws.sessions.create(name="gc")
    seen = []
    publish = ws.publish

    def during(kind: str, payload: dict) -> None:  # (an event a store announces: mid-batch)
        seen.append(gc.isenabled())
        publish(kind, payload)

    ws.publish = during  # type: ignore[method-assign]
    assert ws.events is not None  # (someone listens: a store announces each artifact)
    was = gc.isenabled()
    try:
        (gc.enable if collecting else gc.disable)()
        ws.artifacts.store_many(sid, [("t", f"a{i}.txt", b"%d" % i, None) for i in range(40)])
        assert gc.isenabled() is collecting
        with pytest.raises(LimitExceeded):  # a batch that fails: the same
            ws.artifacts.store_many(sid, [("t", f"b{i}.txt", b"x", None) for i in range(2000)])
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()
    assert seen and not any(seen)  # paused while the batch ran


def test_a_file_changed_while_it_is_stored_gets_the_copy_of_what_was_stored(
    ws: Workspace, tmp_path
) -> None:
    """A large file is streamed into the store once; a writer changes it right after. The
    files/ copy is what the record says (it used to be the file read again: a copy that
    differed from its record, later recorded as a hand edit nobody made)."""
    from spellfs.store.codec import hash_bytes

    sid = ws.sessions.create(name="chg")
    src = tmp_path / "big.bin"
    first = os.urandom(3 << 20)  # above 1 MiB: streamed, not read whole
    src.write_bytes(first)
    put_stream = ws.objects.put_stream

    def then_changed(f):  # the store has read the file: another process writes it now
        stored = put_stream(f)
        src.write_bytes(os.urandom(3 << 20))
        return stored

    ws.objects.put_stream = then_changed  # type: ignore[method-assign]
    [aid] = ws.artifacts.store_files(sid, [src], "user_input")
    assert aid["content_hash"] == hash_bytes(first)
    [d] = (ws.root / "sessions").iterdir()
    assert (d / "files" / "big.bin").read_bytes() == first
    assert ws.worktree.scan(d.name).clean
    assert ws.artifacts.get(sid, "big.bin")["content"] == first
    assert ws.artifacts.get(sid, "big.bin")["metadata"].get("created_by") != "hand"


def test_a_file_that_grows_past_the_limit_after_the_check_is_refused_by_name(
    ws: Workspace, tmp_path
) -> None:
    """The batch is checked, then a writer makes one file larger than max_artifact_size before
    it is read: the store refuses it, naming the file, its size and the limit, and stores
    nothing of the batch."""
    ws.config.set("sessions.max_artifact_size", 1000)
    sid = ws.sessions.create(name="grow")
    small, grows = tmp_path / "a.txt", tmp_path / "b.txt"
    small.write_text("a")
    grows.write_text("b")
    resolve = ws.sessions.resolve

    def then_grown(ref, **kw):  # (called once the batch was checked, before anything is read)
        grows.write_bytes(b"x" * 5000)
        return resolve(ref, **kw)

    ws.sessions.resolve = then_grown  # type: ignore[method-assign]
    with pytest.raises(LimitExceeded) as info:
        ws.artifacts.store_files(sid, [small, grows], "user_input")
    assert str(info.value) == (
        "artifact too large: b.txt is 5000 bytes; max_artifact_size is 1000 "
        "(raise sessions.max_artifact_size in spell.yaml)"
    )
    ws.sessions.resolve = resolve  # type: ignore[method-assign]
    assert ws.artifacts.list(sid) == []
