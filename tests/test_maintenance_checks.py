"""`spell fsck`: corrupt and missing objects are found and named; a clean workspace passes."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import added_in_a_pack, loose
from spellfs import IntegrityError, Workspace
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
    loose(root)
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
    loose(root)
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
    loose(ws)
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


# -- found by mutation testing ---------------------------------------------------------------

from spellfs.maintenance.checks import NOT_FAILURES, Problem, Report, check_record_file  # noqa: E402


@pytest.mark.parametrize(
    "kind",
    [
        "on-remote",
        "hand-edit",
        "stray-copy",
        "interrupted-write",
        "shared-sequence",
        "renumbered",
        "index-rebuilt",
    ],
)
def test_informative_kinds_do_not_fail_fsck(kind: str) -> None:
    assert kind in NOT_FAILURES
    assert Report(problems=[Problem(kind, "w", "d")]).ok
    assert not Report(problems=[Problem(kind, "w", "d"), Problem("stray-temp", "t", "d")]).ok


@pytest.mark.parametrize(
    "kind",
    [
        "corrupt-object",
        "missing-object",
        "bad-manifest",
        "bad-state",
        "bad-record",
        "partial-record",
        "stray-temp",
        "unsafe-link",
        "bad-checkpoint",
        "ambiguous-record",
    ],
)
def test_failing_kinds(kind: str) -> None:
    assert not Report(problems=[Problem(kind, "w", "d")]).ok


def test_report_as_dict() -> None:
    report = Report(objects=3, sessions=2, records=5)
    report.problems += [
        Problem("on-remote", "sessions/a/artifacts.yaml", "on the remote", oid="o1"),
        Problem("on-remote", "sessions/a/artifacts.yaml", "on the remote", oid="o2"),
        Problem("bad-record", "sessions/a/runs.yaml", "bad", line=2),
    ]
    assert report.as_dict() == {
        "ok": False,
        "objects": 3,
        "sessions": 2,
        "records": 5,
        "on_remote": 2,
        "problems": [
            {
                "kind": "on-remote",
                "where": "sessions/a/artifacts.yaml",
                "detail": "on the remote",
                "oid": "o1",
                "line": None,
            },
            {
                "kind": "on-remote",
                "where": "sessions/a/artifacts.yaml",
                "detail": "on the remote",
                "oid": "o2",
                "line": None,
            },
            {
                "kind": "bad-record",
                "where": "sessions/a/runs.yaml",
                "detail": "bad",
                "oid": None,
                "line": 2,
            },
        ],
    }
    assert Report().as_dict()["ok"] is True


def test_check_record_file_reports_each_line_exactly(filled) -> None:
    root, sid, path = filled
    rel = f"{path}/artifacts.yaml"
    good = (root / rel).read_bytes()
    with (root / rel).open("ab") as f:
        f.write(b'- {"seq": 4, "name": "x.txt", "hash": "nope", "size": 1, "created_at": "t"}\n')
        f.write(b"- {not: [closed\n")
        f.write(b'- {"seq": 6, "na')
    with Workspace.open(root) as ws:
        report = Report()
        recs = check_record_file(ws, rel, report)
        assert [r["seq"] for r in recs] == [1, 2, 3]
        assert [(p.kind, p.where, p.line) for p in report.problems] == [
            ("bad-record", rel, 4),
            ("bad-record", rel, 5),
            ("partial-record", rel, 6),
        ]
        bad_field, _, partial = (p.detail for p in report.problems)
        assert bad_field.startswith(f"{rel}:4: hash: 'nope' is not ")
        assert bad_field.endswith(" (the record is ignored)")
        assert partial == f"{rel}:6: ends with an unfinished record (16 bytes)"
        assert check_record_file(ws, f"{path}/runs.yaml", report) == []  # none yet: no problem
        assert len(report.problems) == 3
        report = fsck(ws)
        assert report.records == 3  # the ignored line is not counted
    (root / rel).write_bytes(good)


def test_progress_is_one_step_per_object(filled) -> None:
    root, _, _ = filled
    steps: list[int] = []
    with Workspace.open(root) as ws:
        report = fsck(ws, steps.append)
    assert steps == [1, 1, 1] and report.objects == 3


def test_an_object_two_records_name_is_reported_missing_once(ws) -> None:
    sid = ws.sessions.create(name="twice")
    ws.artifacts.store(sid, "user_input", "a.txt", b"same")
    ws.artifacts.store(sid, "user_input", "b.txt", b"same")
    ws.artifacts.store(sid, "user_input", "a.txt", b"other")
    oid = hash_bytes(b"same")
    loose(ws)
    ws.objects.path(oid).unlink()
    path = ws.sessions.get(sid)["path"]
    report = fsck(ws)
    assert [(p.kind, p.where, p.detail, p.oid) for p in report.problems] == [
        (
            "missing-object",
            f"{path}/artifacts.yaml",
            f"object {oid} (a.txt v1, {path}/artifacts.yaml) is missing",
            oid,
        )
    ]
    assert report.records == 3


def test_missing_objects_are_named_by_what_needs_them(ws) -> None:
    """A checkpoint's tree, a run's script, a record without a name or number."""
    sid = ws.sessions.create(name="named")
    ws.artifacts.store(sid, "user_input", "a.txt", b"kept")
    ws.history.save(sid, "one")
    path = ws.sessions.get(sid)["path"]
    tree = ws.history.checkpoints(sid)[0]["tree"]
    script = hash_bytes(b"print('gone')")
    call = hash_bytes(b"a request")
    with (ws.root / path / "runs.yaml").open("a") as f:
        f.write('- {"run": "r1", "script": "make.lua", "script_hash": "%s"}\n' % script)
        f.write('- {"run": "r2", "script_hash": "%s"}\n' % call)
    loose(ws)
    ws.objects.path(tree).unlink()
    with Workspace.open(ws.root) as fresh:
        report = fsck(fresh)
    got = [(p.kind, p.where, p.detail) for p in report.problems]
    assert got == [
        (
            "missing-object",
            f"{path}/checkpoints.yaml",
            f"object {tree} (checkpoint 1, {path}/checkpoints.yaml) is missing",
        ),
        (
            "missing-object",
            f"{path}/runs.yaml",
            f"object {script} (script make.lua, {path}/runs.yaml) is missing",
        ),
        (
            "missing-object",
            f"{path}/runs.yaml",
            f"object {call} (#?, {path}/runs.yaml) is missing",
        ),
    ]
    assert report.records == 4


def test_a_linked_session_is_reported_and_not_read(ws, tmp_path) -> None:
    sid = ws.sessions.create(name="linked")
    ws.artifacts.store(sid, "user_input", "a.txt", b"a")
    path = ws.sessions.get(sid)["path"]
    files = ws.root / path / "files"
    outside = tmp_path / "outside"
    files.rename(outside)
    files.symlink_to(outside)
    report = fsck(ws)
    assert [(p.kind, p.where) for p in report.problems] == [("unsafe-link", f"{path}/files")]
    assert report.problems[0].detail.startswith(f"refused: {path}/files is a symbolic link")
    assert (report.sessions, report.records) == (1, 0)


def test_a_linked_record_file_is_reported(ws, tmp_path) -> None:
    sid = ws.sessions.create(name="linked")
    ws.artifacts.store(sid, "user_input", "a.txt", b"a")
    path = ws.sessions.get(sid)["path"]
    (tmp_path / "runs.yaml").write_text("")
    (ws.root / path / "runs.yaml").symlink_to(tmp_path / "runs.yaml")
    with Workspace.open(ws.root) as fresh:
        report = fsck(fresh)
    assert [(p.kind, p.where) for p in report.problems] == [("unsafe-link", f"{path}/runs.yaml")]


def test_a_stray_temp_is_reported_with_its_age(ws) -> None:
    tmp = ws.root / ".spell" / "tmp"
    tmp.mkdir(exist_ok=True)
    temp = tmp / ".x.1.2.tmp"
    temp.write_bytes(b"half")
    two_hours_ago = time.time() - 7200 - 30  # 120 minutes however slow the test is
    os.utime(temp, (two_hours_ago, two_hours_ago))
    report = fsck(ws)
    assert [(p.kind, p.where, p.detail) for p in report.problems] == [
        (
            "stray-temp",
            ".spell/tmp/.x.1.2.tmp",
            ".spell/tmp/.x.1.2.tmp: an unfinished write, 120 minutes old "
            "(`spell fsck --repair` or `spell gc` removes it)",
        )
    ]
    assert not report.ok


def test_a_damaged_index_is_rebuilt_and_said(root: Path) -> None:
    with Workspace.open(root) as ws:
        for i in range(30):
            ws.artifacts.store(ws.sessions.create(name=f"s{i}"), "user_input", "a.txt", b"a")
    db = root / ".spell" / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    assert len(data) > 8192
    data[4096:] = b"\xa5" * (len(data) - 4096)  # every page after the first is garbage
    db.write_bytes(bytes(data))
    with Workspace.open(root) as ws:
        report = fsck(ws)
        assert report.ok
        [problem] = report.problems
        assert (problem.kind, problem.where) == ("index-rebuilt", ".spell/index.sqlite")
        assert problem.detail.startswith(".spell/index.sqlite was damaged (")
        assert problem.detail.endswith("); rebuilt from the files")
        assert len(ws.sessions.list()) == 30
    with Workspace.open(root) as ws:
        assert fsck(ws).problems == []


def test_a_hand_edit_is_reported_where_it_is(filled) -> None:
    root, sid, path = filled
    (root / path / "files" / "small.txt").write_bytes(b"edited by hand")
    with Workspace.open(root) as ws:
        report = fsck(ws)
    assert [(p.kind, p.where, p.detail) for p in report.problems] == [
        (
            "hand-edit",
            f"{path}/files/small.txt",
            f"{path}/files/small.txt: differs from its record; looks like a hand edit "
            "(`spell save` records it)",
        )
    ]
    assert report.ok


def test_missing_objects_on_the_remote_are_told_from_lost_ones(filled, tmp_path, spell) -> None:
    """Through `spell` only: obstore's runtime does not survive a fork, so an in-process remote
    call would hang every mutant run of this file (tools/mutation.py forks per mutant)."""
    root, sid, path = filled
    url = (tmp_path / "remote").as_uri()
    for args in (("remote", "add", "origin", url), ("push",)):
        r = spell(*args, cwd=root)
        assert r.returncode == 0, r.stderr
    with Workspace.open(root) as ws:
        ws.artifacts.store(sid, "user_input", "late.txt", b"never pushed")
    pushed, late = hash_bytes(b"second version"), hash_bytes(b"never pushed")
    loose(root)
    for oid in (pushed, late):
        (root / ".spell" / "objects" / oid[:2] / oid[2:]).unlink()
    r = spell("fsck", "--json", cwd=root)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    rel = f"{path}/artifacts.yaml"
    assert [(p["kind"], p["oid"], p["detail"]) for p in doc["problems"]] == [
        (
            "on-remote",
            pushed,
            f"object {pushed} (small.txt v2, {rel}) is not local but on remote origin "
            "(`spell pull` fetches it)",
        ),
        (
            "missing-object",
            late,
            f"object {late} (late.txt v1, {rel}) is lost: not local and not on remote origin",
        ),
    ]
    assert doc["ok"] is False and doc["on_remote"] == 1


def test_an_unreadable_line_is_named_and_the_lines_after_it_are_read(filled) -> None:
    root, sid, path = filled
    rel = f"{path}/artifacts.yaml"
    lines = (root / rel).read_bytes().split(b"\n")
    lines[1] = b"- {not: [closed"
    (root / rel).write_bytes(b"\n".join(lines))
    with Workspace.open(root) as ws:
        report = Report()
        recs = check_record_file(ws, rel, report)
    assert [r["seq"] for r in recs] == [1, 3]
    assert [(p.kind, p.where, p.detail, p.line) for p in report.problems] == [
        ("bad-record", rel, f"{rel}:2: invalid YAML: did not find expected ',' or ']'", 2)
    ]


def test_a_record_without_a_version_is_named_by_its_name(ws) -> None:
    """Records of older spellfs versions carry no version; one with a seq only by its seq."""
    sid = ws.sessions.create(name="old")
    ws.artifacts.store(sid, "user_input", "a.txt", b"a")
    path = ws.sessions.get(sid)["path"]
    gone, gone_run = hash_bytes(b"old content"), hash_bytes(b"old script")
    with (ws.root / path / "artifacts.yaml").open("a") as f:
        f.write(
            '- {"seq": 2, "name": "old.txt", "hash": "%s", "size": 11, '
            '"created_at": "2020-01-01T00:00:00Z"}\n' % gone
        )
    with (ws.root / path / "runs.yaml").open("a") as f:
        f.write('- {"run": "r1", "seq": 7, "script_hash": "%s"}\n' % gone_run)
    with Workspace.open(ws.root) as fresh:
        report = fsck(fresh)
    assert [p.detail for p in report.problems] == [
        f"object {gone} (old.txt, {path}/artifacts.yaml) is missing",
        f"object {gone_run} (#7, {path}/runs.yaml) is missing",
    ]


def test_an_object_only_a_checkpoint_tree_reaches_is_named_by_the_checkpoint(ws) -> None:
    sid = ws.sessions.create(name="trees")
    ws.artifacts.store(sid, "user_input", "a.txt", b"first version of a")
    ws.history.save(sid, "one")
    path = ws.sessions.get(sid)["path"]
    first = ws.history.checkpoints(sid)[0]["tree"]
    manifest = ws.history.trees.tree(first)["manifest"]
    loose(ws)
    ws.objects.path(manifest).unlink()
    with Workspace.open(ws.root) as fresh:
        report = fsck(fresh)
    rel = f"{path}/checkpoints.yaml"
    assert [(p.kind, p.where, p.detail, p.oid) for p in report.problems] == [
        ("missing-object", rel, f"object {manifest} (checkpoint 1, {rel}) is missing", manifest)
    ]


def test_an_unreadable_checkpoint_tree_is_named(ws) -> None:
    sid = ws.sessions.create(name="trees")
    ws.artifacts.store(sid, "user_input", "a.txt", b"first version of a")
    ws.history.save(sid, "one")
    ws.artifacts.store(sid, "user_input", "a.txt", b"second version of a")
    ws.history.save(sid, "two")
    path = ws.sessions.get(sid)["path"]
    first = ws.history.checkpoints(sid)[0]["tree"]
    loose(ws)
    ws.objects.path(first).unlink()  # the parent tree of checkpoint 2
    with Workspace.open(ws.root) as fresh:
        report = fsck(fresh)
    rel = f"{path}/checkpoints.yaml"
    bad = [p for p in report.problems if p.kind == "bad-checkpoint"]
    assert [(p.where, p.detail.split(": ", 1)[0]) for p in bad] == [(rel, f"checkpoint 2 of {rel}")]
    assert [(p.kind, p.oid) for p in report.problems if p.kind != "bad-checkpoint"] == [
        ("missing-object", first)
    ]


def test_records_sharing_a_sequence_after_a_merge_are_reported(filled) -> None:
    root, sid, path = filled
    rel = f"{path}/artifacts.yaml"
    first = (root / rel).read_bytes().split(b"\n")[0]
    other = first.replace(b'"small.txt"', b'"other.txt"').replace(
        hash_bytes(b"small content").encode(), hash_bytes(b"second version").encode()
    )
    assert other != first
    with (root / rel).open("ab") as f:
        f.write(other + b"\n")
    with Workspace.open(root) as ws:
        report = fsck(ws)
    assert [(p.kind, p.where) for p in report.problems] == [("shared-sequence", rel)]
    assert report.problems[0].detail.startswith(f"{rel}: sequence 1 is used by 2 records")
    assert report.ok


def test_a_corrupt_object_is_named_with_why_and_every_session_counted(filled) -> None:
    root, sid, path = filled
    with Workspace.open(root) as ws:
        ws.artifacts.store(ws.sessions.create(name="second"), "user_input", "b.txt", b"b")
    oid = hash_bytes(b"small content")
    loose(root)
    p = object_path(root, b"small content")
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 0x40
    damage(p, bytes(raw))
    with Workspace.open(root) as ws:
        report = fsck(ws)
        with pytest.raises(IntegrityError) as err:
            ws.objects.verify(oid)
    assert [(p.kind, p.where, p.detail, p.oid) for p in report.problems] == [
        ("corrupt-object", oid, str(err.value), oid)
    ]
    assert str(err.value).startswith(f"corrupt object {oid}")
    assert (report.objects, report.sessions, report.records) == (4, 2, 4)


def test_a_bad_manifest_and_state_say_what_is_wrong_where(filled) -> None:
    root, sid, path = filled
    (root / "state.yaml").write_text("foo: [\n")
    manifest = root / path / "session.yaml"
    manifest.write_text(manifest.read_text().replace("status: active", "status: bogus"))
    line = manifest.read_text().splitlines().index("status: bogus") + 1
    with Workspace.open(root) as ws:
        report = fsck(ws)
    assert [(p.kind, p.where, p.detail) for p in report.problems] == [
        (
            "bad-state",
            "state.yaml",
            "state.yaml:2: invalid YAML: did not find expected node content",
        ),
        (
            "bad-manifest",
            f"{path}/session.yaml",
            f"{path}/session.yaml:{line}: status: must be one of active, suspended, completed, "
            "failed (got 'bogus')",
        ),
    ]


def test_a_linked_session_does_not_stop_the_check_of_the_others(ws, tmp_path) -> None:
    for name in ("one", "two"):
        ws.artifacts.store(ws.sessions.create(name=name), "user_input", "a.txt", b"a")
    first, later = os.listdir(ws.root / "sessions")  # the order fsck reads them in
    files = ws.root / "sessions" / first / "files"
    files.rename(tmp_path / "outside")
    files.symlink_to(tmp_path / "outside")
    (ws.root / "sessions" / later / "files" / "a.txt").write_bytes(b"edited")
    report = fsck(ws)
    assert [(p.kind, p.where) for p in report.problems] == [
        ("unsafe-link", f"sessions/{first}/files"),
        ("hand-edit", f"sessions/{later}/files/a.txt"),
    ]
    assert (report.sessions, report.records) == (2, 1)


def test_a_link_in_a_folder_named_with_spaces_is_named_whole(ws, tmp_path) -> None:
    """A session folder made by hand (or in a clone) may hold a space; the problem's place is
    the whole path of the link."""
    folder = ws.root / "sessions" / "my old is a session"
    folder.mkdir(parents=True)
    (folder / "files").symlink_to(tmp_path)
    report = fsck(ws)
    assert [(p.kind, p.where) for p in report.problems] == [
        ("unsafe-link", "sessions/my old is a session/files")
    ]
    assert report.problems[0].detail.startswith(
        "refused: sessions/my old is a session/files is a symbolic link ("
    )


def test_a_pack_with_a_damaged_footer_is_reported_with_the_objects_it_held(root, spell) -> None:
    """A bulk store's objects live in one pack (store/packs.py). When its footer is damaged the
    pack cannot be read: fsck names the pack and each record whose object it held, in one
    report, without a traceback."""
    sid, contents, pack = added_in_a_pack(root, "packed")
    with Workspace.open(root) as ws:
        ws.artifacts.store(sid, "user_input", "loose.txt", b"a file of its own")
    raw = bytearray(pack.read_bytes())
    assert all(c in raw for c in contents.values())
    assert not any(object_path(root, c).exists() for c in contents.values())
    raw[-3] ^= 0xFF  # in the footer's magic
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))

    r = spell("fsck", "--json", cwd=root)
    assert r.returncode == 1 and "Traceback" not in r.stderr.decode(), r.stderr.decode()
    problems = json.loads(r.stdout)["problems"]
    [bad] = [p for p in problems if p["kind"] == "corrupt-pack"]
    assert bad["where"] == f".spell/objects/pack/{pack.name}" and "footer" in bad["detail"]
    missing = [p for p in problems if p["kind"] == "missing-object"]
    assert sorted(p["oid"] for p in missing) == sorted(hash_bytes(c) for c in contents.values())
    assert len(problems) == 1 + len(contents)
    r = spell("fsck", cwd=root)
    out = r.stdout.decode()
    assert r.returncode == 1 and "Traceback" not in r.stderr.decode()
    assert "corrupt-pack" in out and pack.name in out
    # the object outside the pack still reads
    assert spell("cat", sid, "loose.txt", cwd=root).stdout == b"a file of its own"


def test_checkpoints_sharing_a_number_after_a_merge_are_named_each(ws) -> None:
    """Two clones each saved a checkpoint 2 and git merged both lines: fsck says so once, naming
    each as N:TREE with its message (cut at 40 characters) and time, and does not fail."""
    from spellfs.store import encode_record

    sid = ws.sessions.create(name="merged")
    long = "a message longer than forty characters, cut where it ends"
    for name, message in (("a.txt", "base"), ("b.txt", long), ("c.txt", None)):
        ws.artifacts.store(sid, "user_input", name, name.encode())
        ws.history.save(sid, message)
    one, two, three = ws.history.checkpoints(sid)
    assert not three.get("message")
    theirs = {**three, "number": 2, "parent": 1}  # the other clone's checkpoint 2
    path = ws.sessions.get(sid)["path"]
    rel = f"{path}/checkpoints.yaml"
    (ws.root / rel).write_bytes(b"".join(encode_record(r) for r in (one, two, theirs)))
    with Workspace.open(ws.root) as fresh:
        report = fsck(fresh)
    both = (
        f"2:{two['tree'][:8]} ({long[:40]!r}, {two['time']}) and "
        f"2:{theirs['tree'][:8]} ('', {theirs['time']})"
    )
    assert [(p.kind, p.where, p.detail) for p in report.problems] == [
        (
            "shared-checkpoint-number",
            rel,
            f"{rel}: checkpoint 2 is used by 2 checkpoints after a merge: {both} "
            "(`2` is ambiguous; name them as N:TREE)",
        )
    ]
    assert report.ok


@pytest.mark.parametrize("rel", [".spell", ".spell/objects"])
def test_a_linked_object_store_folder_is_reported_and_nothing_is_read_through_it(
    root: Path, tmp_path: Path, rel: str
) -> None:
    """A cloned repository may carry ``.spell`` or ``.spell/objects`` as a link: fsck names it
    and counts no object read through it."""
    with Workspace.open(root) as ws:
        ws.artifacts.store(ws.sessions.create(name="s"), "user_input", "a.txt", b"a")
    moved = tmp_path / "elsewhere"
    (root / rel).rename(moved)
    (root / rel).symlink_to(moved)
    with Workspace.open(root) as ws:
        report = fsck(ws)
    assert [(p.kind, p.where) for p in report.problems] == [("unsafe-link", rel)]
    assert report.problems[0].detail.startswith(f"refused: {rel} is a symbolic link (")
    assert report.objects == 0 and not report.ok


def test_every_linked_fan_out_folder_is_reported_in_name_order(ws, tmp_path: Path) -> None:
    ws.artifacts.store(ws.sessions.create(name="s"), "user_input", "a.txt", b"a")
    objects = ws.root / ".spell" / "objects"
    (real,) = os.listdir(objects)
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("ff", "00"):
        (objects / name).symlink_to(outside)
    report = fsck(ws)
    assert [(p.kind, p.where, p.detail.split(" (")[0]) for p in report.problems] == [
        (
            "unsafe-link",
            f".spell/objects/{name}",
            f"refused: .spell/objects/{name} is a symbolic link",
        )
        for name in ("00", "ff")
    ]
    assert report.objects == 1  # the real fan-out folder is still read


def test_a_missing_object_folder_reports_the_missing_objects_not_a_crash(ws) -> None:
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "a.txt", b"a")
    shutil.rmtree(ws.root / ".spell" / "objects")
    report = fsck(ws)
    assert [(p.kind, p.oid) for p in report.problems] == [("missing-object", hash_bytes(b"a"))]


def test_an_unreadable_pack_is_named_with_why_and_its_objects_are_missing(ws, tmp_path) -> None:
    """In-process (the `spell fsck` test above runs a subprocess): the pack's problem says
    why it cannot be read, and each record whose object only it held is named."""
    sid = ws.sessions.create(name="bulk")
    paths = []
    for i in range(20):  # a bulk store: its small objects go into one pack
        p = tmp_path / f"f{i:02d}.txt"
        p.write_bytes(f"packed {i}\n".encode())
        paths.append(p)
    ws.artifacts.store_files(sid, paths, "user_input")
    [pack] = (ws.root / ".spell" / "objects" / "pack").glob("*.pack")
    raw = bytearray(pack.read_bytes())
    raw[-3] ^= 0xFF  # in the footer's magic
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))
    with Workspace.open(ws.root) as fresh:
        report = fsck(fresh)
    rel = f".spell/objects/pack/{pack.name}"
    assert [(p.kind, p.where, p.detail) for p in report.problems if p.kind != "missing-object"] == [
        ("corrupt-pack", rel, f"corrupt pack {pack}: its footer does not fit the file")
    ]
    missing = [p.oid for p in report.problems if p.kind == "missing-object"]
    assert sorted(missing) == sorted(hash_bytes(p.read_bytes()) for p in paths)
    assert not report.ok


def test_a_memory_backend_workspace_folder_is_not_checked_for_links(root, tmp_path) -> None:
    """`storage_backend: memory` in spell.yaml: the objects live in memory, so a link left in
    the folder's `.spell/objects` is nothing fsck reads, and not a problem of this workspace."""
    (root / "spell.yaml").write_text("sessions:\n  storage_backend: memory\n")
    (root / ".spell" / "objects" / "ab").symlink_to(tmp_path)
    with Workspace.open(root) as ws:
        assert ws.memory and ws.root is not None
        ws.artifacts.store(ws.sessions.create(name="mem"), "user_input", "a.txt", b"a")
        report = fsck(ws)
    assert report.problems == [] and report.objects == 1


def test_a_session_folder_copied_by_hand_is_a_shared_session_id(tmp_path: Path) -> None:
    """`cp -r sessions/proj-<id8> sessions/twin-<id8>`: two folders, one id; every reference is
    ambiguous, and fsck says so and fails (red-team M10: it said ok)."""
    from spellfs import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="proj")
        dir = ws.sessions.resolve(sid)
    shutil.copytree(root / "sessions" / dir, root / "sessions" / f"twin-{sid[:8]}")
    with Workspace.open(root) as ws:
        report = fsck(ws)
    [problem] = [p for p in report.problems if p.kind == "shared-session-id"]
    assert problem.where == f"sessions/{sorted([dir, f'twin-{sid[:8]}'])[1]}"
    first, second = sorted([dir, f"twin-{sid[:8]}"])
    assert problem.detail == (
        f"session id {sid} is in 2 folders: sessions/{first}, sessions/{second} (a copy made "
        "by hand; `spell fork` makes a copy with its own id: remove or move out the copy)"
    )
    assert not report.ok
