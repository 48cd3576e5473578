"""Removing a session never drops content unseen: files the hand-edit check skips, and files
written while the removal runs (red-team pass 2, D1 and D2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import run_spell
from spellfs import Workspace

SKIPPED = {  # names the working-copy check never judges, each a user's file all the same
    ".env": b"API_TOKEN=precious\n",
    "results.tmp": b"three hours of results\n",
    "model.part": b"half a download\n",
    "debug.log": b"ignored by .spellignore, still mine\n",
    "sub/notes.md": b"# in a folder under files/\n",
}


def _session_with_skipped_files(root: Path) -> tuple[str, Path]:
    (root / ".spellignore").write_text("*.log\n")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="h")
        ws.artifacts.store(sid, "t", "a.txt", "recorded\n")
        files = root / ws.sessions.get(sid)["path"] / "files"
    for name, data in SKIPPED.items():
        (files / name).parent.mkdir(exist_ok=True)
        (files / name).write_bytes(data)
    (files / "4913").write_bytes(b"")  # vim's empty probe file: nothing to lose
    return sid, files


def test_rm_refuses_over_files_it_does_not_record_and_force_keeps_each(root: Path) -> None:
    sid, files = _session_with_skipped_files(root)
    proc = run_spell("rm", "-y", sid, cwd=root)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and len(err.splitlines()) == 1, err
    assert err.startswith(
        f"Error: rm would delete files no record holds: sessions/{files.parent.name}"
    )
    for name in SKIPPED:
        assert name in err
    assert {p.relative_to(files).as_posix() for p in files.rglob("*") if p.is_file()} == {
        *SKIPPED,
        "a.txt",
        "4913",
    }
    proc = run_spell("rm", "-y", "--force", sid, cwd=root)
    assert proc.returncode == 0, proc.stderr
    kept = {
        line.split()[3]: line.split()[6]
        for line in proc.stderr.decode().splitlines()
        if line.startswith("kept the unrecorded ")
    }
    assert set(kept) == set(SKIPPED) and not files.parent.exists()
    with Workspace.open(root) as ws:
        for name, oid in kept.items():
            assert ws.objects.get(oid) == SKIPPED[name]


@pytest.mark.parametrize("force", [False, True])
def test_a_file_written_while_a_session_is_removed_is_kept(root: Path, force: bool) -> None:
    """A file that lands after the hand-edit check (another process writing into the session
    while `spell rm` runs) is kept as an object before the folder goes, never deleted unseen."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="victim")
        ws.artifacts.store(sid, "t", "a.txt", "recorded\n")
        files = root / ws.sessions.get(sid)["path"] / "files"
        check = ws.worktree.keep_as_objects

        def check_then_a_late_write(*args):
            out = check(*args)
            (files / "late.txt").write_bytes(b"written while rm ran\n")
            return out

        ws.worktree.keep_as_objects = check_then_a_late_write
        got, kept = ws.sessions.remove(sid, force, "rm")
        assert got == sid and not files.parent.exists()
        assert [name for name, _ in kept] == ["late.txt"]
        assert ws.objects.get(kept[0][1]) == b"written while rm ran\n"
        assert not list((root / ".spell" / "tmp").glob("removed-*"))  # nothing left aside


def test_files_now_lists_regular_files_at_every_depth_never_through_a_link(tmp_path: Path) -> None:
    from spellfs.model.leftovers import files_now

    base = tmp_path / "files"
    (base / "sub" / "deeper").mkdir(parents=True)
    (base / "a.txt").write_text("a")
    (base / "sub" / "b.txt").write_text("bb")
    (base / "sub" / "deeper" / "c.txt").write_text("ccc")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("not ours")
    (base / "linked").symlink_to(elsewhere)  # a link to a folder: never followed
    (base / "file-link").symlink_to(base / "a.txt")  # a link to a file: not a regular file
    got = files_now(str(base))
    assert sorted(got) == ["a.txt", "sub/b.txt", "sub/deeper/c.txt"]
    st = os.stat(base / "sub" / "deeper" / "c.txt")
    assert got["sub/deeper/c.txt"] == (st.st_ino, 3, st.st_mtime_ns, st.st_ctime_ns)
    assert files_now(str(tmp_path / "absent")) == {}


def test_files_now_stops_at_its_depth_limit(tmp_path: Path) -> None:
    from spellfs.model import leftovers

    base = tmp_path / "files"
    deep = base.joinpath(*["d"] * (leftovers._DEPTH + 1))
    deep.mkdir(parents=True)
    (deep.parent / "at-the-limit.txt").write_text("x")
    (deep / "below-it.txt").write_text("y")
    names = list(leftovers.files_now(str(base)))
    assert names == ["/".join(["d"] * leftovers._DEPTH) + "/at-the-limit.txt"]


def test_unjudged_and_unrecorded_say_which_files_hold_content_no_record_has(
    tmp_path: Path,
) -> None:
    from spellfs.model.leftovers import unjudged, unrecorded
    from spellfs.store import hash_bytes

    base = tmp_path / "files"
    (base / "sub").mkdir(parents=True)
    for name, data in {
        "a.txt": b"recorded",
        ".env": b"mine",
        "empty.tmp": b"",
        "sub/a.txt": b"recorded",
        "sub/n.md": b"mine too",
    }.items():
        (base / name).write_bytes(data)
    files = {name: () for name in ("a.txt", ".env", "empty.tmp", "sub/a.txt", "sub/n.md")}
    assert unjudged(files, {"a.txt", ".env"}) == ["empty.tmp", "sub/a.txt", "sub/n.md"]
    names = [".env", "empty.tmp", "gone.txt", "sub/a.txt", "sub/n.md"]
    # the recorded content is not unrecorded wherever it lies; an empty file holds nothing to
    # lose; a file gone meanwhile is skipped
    assert unrecorded(str(base), names, {hash_bytes(b"recorded")}) == [".env", "sub/n.md"]


def test_keep_new_keeps_what_appeared_or_changed_since_the_listing(root: Path) -> None:
    from spellfs.model.leftovers import files_now, keep_new
    from spellfs.store import hash_bytes

    base = root / "files"
    base.mkdir()
    (base / "same.txt").write_text("unchanged")
    (base / "edited.txt").write_text("before")
    before = files_now(str(base))
    (base / "edited.txt").write_text("after, longer")
    (base / "new.txt").write_text("new")
    (base / "recorded.txt").write_text("recorded")
    (base / "empty.txt").write_text("")
    with Workspace.open(root) as ws:
        kept = keep_new(ws, str(base), before, {hash_bytes(b"recorded")})
        assert [name for name, _ in kept] == ["edited.txt", "new.txt"]
        assert [ws.objects.get(oid) for _, oid in kept] == [b"after, longer", b"new"]


def test_not_files_names_each_folder_link_and_special_file_in_files_by_name(
    tmp_path: Path,
) -> None:
    """What `spell status` says is never recorded (an artifact is a plain file), in-process: each
    folder, link (to a file too: a link is not followed), FIFO, and file whose name no artifact
    may have (it used to go unsaid) directly in ``files/``, by
    name and kind, in name order; plain files are left out, and a session without ``files/``
    (or with a file in its place) has nothing to say."""
    from spellfs.model import not_files

    files = tmp_path / "files"
    files.mkdir()
    for name in ("m.txt", "a.txt", "z.md"):
        (files / name).write_text(name)
    (files / "notes").mkdir()
    (files / "notes" / "deep.md").write_text("in a folder: only the folder is named")
    (files / "b-link.txt").symlink_to(files / "a.txt")
    (files / "y-dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(files / "c-pipe")
    (files / "d\x1bname").write_text("a file no artifact can be: said too")
    (files / "e\\x").write_text("a backslash: the same")
    (files / ".hidden").write_text("a dot file: left alone, as editors' files are")
    assert not_files(str(files)) == [
        {"name": "b-link.txt", "kind": "a symbolic link"},
        {"name": "c-pipe", "kind": "a FIFO"},
        {"name": "d\x1bname", "kind": "a name no artifact may have"},
        {"name": "e\\x", "kind": "a name no artifact may have"},
        {"name": "notes", "kind": "a folder"},
        {"name": "y-dangling", "kind": "a symbolic link"},
    ]
    assert not_files(str(tmp_path / "none")) == []
    assert not_files(str(files / "a.txt")) == []
