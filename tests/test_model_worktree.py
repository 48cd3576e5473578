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


def test_status_names_folders_and_links_in_files_which_are_never_recorded(sp: Space) -> None:
    """An artifact is a plain file: a folder dropped into files/ or a link there is never
    recorded. `spell status` says so, by name and kind, rather than leave it unexplained
    (red-team 1, M6); the artifacts beside them are shown as before."""
    sp.sh("mkdir -p notes/old && echo x > notes/old/a.md && ln -s /etc/hostname host.txt")
    [s] = json.loads(sp("status", "--json").stdout)["sessions"]
    assert s["not_files"] == [
        {"name": "host.txt", "kind": "a symbolic link", "recorded": False},
        {"name": "notes", "kind": "a folder", "recorded": False},
    ]
    assert s["unrecorded"] == {"modified": [], "added": [], "deleted": []}
    text = sp("status").stdout.decode()
    assert (
        "  never recorded (an artifact is a plain file): host.txt (a symbolic link), "
        "notes (a folder)\n" in text
    )
    sp.sh("rm -r notes host.txt")
    [s] = json.loads(sp("status", "--json").stdout)["sessions"]
    assert s["not_files"] == [] and "never recorded" not in sp("status").stdout.decode()


def test_status_names_a_recorded_copy_replaced_by_a_link_and_a_name_with_a_newline(
    sp: Space,
) -> None:
    """red-team 3, S1 S2: a recorded artifact's copy swapped for a link is not "never
    recorded" (its record stands, and the status says how to get the copy back); a name
    holding a newline is shown escaped, on one line."""
    sp.sh("rm notes.md && ln -s /etc/hostname notes.md && ln -s x \"$(printf 'nl\\nname')\"")
    [s] = json.loads(sp("status", "--json").stdout)["sessions"]
    assert s["not_files"] == [
        {"name": "nl\nname", "kind": "a symbolic link", "recorded": False},
        {"name": "notes.md", "kind": "a symbolic link", "recorded": True},
    ]
    text = sp("status").stdout.decode()
    assert "  never recorded (an artifact is a plain file): nl\\x0aname (a symbolic link)\n" in text
    assert (
        "  a recorded artifact's copy replaced by what spellfs cannot record (the record is "
        "kept: remove it, and `spell restore SESSION N --force` writes the copy back): notes.md "
        "(a symbolic link)\n" in text
    )
    sp("save", sp.sid)
    sp.sh("rm notes.md")
    sp("restore", sp.sid, "1", "--force")
    assert (sp.files / "notes.md").read_text() == "# notes\n"


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


def test_restore_refuses_over_unsaved_manifest_and_state_and_force_checkpoints_them(
    sp: Space,
) -> None:
    """Red-team F4: restore dropped session.yaml and state.yaml edits made since the last
    checkpoint, with no copy anywhere."""
    sp("save", sp.sid, "-m", "one")
    d = sp.files.parent
    manifest = (d / "session.yaml").read_text()
    assert "description: ''" in manifest
    (d / "session.yaml").write_text(
        manifest.replace("description: ''", "description: 'important hand-written notes'")
    )
    (d / "state.yaml").write_text('summary: "two hours of notes"\n')
    r = sp("restore", sp.sid, "1", ok=False)
    err = r.stderr.decode()
    assert r.returncode == 1 and len(err.strip().splitlines()) == 1, err
    assert (
        f"restore would discard unsaved changes: since checkpoint 1: sessions/{d.name}/"
        "session.yaml (description edited); "
        f"sessions/{d.name}/state.yaml (summary) (checkpoint them with `spell save" in err
    )
    assert "--force" in err
    assert "important hand-written notes" in (d / "session.yaml").read_text()  # untouched
    assert "two hours" in (d / "state.yaml").read_text()
    r = sp("restore", sp.sid, "1", "--force")
    assert "kept the unsaved session.yaml and state.yaml as checkpoint 2" in r.stderr.decode()
    assert "important" not in (d / "session.yaml").read_text()
    assert "two hours" not in (d / "state.yaml").read_text()
    log = json.loads(sp("log", sp.sid, "--json").stdout)
    assert [(c["number"], c["message"]) for c in log] == [(1, "one"), (2, "kept by restore")]
    sp("restore", sp.sid, "2")  # the session is checkpoint 1 again: nothing unsaved to refuse
    assert "important hand-written notes" in (d / "session.yaml").read_text()
    assert "two hours of notes" in (d / "state.yaml").read_text()


def test_a_hand_edit_restore_leaves_is_named_and_force_restores_over_it(sp: Space) -> None:
    """Red-team M14: with only a hand edit differing, restore said +0 ~0 -0 and left it, even
    with --force."""
    sp("save", sp.sid)
    sp.sh("echo mine >> notes.md && rm data.txt")
    r = sp("restore", sp.sid, "1")
    assert "left as they are, not yet recorded: data.txt, notes.md" in r.stderr.decode()
    assert (sp.files / "notes.md").read_text() == "# notes\nmine\n"
    r = sp("restore", sp.sid, "1", "--force")
    assert "kept the unrecorded notes.md as notes.md@2" in r.stderr.decode()
    assert "~1" in r.stdout.decode()
    assert (sp.files / "notes.md").read_text() == "# notes\n"
    assert (sp.files / "data.txt").read_text() == "a\nb\nc\n"  # put back from its record
    assert sp.status() == {"modified": [], "added": [], "deleted": []}
    assert sp("cat", sp.sid, "notes.md@2").stdout == b"# notes\nmine\n"


LUA_LOAD = b"""
local s = Session.create({name = "l"})
Session.save(s, "empty")
State.set("session:" .. s .. ":result", "expensive model output")
Session.update_metadata(s, {note = "important"})
Session.suspend(s)
local ok, err = pcall(Session.load, s)
print(ok, err)
ok, err = pcall(Session.restore, s, 1)
print(ok, err)
print(State.get("session:" .. s .. ":result"), Session.get(s).custom_metadata.note)
assert(Session.save(s, "kept") == 2)
Session.load(s)
print(Session.get(s).status, State.get("session:" .. s .. ":result"))
Session.restore(s, 1)
print(State.get("session:" .. s .. ":result"), Session.get(s).custom_metadata.note)
"""


def test_lua_load_and_restore_refuse_over_unsaved_state_and_metadata(spell, root: Path) -> None:
    """Red-team F4 through Lua: Session.load after State.set dropped the value."""
    (root / "l.lua").write_bytes(LUA_LOAD)
    r = spell("-w", str(root), "run", str(root / "l.lua"))
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode().splitlines()
    assert out[0].startswith("false\t") and "load would discard unsaved changes" in out[0]
    assert "session.yaml (metadata edited)" in out[0] and "state.yaml (result)" in out[0]
    assert out[1].startswith("false\t") and "restore would discard unsaved changes" in out[1]
    assert out[2:] == [
        "expensive model output\timportant",
        "active\texpensive model output",
        "nil\tnil",  # checkpoint 1 restored; checkpoint 2 still holds them
    ]


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


LUA_DELETES = b"""
local s = Session.list()[1].id
local ok, err = pcall(Artifact.delete, s, "notes.md")
print(ok, err)
print(pcall(Artifact.delete, s, "data.txt"))
ok, err = pcall(Session.delete, s)
print(ok, err)
"""


def test_lua_deletes_refuse_over_hand_edits_as_rm_does(sp: Space) -> None:
    """Red-team F11: Artifact.delete and Session.delete removed hand edits unrecorded."""
    sp.sh("echo 'precious hand edit' >> notes.md")
    (sp.root / "d.lua").write_bytes(LUA_DELETES)
    r = sp("run", str(sp.root / "d.lua"))
    out = r.stdout.decode().splitlines()
    assert out[0].startswith("false\t") and "delete would overwrite or delete unrecorded" in out[0]
    assert "notes.md" in out[0] and "spell save" in out[0]
    assert out[1] == "true\ttrue"  # a copy equal to its record deletes as before
    assert out[2].startswith("false\t") and "notes.md" in out[2]
    assert (sp.files / "notes.md").read_text() == "# notes\nprecious hand edit\n"  # untouched
    assert not (sp.files / "data.txt").exists()
    assert sp.status()["modified"] == ["notes.md"]


def test_library_artifact_delete_refuses_and_force_records_the_edit_first(ws: Workspace) -> None:
    sid, dir, files = _session(ws, a_txt=b"orig", b_txt=b"b1")
    ws.artifacts.store(sid, "tool_result", "b.txt", b"b2")
    (files / "a.txt").write_bytes(b"precious")
    (files / "b.txt").write_bytes(b"b1")  # an older version's content: nothing to lose
    with pytest.raises(UnrecordedChanges) as e:
        ws.artifacts.delete(sid, "a.txt")
    assert f"sessions/{dir}/files/: a.txt (record them with `spell save" in str(e.value)
    assert (files / "a.txt").read_bytes() == b"precious"
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["a.txt", "b.txt"]
    ws.artifacts.delete(sid, "b.txt")
    ws.artifacts.delete(sid, "a.txt", force=True)
    assert not (files / "a.txt").exists() and ws.artifacts.list(sid) == []
    got = ws.artifacts.get(sid, "a.txt@2")
    assert got["content"] == b"precious"
    assert (got["metadata"]["created_by"], got["metadata"]["custom"]) == (
        "hand",
        {"kept_by": "delete"},
    )


def test_library_session_delete_refuses_and_force_keeps_edits_as_objects(ws: Workspace) -> None:
    sid, dir, files = _session(ws, a_txt=b"orig")
    (files / "a.txt").write_bytes(b"precious")
    (files / "new.txt").write_bytes(b"dropped in")
    with pytest.raises(UnrecordedChanges, match=r"files/: a\.txt, new\.txt \(record"):
        ws.sessions.delete(sid)
    assert (files / "a.txt").read_bytes() == b"precious" and ws.sessions.get(sid)["id"] == sid
    got, kept = ws.sessions.remove(sid, force=True)
    assert got == sid and not (ws.root / "sessions" / dir).exists()
    assert [(n, ws.objects.get(oid)) for n, oid in kept] == [
        ("a.txt", b"precious"),
        ("new.txt", b"dropped in"),
    ]


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


# -- in-process: what the working-copy check promises (these also run under mutation testing,
# which cannot see into `spell` subprocesses) ----------------------------------------------


def _session(ws: Workspace, name: str = "wt", **files: bytes) -> tuple[str, str, Path]:
    """A session whose artifacts are ``files`` (name with '_' for '.': a_txt → a.txt)."""
    sid = ws.sessions.create(name=name)
    for key, content in files.items():
        ws.artifacts.store(sid, "tool_result", key.replace("_", "."), content)
    dir = ws.sessions.resolve(sid)
    return sid, dir, ws.root / "sessions" / dir / "files"


def test_scan_reports_each_kind_of_change_with_the_hash_now_on_disk(ws: Workspace) -> None:
    from spellfs.store import hash_bytes

    _, dir, files = _session(ws, a_txt=b"a", b_txt=b"b", c_txt=b"c")
    (files / "a.txt").write_bytes(b"A by hand")
    (files / "b.txt").unlink()
    (files / "n.txt").write_bytes(b"new")
    wc = ws.worktree.scan(dir)
    assert wc.modified == {"a.txt": hash_bytes(b"A by hand")}
    assert wc.added == {"n.txt": hash_bytes(b"new")}
    assert wc.deleted == ["b.txt"]
    assert not wc.clean and wc.names() == ["a.txt", "b.txt", "n.txt"]
    assert wc.phantoms == []
    # the same answer from the stat cache (no read) and after the edits settle
    assert ws.worktree.scan(dir) == wc
    time.sleep(0.25)
    assert ws.worktree.scan(dir) == wc
    assert ws.worktree.scan(dir) == wc
    assert ws.worktree.modified_names(dir) == {"a.txt", "b.txt"}
    with Workspace.open(ws.root) as other:  # another process: the stat cache, not a read
        assert other.worktree.scan(dir) == wc


def test_a_file_added_by_hand_is_watched_like_an_artifact_once_settled(ws: Workspace) -> None:
    from spellfs.store import hash_bytes

    _, dir, files = _session(ws, a=b"one letter")  # a one-character name too
    (files / "n.txt").write_bytes(b"new")
    (files / ".dot").write_bytes(b"never an artifact")
    time.sleep(0.25)
    assert ws.worktree.scan(dir).added == {"n.txt": hash_bytes(b"new")}
    assert ws.worktree.scan(dir).added == {"n.txt": hash_bytes(b"new")}  # remembered
    with open(files / "n.txt", "ab") as f:  # the folder does not change, the file does
        f.write(b" and more")
    assert ws.worktree.scan(dir).added == {"n.txt": hash_bytes(b"new and more")}
    (files / "a").write_bytes(b"ONE LETTER")
    assert ws.worktree.scan(dir).modified == {"a": hash_bytes(b"ONE LETTER")}


def test_a_copy_is_independent_of_the_scan_it_came_from(ws: Workspace) -> None:
    _, dir, files = _session(ws, a_txt=b"a", b_txt=b"b")
    (files / "a.txt").write_bytes(b"edit")
    (files / "b.txt").unlink()
    (files / "n.txt").write_bytes(b"n")
    wc = ws.worktree.scan(dir)
    c = wc.copy()
    assert (c.dir, c.modified, c.added, c.deleted) == (dir, wc.modified, wc.added, wc.deleted)
    c.modified.clear(), c.added.clear(), c.deleted.clear()
    assert wc.names() == ["a.txt", "b.txt", "n.txt"] and c.clean
    # a remembered answer handed out twice: changing one never changes the next
    time.sleep(0.25)
    first = ws.worktree.scan(dir)
    first.modified.clear(), first.added.clear(), first.deleted.clear()
    assert ws.worktree.scan(dir).names() == ["a.txt", "b.txt", "n.txt"]


def test_scan_skips_what_is_never_an_artifact(ws: Workspace) -> None:
    from spellfs.store import hash_bytes

    (ws.root / ".spellignore").write_text("*.log\n")
    _, dir, files = _session(ws, a_txt=b"a")
    for name in ("notes.md~", ".hidden", "x.swp", "run.log", "tab\there", " lead", "ok.txt"):
        (files / name).write_bytes(b"by hand")
    os.mkdir(files / "sub")
    (files / "sub" / "inner.txt").write_bytes(b"inner")
    os.symlink(files / "a.txt", files / "link.txt")
    os.symlink(files / "nowhere", files / "dangling.txt")
    expect = {"modified": [], "added": ["ok.txt"], "deleted": []}
    assert ws.worktree.scan(dir).as_dict() == expect
    assert ws.worktree.scan(dir).added == {"ok.txt": hash_bytes(b"by hand")}
    time.sleep(0.25)
    assert ws.worktree.scan(dir).as_dict() == expect
    assert ws.worktree.scan(dir).as_dict() == expect  # remembered
    (files / "run.log").write_bytes(b"more")  # a skipped file changing is still nothing
    (files / ".hidden").write_bytes(b"more")
    assert ws.worktree.scan(dir).as_dict() == expect


def test_a_spellignore_change_is_seen_by_the_next_scan(ws: Workspace) -> None:
    _, dir, files = _session(ws, a_txt=b"a")
    (files / "run.log").write_bytes(b"log")
    time.sleep(0.25)
    assert ws.worktree.scan(dir).as_dict()["added"] == ["run.log"]
    assert ws.worktree.scan(dir).as_dict()["added"] == ["run.log"]  # remembered
    (ws.root / ".spellignore").write_text("*.log\n")
    assert ws.worktree.scan(dir).clean


def test_a_missing_files_folder_means_every_artifact_was_deleted(ws: Workspace) -> None:
    import shutil

    _, dir, files = _session(ws, a_txt=b"a", b_txt=b"b")
    shutil.rmtree(files)
    assert ws.worktree.scan(dir).as_dict() == {
        "modified": [],
        "added": [],
        "deleted": ["a.txt", "b.txt"],
    }
    files.write_bytes(b"a file where the folder was")
    assert ws.worktree.scan(dir).deleted == ["a.txt", "b.txt"]


def test_a_copy_above_the_materialize_limit_is_not_a_deletion(ws: Workspace) -> None:
    ws.config.set("watch.materialize_max_bytes", 10)
    _, dir, files = _session(ws, big_bin=b"x" * 11, edge_bin=b"y" * 10, small_bin=b"s")
    assert sorted(p.name for p in files.iterdir()) == ["edge.bin", "small.bin"]
    assert ws.worktree.scan(dir).clean
    (files / "edge.bin").unlink()
    (files / "small.bin").unlink()
    assert ws.worktree.scan(dir).deleted == ["edge.bin", "small.bin"]


def test_a_linked_session_or_files_folder_is_never_followed(ws: Workspace, tmp_path: Path) -> None:
    _, dir, files = _session(ws, a_txt=b"a")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_bytes(b"not the session's")
    os.rename(files, tmp_path / "moved")
    os.symlink(elsewhere, files)
    assert ws.worktree.scan(dir).as_dict() == {"modified": [], "added": [], "deleted": []}
    os.unlink(files)
    os.rename(tmp_path / "moved", files)
    sdir = ws.root / "sessions" / dir
    os.rename(sdir, tmp_path / "session")
    os.symlink(tmp_path / "session", sdir)
    (files / "n.txt").write_bytes(b"new")
    assert ws.worktree.scan(dir).clean


def test_a_memory_workspace_has_no_working_copy() -> None:
    with Workspace.in_memory() as ws:
        sid = ws.sessions.create(name="m")
        ws.artifacts.store(sid, "tool_result", "a.txt", b"a")
        dir = ws.sessions.resolve(sid)
        assert ws.worktree.scan(dir) == ws.worktree.scan(dir)
        assert ws.worktree.scan(dir).as_dict() == {"modified": [], "added": [], "deleted": []}
        assert ws.worktree.keep_before_store(dir, ["a.txt"]) == []


def test_scan_all_covers_every_session_and_nothing_else(ws: Workspace) -> None:
    _, one, f1 = _session(ws, "one", a_txt=b"a")
    _, two, f2 = _session(ws, "two", b_txt=b"b")
    (f1 / "a.txt").write_bytes(b"edit")
    (ws.root / "sessions" / ".hidden").mkdir()
    (ws.root / "sessions" / "stray").mkdir()
    (ws.root / "sessions" / "stray" / "files").mkdir()
    (ws.root / "sessions" / "stray" / "files" / "x.txt").write_bytes(b"x")
    got = {d: wc.as_dict() for d, wc in ws.worktree.scan_all().items()}
    assert got == {
        one: {"modified": ["a.txt"], "added": [], "deleted": []},
        two: {"modified": [], "added": [], "deleted": []},
    }
    assert list(ws.worktree.scan_all()) == sorted([one, two])


def test_record_stores_edits_additions_and_deletions_by_hand(ws: Workspace) -> None:
    sid, dir, files = _session(ws, a_txt=b"a", b_txt=b"b")
    assert ws.worktree.record(dir).clean
    assert [r["seq"] for r in ws.log(dir).refresh().records] == [1, 2]  # nothing recorded
    (files / "a.txt").write_bytes(b"A")
    (files / "b.txt").unlink()
    (files / "n.txt").write_bytes(b"N")
    assert ws.worktree.record(dir).as_dict() == {
        "modified": ["a.txt"],
        "added": ["n.txt"],
        "deleted": ["b.txt"],
    }
    assert ws.worktree.scan(dir).clean
    for name, content in (("a.txt", b"A"), ("n.txt", b"N")):
        got = ws.artifacts.get(sid, name)
        assert got["content"] == content
        assert (got["metadata"]["created_by"], got["metadata"]["artifact_type"]) == (
            "hand",
            "user_input",
        )
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["a.txt", "n.txt"]
    assert (files / "a.txt").read_bytes() == b"A"


def test_keep_as_objects_refuses_then_keeps_every_unrecorded_copy(ws: Workspace) -> None:
    sid, dir, files = _session(ws, a_txt=b"a", b_txt=b"b")
    assert ws.worktree.keep_as_objects(dir, False, "rm") == []
    (files / "a.txt").write_bytes(b"edited")
    (files / "n.txt").write_bytes(b"new")
    (files / "b.txt").unlink()
    with pytest.raises(UnrecordedChanges) as e:
        ws.worktree.keep_as_objects(dir, False, "rm")
    assert str(e.value).startswith("rm would overwrite or delete unrecorded changes: ")
    assert f"sessions/{dir}/files/: a.txt, n.txt (" in str(e.value)
    kept = ws.worktree.keep_as_objects(dir, True, "rm")
    assert [n for n, _ in kept] == ["a.txt", "n.txt"]
    assert [ws.objects.get(oid) for _, oid in kept] == [b"edited", b"new"]
    assert len(ws.log(dir).refresh().records) == 2  # kept as objects, not recorded


def test_guard_names_what_it_would_lose_and_force_records_it_first(ws: Workspace) -> None:
    sid, dir, files = _session(ws, **{f"f{i}_txt": b"v1" for i in range(8)})
    assert ws.worktree.guard(dir, None, False, "restore") == []
    for i in range(7):
        (files / f"f{i}.txt").write_bytes(b"by hand")
    with pytest.raises(UnrecordedChanges) as e:
        ws.worktree.guard(dir, None, False, "restore")
    assert str(e.value) == (
        "restore would overwrite or delete unrecorded changes: "
        f"sessions/{dir}/files/: f0.txt, f1.txt, f2.txt, f3.txt, f4.txt and 2 more "
        f"(record them with `spell save {sid[:8]}` first, or pass --force: "
        "they are kept first, then it goes on)"
    )
    with pytest.raises(UnrecordedChanges, match=r": f5\.txt \(record"):
        ws.worktree.guard(dir, ["f5.txt", "f7.txt"], False, "load")
    assert ws.worktree.guard(dir, ["f7.txt"], False, "load") == []  # untouched: nothing to keep
    assert ws.worktree.guard(dir, ["f6.txt", "f5.txt"], True, "load") == ["f5.txt@2", "f6.txt@2"]
    got = ws.artifacts.get(sid, "f5.txt@2")
    assert got["content"] == b"by hand"
    assert got["metadata"]["custom"] == {"kept_by": "load"}
    assert got["metadata"]["created_by"] == "hand"
    assert ws.worktree.scan(dir).names() == ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt"]


def test_guard_keeps_content_of_a_finished_session_which_stays_read_only(ws: Workspace) -> None:
    from spellfs.errors import SessionNotActive

    sid, dir, files = _session(ws, a_txt=b"a")
    ws.sessions.complete(sid)
    (files / "a.txt").write_bytes(b"late edit")
    assert ws.worktree.guard(dir, None, True, "restore") == ["a.txt@2"]
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"late edit"
    assert ws.sessions.closing == set()
    with pytest.raises(SessionNotActive):
        ws.artifacts.store(sid, "tool_result", "b.txt", b"b")


def test_keep_before_store_keeps_only_content_no_record_has(ws: Workspace) -> None:
    sid, dir, files = _session(ws, a_txt=b"one", c_txt=b"c")
    ws.artifacts.store(sid, "tool_result", "a.txt", b"two")
    with ws.storage.lock(f"s-{dir}"):
        assert ws.worktree.keep_before_store(dir, ["a.txt", "gone.txt"]) == []
        (files / "a.txt").write_bytes(b"one")  # an older version: recorded content
        assert ws.worktree.keep_before_store(dir, ["a.txt"]) == []
        os.mkdir(files / "d.txt")  # no regular file: nothing to keep
        (files / "b.txt").write_bytes(b"mine")
        (files / "a.txt").write_bytes(b"three")
        names = ["gone.txt", "d.txt", "c.txt", "b.txt", "a.txt", "b.txt"]  # c.txt: as recorded
        assert ws.worktree.keep_before_store(dir, names) == ["b.txt", "a.txt"]
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"three"
    assert ws.artifacts.get(sid, "a.txt")["metadata"]["created_by"] == "hand"
    assert ws.artifacts.get(sid, "b.txt")["content"] == b"mine"


def test_keep_before_store_trusts_a_settled_stat_and_reads_a_racy_one(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spellfs.model.handedits as handedits
    import spellfs.model.worktree as worktree

    sid, dir, files = _session(ws, a_txt=b"one")
    reads: list[str] = []
    real = handedits.hash_path
    for module in (handedits, worktree):  # a store's look, and a scan's
        monkeypatch.setattr(module, "hash_path", lambda p, *a: reads.append(p) or real(p, *a))
    (files / "a.txt").write_bytes(b"mine")
    assert ws.worktree.keep_before_store(dir, ["a.txt"]) == ["a.txt"]  # read: no cache entry
    assert len(reads) == 1
    time.sleep(0.25)
    reads.clear()
    assert ws.worktree.scan(dir).clean  # hashes and enters the settled copy
    with ws.storage.lock(f"s-{dir}"):
        assert ws.worktree.keep_before_store(dir, ["a.txt"]) == []
    assert reads == [str(files / "a.txt")]  # the scan's read only; the stat cache answered


def test_problems_tell_interrupted_writes_stray_copies_and_hand_edits_apart(
    ws: Workspace,
) -> None:
    from spellfs.model.worktree import INFLIGHT

    sid, dir, files = _session(ws, a_txt=b"recorded", b_txt=b"b", c_txt=b"c")
    assert ws.worktree.problems(dir) == []
    # a store killed after writing a.txt's copy and its object, before its record
    ws.objects.put_bytes(b"never recorded")
    (files / "a.txt").write_bytes(b"never recorded")
    (ws.root / INFLIGHT).mkdir(parents=True, exist_ok=True)
    (ws.root / INFLIGHT / dir).write_bytes(b"a.txt\n")
    ws.objects.put_bytes(b"an object no record holds")
    (files / "b.txt").write_bytes(b"an object no record holds")
    (files / "c.txt").write_bytes(b"typed by a person")
    (files / "s.txt").write_bytes(b"an object no record holds")
    (files / "h.txt").write_bytes(b"typed by a person too")
    where = f"sessions/{dir}/files/"
    assert ws.worktree.problems(dir) == [
        (
            "interrupted-write",
            "a.txt",
            f"{where}a.txt: written by a store that never recorded it; put back as its records say",
        ),
        (
            "stray-copy",
            "b.txt",
            f"{where}b.txt: differs from its record; looks like an interrupted write (its "
            "content is an object no record holds; `spell save` records it, or delete it)",
        ),
        (
            "hand-edit",
            "c.txt",
            f"{where}c.txt: differs from its record; looks like a hand edit "
            "(`spell save` records it)",
        ),
        (
            "hand-edit",
            "h.txt",
            f"{where}h.txt: matches no record; looks like a hand edit (`spell save` records it)",
        ),
        (
            "stray-copy",
            "s.txt",
            f"{where}s.txt: matches no record; looks like an interrupted write (its content is "
            "an object no record holds; `spell save` records it, or delete it)",
        ),
    ]
    assert (files / "a.txt").read_bytes() == b"recorded"
    assert not (ws.root / INFLIGHT / dir).exists()


def test_a_copy_holding_an_older_version_is_a_hand_edit_not_a_stray(ws: Workspace) -> None:
    sid, dir, files = _session(ws, a_txt=b"one")
    ws.artifacts.store(sid, "tool_result", "a.txt", b"two")
    (files / "a.txt").write_bytes(b"one")  # the object exists, and a record holds it
    [(kind, name, _)] = ws.worktree.problems(dir)
    assert (kind, name) == ("hand-edit", "a.txt")


def test_scan_without_repair_leaves_an_interrupted_store_for_fsck(ws: Workspace) -> None:
    from spellfs.model.worktree import INFLIGHT

    _, dir, files = _session(ws, a_txt=b"recorded")
    ws.objects.put_bytes(b"never recorded")
    (files / "a.txt").write_bytes(b"never recorded")
    (ws.root / INFLIGHT).mkdir(parents=True, exist_ok=True)
    (ws.root / INFLIGHT / dir).write_bytes(b"a.txt\n")
    wc = ws.worktree.scan(dir, repair=False)
    assert (wc.phantoms, wc.as_dict()["modified"]) == ([], ["a.txt"])
    assert (ws.root / INFLIGHT / dir).exists()
    wc = ws.worktree.scan(dir)
    assert (wc.phantoms, wc.clean) == (["a.txt"], True)
    assert (files / "a.txt").read_bytes() == b"recorded"


def _rewrite_in_place(path: Path, content: bytes) -> None:
    """Same inode, same size, same mtime as before: a second write within one mtime tick (a
    coarse-timestamp file system) looks exactly so to a stat."""
    before = path.stat()
    assert len(content) == before.st_size
    with open(path, "r+b") as f:
        f.write(content)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def test_a_second_edit_in_the_same_mtime_tick_as_a_scan_is_seen(ws: Workspace) -> None:
    from spellfs.store import hash_bytes

    _, dir, files = _session(ws, a_txt=b"one")
    (files / "a.txt").write_bytes(b"two")
    assert ws.worktree.scan(dir).modified == {"a.txt": hash_bytes(b"two")}  # hashed, cached
    _rewrite_in_place(files / "a.txt", b"TWO")
    assert ws.worktree.scan(dir).modified == {"a.txt": hash_bytes(b"TWO")}


def test_a_store_never_clobbers_an_edit_made_in_the_same_mtime_tick_as_a_scan(
    ws: Workspace,
) -> None:
    sid, dir, files = _session(ws, a_txt=b"one")
    ws.artifacts.store(sid, "tool_result", "a.txt", b"two")
    (files / "a.txt").write_bytes(b"one")  # an older version by hand: recorded content
    assert ws.worktree.scan(dir).modified  # hashed and cached, racily recent
    _rewrite_in_place(files / "a.txt", b"ONE")  # content no record has
    ws.artifacts.store(sid, "tool_result", "a.txt", b"three")
    assert ws.artifacts.get(sid, "a.txt@3")["content"] == b"ONE"
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"three"


def test_an_artifact_whose_name_looks_like_an_editor_temp_is_still_tracked(ws: Workspace) -> None:
    from spellfs.store import hash_bytes

    _, dir, files = _session(ws, draft_tmp=b"one", notes_md_swp=b"two")
    (files / "draft.tmp").write_bytes(b"edited")
    (files / "notes.md.swp").unlink()
    assert ws.worktree.scan(dir).modified == {"draft.tmp": hash_bytes(b"edited")}
    assert ws.worktree.scan(dir).deleted == ["notes.md.swp"]


def test_skipped_entries_never_hide_the_ones_after_them(ws: Workspace) -> None:
    (ws.root / ".spellignore").write_text("*.log\n")
    _, dir, files = _session(ws, a_txt=b"a")
    want = []
    for i in range(8):  # interleaved, so whatever order the folder lists them in
        (files / f"n{i}.txt").write_bytes(b"n")
        want.append(f"n{i}.txt")
        (files / f"t{i}.txt~").write_bytes(b"editor")
        (files / f"r{i}.log").write_bytes(b"ignored")
        (files / f"bad\t{i}").write_bytes(b"no name")
        os.mkdir(files / f"d{i}")
    assert ws.worktree.scan(dir).as_dict() == {"modified": [], "added": want, "deleted": []}


def test_a_deletion_is_seen_beside_more_new_files_than_artifacts(ws: Workspace) -> None:
    _, dir, files = _session(ws, a_txt=b"a")
    (files / "a.txt").unlink()
    (files / "n1.txt").write_bytes(b"1")
    (files / "n2.txt").write_bytes(b"2")
    assert ws.worktree.scan(dir).as_dict() == {
        "modified": [],
        "added": ["n1.txt", "n2.txt"],
        "deleted": ["a.txt"],
    }


def test_a_file_being_written_while_scanned_is_changed_and_looked_at_again(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spellfs.model.worktree as worktree
    from spellfs.store import hash_bytes

    _, dir, files = _session(ws, **{f"f{i}_txt": b"v1" for i in range(6)})
    for i in range(6):
        (files / f"f{i}.txt").write_bytes(b"v2")
        (files / f"n{i}.txt").write_bytes(b"new")
    time.sleep(0.25)  # every stat settled: only the writes below keep it from being remembered
    real = worktree.hash_path
    busy = {"f2.txt", "n3.txt"}  # a writer is busy with these (hash_path saw them move)
    monkeypatch.setattr(
        worktree, "hash_path", lambda p, *a: None if os.path.basename(p) in busy else real(p)
    )
    wc = ws.worktree.scan(dir)
    assert wc.modified == {f"f{i}.txt": "" if i == 2 else hash_bytes(b"v2") for i in range(6)}
    assert wc.added == {f"n{i}.txt": "" if i == 3 else hash_bytes(b"new") for i in range(6)}
    busy.clear()  # the writer is done: the next scan reads them, nothing remembered stands in
    wc = ws.worktree.scan(dir)
    assert wc.modified == {f"f{i}.txt": hash_bytes(b"v2") for i in range(6)}
    assert wc.added == {f"n{i}.txt": hash_bytes(b"new") for i in range(6)}


def test_status_of_more_sessions_than_are_remembered(ws: Workspace) -> None:
    dirs = []
    for i in range(66):
        sid = ws.sessions.create(name=f"s{i}")
        ws.artifacts.store(sid, "tool_result", "a.txt", b"a")
        dirs.append(ws.sessions.resolve(sid))
    edited = ws.root / "sessions" / dirs[0] / "files" / "a.txt"
    edited.write_bytes(b"edited")
    for _ in range(2):
        got = ws.worktree.scan_all()
        assert sorted(got) == sorted(dirs)
        assert [d for d, wc in got.items() if not wc.clean] == [dirs[0]]


def test_a_store_keeps_the_other_hand_edits_when_one_copy_is_being_written(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spellfs.model.handedits as handedits

    sid, dir, files = _session(ws, a_txt=b"a", b_txt=b"b")
    (files / "a.txt").write_bytes(b"someone is writing this")
    (files / "b.txt").write_bytes(b"a finished hand edit")
    real = handedits.hash_path
    monkeypatch.setattr(
        handedits, "hash_path", lambda p, *a: None if p.endswith("/a.txt") else real(p, *a)
    )
    with ws.storage.lock(f"s-{dir}"):
        assert ws.worktree.keep_before_store(dir, ["a.txt", "b.txt"]) == ["b.txt"]
    assert ws.artifacts.get(sid, "b.txt")["content"] == b"a finished hand edit"


@pytest.mark.parametrize("beside", ["x.swp", "sub", "run.log", " lead"])
def test_a_deleted_copy_is_seen_beside_an_entry_that_is_no_artifact(
    ws: Workspace, beside: str
) -> None:
    """An editor temp, a folder, an ignored or an invalid name is not a live artifact's copy:
    it never stands in for the copy that went (the count of copies seen decides whether the
    deletions are looked for), and it does not stop the answer being remembered."""
    (ws.root / ".spellignore").write_text("*.log\n")
    _, dir, files = _session(ws, a_txt=b"a", b_txt=b"b")
    if beside == "sub":
        (files / beside).mkdir()
    else:
        (files / beside).write_bytes(b"by hand")
    (files / "a.txt").unlink()
    expect = {"modified": [], "added": [], "deleted": ["a.txt"]}
    time.sleep(0.25)  # past the racy window: the answer is remembered
    assert ws.worktree.scan(dir).as_dict() == expect and ws.worktree.looked(dir) == 2
    assert ws.worktree.scan(dir).as_dict() == expect and ws.worktree.looked(dir) == 0


def test_guard_names_five_files_in_full_and_counts_the_rest(ws: Workspace) -> None:
    sid, dir, files = _session(ws, **{f"f{i}_txt": b"v1" for i in range(6)})
    for i in range(5):
        (files / f"f{i}.txt").write_bytes(b"by hand")
    with pytest.raises(UnrecordedChanges) as e:
        ws.worktree.guard(dir, None, False, "restore")
    assert ": f0.txt, f1.txt, f2.txt, f3.txt, f4.txt (record" in str(e.value)
    (files / "f5.txt").write_bytes(b"by hand")
    with pytest.raises(UnrecordedChanges) as e:
        ws.worktree.guard(dir, None, False, "restore")
    assert ": f0.txt, f1.txt, f2.txt, f3.txt, f4.txt and 1 more (record" in str(e.value)
    ws.worktree.guard(dir, ["f0.txt"], True, "restore")
    ws.worktree.record(dir)
    log = ws.log(dir)
    log.refresh()
    for name in ("f0.txt", "f5.txt"):  # kept by --force, recorded by save: typed as input
        assert (log.latest(name)["type"], log.latest(name)["created_by"]) == ("user_input", "hand")


def test_scan_all_leaves_out_a_hidden_session_folder(ws: Workspace) -> None:
    """A dot folder under sessions/ (a session being made or moved aside) is no session, even
    with a session.yaml in it."""
    _, one, f1 = _session(ws, "one", a_txt=b"a")
    hidden = ws.root / "sessions" / f".{one}.new"
    (hidden / "files").mkdir(parents=True)
    manifest = ws.root / "sessions" / one / "session.yaml"
    (hidden / "session.yaml").write_bytes(manifest.read_bytes())
    (hidden / "files" / "x.txt").write_bytes(b"x")
    assert list(ws.worktree.scan_all()) == [one]


def test_an_answer_the_stat_cache_vouches_for_is_remembered(ws: Workspace) -> None:
    """Another process finds every stat already hashed in the shared stat cache: no read, and
    its answer is settled, so its next check is the fast path."""
    _, dir, files = _session(ws, a_txt=b"a", b_txt=b"b")
    time.sleep(0.25)  # past the racy window
    assert ws.worktree.scan(dir).clean  # hashes both, caching their stats
    with Workspace.open(ws.root) as other:
        assert other.worktree.scan(dir).clean and other.worktree.looked(dir) == 2
        assert other.worktree.scan(dir).clean and other.worktree.looked(dir) == 0


def test_a_new_file_being_written_never_stands_in_for_a_deleted_copy(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spellfs.model.worktree as worktree

    _, dir, files = _session(ws, a_txt=b"a", b_txt=b"b")
    (files / "a.txt").unlink()
    (files / "n.txt").write_bytes(b"being written")
    real = worktree.hash_path
    monkeypatch.setattr(  # a writer is busy with n.txt: hash_path saw it move
        worktree, "hash_path", lambda p, *a: None if p.endswith("/n.txt") else real(p, *a)
    )
    wc = ws.worktree.scan(dir)
    assert (wc.added, wc.deleted) == ({"n.txt": ""}, ["a.txt"])


def test_a_remembered_answer_sees_an_in_place_edit_on_the_very_next_check(ws: Workspace) -> None:
    """The remembered answer is checked against the ctime of every entry it judged (an edit in
    place leaves the folder's own stat alone): artifacts and files added by hand alike."""
    for edited in ("a.txt", "n.txt"):
        _, dir, files = _session(ws, f"s-{edited[0]}", a_txt=b"a", b_txt=b"b")
        (files / "n.txt").write_bytes(b"new")
        (files / ".dot").write_bytes(b"never an artifact")
        time.sleep(0.25)  # past the racy window: this answer is remembered
        assert ws.worktree.scan(dir).as_dict()["added"] == ["n.txt"]
        with open(files / edited, "ab") as f:
            f.write(b" and more")
        wc = ws.worktree.scan(dir)  # (the second scan: not yet the feed's)
        assert edited in (wc.modified if edited == "a.txt" else wc.added)
        assert ws.worktree.looked(dir) == 4 and not ws.worktree.fed(dir)  # all, .dot too


def test_a_session_whose_watch_cannot_start_is_not_tried_again(
    ws: Workspace, watch_starts: list[str]
) -> None:
    """No files/ folder to watch: the feed is dropped for good in this process (not tried, and
    failed, on every scan), and the answer is still every artifact deleted."""
    import shutil

    _, dir, files = _session(ws, a_txt=b"a")
    shutil.rmtree(files)
    for _ in range(3 * 3):
        assert ws.worktree.scan(dir).deleted == ["a.txt"]
    assert len(watch_starts) == 1 and not ws.worktree.fed(dir)


def _edit_keeping_mtime(path: Path, content: bytes) -> None:
    """A same-size write whose mtime is put back, as `touch -r`, `cp -p` or `rsync -t` leave it
    (the kernel still moves the ctime)."""
    time.sleep(0.01)  # (a later clock tick than the cached stat's ctime)
    _rewrite_in_place(path, content)


def test_a_same_size_edit_with_its_mtime_put_back_is_seen_and_saved(sp: Space) -> None:
    """The red-team's F12: status must name it and save record the file, not the old record."""
    time.sleep(0.25)  # the copies settle: the next status enters them in the stat cache
    assert sp.status() == {"modified": [], "added": [], "deleted": []}
    _edit_keeping_mtime(sp.files / "notes.md", b"# NOTES\n")
    assert "modified by hand, not yet recorded: notes.md" in sp("status").stdout.decode()
    out = sp("save", sp.sid).stdout.decode()
    assert "recorded hand changes: ~notes.md" in out
    assert sp("cat", sp.sid, "notes.md").stdout == b"# NOTES\n"


def test_scan_and_store_see_a_same_size_edit_with_its_mtime_put_back(ws: Workspace) -> None:
    from spellfs.store import hash_bytes

    sid, dir, files = _session(ws, a_txt=b"one", b_txt=b"two")
    time.sleep(0.25)
    assert ws.worktree.scan(dir).clean  # both hashed, settled, in the stat cache
    _edit_keeping_mtime(files / "a.txt", b"ONE")
    assert ws.worktree.scan(dir).modified == {"a.txt": hash_bytes(b"ONE")}
    with Workspace.open(ws.root) as other:  # a fresh process: the entries from the file
        assert other.worktree.scan(dir).modified == {"a.txt": hash_bytes(b"ONE")}
    _edit_keeping_mtime(files / "b.txt", b"TWO")  # a store's own look (the cache, no scan)
    ws.artifacts.store(sid, "tool_result", "b.txt", b"three")
    assert ws.artifacts.get(sid, "b.txt@2")["content"] == b"TWO"
    assert ws.artifacts.get(sid, "b.txt")["content"] == b"three"
