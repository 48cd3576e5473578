"""What a command does with the hand edits under files/ (model/handedits.py), in-process: the
`spell export` guard and the guard of a store that races an editor. (The worktree tests drive
most of it through `spell`; these call the library, so mutation testing can see them.)"""

from __future__ import annotations

import pytest

from conftest import store_v2_while
from spellfs import UnrecordedChanges, Workspace


def _one_session(ws: Workspace) -> tuple[str, str]:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "a.txt", "recorded\n")
    return sid, ws.sessions.resolve(sid)


def test_export_guard_refuses_unrecorded_changes_naming_them_and_force_records_them(
    ws: Workspace,
) -> None:
    """`spell export` takes the session as its records say: unrecorded changes in files/ stop
    it (the first five named, then how many more), untouched and unrecorded; with --force they
    are recorded first, as `spell save` does, and the guard says what it recorded."""
    sid, dir = _one_session(ws)
    files = ws.root / "sessions" / dir / "files"
    clean = ws.worktree.record_or_refuse(dir, False, "export")
    assert clean.clean and clean.dir == dir
    (files / "a.txt").write_text("edited by hand\n")
    for i in range(6):
        (files / f"new{i}.txt").write_text(f"dropped in {i}\n")
    before = ws.storage.read(f"sessions/{dir}/artifacts.yaml")
    with pytest.raises(UnrecordedChanges) as info:
        ws.worktree.record_or_refuse(dir, False, "export")
    assert str(info.value) == (
        f"export would leave out unrecorded changes: sessions/{dir}/files/: a.txt, new0.txt, "
        f"new1.txt, new2.txt, new3.txt and 2 more (record them with `spell save {sid[:8]}` "
        "first, or pass --force: they are recorded first, then it goes on)"
    )
    assert ws.storage.read(f"sessions/{dir}/artifacts.yaml") == before
    assert (files / "a.txt").read_text() == "edited by hand\n"
    (files / "new5.txt").unlink()
    with pytest.raises(UnrecordedChanges, match=r"new3\.txt and 1 more \(record them"):
        ws.worktree.record_or_refuse(dir, False, "export")  # six
    (files / "new4.txt").unlink()
    with pytest.raises(
        UnrecordedChanges,
        match=r"files/: a\.txt, new0\.txt, new1\.txt, new2\.txt, new3\.txt \(record them",
    ):
        ws.worktree.record_or_refuse(dir, False, "export")  # five: no "and N more"
    wc = ws.worktree.record_or_refuse(dir, True, "export")
    assert sorted(wc.modified) == ["a.txt"] and sorted(wc.added) == [
        f"new{i}.txt" for i in range(4)
    ]
    kept = ws.artifacts.get(sid, "a.txt@2")
    assert kept["content"] == b"edited by hand\n" and kept["metadata"]["created_by"] == "hand"
    assert ws.artifacts.get(sid, "new3.txt")["content"] == b"dropped in 3\n"
    assert ws.worktree.scan(dir).clean
    assert ws.worktree.record_or_refuse(dir, False, "export").clean


def _three(ws: Workspace):
    sid = ws.sessions.create(name="race")
    ws.artifacts.store_many(sid, [("t", f"f{i}.txt", f"v1 {i}", None) for i in range(3)])
    return sid, ws.root / "sessions" / ws.sessions.resolve(sid) / "files"


def test_a_link_put_in_place_of_a_copy_while_a_store_runs_is_replaced_not_followed(
    ws: Workspace, monkeypatch, tmp_path
) -> None:
    """Only a regular file can be an edit to keep: a symbolic link someone puts at a copy's
    place mid-store is replaced by the store's copy; the file it points to is not read as the
    copy's content, nor written."""
    sid, files = _three(ws)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not the session's")

    def link_in() -> None:
        (files / "f1.txt").unlink()
        (files / "f1.txt").symlink_to(outside)

    store_v2_while(ws, sid, monkeypatch, link_in)
    assert not (files / "f1.txt").is_symlink()
    assert (files / "f1.txt").read_bytes() == b"v2 1"
    assert outside.read_bytes() == b"not the session's"
    assert ws.worktree.scan(ws.sessions.resolve(sid)).clean


def test_a_copy_still_being_written_while_a_store_runs_is_left_to_its_writer(
    ws: Workspace, monkeypatch
) -> None:
    """A copy whose hash cannot be taken because it changes while read (an editor's save in
    progress) is not the store's to replace: it stays as its writer leaves it; the record
    still lands, and `status` shows the copy as modified."""
    from spellfs.model import handedits

    sid, files = _three(ws)
    real = handedits.hash_path
    writing = str(files / "f1.txt")

    def an_editor_starts_saving() -> None:
        (files / "f1.txt").write_bytes(b"half of a save")
        monkeypatch.setattr(
            handedits, "hash_path", lambda p, *a: None if p == writing else real(p, *a)
        )

    store_v2_while(ws, sid, monkeypatch, an_editor_starts_saving)
    assert (files / "f1.txt").read_bytes() == b"half of a save"
    assert (files / "f0.txt").read_bytes() == b"v2 0"
    assert ws.artifacts.get(sid, "f1.txt")["content"] == b"v2 1"
    assert set(ws.worktree.scan(ws.sessions.resolve(sid)).modified) == {"f1.txt"}


_SAID = {"description": "the plan", "tags": ["draft", "q3"], "owner": "ana", "custom": {"n": 2}}


def _said(ws: Workspace, sid: str, name: str) -> dict:
    m = ws.artifacts.get(sid, name)["metadata"]
    return {k: m.get(k) for k in ("description", "tags", "custom", "created_by")}


def test_a_hand_edits_version_keeps_what_the_artifact_was_said_to_be(ws: Workspace) -> None:
    """`spell save` records a hand edit as a new version: the content is the person's, the
    description, tags and custom metadata go on from the version before (rt2 M2); a file
    dropped in has none, and a name deleted and made again starts afresh."""
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "agent_output", "plan.md", "v1\n", _SAID)
    ws.artifacts.store(sid, "agent_output", "gone.md", "v1\n", _SAID)
    ws.artifacts.delete(sid, "gone.md")
    files = ws.root / "sessions" / ws.sessions.resolve(sid) / "files"
    (files / "plan.md").write_text("v2, by hand\n")
    (files / "gone.md").write_text("again\n")
    (files / "new.md").write_text("dropped in\n")
    ws.worktree.record(ws.sessions.resolve(sid))
    assert ws.artifacts.get(sid, "plan.md")["content"] == b"v2, by hand\n"
    said = {"description": "the plan", "tags": ["draft", "q3"], "custom": {"n": 2, "owner": "ana"}}
    assert _said(ws, sid, "plan.md") == {**said, "created_by": "hand"}
    assert _said(ws, sid, "plan.md@1") == {**said, "created_by": ws.actor}
    empty = {"description": "", "tags": [], "custom": {}, "created_by": "hand"}
    assert _said(ws, sid, "new.md") == empty
    assert _said(ws, sid, "gone.md") == empty


def test_content_kept_before_an_overwrite_keeps_what_it_was_said_to_be(ws: Workspace) -> None:
    """--force over a hand edit keeps it as a version first: that version says why it was
    kept, and keeps the artifact's description, tags and custom metadata."""
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "agent_output", "plan.md", "v1\n", _SAID)
    dir = ws.sessions.resolve(sid)
    (ws.root / "sessions" / dir / "files" / "plan.md").write_text("by hand\n")
    assert ws.worktree.guard(dir, ["plan.md"], True, "restore") == ["plan.md@2"]
    assert _said(ws, sid, "plan.md@2") == {
        "description": "the plan",
        "tags": ["draft", "q3"],
        "custom": {"n": 2, "owner": "ana", "kept_by": "restore"},
        "created_by": "hand",
    }
