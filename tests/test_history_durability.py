"""A checkpoint flushes exactly what it names (git's core.fsync), never the whole machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import loose
from spellfs.store import flush


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    flushed: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def sync() -> None:
        flushed.append("<os.sync>")

    real_range = flush._sync_file_range()

    def writeout(fd: int, offset: int, length: int, flags: int) -> int:
        flushed.append(
            os.readlink(f"/proc/self/fd/{fd}")
        )  # written out; the next fsync is the barrier
        return real_range(fd, offset, length, flags) if real_range is not None else 0

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "sync", sync)
    monkeypatch.setattr(flush, "_sync_file_range", lambda: writeout)
    fsynced.clear()
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(len(flushed)), fsync(fd))[1])
    return flushed


fsynced: list[int] = []  # positions in the flushed list where a real fsync (a barrier) happened


def _holder(ws, oid: str) -> str:
    """The file holding object ``oid`` on disk: its loose file, else the journal or pack whose
    entries carry its id (found by reading the files, not by asking the store)."""
    path = ws.objects.path(oid)
    if path.exists():
        return str(path)
    [hit] = [p for p in _pack_dir(ws).iterdir() if bytes.fromhex(oid) in p.read_bytes()]
    return str(hit)


def _pack_dir(ws) -> Path:
    return ws.root / ".spell" / "objects" / "pack"


def _named(ws, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The object ids a save asks the store to make durable (one journal may hold objects of
    earlier checkpoints too, so its being flushed alone does not say which were named)."""
    named: list[str] = []
    real = ws.objects.durable_paths

    def durable_paths(oids):
        oids = list(oids)
        named.extend(oids)
        return real(oids)

    monkeypatch.setattr(ws.objects, "durable_paths", durable_paths)
    return named


def test_save_fsyncs_the_objects_and_records_since_the_last_checkpoint(ws, monkeypatch) -> None:
    sid = ws.sessions.create(name="s")
    dir = ws.sessions.resolve(sid)
    old = ws.artifacts.store(sid, "tool_result", "old.txt", "before the first checkpoint")
    ws.history.save(sid, "one")
    new = [ws.artifacts.store(sid, "tool_result", f"n{i}.txt", f"after {i}") for i in range(3)]
    ws.artifacts.store(sid, "tool_result", "n0.txt", "a second version")  # both versions are named
    flushed = _recording(monkeypatch)
    asked: list[list[str]] = []
    real = ws.storage.fsync
    monkeypatch.setattr(
        ws.storage, "fsync", lambda paths: (asked.append(list(paths)), real(asked[-1]))[1]
    )
    named = _named(ws, monkeypatch)
    ws.history.save(sid, "two")
    assert "<os.sync>" not in flushed  # nobody else's writes are waited for
    assert {a["content_hash"] for a in new} <= set(named)
    objects = {_holder(ws, a["content_hash"]) for a in new}
    assert objects <= set(flushed)
    assert old["content_hash"] not in named  # made durable by checkpoint one
    session = ws.root / "sessions" / dir
    records, checkpoints = str(session / "artifacts.yaml"), str(session / "checkpoints.yaml")
    cp = ws.history.checkpoints(sid)[-1]
    tree = _holder(ws, cp["tree"])
    # the tree and the records it names are on disk before the checkpoint line, which follows
    assert flushed.index(tree) < flushed.index(checkpoints)
    assert flushed.index(records) < flushed.index(checkpoints)
    for oid in {a["content_hash"] for a in new}:
        folder = str(Path(_holder(ws, oid)).parent)
        assert folder in asked[0]  # directory entries: committed by the barrier ending the batch
    assert str(_pack_dir(ws)) in asked[0]
    assert str(session) in flushed[flushed.index(checkpoints) :]
    # a barrier (a real fsync) comes after everything written out and before the checkpoint line
    assert any(flushed.index(tree) < pos <= flushed.index(checkpoints) for pos in fsynced)
    assert fsynced[-1] == len(flushed) - 1  # the very last flush is a real fsync
    assert cp["seq"] == ws.artifacts.list(sid)[-1]["sequence"]


def test_first_save_of_a_session_covers_everything_stored_before_it(ws, monkeypatch) -> None:
    sid = ws.sessions.create(name="s")
    ids = [ws.artifacts.store(sid, "tool_result", f"a{i}.txt", f"x{i}") for i in range(5)]
    flushed = _recording(monkeypatch)
    named = _named(ws, monkeypatch)
    ws.history.save(sid)
    assert {a["content_hash"] for a in ids} <= set(named)
    assert {_holder(ws, a["content_hash"]) for a in ids} <= set(flushed)
    assert "<os.sync>" not in flushed


def test_incremental_checkpoints_equal_the_live_session_after_every_kind_of_change(root) -> None:
    """Saves in one process write only what changed; each tree must still read as the whole
    session, including changes another process made in between and a restore."""
    import random

    from spellfs import Workspace

    rng = random.Random(19)
    with Workspace.open(root) as ws, Workspace.open(root) as other:
        sid = ws.sessions.create(name="s")
        expected = {}
        for round_ in range(120):
            for _ in range(rng.randint(0, 3)):
                actor = other if rng.random() < 0.3 else ws
                name = f"a{rng.randint(0, 20)}.txt"
                if rng.random() < 0.2 and actor.artifacts.list(sid):
                    victim = rng.choice(actor.artifacts.list(sid))["name"]
                    actor.artifacts.delete(sid, victim)
                else:
                    actor.artifacts.store(sid, "tool_result", name, f"{round_} {rng.random()}")
            if round_ % 17 == 16:
                ws.history.restore(
                    sid, rng.randint(1, ws.history.latest_number(ws.sessions.resolve(sid)))
                )
            number = ws.history.save(sid, f"r{round_}")
            expected[number] = {a["name"]: a["content_hash"] for a in ws.artifacts.list(sid)}
    with Workspace.open(root) as fresh:  # read every tree back from disk, no caches
        for number, table in expected.items():
            snap = fresh.history.snapshot(fresh.sessions.resolve(sid), number)
            assert {n: r["hash"] for n, r in snap.table.items()} == table, number
            tree = fresh.history.trees.tree(fresh.history.checkpoints(sid)[number - 1]["tree"])
            if (
                "table" in tree
            ):  # pages rewritten only where they changed: the same bytes as built anew
                from spellfs.history.tree import TreeStore

                rebuilt, _ = TreeStore(fresh.objects)._write_table(snap.table)
                assert rebuilt == tree["table"], number


def test_a_save_naming_many_files_flushes_the_workspace_file_system_not_the_machine(
    ws, monkeypatch
) -> None:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store_many(
        sid, [("tool_result", f"a{i}.txt", f"x{i}", None) for i in range(flush.FSYNC_MANY + 1)]
    )
    loose(ws)  # one file each (as after `spell commit`): a pack would be one file for them all
    flushed = _recording(monkeypatch)
    whole: list[str] = []
    real = flush._syncfs
    monkeypatch.setattr(flush, "_syncfs", lambda path: (whole.append(path), real(path))[1])
    ws.history.save(sid)
    assert whole == [ws.storage.base]
    assert "<os.sync>" not in flushed
    cp = ws.history.checkpoints(sid)[-1]
    assert cp["artifacts"] == flush.FSYNC_MANY + 1


def test_a_first_checkpoint_flushes_the_directory_entries_of_a_new_session(ws, monkeypatch) -> None:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "tool_result", "a.txt", "x")
    asked: list[list[str]] = []
    real = ws.storage.fsync
    monkeypatch.setattr(
        ws.storage, "fsync", lambda paths: (asked.append(list(paths)), real(asked[-1]))[1]
    )
    ws.history.save(sid)
    session = ws.root / "sessions" / ws.sessions.resolve(sid)
    # before the checkpoint line: the records, the session folder and its entry in sessions/
    assert {str(session / "artifacts.yaml"), str(session), str(ws.root / "sessions")} <= set(
        asked[0]
    )
    assert asked[1] == [str(session / "checkpoints.yaml"), str(session)]


def test_a_merged_older_record_does_not_stop_the_walk_for_newer_objects(ws, monkeypatch) -> None:
    """After a `git merge` another clone's records (lower sequence numbers) may follow this
    clone's newer ones; the objects of the newer records still need flushing."""
    from spellfs.names import now
    from spellfs.store import encode_record, parse_records

    sid = ws.sessions.create(name="s")
    dir = ws.sessions.resolve(sid)
    ws.artifacts.store(sid, "tool_result", "a.txt", "before the checkpoint")
    ws.history.save(sid)
    new = ws.artifacts.store(sid, "tool_result", "new.txt", "after the checkpoint")
    rel = f"sessions/{dir}/artifacts.yaml"
    first = next(r for _, r in parse_records(ws.storage.read(rel), rel))
    content = b"the other clone's first artifact"
    theirs = {**first, "name": "theirs.txt", "created_at": now()}
    theirs.update(hash=ws.objects.put_bytes(content), size=len(content))
    ws.storage.append(rel, encode_record(theirs))  # sequence 1 again, after sequence 2
    (ws.root / rel).parent.joinpath("files", "theirs.txt").write_bytes(content)
    flushed = _recording(monkeypatch)
    named = _named(ws, monkeypatch)
    ws.history.save(sid)
    assert new["content_hash"] in named and _holder(ws, new["content_hash"]) in flushed


def test_runs_of_up_to_255_merged_older_records_do_not_stop_the_walk(ws, monkeypatch) -> None:
    """The walk back from the end of the log stops only after 256 older records in a row (a
    cost bound): runs of 255 merged lines, before and after this clone's newer records, still
    leave every newer record's object flushed by the next checkpoint."""
    from spellfs.names import now
    from spellfs.store import encode_record, parse_records

    sid = ws.sessions.create(name="s")
    dir = ws.sessions.resolve(sid)
    rel = f"sessions/{dir}/artifacts.yaml"
    files = ws.root / "sessions" / dir / "files"
    for i in range(510):
        ws.artifacts.store(sid, "tool_result", f"o{i}.txt", f"ours {i}")
    ws.history.save(sid)  # covers sequence numbers 1..510
    first = next(r for _, r in parse_records(ws.storage.read(rel), rel))

    def merge(start: int) -> None:  # 255 records of the other clone, numbered start..start+254
        content = f"theirs from {start}".encode()
        oid = ws.objects.put_bytes(content)
        lines = []
        for seq in range(start, start + 255):
            name = f"t{seq}.txt"
            lines.append(
                encode_record(
                    {
                        **first,
                        "seq": seq,
                        "name": name,
                        "hash": oid,
                        "size": len(content),
                        "created_at": now(),
                    }
                )
            )
            (files / name).write_bytes(content)
        ws.storage.append(rel, b"".join(lines))

    a = ws.artifacts.store(sid, "tool_result", "a.txt", "newer, before the first merge")
    merge(1)
    b = ws.artifacts.store(sid, "tool_result", "b.txt", "newer, between the merges")
    merge(256)
    asked: list[list[str]] = []
    real = ws.storage.fsync
    monkeypatch.setattr(
        ws.storage, "fsync", lambda paths: (asked.append(list(paths)), real(asked[-1]))[1]
    )
    named = _named(ws, monkeypatch)
    ws.history.save(sid)
    for new in (a, b):
        assert new["content_hash"] in named and _holder(ws, new["content_hash"]) in asked[0]
