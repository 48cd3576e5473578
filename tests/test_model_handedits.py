"""What a command does with the hand edits under files/ (model/handedits.py), in-process: the
`spell export` guard and the guard of a store that races an editor. (The worktree tests drive
most of it through `spell`; these call the library, so mutation testing can see them.)"""

from __future__ import annotations

import pytest

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
