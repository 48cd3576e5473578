"""Hostile input: every parser either answers or raises a SpellError naming the problem."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spellfs import IntegrityError, ManifestError, SpellError, Workspace
from spellfs.model.manifest import load_manifest
from spellfs.store.records import RecordError, parse_records
from spellfs.store.yamlio import load_yaml

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_record_parser_never_crashes(data: bytes) -> None:
    try:
        for lineno, rec in parse_records(data, "artifacts.yaml"):
            assert isinstance(rec, dict) and lineno >= 1
    except RecordError as exc:
        assert str(exc).startswith("artifacts.yaml:")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_manifest_parser_never_crashes(text: str) -> None:
    try:
        m = load_manifest(text.encode("utf-8", "surrogatepass"), "sessions/x/session.yaml")
        assert set(m) >= {"id", "status", "tags"}
    except ManifestError as exc:
        assert str(exc).startswith("sessions/x/session.yaml")


def test_yaml_bomb_is_refused_quickly() -> None:
    t0 = time.process_time()  # CPU time: a busy machine does not stretch it
    with pytest.raises(ManifestError, match="refused"):
        load_yaml(BOMB, "state.yaml")
    assert time.process_time() - t0 < 5


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ManifestError, match="state.yaml"):
        load_yaml("a: " + "[" * 5000 + "]" * 5000, "state.yaml")


def test_bomb_in_state_file_leaves_workspace_usable(ws: Workspace) -> None:
    (ws.root / "state.yaml").write_text(BOMB)
    with pytest.raises(SpellError, match="state.yaml"):
        ws.state.get("a")
    sid = ws.sessions.create(name="still works")
    assert ws.sessions.get(sid)["name"] == "still works"
    assert (ws.root / "state.yaml").read_text() == BOMB


def test_huge_and_non_utf8_manifests_are_named(root: Path, spell) -> None:
    with Workspace.open(root) as ws:
        good = ws.sessions.create(name="good")
        bad = ws.sessions.create(name="bad")
        path = ws.root / ws.sessions.get(bad)["path"] / "session.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    r = spell("-w", str(root), "show", bad)
    assert r.returncode == 1 and b"session.yaml" in r.stderr and b"UTF-8" in r.stderr
    assert b"Traceback" not in r.stderr
    path.write_bytes(b"name: " + b"x" * (17 << 20) + b"\n")
    r = spell("-w", str(root), "show", bad)
    assert r.returncode == 1 and b"too large" in r.stderr
    r = spell("-w", str(root), "ls", "--json")
    assert r.returncode == 0 and good.encode() in r.stdout and bad.encode() not in r.stdout


def test_non_utf8_content_round_trips(ws: Workspace) -> None:
    sid = ws.sessions.create(name="bin")
    blob = bytes(range(256)) * 3
    ws.artifacts.store(sid, "tool_result", "blob.bin", blob)
    assert ws.artifacts.get(sid, "blob.bin")["content"] == blob
    assert (ws.root / ws.sessions.get(sid)["path"] / "files" / "blob.bin").read_bytes() == blob


# -- 1. a cloned repository carrying links under sessions/ -----------------------------
def _snapshot(tree: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(tree)): (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns)
        for p in sorted(tree.rglob("*"))
    }


def _git(cwd: Path, *args: str) -> str:
    import subprocess

    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": __import__("os").environ["PATH"],
        "HOME": str(cwd),
    }
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _one_line_error(proc, *needles: str) -> str:
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_a_clone_carrying_links_never_writes_or_reads_outside(tmp_path: Path, spell) -> None:
    """files -> ../../../../outside, a session dir -> outside, a record file -> outside: all
    refused."""
    import os

    outside = tmp_path / "outside"  # what the links point at: a session lookalike
    (outside / "files").mkdir(parents=True)
    (outside / "secret.txt").write_text("do not read\n")
    origin = tmp_path / "origin"
    assert spell("init", "--git", str(origin)).returncode == 0
    sids = {}
    for name in ("filelink", "dirlink", "loglink", "honest"):
        sids[name] = spell("-w", str(origin), "new", name).stdout.decode().strip()
        src = tmp_path / f"{name}.txt"
        src.write_text(f"content of {name}\n")
        assert spell("-w", str(origin), "add", sids[name], str(src)).returncode == 0
    dirs = {
        n: next(d.name for d in (origin / "sessions").iterdir() if d.name.endswith(s[:8]))
        for n, s in sids.items()
    }
    # The hostile commit: links where spellfs keeps its own files.
    s = origin / "sessions"
    import shutil

    shutil.rmtree(s / dirs["filelink"] / "files")
    os.symlink("../../../../outside/files", s / dirs["filelink"] / "files")
    shutil.copytree(s / dirs["dirlink"], outside / "dirlink-copy")
    shutil.rmtree(s / dirs["dirlink"])
    os.symlink("../../../outside/dirlink-copy", s / dirs["dirlink"])
    (s / dirs["loglink"] / "artifacts.yaml").unlink()
    os.symlink("../../../../outside/secret.txt", s / dirs["loglink"] / "artifacts.yaml")
    _git(origin, "add", "-A")
    _git(origin, "commit", "-qm", "hostile")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(origin), str(clone))
    before = _snapshot(outside)

    listing = spell("-w", str(clone), "ls")
    assert listing.returncode == 0, listing.stderr
    assert "honest" in listing.stdout.decode()
    _one_line_error(listing, f"sessions/{dirs['filelink']}/files is a symbolic link")
    new = tmp_path / "new.txt"
    new.write_text("new\n")
    for name in ("filelink", "dirlink", "loglink"):
        for args in (
            ("add", sids[name], str(new)),
            ("show", sids[name]),
            ("cat", sids[name], f"{name}.txt"),
        ):
            proc = spell("-w", str(clone), *args)
            assert proc.returncode != 0, (args, proc.stdout)
            _one_line_error(proc, "refused: sessions/", "symbolic link")
    assert spell("-w", str(clone), "add", sids["honest"], str(new)).returncode == 0
    check = spell("-w", str(clone), "fsck")
    assert check.returncode != 0
    report = check.stdout.decode() + check.stderr.decode()
    for name in ("filelink", "dirlink", "loglink"):
        assert dirs[name] in report and "symbolic link" in report, report
    assert "do not read" not in report
    commit = spell("-w", str(clone), "commit", "-m", "after")
    _one_line_error(commit)
    assert _snapshot(outside) == before


# -- 4b. links where spellfs keeps its own folders and caches -------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "tmp",
        "repair",
        "inflight",
        "replay",
        "locks",
        "runs",
        "agent_cache",
        "index.sqlite",
        "watch-cache.sqlite",
    ],
)
def test_a_link_under_dot_spell_is_never_written_or_swept_through(
    root: Path, spell, tmp_path: Path, name: str
) -> None:
    """A cloned repository (or a hand) puts a link where spellfs keeps a folder or a cache of its
    own: every command that would write, sweep or open there refuses it or leaves it alone,
    fsck names it, and what the link points at is never changed."""
    import os
    import time

    sid = spell("-w", str(root), "new", "s").stdout.decode().strip()
    script = tmp_path / "r.lua"
    script.write_text(f'Artifact.store("{sid}", "t", "r.txt", "hello")\n')
    assert spell("-w", str(root), "run", str(script)).returncode == 0
    victim = tmp_path / "victim"
    (victim / "project").mkdir(parents=True)
    for rel in ("notes.txt", "project/thesis.txt", "index.sqlite", "watch-cache.sqlite"):
        (victim / rel).write_text("important\n")
    old = time.time() - 7200  # older than any grace period of a stray-temp sweep
    for p in [victim / "notes.txt", victim / "project"]:
        os.utime(p, (old, old))
    target = victim / name if name.endswith(".sqlite") else victim
    place = root / ".spell" / name
    if place.is_dir():
        import shutil

        shutil.rmtree(place)
    else:
        place.unlink(missing_ok=True)
    place.symlink_to(target)
    before = _snapshot(victim)
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    for args in (
        ["add", sid, str(src)],
        ["run", str(script)],
        ["ls"],
        ["status"],
        ["save", sid, "-m", "c"],
        ["replay", sid[:8]],
        ["gc"],
        ["fsck", "--repair"],
    ):
        proc = spell("-w", str(root), *args)
        _one_line_error(proc)  # (no traceback; a refusal names the link)
        assert _snapshot(victim) == before, args
    report = spell("-w", str(root), "fsck")
    assert report.returncode != 0
    assert f".spell/{name}" in report.stdout.decode() + report.stderr.decode()
    assert _snapshot(victim) == before


@pytest.mark.parametrize("name", ["daemon.pid", "daemon.log", "git-head"])
@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_a_link_or_fifo_at_a_file_of_dot_spell_is_never_opened(
    tmp_path: Path, spell, name: str, kind: str
) -> None:
    """red-team 7: `.spell/daemon.pid`, `daemon.log` or `git-head` a link (`spell watch` wrote its
    pid line into the file it pointed at; `git-head -> /dev/zero` read until memory ran out) or
    a FIFO (`daemon status` waited for ever): refused in one line, the target unchanged."""
    import os

    root = tmp_path / "ws"
    assert spell("init", "--git", str(root)).returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    place = root / ".spell" / name
    place.unlink(missing_ok=True)
    if kind == "link":
        place.symlink_to(victim)
    else:
        os.mkfifo(place)
    if name == "git-head":
        commands = [["ls"], ["status"]]
    else:
        commands = [["daemon", "status"], ["daemon", "start"], ["daemon", "stop"]]
    for args in commands:
        proc = spell("-w", str(root), *args, timeout=60)
        _one_line_error(proc)
        assert victim.read_text() == "precious\n", args
        if b"Error:" in proc.stderr:
            assert f"refused: .spell/{name} is" in proc.stderr.decode(), proc.stderr
    spell("-w", str(root), "daemon", "stop", timeout=60)  # (none should be running)


def test_a_linked_dot_spell_is_refused_before_anything_is_swept(
    root: Path, spell, tmp_path: Path
) -> None:
    """``.spell`` itself moved away and linked: gc and repair refuse before they delete a stray
    temporary file there (they used to delete it, then refuse)."""
    import os
    import time

    spell("-w", str(root), "new", "s")
    moved = tmp_path / "moved"
    (root / ".spell").rename(moved)
    (root / ".spell").symlink_to(moved)
    (moved / "tmp").mkdir(exist_ok=True)
    stray = moved / "tmp" / "notes.txt"
    stray.write_text("important\n")
    old = time.time() - 7200
    os.utime(stray, (old, old))
    for args in (["gc"], ["fsck", "--repair"], ["fsck"]):
        proc = spell("-w", str(root), *args)
        assert proc.returncode != 0, args
        _one_line_error(proc)
        assert "refused: .spell is a symbolic link" in (proc.stdout + proc.stderr).decode(), args
        assert stray.read_text() == "important\n", args


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "outside-file"])
def test_a_fifo_or_link_in_place_of_an_object_is_never_read(
    root: Path, spell, tmp_path: Path, kind: str
) -> None:
    """A FIFO, or a link to /dev/zero or to a file outside, where a loose object should be: cat
    and fsck name it at once (they used to wait for ever, or stream /dev/zero), fsck --repair
    rebuilds the object from its files/ copy, and the outside file is never read or changed."""
    import os

    sid = spell("-w", str(root), "new", "s").stdout.decode().strip()
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(200_000))  # above the compression threshold: a loose object
    assert spell("-w", str(root), "add", sid, str(src)).returncode == 0
    [obj] = [
        p for p in (root / ".spell" / "objects").glob("??/*") if p.is_file() and len(p.name) > 40
    ]
    obj.unlink()
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    if kind == "fifo":
        os.mkfifo(obj)
    else:
        obj.symlink_to("/dev/zero" if kind == "dev-zero" else outside)
    cat = spell("-w", str(root), "cat", sid, "big.bin", timeout=30)
    assert cat.returncode != 0 and cat.stdout == b""
    _one_line_error(cat, "corrupt object", "not an object file")
    report = spell("-w", str(root), "fsck", timeout=30)
    assert report.returncode == 1 and b"not an object file" in report.stdout
    assert spell("-w", str(root), "fsck", "--repair", timeout=30).returncode == 0
    assert spell("-w", str(root), "cat", sid, "big.bin").stdout == src.read_bytes()
    assert obj.is_file() and not obj.is_symlink()
    assert outside.read_text() == "secret\n"


def test_an_object_that_decompresses_past_any_artifact_is_corrupt_not_read_whole(
    root: Path, spell, tmp_path: Path
) -> None:
    """A crafted object (131 KB on disk, gigabytes of zeros inside) in place of a stored one:
    reads stop at the largest content an artifact may have and say the object is corrupt
    (they used to decompress it all: 4 GB of memory for Artifact.get, 4 GB out of cat)."""
    import os

    import io

    import zstandard

    (root / "spell.yaml").write_text("sessions:\n  max_artifact_size: 1000000\n")
    sid = spell("-w", str(root), "new", "s").stdout.decode().strip()
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(200_000))
    assert spell("-w", str(root), "add", sid, str(src)).returncode == 0
    [obj] = [p for p in (root / ".spell" / "objects").glob("??/*") if len(p.name) > 40]
    limit = 64 << 20  # the floor of the bound: max_artifact_size is lower here
    sink = io.BytesIO()  # streamed: the frame does not say its size (read in chunks, bounded)
    with zstandard.ZstdCompressor(level=19).stream_writer(sink, closefd=False) as z:
        for _ in range(65):
            z.write(bytes(1 << 20))
    bomb = sink.getvalue()
    obj.chmod(0o644)
    obj.write_bytes(bomb)
    cat = spell("-w", str(root), "cat", sid, "a.bin", timeout=60)
    assert cat.returncode == 1 and len(cat.stdout) <= limit
    _one_line_error(cat, "decompresses to more than 67,108,864 bytes")
    with Workspace.open(root) as ws:
        with pytest.raises(IntegrityError, match="decompresses to more than"):
            ws.objects.get(obj.parent.name + obj.name)
    report = spell("-w", str(root), "fsck", timeout=60)
    assert report.returncode == 1 and b"decompresses to more than" in report.stdout
    assert spell("-w", str(root), "fsck", "--repair", timeout=60).returncode == 0
    assert spell("-w", str(root), "cat", sid, "a.bin").stdout == src.read_bytes()


# -- 5. fsck --repair racing a writer ------------------------------------------------------
def test_repair_racing_a_storing_script_loses_nothing(root: Path, spell, tmp_path: Path) -> None:
    """Garbage lines keep arriving, `fsck --repair` keeps rewriting the file, a script keeps
    storing."""
    import os
    import subprocess
    import sys

    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 100000\n")
    sid = spell("-w", str(root), "new", "race").stdout.decode().strip()
    dir = next(d.name for d in (root / "sessions").iterdir())
    log = root / "sessions" / dir / "artifacts.yaml"
    script = tmp_path / "store.lua"
    script.write_text(  # stores until told to stop (State reads state.yaml afresh on a change)
        "local i = 0\n"
        f'repeat i = i + 1; Artifact.store("{sid}", "user_input", "a" .. i, "x" .. i)\n'
        'until State.get("stop") or i >= 50000\n'
        "print(i)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-m", "spellfs", "-w", str(root), "run", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    repairs = 0
    while writer.poll() is None:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, b'- {"seq": 0, "name": "../escape"}\n')  # read past, repaired away
        os.close(fd)
        proc = spell("-w", str(root), "fsck", "--repair")
        assert b"Traceback" not in proc.stderr, proc.stderr
        repairs += 1
        if repairs == 3:  # three repairs raced the script: let it finish
            (root / "state.yaml").write_text("stop: true\n")
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    assert repairs >= 3, "the script ended before three repairs raced it"
    n = int(out)
    assert spell("-w", str(root), "fsck", "--repair").returncode == 0
    with Workspace.open(root) as ws:
        names = {a["name"] for a in ws.artifacts.list(sid)}
    assert names == {f"a{i}" for i in range(1, n + 1)}, f"{n - len(names)} acknowledged stores lost"


# -- 6. a torn last line ---------------------------------------------------------------------
def _tear(path: Path, fragment: bytes = b'- {"seq": 99, "name": "half') -> None:
    with open(path, "ab") as f:
        f.write(fragment)


def _check_torn_set_aside(root: Path, rel: str, spell) -> None:
    """The record file parses whole, the fragment is kept under .spell/repair/, fsck is clean."""
    from spellfs.store.records import parse_records

    data = (root / rel).read_bytes()
    assert data.endswith(b"\n") and b"half" not in data
    assert len(list(parse_records(data, rel))) == data.count(b"\n")
    kept = list((root / ".spell" / "repair").glob(rel.replace("/", "__") + ".*.torn"))
    assert [p.read_bytes() for p in kept] == [b'- {"seq": 99, "name": "half']
    assert spell("-w", str(root), "fsck").returncode == 0


def _dir(root: Path, sid: str) -> str:
    return next(p.name for p in (root / "sessions").iterdir() if p.name.endswith(sid[:8]))


def test_torn_artifacts_line_is_set_aside_before_the_next_add(
    root: Path, spell, tmp_path: Path
) -> None:
    sid = spell("-w", str(root), "new", "torn").stdout.decode().strip()
    rel = f"sessions/{_dir(root, sid)}/artifacts.yaml"
    src = tmp_path / "a.txt"
    src.write_text("one\n")
    assert spell("-w", str(root), "add", sid, str(src)).returncode == 0
    _tear(root / rel)
    check = spell("-w", str(root), "fsck")
    assert (
        check.returncode == 1 and b"partial-record" in check.stdout and rel.encode() in check.stdout
    )
    assert spell("-w", str(root), "cat", sid, "a.txt").stdout == b"one\n"  # reads go on
    src.write_text("two\n")
    for _ in range(2):  # every later add, cat and show works
        add = spell("-w", str(root), "add", sid, str(src))
        assert add.returncode == 0, add.stderr
    assert spell("-w", str(root), "cat", sid, "a.txt").stdout == b"two\n"
    assert spell("-w", str(root), "show", sid).returncode == 0
    _check_torn_set_aside(root, rel, spell)


def test_torn_checkpoints_line_is_set_aside(root: Path, spell) -> None:
    sid = spell("-w", str(root), "new", "torn").stdout.decode().strip()
    rel = f"sessions/{_dir(root, sid)}/checkpoints.yaml"
    assert spell("-w", str(root), "save", sid).returncode == 0
    _tear(root / rel)
    (root / "x.txt").write_text("a change, so the save makes a checkpoint\n")
    assert spell("-w", str(root), "add", sid, str(root / "x.txt")).returncode == 0
    save = spell("-w", str(root), "save", sid, "-m", "second")
    assert save.returncode == 0, save.stderr
    log = spell("-w", str(root), "log", sid)
    assert log.returncode == 0 and b"second" in log.stdout
    _check_torn_set_aside(root, rel, spell)


def test_torn_runs_line_is_set_aside(root: Path, spell, tmp_path: Path) -> None:
    sid = spell("-w", str(root), "new", "torn").stdout.decode().strip()
    rel = f"sessions/{_dir(root, sid)}/runs.yaml"
    script = tmp_path / "s.lua"
    script.write_text(f'Artifact.store("{sid}", "user_input", "x", "y")\n')
    assert spell("-w", str(root), "run", str(script)).returncode == 0
    _tear(root / rel)
    run = spell("-w", str(root), "run", str(script))
    assert run.returncode == 0, run.stderr
    assert (root / rel).read_bytes().count(b"\n") == 2
    _check_torn_set_aside(root, rel, spell)


def test_torn_calls_line_is_set_aside(root: Path, spell, tmp_path: Path, fake_provider) -> None:
    sid = spell("-w", str(root), "new", "torn").stdout.decode().strip()
    rel = f"sessions/{_dir(root, sid)}/calls.yaml"
    script = tmp_path / "s.lua"
    script.write_text(
        f'Session.setCurrent("{sid}")\n'
        'local a = Agent.create({name = "t", model = "openai/m"})\n'
        'print(a:invoke({text = "hi"}).text)\n'
    )
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_provider.url + "/v1"}
    first = spell("-w", str(root), "run", str(script), env=env)
    assert first.returncode == 0, first.stderr
    _tear(root / rel)
    again = spell("-w", str(root), "run", str(script), env=env)
    assert again.returncode == 0 and b"echo: hi" in again.stdout, again.stderr
    assert (root / rel).read_bytes().count(b"\n") == 2
    _check_torn_set_aside(root, rel, spell)


# -- 4. deep nesting: every YAML and JSON reader refuses it in one line -------------------------
DEEP = 50_000


def _refused_in_one_line(proc, *needles: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode not in (0, -11, 139), (proc.returncode, err[-300:])
    assert "Traceback" not in err and "RecursionError" not in err, err[-500:]
    lines = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert lines, err[-300:]
    for needle in needles:
        assert any(needle in ln for ln in lines), err[-300:]


def _one_session(root: Path, spell) -> tuple[str, Path]:
    sid = spell("-w", str(root), "new", "deep").stdout.decode().strip()
    return sid, root / "sessions" / _dir(root, sid)


def test_deep_session_yaml_is_refused_by_ls_show_and_fsck(root: Path, spell) -> None:
    sid, d = _one_session(root, spell)
    with open(d / "session.yaml", "a") as f:
        f.write("deep: " + "[" * DEEP + "]" * DEEP + "\n")
    listing = spell("-w", str(root), "ls")
    assert listing.returncode == 0 and "nested deeper than" in listing.stderr.decode()
    assert "session.yaml" in listing.stderr.decode() and "Traceback" not in listing.stderr.decode()
    _refused_in_one_line(
        spell("-w", str(root), "show", sid[:8]), "session.yaml:", "nested deeper than"
    )
    check = spell("-w", str(root), "fsck")
    assert (
        check.returncode == 1
        and b"nested deeper than" in check.stdout
        and b"Traceback" not in check.stderr
    )


@pytest.mark.parametrize(
    "line",
    [
        "- " + "{a: " * DEEP + "1" + "}" * DEEP,  # a YAML mapping on one line
        '- {"seq": 1, "name": "x", "custom": ' + "[" * 1000 + "]" * 1000 + "}",  # JSON, 1,000 deep
        '- {"seq": 1, "name": "x", "custom": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}",
    ],
    ids=["yaml-mapping", "json-1000", "json-50000"],
)
def test_deep_artifact_record_is_refused_by_show_cat_and_fsck(root: Path, spell, line: str) -> None:
    sid, d = _one_session(root, spell)
    (d / "artifacts.yaml").write_text(line + "\n")
    (root / "in.txt").write_text("x\n")
    rel = f"sessions/{d.name}/artifacts.yaml:1"
    for args in (
        ("show", sid[:8]),
        ("cat", sid[:8], "x"),
        ("add", sid[:8], str(root / "in.txt")),
    ):
        _refused_in_one_line(spell("-w", str(root), *args), rel, "nested deeper than")
    check = spell("-w", str(root), "fsck")
    assert (
        check.returncode == 1 and rel.encode() in check.stdout and b"Traceback" not in check.stderr
    )


def test_deep_state_spell_yaml_and_template_are_refused(root: Path, spell) -> None:
    sid, d = _one_session(root, spell)
    deep = "x: " + "[" * DEEP + "]" * DEEP + "\n"
    (d / "state.yaml").write_text(deep)
    check = spell("-w", str(root), "fsck")
    assert check.returncode == 1 and b"state.yaml:1: nested deeper than" in check.stdout
    (root / "templates" / "deep.yaml").write_text(
        "metadata: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n"
    )
    _refused_in_one_line(
        spell("-w", str(root), "new", "t", "--template", "deep"), "templates/deep.yaml:1"
    )
    (root / "spell.yaml").write_text("sessions: " + "[" * DEEP + "]" * DEEP + "\n")
    _refused_in_one_line(spell("-w", str(root), "ls"), "spell.yaml:1", "nested deeper than")


def test_deep_json_objects_and_script_json_are_refused(root: Path, spell, tmp_path: Path) -> None:
    sid, d = _one_session(root, spell)
    with Workspace.open(root) as ws:  # a checkpoint whose tree object is 50,000 deep JSON
        oid = ws.objects.put_bytes(("[" * DEEP + "]" * DEEP).encode())
    (d / "checkpoints.yaml").write_text(
        f'- {{"number": 1, "tree": "{oid}", "created_at": "2026-01-01T00:00:00Z", "message": '
        f'"m"}}\n'
    )
    _refused_in_one_line(spell("-w", str(root), "restore", sid[:8], "1"), f"tree object {oid}")
    check = spell("-w", str(root), "fsck")
    assert (
        check.returncode == 1
        and b"nested deeper than" in check.stdout
        and b"Traceback" not in check.stderr
    )
    script = tmp_path / "j.lua"
    script.write_text(
        'local ok, err = pcall(JSON.parse, string.rep("[", 5000) .. string.rep("]", 5000))\n'
        "print(ok, err)\n"
    )
    run = spell("-w", str(root), "run", str(script))
    assert run.returncode == 0 and run.stdout.startswith(b"false\t") and b"deep" in run.stdout, run


# -- 7. records that parse but lie about their types; a damaged index --------------------------
MALFORMED = {
    "no-hash": '{"seq": 2, "name": "b.txt", "size": 1, "created_at": "2026-01-01T00:00:00Z"}',
    "custom": '{"seq": 2, "name": "b.txt", "hash": "%s", "size": 1, "created_at": '
    '"2026-01-01T00:00:00Z", '
    '"custom": [[1]]}',
    "tags": '{"seq": 2, "name": "b.txt", "hash": "%s", "size": 1, "created_at": '
    '"2026-01-01T00:00:00Z", "tags": 5}',
    "created_at": '{"seq": 2, "name": "b.txt", "hash": "%s", "size": 1, "created_at": 5}',
    "hash": '{"seq": 2, "name": "b.txt", "hash": 7, "size": 1, '
    '"created_at": "2026-01-01T00:00:00Z"}',
}


@pytest.mark.parametrize("field", sorted(MALFORMED))
def test_malformed_record_never_crashes_a_reader_and_fsck_names_the_field(
    root: Path, spell, tmp_path: Path, field: str
) -> None:
    sid, d = _one_session(root, spell)
    src = tmp_path / "a.txt"
    src.write_text("a\n")
    assert spell("-w", str(root), "add", sid, str(src)).returncode == 0
    oid = "0" * 64
    line = "- " + (MALFORMED[field] % oid if "%s" in MALFORMED[field] else MALFORMED[field]) + "\n"
    with open(d / "artifacts.yaml", "a") as f:
        f.write(line)
    script = tmp_path / "q.lua"
    script.write_text(
        f"for _, a in ipairs(Artifact.query({{}})) do print(a.name) end\n"
        f'for _, a in ipairs(Artifact.list("{sid}")) do print(a.name, #a.metadata.tags) end\n'
    )
    for args in (
        ("ls",),
        ("show", sid[:8]),
        ("cat", sid[:8], "a.txt"),
        ("run", str(script)),
        ("add", sid[:8], str(src)),
    ):
        proc = spell("-w", str(root), *args)
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, (args, proc.stderr[-400:])
    proc = spell("-w", str(root), "cat", sid[:8], "b.txt")
    assert proc.returncode != 0 and b"Traceback" not in proc.stderr and b"not found" in proc.stderr
    check = spell("-w", str(root), "fsck")
    key = "hash" if field == "no-hash" else field
    want = f"sessions/{d.name}/artifacts.yaml:2: {key}:".encode()
    assert check.returncode == 1 and want in check.stdout, check.stdout


def test_a_damaged_index_is_rebuilt_and_fsck_says_so(root: Path, spell, tmp_path: Path) -> None:
    sids = [spell("-w", str(root), "new", f"s{i}").stdout.decode().strip() for i in range(30)]
    src = tmp_path / "a.txt"
    src.write_text("a\n" * 2000)
    for sid in sids:
        assert spell("-w", str(root), "add", sid, str(src)).returncode == 0
    assert spell("-w", str(root), "ls").returncode == 0
    db = root / ".spell" / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    assert len(data) > 8192
    data[4096 : len(data)] = b"\xa5" * (len(data) - 4096)  # every page after the first is garbage
    db.write_bytes(bytes(data))
    listing = spell("-w", str(root), "ls")
    assert listing.returncode == 0 and listing.stdout.count(b"\n") >= 30, listing.stderr
    script = tmp_path / "q.lua"
    script.write_text('print(#Artifact.query({name_pattern = "a.txt"}))\n')
    db.write_bytes(bytes(data))
    run = spell("-w", str(root), "run", str(script))
    assert run.returncode == 0 and run.stdout.strip() == b"30", run.stderr
    db.write_bytes(bytes(data))
    check = spell("-w", str(root), "fsck")
    assert check.returncode == 0 and b"index.sqlite was damaged" in check.stdout, check.stdout
    assert b"rebuilt" in check.stdout
    assert spell("-w", str(root), "fsck").stdout.count(b"damaged") == 0


# -- 3. a zstd bomb through `spell import` ---------------------------------------------------------
MiB = 1 << 20


def _bomb(path: Path, members: list[tuple[str, int, bytes]], head: str) -> Path:
    """A tar.zst of ``(name, size, byte)`` members (each ``size`` repeats of ``byte``), streamed."""
    import io
    import tarfile

    import zstandard

    class Repeat(io.RawIOBase):
        def __init__(self, n: int, fill: bytes) -> None:
            self.left, self.fill = n, fill

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            n = min(len(b), self.left)
            b[:n] = self.fill * n
            self.left -= n
            return n

    with (
        open(path, "wb") as raw,
        zstandard.ZstdCompressor(level=1).stream_writer(raw) as z,
        tarfile.open(fileobj=z, mode="w|") as tar,
    ):
        info = tarfile.TarInfo("spellfs-export.yaml")
        info.size = len(head.encode())
        tar.addfile(info, io.BytesIO(head.encode()))
        for name, size, fill in members:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BufferedReader(Repeat(size, fill)))
    return path


def _head(declared: int | None = None) -> str:
    head = (
        "format: 1\nsession_id: 0f0e0d0c-0000-4000-8000-000000000000\ndir: "
        "evil-0f0e0d0c\nobjects: 40\n"
    )
    return head + (f"bytes: {declared}\n" if declared is not None else "")


def _used(path: Path) -> int:
    import os

    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_zstd_bomb_does_not_fill_a_small_disk(small_disk: Path, tmp_path: Path, spell) -> None:
    from spellfs.store import hash_bytes

    root = small_disk / "ws"
    assert spell("init", str(root)).returncode == 0
    baseline = _used(small_disk)
    # The attack as reported: 40 members of 24 MiB of zeros laid out as objects, named for nothing.
    liars = [(f"objects/{i:02x}/{'0' * 62}", 24 * MiB, b"\0") for i in range(40)]
    archive = _bomb(tmp_path / "bomb.tar.zst", liars, _head())
    assert archive.stat().st_size < 1 * MiB
    proc = spell("-w", str(root), "import", str(archive))
    _one_line_error(proc, "objects/00/" + "0" * 62, "does not hash to its name")
    assert _used(small_disk) - baseline < 4 * MiB
    # Honest names, so only size stops it: refused before the member that would fill the disk.
    honest = []
    for i in range(12):
        fill = bytes([i + 1])
        oid = hash_bytes(fill * (24 * MiB))
        honest.append((f"objects/{oid[:2]}/{oid[2:]}", 24 * MiB, fill))
    proc = spell("-w", str(root), "import", str(_bomb(tmp_path / "big.tar.zst", honest, _head())))
    err = _one_line_error(proc, "would fill the disk")
    assert "objects/" in err
    assert _used(small_disk) - baseline < 4 * MiB
    assert list((root / "sessions").iterdir()) == [] and not list(
        (root / ".spell" / "objects").rglob("*/*")
    )


def test_bomb_under_a_low_cap_writes_no_more_than_declared(
    root: Path, tmp_path: Path, spell
) -> None:
    from spellfs.store import hash_bytes

    members = []
    for i in range(6):
        fill = bytes([i + 1])
        oid = hash_bytes(fill * (2 * MiB))
        members.append((f"objects/{oid[:2]}/{oid[2:]}", 2 * MiB, fill))
    # It declares 3 MiB and holds 12: stopped at the member past the declaration.
    proc = spell(
        "-w", str(root), "import", str(_bomb(tmp_path / "a.tar.zst", members, _head(3 * MiB)))
    )
    _one_line_error(proc, members[1][0], "more than the 3145728 bytes it declares")
    # It declares nothing: the configured cap applies.
    (root / "spell.yaml").write_text("sessions:\n  max_import_bytes: 5000000\n")
    proc = spell("-w", str(root), "import", str(_bomb(tmp_path / "b.tar.zst", members, _head())))
    _one_line_error(proc, members[2][0], "5000000 bytes in all")
    # A declaration above the cap is refused before anything is written.
    proc = spell(
        "-w", str(root), "import", str(_bomb(tmp_path / "c.tar.zst", members, _head(1 << 40)))
    )
    _one_line_error(proc, "declares 1099511627776 bytes")
    assert list((root / "sessions").iterdir()) == []
    assert not list((root / ".spell" / "tmp").rglob("*")) and not list(
        (root / ".spell" / "objects").rglob("*/*")
    )


# -- 9. names that lie -----------------------------------------------------------------------------
LYING = (
    [chr(c) for c in range(0x80, 0xA0)]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
)


@settings(max_examples=400, deadline=None)
@given(
    st.text(min_size=1, max_size=40).filter(lambda t: t.strip() == t and not t.startswith(".")),
    st.sampled_from(LYING),
    st.integers(min_value=0, max_value=40),
)
def test_hostile_names_are_refused_everywhere(base: str, bad: str, at: int) -> None:
    from spellfs import UsageError
    from spellfs.names import check_artifact_name, check_display_name, check_word

    name = base[:at] + bad + base[at:]
    for check in (
        check_artifact_name,
        lambda n: check_word("tag", n),
        lambda n: check_display_name("s", n),
    ):
        with pytest.raises(UsageError) as info:
            check(name)
        assert "\n" not in str(info.value)


def test_lying_names_are_refused_by_the_cli_and_bytes_not_characters_count(
    root: Path, spell, tmp_path: Path
) -> None:
    sid = spell("-w", str(root), "new", "names").stdout.decode().strip()
    src = tmp_path / "x.png"
    src.write_bytes(b"\x89PNG")
    for name in (
        "rtl\u202egnp.exe",
        "a\u200bb.txt",
        "\ufeffbom.txt",
        "nel\u0085.txt",
        "\u2066iso\u2069.txt",
    ):
        proc = spell("-w", str(root), "add", sid, str(src), "--name", name)
        assert proc.returncode == 2 and b"invalid artifact name" in proc.stderr, (name, proc.stderr)
    proc = spell(
        "-w", str(root), "add", sid, str(src), "--name", "\u65e5" * 100
    )  # 100 chars, 300 bytes
    assert proc.returncode == 2 and b"longer than 255 bytes" in proc.stderr
    assert (
        spell("-w", str(root), "add", sid, str(src), "--name", "\u65e5" * 85).returncode == 0
    )  # 255 bytes
    proc = spell("-w", str(root), "new", "evil\u202etxt.exe")
    assert proc.returncode == 2 and b"U+202E" in proc.stderr
    proc = spell("-w", str(root), "add", sid, str(src), "--tag", "a\u200bb")
    assert proc.returncode == 2 and b"U+200B" in proc.stderr


# -- 2. a hostile --sandbox script ----------------------------------------------------------------
@pytest.mark.parametrize(
    "code",
    [
        "while true do end",
        # a pcall loop cannot swallow it
        "while true do pcall(function() while true do end end) end",
        # nor a coroutine escape the hook
        "local f = coroutine.wrap(function() while true do end end) f()",
        "local ok = pcall(string.rep, 'x', 1); while true do local s = ('x'):rep(10) end",
    ],
    ids=["loop", "pcall-loop", "coroutine", "string-loop"],
)
def test_sandbox_time_limit_ends_a_runaway_script_in_one_line(
    root: Path, spell, tmp_path: Path, code: str
) -> None:
    script = tmp_path / "spin.lua"
    script.write_text(code + "\n")
    started = time.monotonic()
    proc = spell("-w", str(root), "run", "--sandbox", "--timeout", "1", str(script), timeout=60)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("Error: ") and "time limit of 1 s" in err, err[
        -400:
    ]
    assert time.monotonic() - started < 30


def test_sandbox_memory_limit_ends_a_growing_table_in_one_line(
    root: Path, spell, tmp_path: Path
) -> None:
    script = tmp_path / "grow.lua"
    script.write_text('local t = {}\nfor i = 1, 1e12 do t[i] = string.rep("x", 64) .. i end\n')
    proc = spell(
        "-w", str(root), "run", "--sandbox", "--max-memory", "64M", str(script), timeout=120
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and "memory limit of 64 MiB" in err, err[
        -400:
    ]
    # the defaults apply under --sandbox without the options; a normal script is untouched by them
    ok = tmp_path / "ok.lua"
    ok.write_text("local t = {} for i = 1, 100000 do t[i] = i end print(#t)\n")
    proc = spell("-w", str(root), "run", "--sandbox", str(ok))
    assert proc.returncode == 0 and proc.stdout == b"100000\n"
    bad = spell("-w", str(root), "run", "--sandbox", "--max-memory", "lots", str(ok))
    assert bad.returncode == 2 and b"invalid --max-memory" in bad.stderr


def test_sandbox_cannot_reach_spellfs_own_files(root: Path, spell, tmp_path: Path) -> None:
    """Configuration changes only through checked APIs: no tool writes spell.yaml, .git/, .spell/,
    records."""
    sid = spell("-w", str(root), "new", "s").stdout.decode().strip()
    d = _dir(root, sid)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    targets = [
        "spell.yaml",
        ".git/config",
        ".spellignore",
        "templates/x.yaml",
        ".spell/objects/00/x",
        f"sessions/{d}/artifacts.yaml",
        f"sessions/{d}/session.yaml",
        f"sessions/{d}/checkpoints.yaml",
    ]
    before = {t: (root / t).read_bytes() if (root / t).exists() else None for t in targets}
    script = tmp_path / "evil.lua"
    script.write_text(
        "local refused = 0\n"
        + "".join(
            f'local r = Tool.invoke("file_operations", {{operation = "write", path = "{t}", '
            f'input = "sessions:\\n  max_artifact_size: 999999999999\\n"}})\n'
            f"if not r.success then refused = refused + 1 end\n"
            for t in targets
        )
        + "print(refused)\n"
    )
    proc = spell("-w", str(root), "run", "--sandbox", str(script))
    assert proc.returncode == 0 and proc.stdout.strip() == str(len(targets)).encode(), proc
    assert {t: (root / t).read_bytes() if (root / t).exists() else None for t in targets} == before


# -- 8. a full disk, and what killed writes leave behind -------------------------------------------
def test_old_temp_files_are_reported_and_removed_young_ones_spared(root: Path, spell) -> None:
    import os

    sid, d = _one_session(root, spell)
    (root / ".spell" / "objects" / "ab").mkdir(parents=True)
    old = [
        root / ".spell" / "objects" / "ab" / ".tmp-123-456-deadbeef",
        root / ".spell" / "tmp" / ".x.1.2.tmp",
        d / "files" / ".notes.md.1.2.tmp",
    ]
    (root / ".spell" / "tmp").mkdir(exist_ok=True)
    import_dir = root / ".spell" / "tmp" / "import-abc"
    (import_dir / "objects").mkdir(parents=True)
    young = root / ".spell" / "tmp" / ".y.1.2.tmp"
    for p in [*old, young, import_dir / "objects" / "junk"]:
        p.write_bytes(b"half a write")
    hour_ago = time.time() - 3600
    for p in [*old, import_dir]:
        os.utime(p, (hour_ago, hour_ago))
    check = spell("-w", str(root), "fsck")
    out = check.stdout.decode()
    assert check.returncode == 1
    for p in [*old, import_dir]:
        assert f"stray-temp: {p.relative_to(root)}: an unfinished write" in out, out
    assert ".y.1.2.tmp" not in out
    repaired = spell("-w", str(root), "fsck", "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert not any(p.exists() for p in [*old, import_dir]) and young.exists()
    # gc removes them too
    for p in old:
        p.write_bytes(b"again")
        os.utime(p, (hour_ago, hour_ago))
    assert spell("-w", str(root), "gc").returncode == 0
    assert not any(p.exists() for p in old) and young.exists()


def test_on_a_full_disk_every_command_says_one_line_and_leaves_nothing_half_made(
    small_disk: Path, tmp_path: Path, spell
) -> None:
    root = small_disk / "ws"
    assert spell("init", str(root)).returncode == 0
    sid = spell("-w", str(root), "new", "before").stdout.decode().strip()
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(256 * 1024))
    assert spell("-w", str(root), "add", sid, str(src)).returncode == 0
    assert spell("-w", str(root), "save", sid).returncode == 0
    assert spell("-w", str(root), "export", sid, "-o", str(tmp_path / "s.tar.zst")).returncode == 0
    from conftest import fill_disk

    fill_disk(small_disk)
    sessions = sorted(p.name for p in (root / "sessions").iterdir())
    script = tmp_path / "s.lua"
    script.write_text(f'Artifact.store("{sid}", "user_input", "x.bin", string.rep("y", 300000))\n')
    src2 = tmp_path / "big2.bin"
    src2.write_bytes(os.urandom(256 * 1024))
    commands = [
        ("new", "during"),
        ("fork", sid),
        ("add", sid, str(src2)),
        ("save", sid),
        ("run", str(script)),
        ("import", str(tmp_path / "s.tar.zst")),
        ("ls",),
        ("show", sid),
        ("fsck",),
        ("gc",),
        ("rm", "-y", sid),
    ]
    for args in commands:
        proc = spell("-w", str(root), *args)
        err = proc.stderr.decode()
        assert "Traceback" not in err and err.count("\n") <= 1, (args, err[-600:])
        if proc.returncode:
            assert err.startswith("Error: "), (args, err)
    assert sorted(p.name for p in (root / "sessions").iterdir() if p.name != sessions[0]) == [
        s for s in sessions if s != sessions[0]
    ]
    fresh = small_disk / "fresh"
    fill_disk(small_disk, "filler2")  # rm and gc made room
    proc = spell("init", str(fresh))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr.decode()
    assert not fresh.exists() or not any(fresh.iterdir())


def test_links_outside_sessions_are_followed_as_before(root: Path, spell, tmp_path: Path) -> None:
    """Only sessions/ is spellfs's own: a user's linked template still reads."""
    shared = tmp_path / "shared.yaml"
    shared.write_text("description: from a linked template\n")
    os.symlink(shared, root / "templates" / "linked.yaml")
    sid = spell("-w", str(root), "new", "x", "--template", "linked").stdout.decode().strip()
    assert spell("-w", str(root), "show", sid[:8]).stdout.count(b"from a linked template") == 1
