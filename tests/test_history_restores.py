"""Restore and fork (history/restores.py) in-process: what a restore refuses over, what its
``--force`` keeps and where, how an interrupted or raced restore leaves the copies, and the
names forks get. (test_history_checkpoints.py holds the older restore and fork tests; the
same guards through `spell` are in test_model_worktree.py.)"""

from __future__ import annotations

import pytest

from conftest import loose
from spellfs import SessionNotActive, UnrecordedChanges, Workspace
from spellfs.history.restores import Restores
from spellfs.names import MAX_DISPLAY_NAME


def _dir(ws, sid):
    return ws.sessions.resolve(sid)


def _refusal(call, *args, **kwargs) -> str:
    with pytest.raises(UnrecordedChanges) as info:
        call(*args, **kwargs)
    return str(info.value)


def _kept_message(sid: str) -> str:
    return (
        f"(checkpoint them with `spell save {sid[:8]}` first, or pass --force: a checkpoint "
        "keeps them first, then it goes on)"
    )


# -- unsaved session.yaml and state.yaml (red-team F4) ------------------------------------
def test_restore_names_each_unsaved_field_and_state_key_and_changes_nothing(ws):
    sid = ws.sessions.create(name="f4", description="", metadata={"m": 1})
    dir = _dir(ws, sid)
    for k, v in (("same", "kept"), ("changed", 1), ("dropped", True)):
        ws.state.set(f"session:{sid}:{k}", v)
    ws.artifacts.store(sid, "t", "a.txt", "one")
    assert ws.history.save(sid, "one") == 1
    ws.sessions.set_manifest_fields(dir, description="written by hand")
    ws.sessions.update_metadata(sid, {"note": "important"})
    ws.state.set(f"session:{sid}:changed", 2)
    ws.state.delete(f"session:{sid}:dropped")
    ws.state.set(f"session:{sid}:added", "new")
    expected = (
        f"restore would discard unsaved changes: since checkpoint 1: "
        f"sessions/{dir}/session.yaml (description, metadata edited); "
        f"sessions/{dir}/state.yaml (added, changed, dropped) {_kept_message(sid)}"
    )
    assert _refusal(ws.history.restore, sid, 1) == expected
    assert _refusal(ws.history.load, sid) == expected.replace("restore would", "load would")
    # nothing was written: no checkpoint, the edits and values as they were
    assert [c["number"] for c in ws.history.checkpoints(sid)] == [1]
    assert ws.sessions.get(sid)["description"] == "written by hand"
    assert ws.state.session_values(sid) == {"same": "kept", "changed": 2, "added": "new"}


def test_only_state_or_only_the_manifest_unsaved_is_named_alone(ws):
    sid = ws.sessions.create(name="one side")
    dir = _dir(ws, sid)
    ws.state.set(f"session:{sid}:k", "v")
    ws.history.save(sid)
    ws.state.set(f"session:{sid}:k", "w")  # the manifest is the checkpoint's
    assert _refusal(ws.history.restore, sid, 1) == (
        f"restore would discard unsaved changes: since checkpoint 1: "
        f"sessions/{dir}/state.yaml (k) {_kept_message(sid)}"
    )
    ws.state.set(f"session:{sid}:k", "v")
    ws.sessions.set_manifest_fields(dir, tags=["by hand"])  # the state is the checkpoint's
    assert _refusal(ws.history.restore, sid, 1) == (
        f"restore would discard unsaved changes: since checkpoint 1: "
        f"sessions/{dir}/session.yaml (tags edited) {_kept_message(sid)}"
    )


def test_more_than_five_unsaved_state_keys_are_counted(ws):
    sid = ws.sessions.create(name="many")
    dir = _dir(ws, sid)
    ws.history.save(sid)
    for k in "abcdefg":
        ws.state.set(f"session:{sid}:{k}", k)
    assert f"sessions/{dir}/state.yaml (a, b, c, d, e and 2 more) (" in _refusal(
        ws.history.restore, sid, 1
    )
    ws.state.delete(f"session:{sid}:g")
    assert f"sessions/{dir}/state.yaml (a, b, c, d, e and 1 more) (" in _refusal(
        ws.history.restore, sid, 1
    )
    ws.state.delete(f"session:{sid}:f")
    assert f"sessions/{dir}/state.yaml (a, b, c, d, e) (" in _refusal(ws.history.restore, sid, 1)


def test_a_value_changed_only_in_its_type_is_unsaved_too(ws):
    """`State.set(k, true)` over a checkpointed 1 (Python's == says they are equal; the
    checkpoint's JSON does not): the restore refused nothing and wrote 1 back over true."""
    sid = ws.sessions.create(name="typed", metadata={"flag": 1})
    dir = _dir(ws, sid)
    ws.state.set(f"session:{sid}:n", 1)
    ws.history.save(sid)
    ws.state.set(f"session:{sid}:n", True)
    assert _refusal(ws.history.restore, sid, 1) == (
        f"restore would discard unsaved changes: since checkpoint 1: "
        f"sessions/{dir}/state.yaml (n) {_kept_message(sid)}"
    )
    ws.state.set(f"session:{sid}:n", 1)
    ws.sessions.update_metadata(sid, {"flag": True})
    assert _refusal(ws.history.restore, sid, 1) == (
        f"restore would discard unsaved changes: since checkpoint 1: "
        f"sessions/{dir}/session.yaml (metadata edited) {_kept_message(sid)}"
    )
    assert ws.history.restore(sid, 1, force=True)["saved"] == 2
    assert ws.history.snapshot(dir, 2).manifest["metadata"] == {"flag": True}
    assert ws.history.snapshot(dir, 2).state == {"n": 1}


def test_a_hand_edit_json_cannot_hold_is_named_not_a_traceback(ws):
    """session.yaml edited to hold keys 1 and "b" (no JSON form: the types cannot be sorted):
    the refusal still names it."""
    sid = ws.sessions.create(name="odd keys")
    dir = _dir(ws, sid)
    ws.history.save(sid)
    path = ws.root / "sessions" / dir / "session.yaml"
    path.write_text(path.read_text().replace("metadata: {}", "metadata: {1: a, b: c}"))
    with Workspace.open(ws.root) as again:
        assert _refusal(again.history.restore, sid, 1) == (
            f"restore would discard unsaved changes: since checkpoint 1: "
            f"sessions/{dir}/session.yaml (metadata edited) {_kept_message(sid)}"
        )


def test_what_any_checkpoint_holds_is_not_unsaved(ws):
    sid = ws.sessions.create(name="older")
    ws.state.set(f"session:{sid}:k", "first")
    ws.history.save(sid)
    ws.state.set(f"session:{sid}:k", "second")
    ws.history.save(sid)
    ws.history.restore(sid, 1)
    ws.history.restore(sid, 2)  # the session is checkpoint 1 again: nothing to keep
    assert ws.state.session_values(sid) == {"k": "second"}
    assert [c["number"] for c in ws.history.checkpoints(sid)] == [1, 2]


def test_an_unreadable_latest_checkpoint_does_not_hide_unsaved_state(ws):
    """The unreadable newest checkpoint is passed over (fsck reports it): the changes are
    named against the newest one that reads, and the restore still refuses."""
    sid = ws.sessions.create(name="torn")
    dir = _dir(ws, sid)
    ws.state.set(f"session:{sid}:k", 1)
    ws.history.save(sid)
    ws.state.set(f"session:{sid}:k", 2)
    ws.history.save(sid)
    loose(ws)
    ws.objects.path(ws.history.checkpoints(sid)[-1]["tree"]).unlink()
    ws.state.set(f"session:{sid}:k", 3)
    with Workspace.open(ws.root) as again:  # (no tree read before)
        assert _refusal(again.history.restore, sid, 1) == (
            f"restore would discard unsaved changes: since checkpoint 1: "
            f"sessions/{dir}/state.yaml (k) {_kept_message(sid)}"
        )
        assert again.state.session_values(sid) == {"k": 3}


@pytest.mark.parametrize("doing", ["restore", "load"])
def test_force_keeps_unsaved_values_in_a_checkpoint_first(ws, doing):
    sid = ws.sessions.create(name="force", description="first")
    dir = _dir(ws, sid)
    ws.state.set(f"session:{sid}:k", "saved")
    ws.history.save(sid, "one")
    ws.sessions.set_manifest_fields(dir, description="by hand")
    ws.state.set(f"session:{sid}:k", "precious")
    if doing == "load":
        ws.history.load(sid, force=True)
    else:
        assert ws.history.restore(sid, 1, force=True)["saved"] == 2
    assert [(c["number"], c["message"]) for c in ws.history.checkpoints(sid)] == [
        (1, "one"),
        (2, f"kept by {doing}"),
    ]
    kept = ws.history.snapshot(dir, 2)
    assert kept.manifest["description"] == "by hand" and kept.state == {"k": "precious"}
    assert ws.sessions.get(sid)["description"] == "first"
    assert ws.state.session_values(sid) == {"k": "saved"}
    assert ws.history.restore(sid, 1)["saved"] is None  # nothing unsaved now


def test_force_on_a_finished_session_keeps_it_read_only(ws):
    """The kept checkpoint of a completed session is written as a store of the session being
    closed would be; the session takes no store after it."""
    sid = ws.sessions.create(name="done")
    ws.artifacts.store(sid, "t", "a.txt", "one")
    ws.sessions.complete(sid)
    ws.history.save(sid)  # the checkpoint holds status "completed"
    ws.state.set(f"session:{sid}:late", "value")
    copy = ws.root / "sessions" / _dir(ws, sid) / "files" / "a.txt"
    copy.unlink()  # the kept checkpoint records the deletion: a store of a finished session
    assert ws.history.restore(sid, 1, force=True)["saved"] == 2
    kept = ws.history.snapshot(_dir(ws, sid), 2)
    assert kept.state == {"late": "value"} and kept.table == {}
    assert copy.read_bytes() == b"one"  # and the restore puts it back
    assert ws.sessions.get(sid)["status"] == "completed"
    with pytest.raises(SessionNotActive):
        ws.artifacts.store(sid, "t", "b.txt", "after")


# -- copies under files/ --------------------------------------------------------------------
def test_a_forced_load_keeps_hand_edits_as_versions_kept_by_load(ws):
    sid = ws.sessions.create(name="kept by")
    ws.artifacts.store(sid, "t", "a.txt", "one")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "a.txt", "two")
    path = ws.root / "sessions" / _dir(ws, sid) / "files" / "a.txt"
    path.write_bytes(b"by hand")
    assert "load would overwrite or delete unrecorded changes" in _refusal(ws.history.load, sid)
    ws.history.load(sid, force=True)
    kept = ws.artifacts.get(sid, "a.txt@3")
    assert kept["content"] == b"by hand" and kept["metadata"]["custom"] == {"kept_by": "load"}
    assert path.read_bytes() == b"one"


def test_a_hand_deleted_copy_is_put_back_only_with_force(ws):
    sid = ws.sessions.create(name="gone")
    dir = _dir(ws, sid)
    files = ws.root / "sessions" / dir / "files"
    ws.artifacts.store(sid, "t", "a.txt", "alpha")
    ws.artifacts.store(sid, "t", "b.txt", "beta")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "b.txt", "beta two")
    ws.history.save(sid)
    (files / "a.txt").unlink()  # restoring 1 need not touch a.txt: its record is the same
    result = ws.history.restore(sid, 1)
    assert not (files / "a.txt").exists() and result["unrecorded"] == ["a.txt"]
    assert (files / "b.txt").read_bytes() == b"beta"
    result = ws.history.restore(sid, 1, force=True)
    assert (files / "a.txt").read_bytes() == b"alpha"
    assert (result["added"], result["changed"], result["removed"]) == (0, 0, 0)
    assert result["unrecorded"] == [] and result["kept"] == [] and result["saved"] is None
    assert ws.worktree.scan(dir).names() == []


def test_a_hand_deleted_copy_an_editor_writes_again_during_a_forced_restore_is_left(
    ws, monkeypatch
):
    sid = ws.sessions.create(name="race")
    dir = _dir(ws, sid)
    files = ws.root / "sessions" / dir / "files"
    ws.artifacts.store(sid, "t", "a.txt", "alpha")
    ws.history.save(sid)
    (files / "a.txt").unlink()
    real = Restores._materialize

    def editor_saves_just_before(self, dir, rec, *rest):
        (files / rec["name"]).write_bytes(b"written again by hand")
        return real(self, dir, rec, *rest)

    monkeypatch.setattr(Restores, "_materialize", editor_saves_just_before)
    result = ws.history.restore(sid, 1, force=True)
    monkeypatch.undo()
    assert (files / "a.txt").read_bytes() == b"written again by hand"
    assert result["unrecorded"] == ["a.txt"]


def test_a_copy_set_back_to_recorded_content_while_a_restore_runs_is_restored(ws, monkeypatch):
    """An editor that saves content some record holds while the restore runs loses nothing:
    the copy is made what the checkpoint says (only content no record has is left)."""
    sid = ws.sessions.create(name="set back")
    files = ws.root / "sessions" / _dir(ws, sid) / "files"
    ws.artifacts.store(sid, "t", "a.txt", "one")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "a.txt", "two")
    ws.artifacts.store(sid, "t", "a.txt", "three")
    real = Restores._materialize

    def editor_saves_just_before(self, dir, rec, *rest):
        (files / "a.txt").write_bytes(b"two")  # a version the log holds
        return real(self, dir, rec, *rest)

    monkeypatch.setattr(Restores, "_materialize", editor_saves_just_before)
    result = ws.history.restore(sid, 1)
    monkeypatch.undo()
    assert (files / "a.txt").read_bytes() == b"one"
    assert result["unrecorded"] == []


def test_an_interrupted_restore_puts_its_copies_back_from_the_records(ws, monkeypatch):
    sid = ws.sessions.create(name="interrupted")
    dir = _dir(ws, sid)
    files = ws.root / "sessions" / dir / "files"
    for name in ("a.txt", "b.txt"):
        ws.artifacts.store(sid, "t", name, f"{name} one")
    ws.history.save(sid)
    for name in ("a.txt", "b.txt"):
        ws.artifacts.store(sid, "t", name, f"{name} two")

    def killed(self, dir, rec, *rest):
        raise KeyboardInterrupt

    monkeypatch.setattr(Restores, "_materialize", killed)
    with pytest.raises(KeyboardInterrupt):
        ws.history.restore(sid, 1)
    monkeypatch.undo()
    # the records landed; the copies were put back from them, never taken for hand edits
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"a.txt one"
    assert (files / "a.txt").read_bytes() == b"a.txt one"
    assert (files / "b.txt").read_bytes() == b"b.txt one"
    assert ws.worktree.scan(dir).names() == []


# -- fork -------------------------------------------------------------------------------------
def test_a_fork_of_the_latest_checkpoint_names_it_in_its_event(ws):
    sid = ws.sessions.create(name="src")
    ws.history.save(sid)
    ws.state.set(f"session:{sid}:k", "v")
    ws.history.save(sid)
    sub = ws.events.subscribe("session.forked")
    fid = ws.history.fork(sid)
    assert ws.events.receive(sub)["data"] == {
        "session_id": fid,
        "parent_session_id": sid,
        "checkpoint": 2,
    }
    assert ws.state.session_values(fid) == {"k": "v"}


def test_a_fork_of_a_long_name_is_cut_to_a_name_new_takes(ws):
    longest = ws.sessions.create(name="x" * MAX_DISPLAY_NAME)
    fork = ws.history.fork(longest)
    assert ws.sessions.get(fork)["name"] == "x" * (MAX_DISPLAY_NAME - 24) + " (fork 1)"
    again = ws.sessions.get(ws.history.fork(fork))["name"]
    assert again == "x" * (MAX_DISPLAY_NAME - 24) + " (fork 2)"  # a fork of the fork
    # a cut that ends in a space drops the space, not the start of the name
    spaced = ws.sessions.create(name=" y" + "y" * (MAX_DISPLAY_NAME - 27) + " " + "z" * 24)
    assert ws.sessions.get(ws.history.fork(spaced))["name"] == (
        " y" + "y" * (MAX_DISPLAY_NAME - 27) + " (fork 1)"
    )
