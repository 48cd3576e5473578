"""The files are the truth (SPEC §1): hand edits under files/ are seen without the watcher,
recorded by save, and never clobbered. Real workspaces, real shell edits, the real `spell`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from spellfs import UnrecordedChanges, Workspace
from spellfs.model.statcache import RACY_NS


class Space:
    """A workspace with one session holding notes.md and data.txt, driven through `spell`."""

    def __init__(self, spell, root: Path, tmp: Path) -> None:
        self.spell, self.root = spell, root
        self.sid = self("new", "work").stdout.decode().strip()
        for name, text in (("notes.md", "# notes\n"), ("data.txt", "a\nb\nc\n")):
            (tmp / name).write_text(text)
            assert self("add", self.sid, str(tmp / name)).returncode == 0
        [d] = (root / "sessions").iterdir()
        self.files = d / "files"

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        r = self.spell("-w", str(self.root), *args)
        if ok:
            assert r.returncode == 0, r.stderr.decode()
        return r

    def status(self) -> dict:
        [s] = json.loads(self("status", "--json").stdout)["sessions"]
        return s["unrecorded"]

    def sh(self, cmd: str) -> None:
        subprocess.run(cmd, shell=True, cwd=self.files, check=True)


@pytest.fixture
def sp(spell, root: Path, tmp_path: Path) -> Space:
    return Space(spell, root, tmp_path)


def test_shell_edits_show_in_status_and_diff_without_a_watcher(sp: Space) -> None:
    assert sp.status() == {"modified": [], "added": [], "deleted": []}
    sp.sh("echo more >> notes.md")
    sp.sh("sed -i 's/b/B/' data.txt")
    sp.sh("printf 'fresh\\n' > new.txt && printf x > .hidden && printf y > new.txt~")
    assert sp.status() == {
        "modified": ["data.txt", "notes.md"],
        "added": ["new.txt"],
        "deleted": [],
    }
    text = sp("status").stdout.decode()
    assert "modified by hand, not yet recorded: data.txt, notes.md" in text
    assert "added by hand, not yet recorded: new.txt" in text
    d = sp("diff", sp.sid).stdout.decode()
    assert "not yet recorded" in d and "+more" in d and "-b\n+B" in d and "+fresh" in d
    # reading the recorded version still reads the record, as `git show` does
    assert sp("cat", sp.sid, "notes.md").stdout == b"# notes\n"
    show = json.loads(sp("show", sp.sid, "--json").stdout)
    assert show["modified_on_disk"] == ["data.txt", "notes.md"]
    assert {a["name"]: a["modified_on_disk"] for a in show["artifacts"]} == {
        "notes.md": True,
        "data.txt": True,
    }


def test_rename_over_save_and_delete_are_seen(sp: Space) -> None:
    (sp.files / ".notes.md.swp").write_text("# notes\nedited in vim\n")
    os.rename(sp.files / ".notes.md.swp", sp.files / "notes.md")
    (sp.files / "data.txt").unlink()
    assert sp.status() == {"modified": ["notes.md"], "added": [], "deleted": ["data.txt"]}


def test_save_records_what_is_on_disk_then_checkpoints(sp: Space) -> None:
    sp.sh("echo more >> notes.md && rm data.txt && echo fresh > new.txt")
    out = sp("save", sp.sid, "-m", "hand work").stdout.decode()
    assert "recorded hand changes: ~notes.md +new.txt -data.txt" in out and "checkpoint 1" in out
    assert sp.status() == {"modified": [], "added": [], "deleted": []}
    assert sp("cat", sp.sid, "notes.md").stdout == b"# notes\nmore\n"
    assert sp("cat", sp.sid, "new.txt").stdout == b"fresh\n"
    assert (
        sp("cat", sp.sid, "data.txt", ok=False).returncode == 2
    )  # deleted by hand, recorded as deleted
    with Workspace.open(sp.root) as ws:
        dir = ws.sessions.resolve(sp.sid)
        [rec] = [
            r
            for r in ws.log(dir).refresh().records
            if r["name"] == "notes.md" and r.get("version") == 2
        ]
        assert rec["type"] == "user_input" and rec["created_by"] == "hand"
    again = sp("save", sp.sid).stdout.decode()
    assert "nothing changed since checkpoint 1: no new checkpoint" in again
    assert len(json.loads(sp("log", sp.sid, "--json").stdout)) == 1


def test_restore_refuses_to_overwrite_hand_edits_and_force_keeps_them(sp: Space) -> None:
    sp("save", sp.sid)
    sp.sh("echo v2 >> notes.md")
    sp("save", sp.sid)  # checkpoint 2 holds the edit
    sp.sh("echo precious >> notes.md")
    r = sp("restore", sp.sid, "1", ok=False)
    err = r.stderr.decode()
    assert r.returncode == 1 and "notes.md" in err and "spell save" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    assert (sp.files / "notes.md").read_text() == "# notes\nv2\nprecious\n"  # untouched
    r = sp("restore", sp.sid, "1", "--force")
    assert "kept the unrecorded notes.md as notes.md@3" in r.stderr.decode()
    assert (sp.files / "notes.md").read_text() == "# notes\n"
    assert sp("cat", sp.sid, "notes.md@3").stdout == b"# notes\nv2\nprecious\n"  # nothing lost


def test_restore_of_untouched_files_goes_on_and_an_edit_it_does_not_touch_stays(sp: Space) -> None:
    sp("save", sp.sid)
    sp.sh("echo v2 >> data.txt")
    sp("save", sp.sid)
    sp.sh("echo mine >> notes.md")  # restore 1 rewrites data.txt only
    sp("restore", sp.sid, "1")
    assert (sp.files / "data.txt").read_text() == "a\nb\nc\n"
    assert (sp.files / "notes.md").read_text() == "# notes\nmine\n"
    assert sp.status()["modified"] == ["notes.md"]


def test_library_restore_and_load_guard(ws: Workspace) -> None:
    sid = ws.sessions.create(name="lib")
    ws.artifacts.store(sid, "user_input", "a.txt", b"one")
    ws.history.save(sid)
    ws.artifacts.store(sid, "user_input", "a.txt", b"two")
    ws.history.save(sid)
    path = ws.root / "sessions" / ws.sessions.resolve(sid) / "files" / "a.txt"
    path.write_bytes(b"three by hand")
    with pytest.raises(UnrecordedChanges, match="a.txt"):
        ws.history.restore(sid, 1)
    ws.history.load(sid)  # the latest checkpoint's a.txt is the live record: nothing to overwrite
    assert path.read_bytes() == b"three by hand"
    assert [a["modified_on_disk"] for a in ws.artifacts.list(sid)] == [True]
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"two"
    assert ws.history.save(sid) == 3  # records the hand edit first
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"three by hand"
    assert ws.history.save(sid) == 3
    ws.history.restore(sid, 1)
    assert path.read_bytes() == b"one"


def test_hand_edit_in_a_completed_session_is_reported_and_save_refuses(sp: Space) -> None:
    sp("complete", sp.sid)
    sp.sh("echo late >> notes.md")
    assert sp.status()["modified"] == ["notes.md"]
    r = sp("save", sp.sid, ok=False)
    assert (
        r.returncode == 1
        and "completed session" in r.stderr.decode()
        and "fork" in r.stderr.decode()
    )
    assert (sp.files / "notes.md").read_text() == "# notes\nlate\n"


def test_a_store_over_a_hand_edit_records_the_edit_first(ws: Workspace) -> None:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "tool_result", "a.txt", b"v1")
    files = ws.root / "sessions" / ws.sessions.resolve(sid) / "files"
    (files / "a.txt").write_bytes(b"a person's edit")
    (files / "b.txt").write_bytes(b"dropped in by hand")
    ws.artifacts.store_many(
        sid, [("tool_result", "a.txt", b"v2", None), ("tool_result", "b.txt", b"b", None)]
    )
    assert ws.artifacts.get(sid, "a.txt@2")["content"] == b"a person's edit"
    assert ws.artifacts.get(sid, "a.txt@2")["metadata"]["created_by"] == "hand"
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"v2"
    assert ws.artifacts.get(sid, "b.txt@1")["content"] == b"dropped in by hand"
    assert ws.artifacts.get(sid, "b.txt")["content"] == b"b"
    ws.artifacts.store(sid, "tool_result", "a.txt", b"v3")  # its own copy: no extra version
    assert [a["version"] for a in ws.artifacts.list(sid) if a["name"] == "a.txt"] == [4]


def test_rm_refuses_over_hand_edits_and_force_keeps_them_as_objects(sp: Space) -> None:
    sp.sh("echo mine >> notes.md")
    r = sp("rm", "-y", sp.sid, ok=False)
    assert r.returncode == 1 and "notes.md" in r.stderr.decode() and "--force" in r.stderr.decode()
    assert (sp.files / "notes.md").exists()
    r = sp("rm", "-y", "--force", sp.sid)
    msg = r.stderr.decode()
    assert "kept the unrecorded notes.md as object" in msg
    oid = msg.split("as object ")[1].split()[0]
    with Workspace.open(sp.root) as ws:
        assert ws.objects.get(oid) == b"# notes\nmine\n"


def _settled_session(ws: Workspace) -> tuple[str, Path]:
    """A session of 20 artifacts whose clean check has been remembered (every stat older than
    the racy window), so the next check takes the fast path."""
    sid = ws.sessions.create(name="settled")
    ws.artifacts.store_many(
        sid, [("tool_result", f"a{i:02d}.txt", f"text {i:02d}\n", None) for i in range(20)]
    )
    dir = ws.sessions.resolve(sid)
    time.sleep(0.25)  # past RACY_NS
    assert ws.worktree.scan(dir).clean
    assert ws.worktree.scan(dir).clean  # the fast path, answering clean
    return dir, ws.root / "sessions" / dir / "files"


@pytest.mark.parametrize(
    "change, expect",
    [
        ("append", {"modified": ["a03.txt"], "added": [], "deleted": []}),
        ("same size", {"modified": ["a03.txt"], "added": [], "deleted": []}),
        ("new file", {"modified": [], "added": ["b.txt"], "deleted": []}),
        ("delete", {"modified": [], "added": [], "deleted": ["a03.txt"]}),
        ("rename over", {"modified": ["a03.txt"], "added": [], "deleted": ["a04.txt"]}),
        ("copy over, mtime kept", {"modified": ["a03.txt"], "added": [], "deleted": []}),
    ],
)
def test_a_remembered_clean_check_still_sees_every_later_change(
    ws: Workspace, change: str, expect: dict
) -> None:
    dir, files = _settled_session(ws)
    p = files / "a03.txt"
    if change == "append":
        with open(p, "a") as f:
            f.write("more\n")
    elif change == "same size":
        p.write_text("TEXT 03\n")
    elif change == "new file":
        (files / "b.txt").write_text("new\n")
    elif change == "delete":
        p.unlink()
    elif change == "rename over":  # a04's bytes under a03's name: same size, other inode
        os.replace(files / "a04.txt", p)
    else:  # another inode with the old size and mtime (cp -p of other bytes, rsync -t)
        tmp = files / ".a03.txt.new"
        tmp.write_text("TEXT 03\n")
        os.utime(tmp, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns))
        os.replace(tmp, p)
    assert ws.worktree.scan(dir).as_dict() == expect
    assert ws.worktree.scan(dir).as_dict() == expect  # and again, once its result is remembered


def test_a_remembered_answer_is_dropped_when_the_records_change(ws: Workspace) -> None:
    dir, files = _settled_session(ws)
    with open(files / "a03.txt", "a") as f:
        f.write("more\n")
    time.sleep(0.25)  # the edit settles: this answer is remembered
    assert ws.worktree.scan(dir).as_dict()["modified"] == ["a03.txt"]
    assert ws.worktree.scan(dir).as_dict()["modified"] == ["a03.txt"]
    ws.worktree.record(dir)  # the records now hold the file's bytes; the file is untouched
    assert ws.worktree.scan(dir).clean


def test_a_bulk_stores_copies_are_vouched_for_without_a_read(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spellfs.model.worktree as worktree

    sid = ws.sessions.create(name="bulk")
    ws.artifacts.store_many(
        sid, [("tool_result", f"f{i:03d}.txt", f"file {i}\n", None) for i in range(100)]
    )
    dir = ws.sessions.resolve(sid)
    files = ws.root / "sessions" / dir / "files"
    reads: list[str] = []
    real = worktree.hash_path
    monkeypatch.setattr(worktree, "hash_path", lambda p, *a: reads.append(p) or real(p, *a))
    assert ws.worktree.scan(dir).clean
    assert reads == []  # the store entered its copies in the stat cache: no file was read
    for p in files.iterdir():  # each dated past the racy window before it came into view (the
        st = p.stat()  # kernel set its ctime then), so a write in the same tick still moves it
        assert st.st_mtime_ns + RACY_NS < st.st_ctime_ns
    # and a hand edit right after the store, even of the same size, is seen: the copies were
    # dated past the racy window, and the edit dates the file now
    (files / "f007.txt").write_text("FILE 7\n")
    with open(files / "f008.txt", "a") as f:
        f.write("more\n")
    assert ws.worktree.scan(dir).as_dict() == {
        "modified": ["f007.txt", "f008.txt"],
        "added": [],
        "deleted": [],
    }
    assert sorted(os.path.basename(p) for p in reads) == ["f007.txt", "f008.txt"]
    # a fresh process sees the same: the entries are in .spell/watch-cache.sqlite
    with Workspace.open(ws.root) as other:
        reads.clear()
        assert other.worktree.scan(dir).as_dict()["modified"] == ["f007.txt", "f008.txt"]
        # (only the two edits may be read again: they are younger than the racy window)
        assert {os.path.basename(p) for p in reads} <= {"f007.txt", "f008.txt"}
