"""A bulk add written by two processes (spellfs/model/twin.py): the same records, copies and
objects as one process writes; the twin's failure or death fails its chunk and loses nothing
acknowledged; it never outlives `spell add`, and never writes a name twice from a stale view."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SPELL, before_appends, run_spell
from spellfs import Workspace, init_workspace
from spellfs.model import artifact_writes, twin
from spellfs.model.artifact_writes import CHUNK_RECORDS, TWIN_FROM
from spellfs.store import disk_error


def _files(tmp: Path, n: int, size: int = 0) -> list[str]:
    src = tmp / "src"
    src.mkdir()
    for i in range(n):
        body = f"file {i}\n".encode() + (os.urandom(size) if size else b"")
        (src / f"f{i:05d}.txt").write_bytes(body)
    return sorted(str(p) for p in src.iterdir())


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pid of every twin forked during the test."""
    pids: list[int] = []
    made = twin.Twin.__init__

    def spy(self, *args, **kwargs) -> None:
        made(self, *args, **kwargs)
        pids.append(self.pid)

    monkeypatch.setattr(twin.Twin, "__init__", spy)
    return pids


def _open(root: Path) -> Workspace:
    init_workspace(root)
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
    return Workspace.open(root)


def _content(ws: Workspace, sid: str) -> dict:
    """What a user sees of a session: each record's name, version, hash, size and mime type,
    with its object's bytes, which its files/ copy holds too; nothing unrecorded; fsck clean."""
    dir = ws.sessions.resolve(sid)
    files = ws.root / "sessions" / dir / "files"
    seen = {}
    for rec in ws.log(dir).refresh().live():
        body = ws.objects.get(rec["hash"])
        seen[rec["name"]] = tuple(rec[k] for k in ("version", "hash", "size", "mime_type", "seq"))
        assert (files / rec["name"]).read_bytes() == body
    assert sorted(os.listdir(files)) == sorted(seen)
    status = json.loads(run_spell("-w", str(ws.root), "status", "--json").stdout)
    assert status["sessions"][0]["unrecorded"] == {"modified": [], "added": [], "deleted": []}
    assert json.loads(run_spell("-w", str(ws.root), "fsck", "--json").stdout)["ok"]
    return seen


def test_a_bulk_add_by_two_processes_stores_what_one_process_stores(
    tmp_path: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path, CHUNK_RECORDS * 2 + 301, size=40)
    results = []
    for split in (False, True):
        monkeypatch.setattr(artifact_writes, "TWIN_FROM", TWIN_FROM if split else 10**9)
        with _open(tmp_path / f"w{split}") as ws:
            sid = ws.sessions.create(name="bulk")
            acked: list[dict] = []
            ws.artifacts.store_files(sid, paths, "user_input", on_commit=acked.extend)
            assert [a["sequence"] for a in acked] == list(range(1, len(paths) + 1))
            results.append(_content(ws, sid))
    assert len(forks) == 1  # the second workspace's add forked one twin for all three chunks
    assert results[0] == results[1]


def test_an_error_in_the_twin_fails_its_chunk_and_puts_back_its_copies(
    tmp_path: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path, CHUNK_RECORDS * 3)
    parent = os.getpid()
    materialize = artifact_writes.ArtifactWrites._materialize
    failing = "f01501.txt"  # the second chunk, an odd place in it: the twin's

    def full_in_the_twin(self, dir, name, *args, **kwargs):
        if name == failing and os.getpid() != parent:
            raise disk_error(OSError(errno.ENOSPC, "No space left"), f"sessions/{dir}/files/{name}")
        return materialize(self, dir, name, *args, **kwargs)

    monkeypatch.setattr(artifact_writes.ArtifactWrites, "_materialize", full_in_the_twin)
    with _open(tmp_path / "w") as ws:
        sid = ws.sessions.create(name="bulk")
        acked: list[dict] = []
        with pytest.raises(Exception, match=f"cannot write .*{failing}: No space left on device"):
            ws.artifacts.store_files(sid, paths, "user_input", on_commit=acked.extend)
        assert len(forks) == 1
        assert len(acked) == CHUNK_RECORDS  # the first chunk, acknowledged and kept
        first = {Path(p).name for p in paths[:CHUNK_RECORDS]}
        assert set(_content(ws, sid)) == first  # the second chunk's copies, both halves, put back
    with pytest.raises(ProcessLookupError):  # and the twin is gone, reaped
        os.kill(forks[0], 0)


def test_a_full_disk_when_the_list_turns_to_the_next_chunk_fails_the_add_and_loses_nothing(
    tmp_path: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a chunk's append, the in-flight list becomes the next chunk's names (the twin is
    writing them already) in one rename. When the disk is full there: one error, the chunk
    appended is kept, the next chunk's copies are put back (the list still names them), and
    no temporary list is left behind."""
    paths = _files(tmp_path, CHUNK_RECORDS * 3)
    real = os.replace

    def full(src, dst, *args, **kwargs):
        if ".inflight." in os.fspath(src):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    with _open(tmp_path / "w") as ws:
        sid = ws.sessions.create(name="bulk")
        with pytest.raises(Exception, match="^cannot write .spell/inflight/.*: No space left"):
            ws.artifacts.store_files(sid, paths, "user_input")
        monkeypatch.undo()
        assert len(forks) == 1
        first = {Path(p).name for p in paths[:CHUNK_RECORDS]}
        assert set(_content(ws, sid)) == first  # appended, so kept; the next one put back
        left = [n for n in os.listdir(ws.storage.tmpdir) if n.startswith(".inflight.")]
        assert left == []  # the replacement list, removed (the killed twin's temps: fsck's)


def test_a_name_stored_twice_in_a_batch_is_written_by_one_process(
    tmp_path: Path, forks: list[int]
) -> None:
    """The twin's view of the records stops at the fork: its copy of a name the batch stored in
    an earlier chunk would look like a hand edit to it, and the later version never be written."""
    items = [("t", f"a{i:05d}.txt", b"%d" % i, None) for i in range(CHUNK_RECORDS * 2)]
    items[1] = ("t", "dup.txt", b"first", None)  # the twin's place in chunk one ...
    items[CHUNK_RECORDS + 1] = ("t", "dup.txt", b"second", None)  # ... and in chunk two
    with _open(tmp_path / "w") as ws:
        sid = ws.sessions.create(name="bulk")
        ws.artifacts.store_many(sid, items)
        assert forks == []
        dir = ws.sessions.resolve(sid)
        assert (ws.root / "sessions" / dir / "files" / "dup.txt").read_bytes() == b"second"
        assert _content(ws, sid)["dup.txt"][0] == 2


def _twin_of(pid: int, timeout: float = 60) -> int:
    """The pid of the child process ``pid`` forked (its twin), once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            break
        if children:
            return int(children[0])
        time.sleep(0.001)
    raise AssertionError("spell add forked no twin")


def _gone(pid: int, timeout: float = 10) -> bool:
    """Whether ``pid`` ended (no process, or a zombie waiting to be reaped) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def _bulk_add(root: Path, tmp_path: Path, n: int) -> tuple[subprocess.Popen, str, Path]:
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
    sid = subprocess.run(
        [*SPELL, "-w", str(root), "new", "bulk"], capture_output=True, check=True
    ).stdout.decode()
    src = tmp_path / "src"
    _files(tmp_path, n)
    out = tmp_path / "out.txt"
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [*SPELL, "-w", str(root), "add", sid.strip(), str(src)],
            stdout=f,
            stderr=subprocess.PIPE,
            # as from a terminal: a suite started in the background (nohup, `&`) ignores SIGINT
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    return proc, sid.strip(), out


def _check_nothing_lost(spell, root: Path, sid: str, out: Path, exact: bool = True) -> set[str]:
    """Every acknowledged file is stored, files/ holds exactly what is stored, and none is a
    hand edit. ``exact``: nothing else is stored either (the add ended by itself and reported
    each chunk it committed); an add killed or interrupted between a chunk's commit and its
    report stored more than it said, which loses nothing."""
    acked = {line.split()[1] for line in out.read_text().splitlines()}
    show = json.loads(spell("-w", str(root), "show", sid, "--json").stdout)
    stored = {a["name"] for a in show["artifacts"]}
    assert acked <= stored and (stored == acked or not exact)
    status = json.loads(spell("-w", str(root), "status", "--json").stdout)
    assert status["sessions"][0]["unrecorded"] == {"modified": [], "added": [], "deleted": []}
    [dir] = os.listdir(root / "sessions")
    assert set(os.listdir(root / "sessions" / dir / "files")) == stored
    assert json.loads(spell("-w", str(root), "fsck", "--json").stdout)["ok"]
    return acked


def test_the_twin_killed_mid_add_fails_the_add_in_one_line_and_loses_nothing(
    spell, root: Path, tmp_path: Path
) -> None:
    proc, sid, out = _bulk_add(root, tmp_path, CHUNK_RECORDS * 8)
    child = _twin_of(proc.pid)
    time.sleep(0.05)  # (into a chunk, or between two: either way its chunk must fail whole)
    os.kill(child, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    lines = err.decode().strip().splitlines()
    if proc.returncode == 0:  # the add ended before the kill landed: nothing to check here
        pytest.fail("spell add finished before its twin was killed; use more files")
    assert lines[-1] == (
        "Error: the second writer process of this store stopped (killed by signal 9)"
    ), lines
    assert "Traceback" not in err.decode()
    acked = _check_nothing_lost(spell, root, sid, out)
    assert len(acked) % CHUNK_RECORDS == 0 and len(acked) < CHUNK_RECORDS * 8


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_the_twin_never_outlives_spell_add(spell, root: Path, tmp_path: Path, sig: int) -> None:
    proc, sid, out = _bulk_add(root, tmp_path, CHUNK_RECORDS * 8)
    child = _twin_of(proc.pid)
    time.sleep(0.05)
    os.kill(child, signal.SIGSTOP)  # (stopped, it would wait for ever unless killed)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    if sig == signal.SIGINT:  # Ctrl-C says so, as every command does (click said "Aborted.", 1)
        assert (proc.returncode, err.decode().splitlines()[-1]) == (130, "Interrupted.")
    assert _gone(child)  # killed with its parent, so it writes nothing after the next repair
    _check_nothing_lost(spell, root, sid, out, exact=False)


def test_a_disk_filling_under_a_twin_add_is_one_error_and_keeps_what_was_acknowledged(
    small_disk: Path, tmp_path: Path, spell
) -> None:
    root = small_disk / "w"
    spell("init", str(root))
    paths = _files(tmp_path, CHUNK_RECORDS * 4, size=4096)
    free = os.statvfs(small_disk)
    with open(small_disk / "filler", "wb") as f:  # room for about half the batch
        f.write(b"\0" * (free.f_bavail * free.f_frsize - (24 << 20)))
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
    sid = spell("-w", str(root), "new", "bulk").stdout.decode().strip()
    out = tmp_path / "out.txt"
    with out.open("wb") as f:
        r = subprocess.run(
            [*SPELL, "-w", str(root), "add", sid, str(tmp_path / "src")], stdout=f, stderr=-1
        )
    assert len(paths) == CHUNK_RECORDS * 4
    assert r.returncode != 0
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "Traceback" not in err[0]
    os.remove(small_disk / "filler")  # room again, for the checks' own writes
    _check_nothing_lost(spell, root, sid, out)


def test_spell_add_on_a_terminal_draws_its_bar_and_still_forks_a_twin(
    spell, root: Path, tmp_path: Path
) -> None:
    """rich's bar drew from a thread of its own, and a process with a second thread forks no
    twin: an add typed at a terminal was written by one process only."""
    import pty
    import threading

    master, slave = pty.openpty()
    shown = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
        sid = spell("-w", str(root), "new", "bulk").stdout.decode().strip()
        _files(tmp_path, CHUNK_RECORDS * 6)
        with (tmp_path / "out.txt").open("wb") as out:
            proc = subprocess.Popen(
                [*SPELL, "-w", str(root), "add", sid, str(tmp_path / "src")],
                stdin=slave,
                stdout=out,
                stderr=slave,
                env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
            )
            child = _twin_of(proc.pid)
            assert proc.wait(120) == 0
    finally:
        os.close(slave)
        reader.join(5)
        os.close(master)
    assert child != proc.pid
    assert b"adding" in bytes(shown)  # the bar was drawn on the terminal
    assert len((tmp_path / "out.txt").read_text().splitlines()) == CHUNK_RECORDS * 6
    _check_nothing_lost(spell, root, sid, tmp_path / "out.txt")


def test_a_fork_refused_leaves_the_whole_add_to_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused() -> int:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    paths = _files(tmp_path, CHUNK_RECORDS + 10)
    with _open(tmp_path / "w") as ws:
        sid = ws.sessions.create(name="bulk")
        ws.artifacts.store_files(sid, paths, "user_input")
        assert len(_content(ws, sid)) == len(paths)


def test_a_process_running_other_threads_adds_in_bulk_alone(
    tmp_path: Path, forks: list[int]
) -> None:
    """A fork copies one thread: a lock another thread of a web view or a watcher held at that
    moment would stay held in the twin for ever. With another thread running, no twin."""
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        paths = _files(tmp_path, CHUNK_RECORDS + 10)
        with _open(tmp_path / "w") as ws:
            sid = ws.sessions.create(name="bulk")
            ws.artifacts.store_files(sid, paths, "user_input")
            assert forks == []
            assert len(_content(ws, sid)) == len(paths)
    finally:
        stop.set()
        other.join()


def test_a_program_that_ignores_sigchld_still_adds_in_bulk(
    tmp_path: Path, forks: list[int]
) -> None:
    """With SIGCHLD ignored the kernel reaps the twin itself, and waiting for it finds none."""
    paths = _files(tmp_path, CHUNK_RECORDS + 10)
    was = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        with _open(tmp_path / "w") as ws:
            sid = ws.sessions.create(name="bulk")
            ws.artifacts.store_files(sid, paths, "user_input")
    finally:
        signal.signal(signal.SIGCHLD, was)
    assert len(forks) == 1
    with Workspace.open(tmp_path / "w") as ws:
        assert len(_content(ws, sid)) == len(paths)


def test_a_hook_storing_into_the_session_keeps_the_next_chunk_listed(
    tmp_path: Path, forks: list[int]
) -> None:
    """An AfterArtifactStore hook's store (an audit note, say) ran inside the bulk add's and
    emptied its in-flight list while the twin wrote the next chunk: a kill then left those
    copies as hand edits (red-team 5, F1)."""
    paths = _files(tmp_path, CHUNK_RECORDS * 3)
    listed: list[set[str]] = []
    with _open(tmp_path / "w") as ws:
        sid = ws.sessions.create(name="bulk")
        dir = ws.sessions.resolve(sid)
        lst = ws.root / ".spell" / "inflight" / dir

        def after(ctx: dict) -> None:
            if ctx["data"]["name"] == "f00000.txt":  # the first chunk announced
                ws.artifacts.store(sid, "system_output", "audit.txt", b"bulk add seen\n")
                listed.append(set(lst.read_text().split()))

        ws.hooks.register("AfterArtifactStore", after)
        ws.artifacts.store_files(sid, paths, "user_input")
        assert len(forks) == 1
        chunk_two = {Path(p).name for p in paths[CHUNK_RECORDS : 2 * CHUNK_RECORDS]}
        assert chunk_two <= listed[0]  # still listed while the twin writes it
        assert "audit.txt" in listed[0]  # the hook's copy was listed too, before it was written
        assert len(_content(ws, sid)) == len(paths) + 1
        assert lst.stat().st_size == 0


def test_a_hook_store_that_fails_puts_back_its_own_copy_only(
    tmp_path: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path, CHUNK_RECORDS * 2)
    with _open(tmp_path / "w") as ws:
        sid = ws.sessions.create(name="bulk")

        def full_for_the_audit(rel: str, data: bytes) -> None:
            if b'"audit.txt"' in data:
                raise disk_error(OSError(errno.ENOSPC, "No space left"), rel)

        before_appends(monkeypatch, ws, full_for_the_audit)
        failed = []

        def after(ctx: dict) -> None:
            if ctx["data"]["name"] == "f00000.txt":
                try:
                    ws.artifacts.store(sid, "system_output", "audit.txt", b"bulk add seen\n")
                except Exception as exc:  # a hook that goes on without its note
                    failed.append(str(exc))

        ws.hooks.register("AfterArtifactStore", after)
        ws.artifacts.store_files(sid, paths, "user_input")
        assert failed and "No space left" in failed[0]
        assert len(forks) == 1
        seen = _content(ws, sid)  # every file of the add, and no audit.txt copy left behind
        assert set(seen) == {Path(p).name for p in paths}
