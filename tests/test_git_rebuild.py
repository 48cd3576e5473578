"""A fresh clone works at once: `spell` rebuilds the objects git leaves to the files/ copies,
verified by hash, from the copy or from git's blobs (real git, real `spell`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import loose
from spellfs import Workspace

from test_git_commits import add, branch, identity, new_session, ok, run_git
from test_git_exclude import clean, in_head, listed, oid_of, opath, text


@pytest.fixture
def committed(repo: Path, spell, tmp_path: Path):
    """A session with two versions of a.txt (a checkpoint at each), b.txt and a small file,
    committed by `spell commit`; returns (repo, session id, dir)."""
    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "a.txt", text(1), tmp_path)
    add(spell, repo, sid, "b.txt", text(3), tmp_path)
    add(spell, repo, sid, "small.txt", b"small\n", tmp_path)
    ok(spell("-w", str(repo), "save", sid, "-m", "first"))
    add(spell, repo, sid, "a.txt", text(2), tmp_path)
    ok(spell("-w", str(repo), "save", sid, "-m", "second"))
    ok(spell("-w", str(repo), "commit"))
    dir = Workspace.open(repo).sessions.resolve(sid)
    for name in ("a.txt", "b.txt"):
        assert not in_head(repo, oid_of(repo, sid, name))  # left to the copy
    return repo, sid, dir


def clone_of(src: Path, dst: Path) -> Path:
    run_git(dst.parent, "clone", "-q", str(src), str(dst))
    identity(dst, "carol")
    return dst


def packed_form(root: Path, oid: str) -> bytes:
    """The stored form of ``oid`` in ``root``, which holds it packed: a rebuilt object is
    stored as any single store is, in a journal or pack under .spell/objects/pack/ (which git
    ignores; `spell commit` writes it loose), not as a loose file."""
    assert not (root / opath(oid)).exists()
    with Workspace.open(root) as ws:
        stored = ws.objects.packed(oid)  # type: ignore[attr-defined]
    assert stored is not None, oid
    return stored


def test_a_fresh_clone_works_at_once(committed, spell, tmp_path):
    repo, sid, dir = committed
    clone = clone_of(repo, tmp_path / "clone")
    a2, b = oid_of(repo, sid, "a.txt"), oid_of(repo, sid, "b.txt")
    assert not (clone / opath(a2)).exists()
    for args in (
        ["show", sid, "--json"],
        ["cat", sid, "a.txt"],
        ["cat", sid, "a.txt@1"],
        ["cat", sid, "b.txt"],
        ["log", sid],
        ["diff", sid, "1"],
        ["fsck", "--json"],
    ):
        assert ok(spell("-w", str(clone), *args)) == ok(spell("-w", str(repo), *args)), args
    # rebuilt, byte for byte the objects of the clone it came from
    for oid in (a2, b):
        assert packed_form(clone, oid) == (repo / opath(oid)).read_bytes()
    # and listed in the clone's own ignore files: git has nothing to say, `git add -A` adds nothing
    assert listed(clone) == {opath(a2), opath(b)}
    assert clean(clone)
    run_git(clone, "add", "-A")
    assert run_git(clone, "diff", "--cached", "--name-only").stdout == ""
    assert "nothing to commit" in ok(spell("-w", str(clone), "commit"))


def test_a_hand_edited_copy_in_a_clone_is_never_taken_for_the_object(committed, spell, tmp_path):
    repo, sid, dir = committed
    clone = clone_of(repo, tmp_path / "clone")
    b = oid_of(repo, sid, "b.txt")
    copy = clone / "sessions" / dir / "files" / "b.txt"
    copy.write_bytes(b"edited before any spell command\n")  # HEAD's blob still holds version 1
    report = json.loads(ok(spell("-w", str(clone), "fsck", "--json")))
    assert report["ok"], report
    assert packed_form(clone, b) == (repo / opath(b)).read_bytes()
    assert copy.read_bytes() == b"edited before any spell command\n"  # the edit is kept
    status = json.loads(ok(spell("-w", str(clone), "status", "--json")))
    assert status["sessions"][0]["unrecorded"]["modified"] == ["b.txt"]
    ok(spell("-w", str(clone), "commit"))  # records the edit as version 2, stages version 1
    assert ok(spell("-w", str(clone), "cat", sid, "b.txt@1")).encode() == text(3)
    assert ok(spell("-w", str(clone), "cat", sid, "b.txt")) == "edited before any spell command\n"
    assert in_head(clone, b)


def test_a_missing_copy_in_a_clone_is_rebuilt_from_git(committed, spell, tmp_path):
    repo, sid, dir = committed
    clone = clone_of(repo, tmp_path / "clone")
    (clone / "sessions" / dir / "files" / "b.txt").unlink()
    assert ok(spell("-w", str(clone), "cat", sid, "b.txt")).encode() == text(3)
    assert ok(spell("-w", str(clone), "fsck")).endswith("ok\n")


def test_an_artifact_without_a_copy_keeps_its_object_in_git(repo, spell, tmp_path):
    (repo / "spell.yaml").write_text("watch:\n  materialize_max_bytes: 20000\n")
    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "big.txt", text(1, 50_000), tmp_path)
    ok(spell("-w", str(repo), "commit"))
    assert in_head(repo, oid_of(repo, sid, "big.txt"))
    clone = clone_of(repo, tmp_path / "clone")
    assert ok(spell("-w", str(clone), "cat", sid, "big.txt")).encode() == text(1, 50_000)


def test_restore_of_an_old_checkpoint_after_a_clone(committed, spell, tmp_path):
    repo, sid, dir = committed
    clone = clone_of(repo, tmp_path / "clone")
    ok(spell("-w", str(clone), "restore", sid, "1"))
    assert (clone / "sessions" / dir / "files" / "a.txt").read_bytes() == text(1)
    assert ok(spell("-w", str(clone), "cat", sid, "a.txt")).encode() == text(1)
    assert ok(spell("-w", str(clone), "fsck")).endswith("ok\n")
    ok(spell("-w", str(clone), "commit"))
    # a clone of that clone restores the other way
    again = clone_of(clone, tmp_path / "again")
    ok(spell("-w", str(again), "restore", sid, "2"))
    assert ok(spell("-w", str(again), "cat", sid, "a.txt")).encode() == text(2)


def test_gc_and_fsck_on_a_clone_keep_everything(committed, spell, tmp_path):
    repo, sid, dir = committed
    clone = clone_of(repo, tmp_path / "clone")
    ok(spell("-w", str(clone), "gc"))
    report = json.loads(ok(spell("-w", str(clone), "fsck", "--json")))
    assert report["ok"] and not report["problems"], report
    for ref, data in (("a.txt@1", text(1)), ("a.txt", text(2)), ("b.txt", text(3))):
        assert ok(spell("-w", str(clone), "cat", sid, ref)).encode() == data
    run_git(clone, "gc", "-q", "--prune=now")
    assert clean(clone)


def _shared_with_bob(repo: Path, spell, tmp_path: Path) -> tuple[str, Path, Path]:
    """A session holding notes.txt v1, committed and pushed to a bare origin that the first
    clone tracks; bob's clone of it (merging on pull). Returns (session id, bob's clone,
    origin)."""
    sid = new_session(spell, repo, "shared")
    add(spell, repo, sid, "notes.txt", text(1), tmp_path)
    ok(spell("-w", str(repo), "commit"))
    origin = tmp_path / "origin.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    run_git(repo, "remote", "add", "origin", str(origin))
    run_git(repo, "fetch", "-q", "origin")
    bob = clone_of(origin, tmp_path / "b")
    run_git(bob, "config", "pull.rebase", "false")
    return sid, bob, origin


def test_a_merge_of_two_clones_carries_every_version(repo, spell, tmp_path):
    sid, bob, origin = _shared_with_bob(repo, spell, tmp_path)
    # bob stores first, alice later: after the merge alice's version is the latest
    add(spell, bob, sid, "notes.txt", text(2), tmp_path)
    add(spell, repo, sid, "notes.txt", text(3), tmp_path)
    ok(spell("-w", str(repo), "commit"))
    run_git(repo, "push", "-q", "origin", "HEAD")
    ok(spell("-w", str(bob), "commit"))
    proc = run_git(bob, "pull", "--no-rebase", "-q", "origin", branch(bob), check=False)
    assert proc.returncode == 0 and "CONFLICT" not in proc.stdout + proc.stderr
    # bob lacks alice's latest object (her copy carried it, the merge kept bob's copy)
    assert ok(spell("-w", str(bob), "fsck")).endswith("ok\n")
    assert ok(spell("-w", str(bob), "cat", sid, "notes.txt")).encode() == text(3)
    ok(spell("-w", str(bob), "commit"))
    run_git(bob, "push", "-q", "origin", "HEAD")
    proc = run_git(repo, "pull", "--no-rebase", "-q", "origin", branch(repo), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fresh = clone_of(origin, tmp_path / "fresh")
    for root in (repo, bob, fresh):
        for v, seed in ((1, 1), (2, 2), (3, 3)):
            got = ok(spell("-w", str(root), "cat", sid, f"notes.txt@{v}")).encode()
            assert got == text(seed), (root, v)
        assert ok(spell("-w", str(root), "fsck")).endswith("ok\n")
        assert clean(root), run_git(root, "status", "--porcelain").stdout
    # the superseded versions are in git itself, not only in old copies
    for v in (1, 2):
        assert in_head(fresh, oid_of(repo, sid, "notes.txt", v))
    assert not in_head(fresh, oid_of(repo, sid, "notes.txt", 3))


def test_push_to_s3_from_a_clone_uploads_the_rebuilt_objects(committed, spell, tmp_path, seaweed):
    """A clone pushes every version's object, the rebuilt ones included, and a workspace
    holding only the records reads each version back from the remote."""
    import shutil

    from test_cli_remote import clean_env

    repo, sid, dir = committed
    clone = clone_of(repo, tmp_path / "clone")
    bucket = "spellfs-git-rebuild"
    if bucket not in seaweed.buckets:
        seaweed.create_bucket(bucket)
    env = clean_env(seaweed.env())
    url = f"s3://{bucket}/from-clone"
    ok(spell("-w", str(clone), "remote", "add", "origin", url, "--endpoint-url", seaweed.endpoint))
    ok(spell("-w", str(clone), "push", env=env))
    bare = tmp_path / "records-only"  # what a checkout without any object would hold
    bare.mkdir()
    shutil.copytree(clone / "sessions", bare / "sessions")
    shutil.copy(clone / "spell.yaml", bare / "spell.yaml")
    for ref, data in (("a.txt@1", text(1)), ("a.txt@2", text(2)), ("b.txt", text(3))):
        got = spell("-w", str(bare), "cat", sid, ref, env=env)
        assert got.returncode == 0 and got.stdout == data, (ref, got.stderr)
    ok(spell("-w", str(bare), "pull", env=env))
    assert json.loads(ok(spell("-w", str(bare), "fsck", "--json", env=env)))["ok"]


def test_two_stored_forms_of_one_object_merge_without_a_conflict(repo, spell, tmp_path):
    """A clone rebuilds an object with its own zstd; another build may frame the same content
    differently. When both clones later commit it, the merge keeps one (either is the content)."""
    import os

    sid, bob, origin = _shared_with_bob(repo, spell, tmp_path)
    ok(spell("-w", str(bob), "fsck"))  # rebuilds version 1's object
    loose(bob)  # (packed until a `spell commit`)
    v1 = oid_of(repo, sid, "notes.txt")
    raw = bob / opath(v1)  # bob's build stores it unframed: as valid, other bytes
    os.chmod(raw, 0o644)
    raw.write_bytes(text(1))
    os.chmod(raw, 0o444)
    assert raw.read_bytes() != (repo / opath(v1)).read_bytes()
    add(spell, bob, sid, "notes.txt", text(2), tmp_path)
    ok(spell("-w", str(bob), "commit"))
    add(spell, repo, sid, "notes.txt", text(3), tmp_path)
    ok(spell("-w", str(repo), "commit"))
    run_git(repo, "push", "-q", "origin", "HEAD")
    proc = run_git(bob, "pull", "--no-rebase", "-q", "origin", branch(bob), check=False)
    assert proc.returncode == 0 and "CONFLICT" not in proc.stdout + proc.stderr, proc.stdout
    assert ok(spell("-w", str(bob), "cat", sid, "notes.txt@1")).encode() == text(1)
    assert ok(spell("-w", str(bob), "fsck")).endswith("ok\n")


def test_the_python_api_on_a_fresh_clone_reads_every_version(committed, spell, tmp_path):
    """No `spell` command has run on the clone: the first read of a missing object rebuilds it."""
    repo, sid, dir = committed
    clone = clone_of(repo, tmp_path / "clone")
    with Workspace.open(clone) as ws:
        assert ws.artifacts.get(sid, "a.txt")["content"] == text(2)
        assert ws.artifacts.get(sid, "a.txt@1")["content"] == text(1)
        assert ws.artifacts.get(sid, "b.txt")["content"] == text(3)
    assert packed_form(clone, oid_of(repo, sid, "b.txt"))  # the whole session, at once
    assert clean(clone)


def test_git_clean_of_ignored_files_loses_nothing(committed, spell, tmp_path):
    repo, sid, dir = committed
    run_git(repo, "clean", "-fdqX")  # removes .spell's caches and the objects git leaves out
    assert not (repo / opath(oid_of(repo, sid, "a.txt"))).exists()
    assert ok(spell("-w", str(repo), "cat", sid, "a.txt")).encode() == text(2)
    assert ok(spell("-w", str(repo), "fsck")).endswith("ok\n")
    assert clean(repo)


def test_a_removed_and_collected_session_is_still_in_the_history(committed, spell, tmp_path):
    """`spell rm` + `spell gc` delete the local objects; the commit before still has the copies,
    and a checkout of it rebuilds the objects from them."""
    repo, sid, dir = committed
    ok(spell("-w", str(repo), "rm", "-y", sid))
    ok(spell("-w", str(repo), "gc", "--grace", "0"))
    assert not (repo / opath(oid_of_in(repo, dir, "a.txt"))).exists()
    ok(spell("-w", str(repo), "commit"))
    clone = clone_of(repo, tmp_path / "clone")
    run_git(clone, "checkout", "-q", "HEAD~1")
    for ref, data in (("a.txt@1", text(1)), ("a.txt", text(2)), ("b.txt", text(3))):
        assert ok(spell("-w", str(clone), "cat", sid, ref)).encode() == data
    assert ok(spell("-w", str(clone), "fsck")).endswith("ok\n")


def oid_of_in(root: Path, dir: str, name: str) -> str:
    """The latest hash of ``name`` read from the records file itself (the session may be gone)."""
    out = run_git(root, "show", f"HEAD:sessions/{dir}/artifacts.yaml").stdout
    return [line for line in out.splitlines() if f'"name": "{name}"' in line][-1].split(
        '"hash": "'
    )[1][:64]
