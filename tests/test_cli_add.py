"""`spell add`: directories recursively with .spellignore, linear batches, chunked commits."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

from spellfs import Workspace
from spellfs.maintenance.checks import fsck

from conftest import SPELL, run_spell


def _session(root: Path) -> str:
    out = run_spell("-w", str(root), "new", "bulk")
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().strip()


def test_add_directory_recurses_and_honours_spellignore(root: Path) -> None:
    sid = _session(root)
    data = root.parent / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    (data / "node_modules").mkdir()
    (data / "top.md").write_text("top")
    (data / "sub" / "mid.txt").write_text("mid")
    (data / "sub" / "deeper" / "low.bin").write_bytes(bytes(range(256)))
    (data / "sub" / "cache.pyc").write_bytes(b"ignored")
    (data / "node_modules" / "x.js").write_text("ignored dir")
    (data / ".env").write_text("SECRET=1")
    (root / ".spellignore").write_text("*.pyc\nnode_modules/\n")
    out = run_spell("-w", str(root), "add", sid, str(data))
    assert out.returncode == 0, out.stderr
    err = out.stderr.decode()
    assert "cache.pyc" in err and "node_modules" in err and ".env" in err
    with Workspace.open(root) as ws:
        names = {a["name"]: a for a in ws.artifacts.list(sid)}
        assert set(names) == {"top.md", "mid.txt", "low.bin"}
        assert ws.artifacts.get(sid, "low.bin")["content"] == bytes(range(256))
        dir = ws.sessions.resolve(sid)
    assert (root / "sessions" / dir / "files" / "mid.txt").read_text() == "mid"


def test_add_of_a_tree_nested_past_any_limit_is_one_line_and_stores_nothing(root: Path) -> None:
    """1,100 folders deep (Python's os.walk recurses: this crashed with a traceback)."""
    import os

    sid = _session(root)
    (root.parent / "data").mkdir()
    (root.parent / "data" / "top.txt").write_text("top")
    fd = os.open(root.parent / "data", os.O_RDONLY)
    for _ in range(1100):  # (by descriptor: the path outgrows what one system call takes)
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    try:
        out = run_spell("-w", str(root), "add", sid, str(root.parent / "data"))
    finally:
        _remove_deep(root.parent / "data")  # (pytest's clean-up recurses too)
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("Error: too deeply nested: ")
    with Workspace.open(root) as ws:
        assert ws.artifacts.list(sid) == []


def _remove_deep(top: Path) -> None:
    """Remove a chain of folders named ``d`` one level at a time, from the top."""
    while (top / "d").exists():
        if (top / "d" / "d").exists():
            (top / "d" / "d").rename(top / "x")
            (top / "d").rmdir()
            (top / "x").rename(top / "d")
        else:
            (top / "d").rmdir()


def test_add_directory_refuses_two_files_of_one_name_before_storing(root: Path) -> None:
    sid = _session(root)
    data = root.parent / "data"
    (data / "a").mkdir(parents=True)
    (data / "b").mkdir()
    (data / "a" / "same.txt").write_text("one")
    (data / "b" / "same.txt").write_text("two")
    (data / "other.txt").write_text("x")
    out = run_spell("-w", str(root), "add", sid, str(data))
    assert out.returncode == 2
    assert "same.txt" in out.stderr.decode() and "Traceback" not in out.stderr.decode()
    with Workspace.open(root) as ws:
        assert ws.artifacts.list(sid) == []


def test_add_from_the_workspace_root_never_takes_its_own_store(root: Path) -> None:
    sid = _session(root)
    (root / "notes.md").write_text("hello")
    with Workspace.open(root) as ws:
        ws.artifacts.store(sid, "tool_result", "inside.txt", "already an artifact")
    out = run_spell("-w", str(root), "add", sid, str(root))
    assert out.returncode == 0, out.stderr
    with Workspace.open(root) as ws:
        names = sorted(a["name"] for a in ws.artifacts.list(sid))
    # spell.yaml and state.yaml are plain files there; nothing from .spell/ or sessions/ is
    assert "notes.md" in names and "inside.txt" in names
    assert not any(len(n) >= 60 for n in names)  # no object ids
    assert names.count("inside.txt") == 1


def test_add_directory_never_follows_a_file_link_inside_it(root: Path, tmp_path: Path) -> None:
    """A folder from a clone or an archive may hold `key -> ~/.ssh/id_rsa` or a link into
    sessions/ or .spell/: adding the folder must not copy what the link points at into a
    session (and from there into git and remotes). Links to directories were never
    entered; links to files are skipped the same way, and said so."""
    sid = _session(root)
    secret = tmp_path / "secret.txt"
    secret.write_text("PRIVATE KEY")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a")
    (data / "key").symlink_to(secret)
    (data / "records").symlink_to(next((root / "sessions").iterdir()) / "session.yaml")
    out = run_spell("-w", str(root), "add", sid, str(data))
    assert out.returncode == 0, out.stderr
    err = out.stderr.decode()
    assert "key" in err and "records" in err and "link" in err
    with Workspace.open(root) as ws:
        assert [a["name"] for a in ws.artifacts.list(sid)] == ["a.txt"]
    out = run_spell("-w", str(root), "add", sid, str(data / "key"))  # named: the user's choice
    assert out.returncode == 0, out.stderr


def test_repeated_names_in_one_batch_number_their_versions_and_files_holds_the_last(ws) -> None:
    sid = ws.sessions.create(name="s")
    items = [("tool_result", f"n{i % 3}.txt", f"v{i}", None) for i in range(40)]
    ws.artifacts.store_many(sid, items)
    for k in range(3):
        versions = [i for i in range(40) if i % 3 == k]
        for number, i in enumerate(versions, 1):
            assert ws.artifacts.get(sid, f"n{k}.txt@{number}")["content"] == f"v{i}".encode()
        dir = ws.sessions.resolve(sid)
        assert (
            ws.root / "sessions" / dir / "files" / f"n{k}.txt"
        ).read_text() == f"v{versions[-1]}"


def test_interrupted_bulk_add_keeps_every_file_it_acknowledged(root: Path) -> None:
    """SIGKILL once some chunks are committed: each printed file reads back, fsck is clean."""
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
    sid = _session(root)
    data = root.parent / "data"
    data.mkdir()
    n = 6000
    for i in range(n):
        (data / f"f{i:05d}.txt").write_bytes(b"content %d" % i)
    proc = subprocess.Popen(
        [*SPELL, "-w", str(root), "add", sid, str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    acknowledged = []
    assert proc.stdout is not None
    for line in proc.stdout:
        acknowledged.append(line.decode())
        if len(acknowledged) >= 1000:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(acknowledged) >= 1000
    with Workspace.open(root) as ws:
        report = fsck(ws)
        assert report.ok, [p.detail for p in report.problems]
        for line in acknowledged:
            m = re.match(r"stored (\S+) as #(\d+)", line)
            assert m, line
            name = Path(m.group(1)).name
            i = int(name[1:6])
            assert ws.artifacts.get(sid, name)["content"] == b"content %d" % i


def test_add_names_what_is_not_a_regular_file_and_skips_it_inside_a_folder(root: Path) -> None:
    """A FIFO, a device and a folder were all "file not found" (red-team F9), and one FIFO
    in a folder stopped the whole add."""
    import os

    sid = _session(root)
    data = root.parent / "data"
    data.mkdir()
    os.mkfifo(data / "pipe")
    (data / "ok.txt").write_text("ok")
    for arg, what in [(data / "pipe", "a FIFO"), ("/dev/zero", "a character device")]:
        out = run_spell("-w", str(root), "add", sid, str(arg))
        assert out.returncode == 2
        assert out.stderr.decode() == f"Error: not a regular file: {arg} ({what}; store a file)\n"
    out = run_spell("-w", str(root), "add", sid, str(data))
    assert out.returncode == 0, out.stderr
    assert out.stderr.decode() == (
        f"skipped (not a regular file: a FIFO, socket or device): {data / 'pipe'}\n"
    )
    with Workspace.open(root) as ws:
        assert [a["name"] for a in ws.artifacts.list(sid)] == ["ok.txt"]


def test_spell_add_read_by_head_still_stores_every_file(spell, root: Path, tmp_path: Path) -> None:
    """`spell add S DIR | head -1`: the `stored` lines are a report; the add stopped after the
    chunk whose line found the reader gone, and said exit 0 (red-team 5, F2)."""
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
    sid = spell("-w", str(root), "new", "bulk").stdout.decode().strip()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3000):
        (src / f"f{i:05d}.txt").write_text(f"file {i}\n")
    proc = subprocess.Popen(
        [*SPELL, "-w", str(root), "add", sid, str(tmp_path / "src")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"stored f00000.txt as #1 ")
    proc.stdout.close()  # as `head -1` exits
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and err == b""
    show = json.loads(spell("-w", str(root), "show", sid, "--json").stdout)
    assert len(show["artifacts"]) == 3000
    status = json.loads(spell("-w", str(root), "status", "--json").stdout)
    assert status["sessions"][0]["unrecorded"] == {"modified": [], "added": [], "deleted": []}


def test_what_add_skips_is_named_escaped_and_its_own_files_never_stored(
    root: Path, spell, tmp_path: Path
) -> None:
    """A link to a folder gets its skipped line; names are escaped, never sent raw to the
    terminal; the workspace's own .spell/ and sessions/, named directly, are skipped; an add
    that skips everything says so and fails."""
    sid = spell("-w", str(root), "new", "s").stdout.decode().strip()
    src = tmp_path / "h"
    src.mkdir()
    (src / "c\x1bd").write_text("x")
    (src / "a\nb").write_text("x")
    (src / "ok.txt").write_text("ok")
    (src / "dirlink").symlink_to(tmp_path)
    r = spell("-w", str(root), "add", sid, str(src))
    err = r.stderr.decode()
    assert r.returncode == 0 and "\x1b" not in err and f"{src}/a\nb" not in err, err
    assert f"skipped (a link: add what it points at by name): {src}/dirlink\n" in err
    assert f"{src}/c\\x1bd\n" in err and f"{src}/a\\x0ab\n" in err
    [dir] = (root / "sessions").iterdir()
    for own in (root / ".spell", dir, root / ".spell" / "index.sqlite"):
        r = spell("-w", str(root), "add", sid, str(own))
        assert r.returncode == 2, r
        assert b"never artifacts" in r.stderr and b"nothing to add" in r.stderr
    assert sorted(p.name for p in (dir / "files").iterdir()) == ["ok.txt"]
    # an artifact's copy in a session's files/ is a file like any other: another session takes it
    other = spell("-w", str(root), "new", "other").stdout.decode().strip()
    r = spell("-w", str(root), "add", other, str(dir / "files" / "ok.txt"))
    assert r.returncode == 0 and r.stdout.startswith(b"stored ok.txt as #1"), r
    # an empty folder skips nothing: nothing to say, no failure
    (tmp_path / "empty").mkdir()
    r = spell("-w", str(root), "add", sid, str(tmp_path / "empty"))
    assert r.returncode == 0 and r.stderr == b"", r
