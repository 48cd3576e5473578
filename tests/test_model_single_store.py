"""A single store's short path (model/single_store.py) stores what the batch path would, in the
same order: a failure or a kill before its record append leaves no copy behind, and a file put
at the name meanwhile is kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spellfs.model.artifact_writes as artifact_writes
from spellfs import LimitExceeded, SessionNotActive, Workspace, init_workspace
from spellfs.model.inflight import pending
from conftest import before_appends


def _files(ws: Workspace, sid: str) -> Path:
    return ws.root / "sessions" / ws.sessions.resolve(sid) / "files"


def test_a_single_store_takes_the_short_path_and_a_batch_does_not(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = ws.sessions.create(name="s")
    taken: list[str] = []
    real = artifact_writes.store_one

    def spy(ws, dir, item, *rest):
        taken.append(item[0]["name"])
        return real(ws, dir, item, *rest)

    monkeypatch.setattr(artifact_writes, "store_one", spy)
    ws.artifacts.store(sid, "t", "a.txt", b"one")
    ws.artifacts.store_many(sid, [("t", "b.txt", b"b", None), ("t", "c.txt", b"c", None)])
    assert taken == ["a.txt"]
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["a.txt", "b.txt", "c.txt"]


_step = st.tuples(
    st.sampled_from(["a.txt", "b.md", "c.json", "d"]),
    st.one_of(st.binary(max_size=40), st.text(max_size=20)),
    st.sampled_from([None, {"tags": ["x"]}, {"description": "why", "k": 1}]),
    st.sampled_from(["store", "delete", "hand-edit"]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, min_size=1, max_size=8))
def test_the_short_path_stores_exactly_what_the_batch_path_stores(
    tmp_path_factory: pytest.TempPathFactory, steps: list
) -> None:
    """The same stores, deletes and hand edits in two workspaces, one with the short path and one
    without: the same records (but their times), the same copies, the same objects."""
    results = []
    for short in (True, False):
        root = tmp_path_factory.mktemp("short" if short else "batch") / "ws"
        init_workspace(root)
        with Workspace.open(root) as ws:
            ws.actor = "tester"
            if not short:
                artifact_writes.store_one = lambda *a: None  # type: ignore[assignment]
            try:
                sid = ws.sessions.create(name="s")
                for name, content, meta, op in steps:
                    if op == "delete" and ws.log(ws.sessions.resolve(sid)).refresh().is_live(name):
                        ws.artifacts.delete(sid, name, force=True)
                    elif op == "hand-edit":
                        (_files(ws, sid) / name).write_bytes(b"by hand: " + name.encode())
                    else:
                        ws.artifacts.store(sid, "tool_result", name, content, meta)
            finally:
                artifact_writes.store_one = real_store_one  # type: ignore[assignment]
            records = [
                {k: v for k, v in r.items() if k != "created_at"}
                for r in ws.log(ws.sessions.resolve(sid)).refresh().records
            ]
            files = {p.name: p.read_bytes() for p in _files(ws, sid).iterdir()}
            results.append((records, files, sorted(ws.objects)))
    assert results[0] == results[1]


real_store_one = artifact_writes.store_one


@pytest.mark.parametrize("name", ["new.txt", "a.txt"])
def test_a_single_store_failing_at_its_append_leaves_no_copy_of_its_own(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    before_appends(monkeypatch, ws, full)
    with pytest.raises(OSError):
        ws.artifacts.store(sid, "t", name, b"never recorded")
    monkeypatch.undo()
    files = _files(ws, sid)
    assert sorted(os.listdir(files)) == ["a.txt"] and (files / "a.txt").read_bytes() == b"v1"
    assert not pending(ws, ws.sessions.resolve(sid))
    assert ws.worktree.scan(ws.sessions.resolve(sid)).clean
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["a.txt"]


_KILLED = r"""
import os, signal, sys
from spellfs import Workspace
ws = Workspace.open(sys.argv[1])
real, known = ws.storage.append, ws.storage.append_known
def kill_at(data):  # the copy is written, the record not yet appended
    if b"new.txt" in data:
        os.kill(os.getpid(), signal.SIGKILL)
def append(rel, data, keep=False):
    kill_at(data)
    return real(rel, data, keep)
def append_known(rel, data, inode, size):  # (the way after a first store: a kept descriptor)
    kill_at(data)
    return known(rel, data, inode, size)
ws.storage.append, ws.storage.append_known = append, append_known
for name in sys.argv[3:]:
    ws.artifacts.store(sys.argv[2], "t", name, b"stored before")
ws.artifacts.store(sys.argv[2], "t", "new.txt", b"killed before its record")
"""


@pytest.mark.parametrize("before", [[], ["b.txt"]], ids=["first-store", "kept-descriptors"])
def test_a_single_store_killed_before_its_append_leaves_nothing_the_next_command_keeps(
    ws: Workspace, spell, before: list[str]
) -> None:
    """Killed in a process's first store (record file and list opened by path), and in a later
    one (both written through the descriptors the first kept open)."""
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
    files = _files(ws, sid)
    r = subprocess.run(
        [sys.executable, "-c", _KILLED, str(ws.root), sid, *before], capture_output=True
    )
    assert r.returncode == -9, r.stderr.decode()
    assert (files / "new.txt").read_bytes() == b"killed before its record"  # as the kill left it
    out = spell("-w", str(ws.root), "status")
    assert out.returncode == 0, out.stderr.decode()
    assert b"new.txt" not in out.stdout  # put back: never shown, nor adopted, as a hand edit
    assert sorted(os.listdir(files)) == ["a.txt", *before]
    with Workspace.open(ws.root) as again:
        assert [a["name"] for a in again.artifacts.list(sid)] == ["a.txt", *before]


def test_a_file_put_at_the_name_while_it_stores_is_kept_and_the_record_lands(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editor saving files/new.txt after the store looked (no copy) and before it writes its
    copy: the editor's file stays (status shows it), the store's record lands."""
    sid = ws.sessions.create(name="s")
    files = _files(ws, sid)
    real = ws.objects.put_bytes

    def put_bytes(content, *a, **k):
        (files / "new.txt").write_bytes(b"an editor's")
        return real(content, *a, **k)

    monkeypatch.setattr(ws.objects, "put_bytes", put_bytes)
    ws.artifacts.store(sid, "t", "new.txt", b"the store's")
    monkeypatch.undo()
    assert (files / "new.txt").read_bytes() == b"an editor's"
    assert ws.artifacts.get(sid, "new.txt")["content"] == b"the store's"
    assert list(ws.worktree.scan(ws.sessions.resolve(sid)).modified) == ["new.txt"]


def test_a_single_store_into_a_suspended_session_is_refused_and_writes_nothing(
    ws: Workspace,
) -> None:
    sid = ws.sessions.create(name="s")
    ws.sessions.suspend(sid)
    with pytest.raises(SessionNotActive, match="resume it first"):
        ws.artifacts.store(sid, "t", "new.txt", b"x")
    assert list(_files(ws, sid).iterdir()) == []


def test_a_file_stored_by_path_is_read_in_its_turn_by_the_batch_path(
    ws: Workspace, tmp_path: Path
) -> None:
    sid = ws.sessions.create(name="s")
    source = tmp_path / "notes.md"
    source.write_bytes(b"# notes\n")
    ws.artifacts.store_file(sid, source, "user_input")
    assert (_files(ws, sid) / "notes.md").read_bytes() == b"# notes\n"
    assert ws.artifacts.get(sid, "notes.md")["content"] == b"# notes\n"


def test_a_single_store_says_who_stored_it(ws: Workspace) -> None:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "t", "a.txt", b"x", by="hand")
    [record] = ws.log(ws.sessions.resolve(sid)).refresh().records
    assert record["created_by"] == "hand"


def test_at_the_artifact_limit_a_new_name_is_refused_and_a_new_version_is_not(
    ws: Workspace,
) -> None:
    ws.config.set("sessions.max_artifacts_per_session", 2)
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "t", "a.txt", b"1")
    ws.artifacts.store(sid, "t", "b.txt", b"2")
    (_files(ws, sid) / "a.txt").unlink()  # (no copy there: the short path is asked)
    with pytest.raises(LimitExceeded, match="max_artifacts_per_session is 2"):
        ws.artifacts.store(sid, "t", "c.txt", b"3")
    assert not (_files(ws, sid) / "c.txt").exists()
    ws.artifacts.delete(sid, "b.txt")
    ws.artifacts.store(sid, "t", "c.txt", b"3")  # room again
    ws.artifacts.store(sid, "t", "a.txt", b"new version")  # a live name takes no room
    assert sorted(a["name"] for a in ws.artifacts.list(sid)) == ["a.txt", "c.txt"]


def test_a_copy_is_written_up_to_the_materialize_limit_and_not_past_it(ws: Workspace) -> None:
    ws.config.set("watch.materialize_max_bytes", 10)
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "t", "at.txt", b"x" * 10)
    ws.artifacts.store(sid, "t", "past.txt", b"x" * 11)
    assert (_files(ws, sid) / "at.txt").read_bytes() == b"x" * 10
    assert not (_files(ws, sid) / "past.txt").exists()
    assert ws.artifacts.get(sid, "past.txt")["content"] == b"x" * 11
