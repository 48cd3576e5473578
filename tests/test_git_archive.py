"""spell export / spell import: round trip, clashes, and archives built to do harm."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from spellfs import Workspace, init_workspace
from spellfs.git import ArchiveError, import_session
from spellfs.store.objects import hash_bytes

from conftest import two_versions_added


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode("utf-8", "surrogateescape")


@pytest.fixture
def source(root: Path, spell, tmp_path: Path):
    """A session with versions, a deletion, a compressed object, state and a checkpoint."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="research", tags=["t"])
        ws.artifacts.store(sid, "user_input", "notes.md", "# v1\n")
        ws.artifacts.store(sid, "user_input", "notes.md", "# v2\n")
        ws.artifacts.store(sid, "tool_result", "data.bin", bytes(range(256)) * 100)
        ws.artifacts.store(sid, "user_input", "gone.txt", "bye")
        ws.artifacts.delete(sid, "gone.txt")
        ws.state.set(f"session:{sid}:k", {"a": 1})
        other = ws.sessions.create(name="unrelated")
        ws.artifacts.store(other, "user_input", "other.txt", "not exported")
    ok(spell("-w", str(root), "save", sid, "-m", "first"))
    with Workspace.open(root) as ws:
        ws.artifacts.store(sid, "user_input", "later.md", "after the checkpoint\n")
    return root, sid


def fresh(tmp_path: Path, name: str = "dest", config: str | None = None) -> Path:
    dest = tmp_path / name
    init_workspace(dest)
    if config:
        (dest / "spell.yaml").write_text(config)
    return dest


def snapshot_tree(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if ".spell/index" not in p.as_posix() and ".spell/locks" not in p.as_posix()
    }


def test_export_import_round_trip(source, spell, tmp_path: Path) -> None:
    root, sid = source
    archive = tmp_path / "s.tar.zst"
    out = ok(spell("-w", str(root), "export", sid, "-o", str(archive)))
    assert out.startswith(f"exported {sid[:8]} to {archive}")
    with archive.open("rb") as f:  # a zstd-compressed tar of this session only, manifest first
        names = tarfile.open(
            fileobj=io.BytesIO(zstandard.ZstdDecompressor().stream_reader(f).read())
        ).getnames()
    prefix = f"sessions/research-{sid[:8]}/"
    assert names[0] == "spellfs-export.yaml"
    assert {prefix + "session.yaml", prefix + "artifacts.yaml", prefix + "files/notes.md"} <= set(
        names
    )
    assert all(n.startswith((prefix, "objects/", "spellfs-export.yaml")) for n in names), names
    dest = fresh(tmp_path)
    out = ok(spell("-w", str(dest), "import", str(archive)))
    assert out.startswith(f"imported {sid[:8]} as sessions/")
    for args in (
        ["show", sid, "--json"],
        ["cat", sid, "notes.md"],
        ["cat", sid, "notes.md@1"],
        ["cat", sid, "data.bin"],
        ["log", sid, "--json"],
        ["diff", sid],
    ):
        assert ok(spell("-w", str(dest), *args)) == ok(spell("-w", str(root), *args)), args
    assert ok(spell("-w", str(dest), "fsck")).endswith("ok\n")
    names = [s["name"] for s in json.loads(ok(spell("-w", str(dest), "ls", "--json")))]
    assert names == ["research"]
    with Workspace.open(dest) as ws:
        assert ws.state.get(f"session:{sid}:k") == {"a": 1}
        dir = ws.sessions.resolve(sid)
        assert (dest / "sessions" / dir / "files" / "notes.md").read_text() == "# v2\n"
        assert not (dest / "sessions" / dir / "files" / "gone.txt").exists()
        oids = set(ws.objects)
    with Workspace.open(root) as ws:  # nothing of the other session travelled
        unrelated = [s for s in ws.sessions.list() if s["name"] == "unrelated"][0]["id"]
        assert ws.artifacts.find(unrelated, "other.txt")[1]["hash"] not in oids
    assert not list((dest / ".spell" / "tmp").iterdir())


def test_an_imported_sessions_recorded_runs_replay(root: Path, spell, tmp_path: Path) -> None:
    """The archive carries what a replay rebuilds a run's world from (the session.yaml and
    state.yaml objects its starting point names), so the imported session replays the same
    (red-team 2 X2: "object not found", while fsck said ok)."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="src")
    (root / "r.lua").write_text(
        f'Artifact.store("{sid}", "tool_result", "out.txt", "ok")\n'
        f'State.set("session:{sid}:k", 1)\n'
    )
    r = spell("-w", str(root), "run", "r.lua", cwd=root)
    assert r.returncode == 0, r.stderr
    archive = tmp_path / "s.tar.zst"
    ok(spell("-w", str(root), "export", sid, "-o", str(archive)))
    dest = fresh(tmp_path)
    ok(spell("-w", str(dest), "import", str(archive)))
    r = spell("-w", str(dest), "replay", sid, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["same"] and len(report["runs"]) == 1


def test_import_refuses_an_existing_session(source, spell, tmp_path: Path) -> None:
    root, sid = source
    archive = tmp_path / "s.tar.zst"
    ok(spell("-w", str(root), "export", sid, "-o", str(archive)))
    before = snapshot_tree(root)
    proc = spell("-w", str(root), "import", str(archive))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert err.startswith(f"Error: session already exists: {sid}") and len(err.splitlines()) == 1
    assert snapshot_tree(root) - {".spell/tmp"} == before - {".spell/tmp"}


def test_import_counts_against_max_sessions_as_new_and_fork_do(
    source, spell, tmp_path: Path
) -> None:
    """An imported live session is one more live session: at the limit it is refused like
    `spell new`, and the workspace is left as it was; a completed one is no live session."""
    root, sid = source
    archive = tmp_path / "s.tar.zst"
    ok(spell("-w", str(root), "export", sid, "-o", str(archive)))
    dest = tmp_path / "dest"
    ok(spell("init", str(dest)))
    (dest / "spell.yaml").write_text("sessions:\n  max_sessions: 1\n")
    ok(spell("-w", str(dest), "new", "already-here"))
    before = snapshot_tree(dest)
    proc = spell("-w", str(dest), "import", str(archive))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert err.startswith("Error: too many live sessions: 1 active or suspended, max_sessions is 1")
    assert len(err.splitlines()) == 1
    after = snapshot_tree(dest)
    assert {p for p in after - before if p.startswith("sessions/")} == set()
    ok(spell("-w", str(root), "complete", sid))
    ok(spell("-w", str(root), "export", sid, "-o", str(archive)))
    ok(spell("-w", str(dest), "import", str(archive)))
    names = {s["name"] for s in json.loads(ok(spell("-w", str(dest), "ls", "--json", "--all")))}
    assert names == {"already-here", "research"}


def test_export_of_an_unknown_session_is_not_found(root: Path, spell, tmp_path: Path) -> None:
    proc = spell("-w", str(root), "export", "nope", "-o", str(tmp_path / "x.tar.zst"))
    assert proc.returncode == 2 and not (tmp_path / "x.tar.zst").exists()


def test_export_refuses_to_replace_a_fifo_or_a_symlink(source, spell, tmp_path: Path) -> None:
    """The archive is renamed over -o PATH: a FIFO or a symlink there would be replaced (the
    reader gets nothing, the link is gone), so anything but a regular file is refused."""
    root, sid = source
    real = tmp_path / "real.txt"
    real.write_text("my notes\n")
    link = tmp_path / "link.arc"
    link.symlink_to(real)
    fifo = tmp_path / "fifo.arc"
    os.mkfifo(fifo)
    for path, kind in ((link, "a symbolic link"), (fifo, "a FIFO")):
        proc = spell("-w", str(root), "export", sid, "-o", str(path))
        err = proc.stderr.decode()
        assert proc.returncode == 2, err
        assert err.startswith(f"Error: not a regular file: {path} is {kind}"), err
        assert len(err.splitlines()) == 1
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "my notes\n"
    assert fifo.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
    # A regular file is still replaced, atomically, by the archive.
    old = tmp_path / "old.arc"
    old.write_text("an earlier export\n")
    ok(spell("-w", str(root), "export", sid, "-o", str(old)))
    assert old.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd magic


def test_export_and_import_refuse_an_empty_path(source, spell) -> None:
    root, sid = source
    for args in (["export", sid, "-o", ""], ["import", ""]):
        proc = spell("-w", str(root), *args)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and err.startswith("Error: no "), (args, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1


def test_export_refuses_unrecorded_changes_and_force_records_them_first(
    root: Path, spell, tmp_path: Path
) -> None:
    """Red-team F14: an unrecorded hand edit went into the archive and the import rewrote it
    from the records (gone on the receiving side)."""
    w = ("-w", str(root))
    sid = ok(spell(*w, "new", "s")).strip()
    (tmp_path / "a.txt").write_text("rec\n")
    ok(spell(*w, "add", sid, str(tmp_path / "a.txt")))
    [d] = (root / "sessions").iterdir()
    (d / "files" / "a.txt").write_text("unrecorded export edit\n")
    (d / "files" / "new.txt").write_text("brand new\n")
    archive = tmp_path / "s.arc"
    for out in (str(archive), "-"):
        proc = spell(*w, "export", sid, "-o", out)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and len(err.splitlines()) == 1, err
        assert (
            f"export would leave out unrecorded changes: sessions/{d.name}/files/: a.txt, " in err
        )
        assert "new.txt (record them with `spell save" in err and "--force" in err
        assert proc.stdout == b"" and not archive.exists()
    assert (d / "files" / "a.txt").read_text() == "unrecorded export edit\n"  # untouched
    proc = spell(*w, "export", sid, "-o", str(archive), "--force")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "recorded first (modified by hand): a.txt" in proc.stderr.decode()
    assert "recorded first (added by hand): new.txt" in proc.stderr.decode()
    assert ok(spell(*w, "cat", sid, "a.txt@2")) == "unrecorded export edit\n"
    dest = fresh(tmp_path)
    ok(spell("-w", str(dest), "import", str(archive)))
    assert ok(spell("-w", str(dest), "cat", sid, "a.txt")) == "unrecorded export edit\n"
    assert ok(spell("-w", str(dest), "cat", sid, "new.txt")) == "brand new\n"
    assert (dest / "sessions" / d.name / "files" / "a.txt").read_text() == (
        "unrecorded export edit\n"
    )
    [s] = json.loads(ok(spell("-w", str(dest), "status", "--json")))["sessions"]
    assert s["unrecorded"] == {"modified": [], "added": [], "deleted": []}
    proc = spell("-w", str(dest), "import", str(archive))  # never a silent replace
    assert proc.returncode == 1 and "session already exists" in proc.stderr.decode()


# -- hostile archives ---------------------------------------------------------------------
SID = "0f0e0d0c-1111-4222-8333-444455556666"
DIR = "evil-0f0e0d0c"
MANIFEST = f"format: 1\nsession_id: {SID}\ndir: {DIR}\nobjects: 1\n".encode()
SESSION_YAML = (
    f"id: {SID}\nname: evil\ndescription: ''\nstatus: active\ntags: []\nmetadata: {{}}\n"
    "parent:\ntemplate:\ncreated_at: '2024-01-01T00:00:00.000000Z'\n"
    "updated_at: '2024-01-01T00:00:00.000000Z'\n"
).encode()
CONTENT = b"hello\n"
OID = hash_bytes(CONTENT)


def member(
    name: str,
    data: bytes = b"",
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
    size: int | None = None,
):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if size is not None:
        info.size = size
    return info, data


def valid_members() -> list:
    record = (
        '- {"seq": 1, "name": "a.txt", "version": 1, "hash": "%s", "size": %d, "type": '
        '"user_input", '
        '"created_at": "2024-01-01T00:00:00.000000Z", "created_by": "cli"}\n' % (OID, len(CONTENT))
    ).encode()
    return [
        member("spellfs-export.yaml", MANIFEST),
        member(f"sessions/{DIR}/session.yaml", SESSION_YAML),
        member(f"sessions/{DIR}/artifacts.yaml", record),
        member(f"sessions/{DIR}/files/a.txt", CONTENT),
        member(f"objects/{OID[:2]}/{OID[2:]}", CONTENT),
    ]


def build(path: Path, members: list, raw_tail: bytes = b"") -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            if info.type == tarfile.REGTYPE and len(data) == info.size:
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    path.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue() + raw_tail))
    return path


def test_a_hand_built_archive_imports(tmp_path: Path, spell) -> None:
    members = valid_members()
    members[3] = member(f"sessions/{DIR}/files/a.txt", b"a copy that lies\n")
    dest = fresh(tmp_path)
    ok(spell("-w", str(dest), "import", str(build(tmp_path / "good.tar.zst", members))))
    assert ok(spell("-w", str(dest), "cat", SID, "a.txt")) == "hello\n"
    assert (
        dest / "sessions" / DIR / "files" / "a.txt"
    ).read_bytes() == b"hello\n"  # rewritten from the records
    assert ok(spell("-w", str(dest), "fsck")).endswith("ok\n")


HOSTILE = {
    "dotdot": ([member("../escaped.txt", b"x")], "'..'"),
    "dotdot-inside": ([member(f"sessions/{DIR}/../../../escaped.txt", b"x")], "'..'"),
    "absolute": ([member("/tmp/escaped-abs.txt", b"x")], "absolute"),
    "symlink": (
        [member(f"sessions/{DIR}/files/link", kind=tarfile.SYMTYPE, link="/etc/passwd")],
        "a link",
    ),
    "hardlink": (
        [member(f"sessions/{DIR}/files/hard", kind=tarfile.LNKTYPE, link="/etc/passwd")],
        "a link",
    ),
    "device": ([member(f"sessions/{DIR}/files/dev", kind=tarfile.CHRTYPE)], "device"),
    "fifo": ([member(f"sessions/{DIR}/files/fifo", kind=tarfile.FIFOTYPE)], "device"),
    "outside-layout": ([member("etc/cron.d/job", b"x")], "not a spellfs export"),
    "hidden-in-session": ([member(f"sessions/{DIR}/.git/config", b"x")], "not a spellfs export"),
    "bad-object-name": ([member("objects/zz/" + "0" * 62, b"x")], "not a spellfs export"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("where", ["first", "last"])
def test_hostile_members_are_refused(case: str, where: str, tmp_path: Path) -> None:
    bad, words = HOSTILE[case]
    members = bad + valid_members() if where == "first" else valid_members() + bad
    archive = build(tmp_path / "bad.tar.zst", members)
    dest = fresh(tmp_path)
    before = snapshot_tree(dest)
    outside = set(os.listdir(tmp_path))
    with Workspace.open(dest) as ws, pytest.raises(ArchiveError) as info:
        import_session(ws, archive)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert snapshot_tree(dest) - {".spell/tmp"} == before
    assert not list((dest / ".spell" / "tmp").iterdir())
    assert set(os.listdir(tmp_path)) == outside
    assert not Path("/tmp/escaped-abs.txt").exists()


def test_the_command_refuses_a_hostile_archive_in_one_line(tmp_path: Path, spell) -> None:
    archive = build(tmp_path / "bad.tar.zst", valid_members() + [member("../escaped.txt", b"x")])
    dest = fresh(tmp_path)
    proc = spell("-w", str(dest), "import", str(archive))
    err = proc.stderr.decode()
    assert (
        proc.returncode == 1
        and err == "Error: unsafe archive member: '../escaped.txt' (a '..' component)\n"
    )
    assert os.listdir(dest / "sessions") == [] and not (tmp_path / "escaped.txt").exists()


def test_a_corrupt_object_is_refused(tmp_path: Path, spell) -> None:
    members = valid_members()
    info, _ = members[-1]
    members[-1] = member(info.name, b"HELLO\n")  # same length, wrong bytes
    dest = fresh(tmp_path)
    proc = spell("-w", str(dest), "import", str(build(tmp_path / "bad.tar.zst", members)))
    assert proc.returncode == 1 and "corrupt object" in proc.stderr.decode()
    assert not [o for o in Workspace(dest).objects]
    assert os.listdir(dest / "sessions") == []


def test_an_object_the_records_need_must_be_in_the_archive(tmp_path: Path, spell) -> None:
    dest = fresh(tmp_path)
    proc = spell(
        "-w", str(dest), "import", str(build(tmp_path / "bad.tar.zst", valid_members()[:-1]))
    )
    assert proc.returncode == 1 and f"object {OID}" in proc.stderr.decode()


def test_oversized_members_and_totals_are_refused(tmp_path: Path, spell) -> None:
    big = member(f"sessions/{DIR}/files/big.bin", b"x" * 2000)
    dest = fresh(tmp_path, config="sessions:\n  max_artifact_size: 1000\n")
    proc = spell(
        "-w", str(dest), "import", str(build(tmp_path / "big.tar.zst", valid_members() + [big]))
    )
    assert proc.returncode == 1 and "too large" in proc.stderr.decode()
    # a header that claims an absurd size is refused before any data is read
    liar = member(f"sessions/{DIR}/files/liar", size=1 << 40)
    proc = spell("-w", str(dest), "import", str(build(tmp_path / "liar.tar.zst", [liar])))
    assert proc.returncode == 1 and "too large" in proc.stderr.decode()
    many = [member(f"sessions/{DIR}/files/f{i}", b"y" * 900) for i in range(5)]
    dest2 = fresh(
        tmp_path,
        "dest2",
        config="sessions:\n  max_artifact_size: 1000\n  max_artifacts_per_session: 3\n",
    )
    proc = spell(
        "-w", str(dest2), "import", str(build(tmp_path / "many.tar.zst", valid_members() + many))
    )
    assert proc.returncode == 1 and "bytes in all" in proc.stderr.decode()
    assert os.listdir(dest / "sessions") == [] and os.listdir(dest2 / "sessions") == []


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    members = valid_members() + [member(f"sessions/{DIR}/files/f{i}", b"z") for i in range(20)]
    dest = fresh(tmp_path)
    with Workspace.open(dest) as ws, pytest.raises(ArchiveError, match="more than 10 members"):
        import_session(ws, build(tmp_path / "many.tar.zst", members), max_members=10)
    assert os.listdir(dest / "sessions") == []


@pytest.mark.parametrize(
    "blob", [b"not zstd at all", zstandard.ZstdCompressor().compress(b"not a tar" * 100)]
)
def test_garbage_is_refused(blob: bytes, tmp_path: Path, spell) -> None:
    (tmp_path / "junk.tar.zst").write_bytes(blob)
    dest = fresh(tmp_path)
    proc = spell("-w", str(dest), "import", str(tmp_path / "junk.tar.zst"))
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.startswith("Error: ") and len(err.splitlines()) == 1, err


def test_duplicate_members_are_refused(tmp_path: Path, spell) -> None:
    members = valid_members() + [member(f"sessions/{DIR}/files/a.txt", b"other")]
    dest = fresh(tmp_path)
    proc = spell("-w", str(dest), "import", str(build(tmp_path / "dup.tar.zst", members)))
    assert proc.returncode == 1 and "appears twice" in proc.stderr.decode()


@pytest.mark.parametrize(
    "head",
    [
        b"format: 1\nsession_id: x\ndir: [a, b]\n",
        b"format: 1\ndir: {a: 1}\n",
        b"format: 1\ndir: 3\n",
    ],
)
def test_an_export_manifest_whose_dir_is_no_name_is_refused(head: bytes, tmp_path: Path) -> None:
    """A list or mapping as `dir` was a TypeError (unhashable) out of the set lookup."""
    members = valid_members()
    members[0] = member("spellfs-export.yaml", head)
    archive = build(tmp_path / "bad.tar.zst", members)
    dest = fresh(tmp_path)
    before = snapshot_tree(dest)
    with Workspace.open(dest) as ws, pytest.raises(ArchiveError, match="archive refused"):
        import_session(ws, archive)
    assert snapshot_tree(dest) - {".spell/tmp"} == before


def test_a_session_whose_objects_are_packed_exports_and_imports_identically(
    root: Path, spell, tmp_path: Path
) -> None:
    """`spell add S DIR` of 16 or more files writes their objects as one pack (store/packs.py);
    the export carries each as an object, and the imported session reads the same."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="bulk")
    versions = two_versions_added(
        tmp_path, lambda d: ok(spell("-w", str(root), "add", sid, str(d)))
    )
    packs = list((root / ".spell" / "objects" / "pack").glob("*.pack"))
    assert len(packs) == 2
    packed = b"".join(p.read_bytes() for p in packs)
    for contents in versions:
        for content in contents.values():
            oid = hash_bytes(content)
            assert content in packed
            assert not (root / ".spell" / "objects" / oid[:2] / oid[2:]).exists()
    archive = tmp_path / "bulk.tar.zst"
    ok(spell("-w", str(root), "export", sid, "-o", str(archive)))
    with archive.open("rb") as f:
        names = set(
            tarfile.open(
                fileobj=io.BytesIO(zstandard.ZstdDecompressor().stream_reader(f).read())
            ).getnames()
        )
    for contents in versions:
        for content in contents.values():
            oid = hash_bytes(content)
            assert f"objects/{oid[:2]}/{oid[2:]}" in names

    dest = fresh(tmp_path)
    ok(spell("-w", str(dest), "import", str(archive)))
    with Workspace.open(dest) as ws:
        for name in versions[0]:
            assert ws.artifacts.get(sid, name + "@1")["content"] == versions[0][name], name
            assert ws.artifacts.get(sid, name)["content"] == versions[1][name], name
    assert ok(spell("-w", str(dest), "cat", sid, "f07.txt@1")) == "version 1 of file 07\n"
    assert ok(spell("-w", str(dest), "show", sid, "--json")) == ok(
        spell("-w", str(root), "show", sid, "--json")
    )
    assert ok(spell("-w", str(dest), "fsck")).endswith("ok\n")


def test_import_refuses_a_session_whose_folder_is_a_sessions_name_here(
    source, spell, tmp_path: Path
) -> None:
    """m7b's bug 5 (F8 through import): a session named like the imported one's folder was
    found no more by its name (the folder wins), without a word."""
    root, sid = source
    archive = tmp_path / "s.tar.zst"
    ok(spell("-w", str(root), "export", sid, "-o", str(archive)))
    [folder] = [p.name for p in (root / "sessions").iterdir() if p.name.endswith(sid[:8])]
    dest = tmp_path / "dest"
    ok(spell("init", str(dest)))
    here = ok(spell("-w", str(dest), "new", folder)).strip()
    before = snapshot_tree(dest)
    proc = spell("-w", str(dest), "import", str(archive))
    err = proc.stderr.decode()
    assert proc.returncode == 1 and len(err.splitlines()) == 1, err
    assert f"archive refused: its folder name {folder} is the name of session {here[:8]}" in err
    assert snapshot_tree(dest) - {".spell/tmp"} == before - {".spell/tmp"}
