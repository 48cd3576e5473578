"""Interrupted work leaves no phantoms (SPEC §1): copies written under files/ for records never
appended are put back at the next command or by `fsck --repair`, never adopted as hand edits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SPELL, before_appends
from spellfs import Workspace
from spellfs.model.artifact_writes import CHUNK_RECORDS


def _many(tmp: Path, n: int) -> list[str]:
    src = tmp / "many"
    src.mkdir()
    for i in range(n):
        (src / f"f{i:05d}.txt").write_text(f"file {i}\n" * 3)
    return sorted(str(p) for p in src.iterdir())


def _interrupt_add(root: Path, sid: str, files: list[str], sig: int, out: Path) -> tuple[int, Path]:
    """Start `spell add` of ``files`` (stdout to ``out``) and send ``sig`` once its first chunk is
    acknowledged and the next being copied (early: on a busy machine this process may be
    descheduled between seeing that and signalling, and the rest of the add must not finish in
    that gap)."""
    [d] = (root / "sessions").iterdir()
    fdir = d / "files"
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [*SPELL, "-w", str(root), "add", sid, *files],
            stdout=f,
            stderr=subprocess.PIPE,
            # as from a terminal: a suite started in the background (nohup, `&`) ignores SIGINT,
            # and a child would inherit that and finish regardless
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (
            out.stat().st_size and out.read_bytes().count(b"\n") >= CHUNK_RECORDS
        ):  # one chunk acknowledged, the next copying: freeze it there at once (a loaded machine
            # may otherwise let it run to the end before this process gets to send the signal)
            proc.send_signal(signal.SIGSTOP)
            break
        time.sleep(0.002)
    assert proc.poll() is None, "spell add finished before it could be interrupted"
    proc.send_signal(sig)
    proc.send_signal(signal.SIGCONT)  # a SIGINT is acted on as it runs again
    proc.wait(60)
    return proc.returncode, fdir


def _acknowledged(out: Path) -> set[str]:
    lines = out.read_text().splitlines()
    assert all(line.startswith("stored ") for line in lines), lines[:3]
    return {line.split()[1] for line in lines}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_add_of_thousands_leaves_no_phantoms(
    spell, root: Path, tmp_path: Path, sig: int
) -> None:
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
    sid = spell("-w", str(root), "new", "bulk").stdout.decode().strip()
    keep = tmp_path / "keep.txt"
    keep.write_text("acknowledged\n")
    assert spell("-w", str(root), "add", sid, str(keep)).returncode == 0
    files = _many(tmp_path, 6 * CHUNK_RECORDS)
    code, fdir = _interrupt_add(root, sid, files, sig, tmp_path / "out.txt")
    assert code != 0
    acked = _acknowledged(tmp_path / "out.txt")
    # whole chunks committed before the interrupt, each acknowledged; the rest never was
    assert len(acked) % CHUNK_RECORDS == 0 and CHUNK_RECORDS <= len(acked) < len(files)
    assert acked == {Path(f).name for f in files[: len(acked)]}
    if sig == signal.SIGKILL:  # the copies of the chunk killed are there until the next command ...
        [dir] = os.listdir(root / "sessions")
        journal = set((root / ".spell" / "inflight" / dir).read_text().split())
        leftovers = set(os.listdir(fdir)) - acked - {"keep.txt"}
        assert leftovers <= journal  # ... each listed in the journal, to be put back
        assert journal.isdisjoint(
            acked
        )  # and the journal lists that chunk only, not those committed
    status = json.loads(spell("-w", str(root), "status", "--json").stdout)["sessions"][0][
        "unrecorded"
    ]
    assert status == {"modified": [], "added": [], "deleted": []}  # never shown as hand edits
    assert set(os.listdir(fdir)) == acked | {
        "keep.txt"
    }  # files/ holds exactly what the records say
    lists = root / ".spell" / "inflight"  # nothing left to put back: every list is empty
    assert all(p.stat().st_size == 0 for p in lists.iterdir()) if lists.exists() else True
    show = json.loads(spell("-w", str(root), "show", sid, "--json").stdout)
    assert {a["name"] for a in show["artifacts"]} == acked | {"keep.txt"}
    assert (fdir / "keep.txt").read_text() == "acknowledged\n"
    for name in acked:  # every acknowledged store is readable, as it was given
        i = int(name[1:6])
        assert (fdir / name).read_text() == f"file {i}\n" * 3


def test_killed_store_copy_is_never_adopted_by_save_or_the_watcher_catch_up(ws: Workspace) -> None:
    from spellfs.model.inflight import INFLIGHT

    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
    dir = ws.sessions.resolve(sid)
    # what a store killed between its files/ write and its record append leaves behind
    oid = ws.objects.put_bytes(b"v2 never recorded")
    (ws.root / "sessions" / dir / "files" / "a.txt").write_bytes(b"v2 never recorded")
    ws.objects.put_bytes(b"phantom new")
    (ws.root / "sessions" / dir / "files" / "b.txt").write_bytes(b"phantom new")
    (ws.root / INFLIGHT).mkdir(parents=True, exist_ok=True)
    (ws.root / INFLIGHT / dir).write_text("a.txt\nb.txt\n")
    assert oid
    n = ws.history.save(sid)
    assert n == 1
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"v1"
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["a.txt"]
    assert (ws.root / "sessions" / dir / "files" / "a.txt").read_bytes() == b"v1"
    assert not (ws.root / "sessions" / dir / "files" / "b.txt").exists()


def test_a_hand_edit_after_the_crash_is_kept(ws: Workspace) -> None:
    from spellfs.model.inflight import INFLIGHT

    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
    dir = ws.sessions.resolve(sid)
    (ws.root / INFLIGHT).mkdir(parents=True, exist_ok=True)
    (ws.root / INFLIGHT / dir).write_text("a.txt\n")
    (ws.root / "sessions" / dir / "files" / "a.txt").write_bytes(b"typed by a person since")
    wc = ws.worktree.scan(dir)
    assert list(wc.modified) == ["a.txt"] and wc.phantoms == []
    assert (
        ws.root / "sessions" / dir / "files" / "a.txt"
    ).read_bytes() == b"typed by a person since"


def test_a_failing_store_puts_back_its_copies_at_once(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
    dir = ws.sessions.resolve(sid)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    before_appends(monkeypatch, ws, full)
    with pytest.raises(OSError):
        ws.artifacts.store_many(sid, [("t", "a.txt", b"v2", None), ("t", "c.txt", b"new", None)])
    monkeypatch.undo()
    files = ws.root / "sessions" / dir / "files"
    assert sorted(os.listdir(files)) == ["a.txt"] and (files / "a.txt").read_bytes() == b"v1"
    assert ws.worktree.scan(dir).clean


def test_a_store_after_the_inflight_folder_went_still_lists_its_copies(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list's folder is opened into directly once it exists; removed (by hand, by a clean-up)
    between two stores, the next store makes it again and its copies are still listed, so a
    failure before the append still puts them back."""
    import shutil

    from spellfs.model.inflight import INFLIGHT

    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
    assert (ws.root / INFLIGHT).is_dir()
    shutil.rmtree(ws.root / INFLIGHT)
    dir = ws.sessions.resolve(sid)
    listed = []

    def full(*a, **k):
        listed.append((ws.root / INFLIGHT / dir).read_text())
        raise OSError(28, "No space left on device")

    before_appends(monkeypatch, ws, full)
    with pytest.raises(OSError):
        ws.artifacts.store_many(sid, [("t", "a.txt", b"v2", None), ("t", "c.txt", b"new", None)])
    monkeypatch.undo()
    assert listed == ["a.txt\nc.txt\n"]
    files = ws.root / "sessions" / dir / "files"
    assert sorted(os.listdir(files)) == ["a.txt"] and (files / "a.txt").read_bytes() == b"v1"
    ws.artifacts.store(sid, "user_input", "c.txt", b"c")  # and stores go on as before
    assert (files / "c.txt").read_bytes() == b"c" and ws.worktree.scan(dir).clean


def test_fsck_tells_interrupted_writes_from_hand_edits(spell, root: Path) -> None:
    from spellfs.model.inflight import INFLIGHT

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="s")
        for name in ("a.txt", "b.txt", "c.txt"):
            ws.artifacts.store(sid, "user_input", name, name.encode())
        dir = ws.sessions.resolve(sid)
        ws.objects.put_bytes(b"unrecorded store")
        ws.objects.put_bytes(b"killed store")
    files = root / "sessions" / dir / "files"
    (files / "a.txt").write_bytes(
        b"unrecorded store"
    )  # content only an object holds, no in-flight list
    (files / "b.txt").write_bytes(b"b and a person's edit")
    (files / "c.txt").write_bytes(b"killed store")  # listed by the store that was killed
    (root / INFLIGHT).mkdir(parents=True, exist_ok=True)
    (root / INFLIGHT / dir).write_text("c.txt\n")
    r = spell("-w", str(root), "fsck", "--json")
    report = json.loads(r.stdout)
    kinds = {p["where"].rsplit("/", 1)[1]: p["kind"] for p in report["problems"]}
    assert kinds == {"a.txt": "stray-copy", "b.txt": "hand-edit", "c.txt": "interrupted-write"}
    details = {p["where"].rsplit("/", 1)[1]: p["detail"] for p in report["problems"]}
    assert (
        "looks like an interrupted write" in details["a.txt"]
        and "looks like a hand edit" in details["b.txt"]
    )
    assert r.returncode == 0 and report["ok"]  # reported, not failures: nobody's content is at risk
    assert (files / "c.txt").read_bytes() == b"c.txt"  # put back, as every command does
    assert (
        files / "a.txt"
    ).read_bytes() == b"unrecorded store"  # only a person can tell: left alone
    assert (files / "b.txt").read_bytes() == b"b and a person's edit"


def test_the_watcher_puts_back_a_killed_store_copy_instead_of_recording_it(root: Path) -> None:
    from spellfs.model.inflight import INFLIGHT
    from test_watch_watcher import Harness, wait_for

    h = Harness(root)
    try:
        h.ws.artifacts.store(h.sid, "tool_result", "a.txt", b"v1")
        h.ws.objects.put_bytes(b"killed before its record")
        (h.files / "a.txt").write_bytes(b"killed before its record")  # while nobody watched
        (root / INFLIGHT).mkdir(parents=True, exist_ok=True)
        (root / INFLIGHT / h.dir).write_text("a.txt\nb.txt\n")
        h.start()
        wait_for(lambda: (h.files / "a.txt").read_bytes() == b"v1", 5)
        # and live: a copy written after start by a store that then died
        h.ws.objects.put_bytes(b"phantom b")
        (root / INFLIGHT / h.dir).write_text("b.txt\n")
        (h.files / "b.txt").write_bytes(b"phantom b")
        wait_for(lambda: not (h.files / "b.txt").exists(), 5)
        import time

        time.sleep(h.watcher.quiet * 3)
        assert h.events("stored") == []
        assert [v["hash"] for v in h.versions("a.txt")] == [
            h.ws.artifacts.get(h.sid, "a.txt")["metadata"]["content_hash"]
        ]
        assert h.live() == {"a.txt"}
    finally:
        h.stop()
        h.ws.close()


def test_repair_puts_back_each_listed_copy_by_what_the_records_say(root: Path) -> None:
    """Every branch of repair_inflight, in one killed store's list (found by mutation testing)."""
    from spellfs.model.inflight import INFLIGHT, repair_inflight

    (root / "spell.yaml").write_text("watch:\n  materialize_max_bytes: 100\n")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="s")
        ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
        ws.artifacts.store(sid, "user_input", "aa-same.txt", b"as recorded")
        ws.artifacts.store(sid, "user_input", "big.txt", b"b" * 200)  # above the limit
        ws.artifacts.store(sid, "user_input", "at-limit.txt", b"l" * 100)  # at it: copied
        dir = ws.sessions.resolve(sid)
        from spellfs.model.inflight import pending

        assert not pending(ws, dir)  # a store that finished leaves nothing to put back
        assert (root / INFLIGHT / dir).read_bytes() == b""  # (its list stays, empty: no unlink)
        files = root / "sessions" / dir / "files"
        for name, content in {
            "a.txt": b"v2 never recorded",  # back to v1
            "at-limit.txt": b"at-limit v2 never recorded",  # back to v1
            "new.txt": b"phantom",  # no record at all: removed
            "my notes.txt": b"phantom with a space",  # removed too
            "big.txt": b"big v2 never recorded",  # recorded too big to copy: removed
            "hand.txt": b"typed since by a person",  # no object holds it: stays
        }.items():
            if name != "hand.txt":
                ws.objects.put_bytes(content)
            (files / name).write_bytes(content)
        (files / "dir.txt").mkdir()  # not a file: left alone
        outside = root / "sessions" / dir / "x"  # what "../x" would reach from files/
        (root / INFLIGHT).mkdir(parents=True, exist_ok=True)
        journal = (
            "a.txt\nnew.txt\nbig.txt\nhand.txt\naa-same.txt\ndir.txt\ngone.txt\n../x\n\n"
            "at-limit.txt\nmy notes.txt\n"
        )
        (root / INFLIGHT / dir).write_text(journal)
        outside.write_bytes(b"not a session's file")
        ws.objects.put_bytes(b"not a session's file")
        assert repair_inflight(ws, dir) == [
            "a.txt",
            "at-limit.txt",
            "big.txt",
            "my notes.txt",
            "new.txt",
        ]
        assert sorted(os.listdir(files)) == [
            "a.txt",
            "aa-same.txt",
            "at-limit.txt",
            "dir.txt",
            "hand.txt",
        ]
        assert (files / "a.txt").read_bytes() == b"v1"
        assert (files / "at-limit.txt").read_bytes() == b"l" * 100
        assert (files / "aa-same.txt").read_bytes() == b"as recorded"
        assert (files / "hand.txt").read_bytes() == b"typed since by a person"
        assert outside.read_bytes() == b"not a session's file"
        assert not (root / INFLIGHT / dir).exists()
        assert repair_inflight(ws, dir) == []  # no list: nothing to do


def test_a_full_disk_at_the_list_stops_the_store_before_any_copy(small_disk: Path) -> None:
    from conftest import fill_disk
    from spellfs import SpellError
    from spellfs.model.inflight import INFLIGHT
    from spellfs.workspace import init_workspace

    root = small_disk / "ws"
    init_workspace(root)
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="s")
        ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
        dir = ws.sessions.resolve(sid)
        before = (root / "sessions" / dir / "artifacts.yaml").read_bytes()
        fill_disk(small_disk)
        with pytest.raises(SpellError) as info:
            ws.artifacts.store(sid, "user_input", "a.txt", b"v2")
        assert str(info.value) == (
            f"cannot write {INFLIGHT}/{dir}: No space left on device"
            " (free some space and retry; nothing stored before this was touched)"
        )
        assert (root / "sessions" / dir / "files" / "a.txt").read_bytes() == b"v1"
        assert (root / "sessions" / dir / "artifacts.yaml").read_bytes() == before
        assert not (root / INFLIGHT / dir).exists()
        os.unlink(small_disk / "filler")
        ws.artifacts.store(sid, "user_input", "a.txt", b"v2")
        assert ws.artifacts.get(sid, "a.txt")["content"] == b"v2"


def test_a_store_failing_in_a_later_chunk_puts_back_that_chunk_only(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="s")
        dir = ws.sessions.resolve(sid)
        calls: list[str] = []

        def second_append_fails(rel: str, data: bytes) -> None:
            calls.append(rel)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")

        before_appends(monkeypatch, ws, second_append_fails)
        items = [("t", f"f{i:05d}.txt", b"%d" % i, None) for i in range(CHUNK_RECORDS + 10)]
        with pytest.raises(OSError):
            ws.artifacts.store_many(sid, items)
        monkeypatch.undo()
        files = ws.root / "sessions" / dir / "files"
        first_chunk = {name for _, name, _, _ in items[:CHUNK_RECORDS]}
        assert set(os.listdir(files)) == first_chunk  # the failed chunk's copies are gone
        assert ws.worktree.scan(dir).clean


def test_a_failed_store_whose_repair_fails_too_keeps_its_list_for_the_next_command(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list is what lets a later command put the copies back: it is emptied at a commit,
    never removed while it still names uncommitted copies."""
    from spellfs.model import inflight as module

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="s")
        dir = ws.sessions.resolve(sid)
        ws.artifacts.store(sid, "user_input", "a.txt", b"v1")

        def append_fails(rel: str, data: bytes) -> None:
            raise OSError(28, "No space left on device")

        def repair_fails(ws_: Workspace, dir_: str) -> list[str]:
            raise OSError(28, "No space left on device")

        before_appends(monkeypatch, ws, append_fails)
        monkeypatch.setattr(module, "repair_inflight", repair_fails)
        with pytest.raises(OSError):
            ws.artifacts.store(sid, "user_input", "a.txt", b"v2 never recorded")
        monkeypatch.undo()
        files = root / "sessions" / dir / "files"
        assert (files / "a.txt").read_bytes() == b"v2 never recorded"  # the copy is there ...
        assert module.pending(ws, dir)  # ... and listed
    with Workspace.open(root) as later:  # the next command puts it back, not records it
        assert later.worktree.scan(dir).clean
        assert (files / "a.txt").read_bytes() == b"v1"
        assert not module.pending(later, dir)
        assert [v["version"] for v in later.artifacts.list(sid)] == [1]


def test_a_memory_workspace_store_writes_no_list_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A memory workspace has no folder: its stores keep no in-flight list on disk (not under
    the current folder either)."""
    monkeypatch.chdir(tmp_path)
    with Workspace.in_memory() as ws:
        sid = ws.sessions.create(name="m")
        ws.artifacts.store(sid, "user_input", "a.txt", b"one")
        ws.artifacts.store_many(sid, [("t", f"f{i}.txt", b"%d" % i, None) for i in range(3)])
        assert [a["name"] for a in ws.artifacts.list(sid)] == [
            "a.txt",
            "f0.txt",
            "f1.txt",
            "f2.txt",
        ]
    assert list(tmp_path.iterdir()) == []


def test_a_list_cut_inside_a_character_is_still_repaired(ws: Workspace) -> None:
    """A crash while the list was written can leave its last name cut inside a multi-byte
    character: the names before it are put back all the same (the cut one is no name)."""
    from spellfs.model.inflight import INFLIGHT, pending

    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
    dir = ws.sessions.resolve(sid)
    files = ws.root / "sessions" / dir / "files"
    ws.objects.put_bytes(b"v2 never recorded")
    (files / "a.txt").write_bytes(b"v2 never recorded")
    (ws.root / INFLIGHT / dir).write_bytes("a.txt\nrésumé.txt\n".encode()[:8])  # "a.txt\nr\xc3"
    assert pending(ws, dir)
    wc = ws.worktree.scan(dir)
    assert wc.phantoms == ["a.txt"] and not wc.modified  # put back, not taken for an edit
    assert (files / "a.txt").read_bytes() == b"v1"
    assert not pending(ws, dir)


_KILL_RESTORE = r"""
import os, signal, sys
from spellfs.history.restores import Restores

# (a shell without job control starts background jobs with SIGINT ignored, and Python then
# keeps it ignored: as a terminal's Ctrl-C, it must raise KeyboardInterrupt here)
signal.signal(signal.SIGINT, signal.default_int_handler)

real, calls, sig = Restores._materialize, [], getattr(signal, sys.argv[1])


def materialize(self, dir, rec, *rest):  # the restore's copy-writing: its records have landed
    calls.append(rec["name"])
    if len(calls) == 3:  # a few copies rewritten, the rest not yet
        os.kill(os.getpid(), sig)
    return real(self, dir, rec, *rest)


Restores._materialize = materialize
from spellfs.cli import entry

sys.argv = ["spell", *sys.argv[2:]]
entry()
"""


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_restore_killed_after_its_records_leaves_no_hand_edits(
    spell, root: Path, tmp_path: Path, sig: str
) -> None:
    """Red-team F6: `spell restore` interrupted after appending its records but before rewriting
    the `files/` copies. The next command finishes the copies from the records; none of the old
    copies is shown as a hand edit, and `spell save` records none (the restore stays done)."""
    import sys

    sid = spell("-w", str(root), "new", "bulk").stdout.decode().strip()
    src = tmp_path / "src"
    src.mkdir()
    names = [f"f{i:02d}.txt" for i in range(12)]
    for rnd in ("A", "B"):
        for i, name in enumerate(names):
            (src / name).write_text(f"file {i} round {rnd}\n" * 20)
        assert spell("-w", str(root), "add", sid, str(src)).returncode == 0
        assert spell("-w", str(root), "save", sid, "-m", rnd).returncode == 0
    [dir] = os.listdir(root / "sessions")
    records = root / "sessions" / dir / "artifacts.yaml"
    before = records.read_text().count("\n")
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_RESTORE, sig, "-w", str(root), "restore", sid, "1"],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode != 0, proc.stderr.decode()
    assert records.read_text().count("\n") == before + len(names)  # its records landed
    fdir = root / "sessions" / dir / "files"
    if sig == "SIGKILL":  # the old copies are still there until the next command
        assert sum("round B" in (fdir / n).read_text() for n in names) >= len(names) - 3
    status = json.loads(spell("-w", str(root), "status", "--json").stdout)["sessions"][0]
    assert status["unrecorded"] == {"modified": [], "added": [], "deleted": []}
    for i, name in enumerate(names):  # files/ holds the restored checkpoint
        assert (fdir / name).read_text() == f"file {i} round A\n" * 20, name
    saved = spell("-w", str(root), "save", sid, "-m", "next")
    assert saved.returncode == 0 and "recorded hand changes" not in saved.stdout.decode()
    assert '"created_by": "hand"' not in records.read_text()
    assert spell("-w", str(root), "cat", sid, "f01.txt").stdout == b"file 1 round A\n" * 20
    assert spell("-w", str(root), "fsck").stdout.decode().rstrip().endswith("ok")


def test_a_store_after_a_killed_add_puts_its_copies_back_first(
    spell, root: Path, tmp_path: Path
) -> None:
    """The next command after a killed add may be another store into the session: it emptied
    the list the killed add left, unrepaired, so that add's copies stayed as hand edits
    (red-team 5, F5)."""
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
    sid = spell("-w", str(root), "new", "bulk").stdout.decode().strip()
    files = _many(tmp_path, 6 * CHUNK_RECORDS)
    code, fdir = _interrupt_add(root, sid, files, signal.SIGKILL, tmp_path / "out.txt")
    assert code != 0
    acked = _acknowledged(tmp_path / "out.txt")
    assert set(os.listdir(fdir)) - acked  # copies of the chunk killed, not acknowledged
    other = tmp_path / "other.txt"
    other.write_text("the next store\n")
    assert spell("-w", str(root), "add", sid, str(other)).returncode == 0  # the next command
    status = json.loads(spell("-w", str(root), "status", "--json").stdout)["sessions"][0]
    assert status["unrecorded"] == {"modified": [], "added": [], "deleted": []}
    assert set(os.listdir(fdir)) == acked | {"other.txt"}


@pytest.mark.parametrize("outer", ["batch", "single that takes the batch path"])
def test_a_store_inside_a_store_leaves_the_list_empty_and_a_later_hand_edit_stays(
    ws: Workspace, outer: str
) -> None:
    """An AfterArtifactStore hook stores another artifact while the outer store holds the list:
    its name joined the list after the outer store's last commit. The list is emptied when the
    outer store ends, so a hand edit made later (even to content the store holds) is recorded
    by the next command, not put back as a killed store's copy."""
    from spellfs.model.inflight import INFLIGHT

    sid = ws.sessions.create(name="s")
    dir = ws.sessions.resolve(sid)
    files = ws.root / "sessions" / dir / "files"
    if outer != "batch":
        ws.artifacts.store(sid, "t", "a.txt", b"v1")  # a copy there: the batch path
    done: list[int] = []

    def hook(ctx: dict) -> None:
        if not done:
            done.append(1)
            ws.artifacts.store(sid, "t", "x.txt", b"nested")

    ws.hooks.register("AfterArtifactStore", hook)
    if outer == "batch":
        ws.artifacts.store_many(sid, [("t", "a.txt", b"AAA", None), ("t", "b.txt", b"B", None)])
    else:
        ws.artifacts.store(sid, "t", "a.txt", b"AAA")
    assert done and ws.artifacts.get(sid, "x.txt")["content"] == b"nested"
    assert (ws.root / INFLIGHT / dir).read_bytes() == b""
    (files / "x.txt").write_bytes(b"AAA")  # by hand: content a record of a.txt holds
    with Workspace.open(ws.root) as again:  # the next command
        assert list(again.worktree.scan(dir).modified) == ["x.txt"]
    assert (files / "x.txt").read_bytes() == b"AAA"
