"""`spell fsck`: corrupt and missing objects are found and named; a clean workspace passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spellfs import Workspace
from spellfs.maintenance.checks import fsck
from spellfs.store.objects import hash_bytes


@pytest.fixture
def filled(root: Path):
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="checked")
        ws.artifacts.store(sid, "user_input", "small.txt", b"small content")
        ws.artifacts.store(sid, "user_input", "big.txt", b"big content line\n" * 2000)
        ws.artifacts.store(sid, "user_input", "small.txt", b"second version")
        path = ws.sessions.get(sid)["path"]
    return root, sid, path


def object_path(root: Path, data: bytes) -> Path:
    oid = hash_bytes(data)
    return root / ".spell" / "objects" / oid[:2] / oid[2:]


def damage(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def test_clean_workspace(filled, spell) -> None:
    root, sid, _ = filled
    with Workspace.open(root) as ws:
        report = fsck(ws)
    assert report.ok and report.problems == []
    assert (report.objects, report.sessions, report.records) == (3, 1, 3)
    r = spell("fsck", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "3 objects, 1 session, 3 records: ok" in r.stdout.decode()
    r = spell("fsck", "--json", cwd=root)
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["problems"] == [] and doc["objects"] == 3


def test_empty_workspace(root: Path, spell) -> None:
    r = spell("fsck", cwd=root)
    assert r.returncode == 0 and "0 objects, 0 sessions, 0 records: ok" in r.stdout.decode()


@pytest.mark.parametrize("which", ["small", "big"])
def test_corrupt_object(filled, spell, which: str) -> None:
    root, sid, _ = filled
    data = b"small content" if which == "small" else b"big content line\n" * 2000
    path = object_path(root, data)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x40
    damage(path, bytes(raw))
    oid = hash_bytes(data)
    with Workspace.open(root) as ws:
        report = fsck(ws)
    assert not report.ok
    assert [(p.kind, p.where) for p in report.problems] == [("corrupt-object", oid)]
    r = spell("fsck", cwd=root)
    out = r.stdout.decode()
    assert r.returncode == 1, out
    assert "corrupt-object" in out and oid in out
    assert "Traceback" not in r.stderr.decode()
    # reading it is an integrity error, never the wrong bytes
    name = "small.txt@1" if which == "small" else "big.txt"
    r = spell("cat", sid, name, cwd=root)
    assert r.returncode == 1 and r.stdout == b""
    assert r.stderr.decode().startswith(f"Error: corrupt object {oid}")


def test_missing_object_names_the_record(filled, spell) -> None:
    root, sid, path = filled
    object_path(root, b"second version").unlink()
    oid = hash_bytes(b"second version")
    with Workspace.open(root) as ws:
        report = fsck(ws)
    (problem,) = report.problems
    assert problem.kind == "missing-object"
    assert problem.where.startswith(f"{path}/artifacts.yaml")
    assert oid in problem.detail and "small.txt" in problem.detail
    r = spell("fsck", cwd=root)
    out = r.stdout.decode()
    assert r.returncode == 1
    assert "missing-object" in out and oid in out and "small.txt" in out
    assert path.split("/")[1] in out, "the report must say which session's record points at nothing"
    r = spell("fsck", "--json", cwd=root)
    assert r.returncode == 1
    assert json.loads(r.stdout)["problems"][0]["kind"] == "missing-object"
    # the other versions still read fine
    assert spell("cat", sid, "small.txt@1", cwd=root).stdout == b"small content"


def test_broken_records_and_manifest_are_reported(filled, spell) -> None:
    root, sid, path = filled
    (root / path / "artifacts.yaml").open("ab").write(b"- {this is: [not closed\n")
    manifest = root / path / "session.yaml"
    manifest.write_text(manifest.read_text().replace("status: active", "status: bogus"))
    with Workspace.open(root) as ws:
        report = fsck(ws)
    kinds = sorted(p.kind for p in report.problems)
    assert kinds == ["bad-manifest", "bad-record"]
    r = spell("fsck", cwd=root)
    assert r.returncode == 1
    out = r.stdout.decode()
    assert "session.yaml" in out and "artifacts.yaml:4" in out


def test_unfinished_record_is_reported(filled) -> None:
    root, sid, path = filled
    (root / path / "artifacts.yaml").open("ab").write(b'- {"seq": 4, "name": "half')
    with Workspace.open(root) as ws:
        report = fsck(ws)
        assert [p.kind for p in report.problems] == ["partial-record"]
        assert "unfinished" in report.problems[0].detail
        # the complete records are still served
        assert ws.artifacts.get(sid, "small.txt")["content"] == b"second version"


def test_memory_workspace_fsck() -> None:
    with Workspace.in_memory() as ws:
        sid = ws.sessions.create(name="m")
        ws.artifacts.store(sid, "user_input", "a", b"a")
        assert fsck(ws).ok
        ws.objects.objects[hash_bytes(b"a")] = b"b"
        report = fsck(ws)
        assert [p.kind for p in report.problems] == ["corrupt-object"]


def test_record_with_a_hostile_name_is_reported(filled, spell) -> None:
    root, sid, path = filled
    with (root / path / "artifacts.yaml").open("a") as f:
        f.write(
            '- {"seq": 9, "name": "../session.yaml", "hash": "%s", "size": 1}\n'
            % hash_bytes(b"small content")
        )
    with Workspace.open(root) as ws:
        report = fsck(ws)
    (problem,) = report.problems
    assert problem.kind == "bad-record"
    assert (
        problem.detail.startswith(f"{path}/artifacts.yaml:4:")
        and "../session.yaml" in problem.detail
    )
    r = spell("fsck", cwd=root)
    assert r.returncode == 1 and "artifacts.yaml:4" in r.stdout.decode()


def test_fsck_walks_checkpoint_trees(ws) -> None:
    from spellfs.maintenance.checks import fsck

    sid = ws.sessions.create(name="trees")
    ws.artifacts.store(sid, "user_input", "a.txt", b"first version of a")
    ws.history.save(sid, "one")
    ws.artifacts.store(sid, "user_input", "a.txt", b"second version of a")
    ws.history.save(sid, "two")
    first_tree = ws.history.checkpoints(sid)[0]["tree"]
    assert fsck(ws).ok
    ws.objects.path(first_tree).unlink()  # the parent tree of checkpoint 2
    with Workspace.open(ws.root) as fresh:  # nothing cached from the saves
        problems = fsck(fresh).problems
    assert any(p.kind == "missing-object" and p.oid == first_tree for p in problems)
    assert any(p.kind == "bad-checkpoint" and "checkpoint 2" in p.detail for p in problems)


def test_broken_state_files_are_reported(filled, spell) -> None:
    root, sid, path = filled
    (root / "state.yaml").write_text("foo: [\n")
    (root / path / "state.yaml").write_text("fine: 1\nbad: {\n")
    with Workspace.open(root) as ws:
        report = fsck(ws)
    assert sorted((p.kind, p.where) for p in report.problems) == [
        ("bad-state", f"{path}/state.yaml"),
        ("bad-state", "state.yaml"),
    ]
    r = spell("fsck", cwd=root)
    out = r.stdout.decode()
    assert r.returncode == 1 and "2 problems" in out
    assert (
        "state.yaml:2" in out and f"{path}/state.yaml:3" in out
    )  # file and line, as State.get reports them
    (root / "state.yaml").write_text("foo: [1]\n")
    (root / path / "state.yaml").unlink()
    assert spell("fsck", cwd=root).returncode == 0
