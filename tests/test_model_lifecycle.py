"""Session changes in-process: removing a session (`Sessions.remove`/`delete`) never drops
content unseen (red-team pass 2, D1 and D2). `spell rm`'s tests in test_model_leftovers.py run
the command; these call the library, so a change to it is noticed in this process too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spellfs import Workspace
from spellfs.errors import UnrecordedChanges

UNRECORDED = {  # names the hand-edit check never judges, each a user's file all the same
    ".env": b"API_TOKEN=precious\n",
    "results.tmp": b"three hours of results\n",
    "debug.log": b"ignored by .spellignore, still mine\n",
    "sub/notes.md": b"# in a folder under files/\n",
}


def _session(root: Path) -> tuple[str, str, Path]:
    """A session with one recorded artifact, the files above, an empty file (nothing to lose)
    and a dot file holding a recorded version's bytes (nothing to lose either)."""
    (root / ".spellignore").write_text("*.log\n")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="h")
        ws.artifacts.store(sid, "t", "a.txt", "first\n")
        ws.artifacts.store(sid, "t", "a.txt", "recorded\n")
        path = ws.sessions.get(sid)["path"]
    files = root / path / "files"
    for name, data in UNRECORDED.items():
        (files / name).parent.mkdir(exist_ok=True)
        (files / name).write_bytes(data)
    (files / "4913").write_bytes(b"")  # vim's probe file
    (files / ".a.txt.orig").write_bytes(b"first\n")  # an older recorded version
    return sid, path.split("/")[-1], files


def _on_disk(files: Path) -> dict[str, bytes]:
    return {
        p.relative_to(files).as_posix(): p.read_bytes() for p in files.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("doing", ["delete", "rm"])
def test_remove_refuses_over_files_no_record_holds_naming_each_and_deletes_nothing(
    root: Path, doing: str
) -> None:
    sid, dir, files = _session(root)
    before = _on_disk(files)
    with Workspace.open(root) as ws:
        with pytest.raises(UnrecordedChanges) as err:
            if doing == "delete":
                ws.sessions.delete(sid)
            else:
                ws.sessions.remove(sid, False, doing)
        assert str(err.value) == (
            f"{doing} would delete files no record holds: sessions/{dir}/files/: "
            ".env, debug.log, results.tmp, sub/notes.md (spellfs records none of them: move "
            "them out of the session, or pass --force: they are kept as objects first)"
        )
        assert ws.sessions.get(sid)["id"] == sid
    assert _on_disk(files) == before
    assert not list((root / ".spell" / "tmp").glob("removed-*"))


def test_remove_with_force_keeps_each_unrecorded_file_as_an_object_first(root: Path) -> None:
    sid, dir, files = _session(root)
    with Workspace.open(root) as ws:
        got, kept = ws.sessions.remove(sid, True, "rm")
        assert got == sid and not files.parent.exists()
        assert [name for name, _ in kept] == sorted(UNRECORDED)
        assert {name: ws.objects.get(oid) for name, oid in kept} == UNRECORDED
        assert sid not in [s["id"] for s in ws.sessions.list()]
    assert not list((root / ".spell" / "tmp").glob("removed-*"))


def test_remove_by_default_refuses_as_delete(root: Path) -> None:
    sid, dir, files = _session(root)
    with Workspace.open(root) as ws:
        with pytest.raises(UnrecordedChanges, match=r"^delete would delete files no record"):
            ws.sessions.remove(sid)
    assert files.is_dir()


def test_remove_over_a_hand_edited_artifact_refuses_by_the_command_and_force_keeps_it(
    root: Path,
) -> None:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="edited")
        ws.artifacts.store(sid, "t", "a.txt", "recorded\n")
        path = ws.sessions.get(sid)["path"]
    files = root / path / "files"
    (files / "a.txt").write_bytes(b"edited by hand\n")
    with Workspace.open(root) as ws:
        with pytest.raises(UnrecordedChanges) as err:
            ws.sessions.remove(sid, False, "rm")
        assert str(err.value).startswith(
            f"rm would overwrite or delete unrecorded changes: {path}/files/: a.txt "
        )
        assert (files / "a.txt").read_bytes() == b"edited by hand\n"
        got, kept = ws.sessions.remove(sid, True, "rm")
        assert got == sid and not files.parent.exists()
        assert [(name, ws.objects.get(oid)) for name, oid in kept] == [
            ("a.txt", b"edited by hand\n")
        ]


def test_a_write_after_the_last_look_fails_rather_than_being_deleted_unseen(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder is renamed aside before the late files are kept: a writer that comes after
    that finds no folder (its write fails, so it knows) instead of writing into one about to go."""
    import spellfs.model.lifecycle as lifecycle

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="victim")
        ws.artifacts.store(sid, "t", "a.txt", "recorded\n")
        files = root / ws.sessions.get(sid)["path"] / "files"
        keep_new = lifecycle.keep_new
        writes = []

        def keep_then_a_late_write(*args):
            out = keep_new(*args)
            try:
                (files / "later.txt").write_bytes(b"written after the last look\n")
                writes.append("written")
            except FileNotFoundError:
                writes.append("refused")
            return out

        monkeypatch.setattr(lifecycle, "keep_new", keep_then_a_late_write)
        got, kept = ws.sessions.remove(sid, False, "rm")
        assert got == sid and kept == [] and not files.parent.exists()
        assert writes == ["refused"]
    assert not list((root / ".spell" / "tmp").glob("removed-*"))


def test_a_session_that_cannot_be_renamed_aside_is_removed_in_place_keeping_late_files(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sessions/ on another file system than .spell/ (the rename fails with EXDEV): removed where
    it is, what was written since the look kept all the same."""
    import errno

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="elsewhere")
        ws.artifacts.store(sid, "t", "a.txt", "recorded\n")
        files = root / ws.sessions.get(sid)["path"] / "files"
        check = ws.worktree.keep_as_objects

        def check_then_a_late_write(*args):
            out = check(*args)
            (files / "late.txt").write_bytes(b"written while rm ran\n")
            return out

        rename = os.rename

        def no_rename(src, dst):  # (only the session's folder: other renames go on)
            if os.path.samefile(src, files.parent):
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            rename(src, dst)

        ws.worktree.keep_as_objects = check_then_a_late_write
        monkeypatch.setattr(os, "rename", no_rename)
        got, kept = ws.sessions.remove(sid, False, "rm")
        monkeypatch.undo()
        assert got == sid and not files.parent.exists()
        assert [(name, ws.objects.get(oid)) for name, oid in kept] == [
            ("late.txt", b"written while rm ran\n")
        ]


def test_removing_a_session_of_a_memory_workspace_writes_nothing_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = Workspace.in_memory()
    sid = ws.sessions.create(name="m")
    ws.artifacts.store(sid, "t", "a.txt", "recorded\n")
    got, kept = ws.sessions.remove(sid, False, "rm")
    assert got == sid and kept == [] and ws.sessions.list() == []
    assert list(tmp_path.iterdir()) == []
