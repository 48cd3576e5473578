"""Session changes in-process: removing a session (`Sessions.remove`/`delete`) never drops
content unseen (red-team pass 2, D1 and D2). `spell rm`'s tests in test_model_leftovers.py run
the command; these call the library, so a change to it is noticed in this process too."""

from __future__ import annotations

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
