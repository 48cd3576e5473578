"""Git carries each byte once: `spell commit` leaves out of git the objects of latest versions
whose committed files/ copy carries the same bytes, and lets them in again once they stop
being the latest (real git, real `spell`)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path


from conftest import loose
from spellfs import Workspace

from test_git_commits import add, identity, new_session, ok, run_git


def text(seed: int, size: int = 30_000) -> bytes:
    """Text above the compression threshold (10 KiB): its object is zstd-compressed."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(800)]
    out = b""
    while len(out) < size:
        out += (" ".join(rng.choice(words) for _ in range(10)) + "\n").encode()
    return out[:size]


def opath(oid: str) -> str:
    return f".spell/objects/{oid[:2]}/{oid[2:]}"


def in_head(root: Path, oid: str) -> bool:
    return run_git(root, "cat-file", "-e", f"HEAD:{opath(oid)}", check=False).returncode == 0


def oid_of(root: Path, sid: str, name: str, version: int | None = None) -> str:
    with Workspace.open(root) as ws:
        if version is None:
            return ws.artifacts.find(sid, name)[1]["hash"]
        return ws.artifacts.find(sid, f"{name}@{version}")[1]["hash"]


def listed(root: Path) -> set[str]:
    """Object paths the local, self-ignoring fan-out .gitignore files list as left out."""
    out = set()
    for f in (root / ".spell" / "objects").glob("??/.gitignore"):
        fan = f.parent.name
        out |= {
            f".spell/objects/{fan}{line}"
            for line in f.read_text().splitlines()
            if line.startswith("/") and line != "/.gitignore"
        }
    return out


def clean(root: Path) -> bool:
    return run_git(root, "status", "--porcelain", "--untracked-files=all").stdout == ""


def test_a_committed_copy_carries_the_object_of_the_latest_version(repo, spell, tmp_path):
    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "big.txt", text(1), tmp_path)
    add(spell, repo, sid, "big.txt", text(2), tmp_path)  # v1 is superseded before any commit
    add(spell, repo, sid, "small.txt", b"below the threshold\n", tmp_path)
    ok(spell("-w", str(repo), "commit"))
    v1, v2 = oid_of(repo, sid, "big.txt", 1), oid_of(repo, sid, "big.txt", 2)
    small = oid_of(repo, sid, "small.txt")
    dir = Workspace.open(repo).sessions.resolve(sid)
    assert not in_head(repo, v2)  # the committed copy carries it
    copy = run_git(repo, "cat-file", "-p", f"HEAD:sessions/{dir}/files/big.txt").stdout
    assert copy.encode() == text(2)
    assert in_head(repo, v1)  # history stays in git
    assert in_head(repo, small)  # byte-identical to its copy: git stores it once anyway
    assert (repo / opath(v2)).is_file()  # still in the local store
    # a plain `git add -A` does not undo it, and `git status` has nothing to say
    assert clean(repo)
    run_git(repo, "add", "-A")
    assert run_git(repo, "diff", "--cached", "--name-only").stdout == ""
    assert listed(repo) == {opath(v2)}
    assert opath(v2) not in (repo / ".gitignore").read_text()  # nothing committed says so
    assert run_git(repo, "ls-files", "--", ".spell/objects/*/.gitignore").stdout == ""


def test_a_version_that_stops_being_the_latest_gets_its_object_staged(repo, spell, tmp_path):
    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "a.txt", text(1), tmp_path)
    add(spell, repo, sid, "gone.txt", text(3), tmp_path)
    ok(spell("-w", str(repo), "commit"))
    a1, gone = oid_of(repo, sid, "a.txt"), oid_of(repo, sid, "gone.txt")
    assert not in_head(repo, a1) and not in_head(repo, gone)
    add(spell, repo, sid, "a.txt", text(2), tmp_path)  # a new version
    with Workspace.open(repo) as ws:
        ws.artifacts.delete(sid, "gone.txt")  # a deletion
    ok(spell("-w", str(repo), "commit"))
    a2 = oid_of(repo, sid, "a.txt")
    assert in_head(repo, a1) and in_head(repo, gone)
    assert not in_head(repo, a2)
    assert listed(repo) == {opath(a2)}
    assert clean(repo)


def test_a_removed_session_gets_its_objects_staged(repo, spell, tmp_path):
    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "a.txt", text(1), tmp_path)
    ok(spell("-w", str(repo), "commit"))
    a1 = oid_of(repo, sid, "a.txt")
    ok(spell("-w", str(repo), "rm", "-y", sid))
    ok(spell("-w", str(repo), "commit"))
    assert in_head(repo, a1)  # the session's history is in git, objects included


def test_a_hand_edit_is_recorded_and_the_version_it_replaces_staged(repo, spell, tmp_path):
    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "a.txt", text(1), tmp_path)
    ok(spell("-w", str(repo), "commit"))
    a1 = oid_of(repo, sid, "a.txt")
    dir = Workspace.open(repo).sessions.resolve(sid)
    (repo / "sessions" / dir / "files" / "a.txt").write_bytes(text(1) + b"by hand\n")
    out = ok(spell("-w", str(repo), "commit"))
    assert "recorded hand changes" in out
    assert in_head(repo, a1)
    assert not in_head(repo, oid_of(repo, sid, "a.txt"))
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert ok(spell("-w", str(clone), "cat", sid, "a.txt@1")).encode() == text(1)
    assert ok(spell("-w", str(clone), "cat", sid, "a.txt")).encode() == text(1) + b"by hand\n"
    assert ok(spell("-w", str(clone), "fsck")).endswith("ok\n")


def test_an_unrecorded_edit_in_a_finished_session_keeps_the_object_in_git(repo, spell, tmp_path):
    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "a.txt", text(1), tmp_path)
    ok(spell("-w", str(repo), "complete", sid))
    ok(spell("-w", str(repo), "commit"))
    a1 = oid_of(repo, sid, "a.txt")
    assert not in_head(repo, a1)
    dir = Workspace.open(repo).sessions.resolve(sid)
    (repo / "sessions" / dir / "files" / "a.txt").write_bytes(b"edited, not recorded\n")
    proc = spell("-w", str(repo), "commit")
    assert proc.returncode == 0 and "not recorded" in proc.stderr.decode()
    # the committed copy no longer carries version 1: its object goes into git
    assert in_head(repo, a1)
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert ok(spell("-w", str(clone), "cat", sid, "a.txt@1")).encode() == text(1)


def test_a_plain_git_commit_after_a_new_version_loses_nothing(repo, spell, tmp_path):
    """The entry of a superseded object is removed by the next `spell commit`; a plain `git
    commit -a` before it leaves the object out, but its bytes are in git as the earlier copy."""
    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "a.txt", text(1), tmp_path)
    ok(spell("-w", str(repo), "commit"))
    add(spell, repo, sid, "a.txt", text(2), tmp_path)
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", "plain git")
    a1 = oid_of(repo, sid, "a.txt", 1)
    assert not in_head(repo, a1)
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert ok(spell("-w", str(clone), "cat", sid, "a.txt@1")).encode() == text(1)
    assert ok(spell("-w", str(clone), "fsck")).endswith("ok\n")
    ok(spell("-w", str(repo), "commit"))
    assert in_head(repo, a1)


def test_only_a_staged_copy_that_holds_the_bytes_carries_the_object(repo, spell, tmp_path):
    """The check is made on the blob git stages, not on the file (which may change meanwhile)."""
    from spellfs.git import exclude
    from spellfs.git.repo import open_repo

    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "a.txt", text(1), tmp_path)
    add(spell, repo, sid, "b.txt", text(2), tmp_path)
    dir = Workspace.open(repo).sessions.resolve(sid)
    loose(repo)  # what `spell commit` does first: git carries loose objects only
    run_git(repo, "add", "-A")
    blob = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            cwd=repo,
            input=b"something else\n",
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    run_git(repo, "update-index", "--cacheinfo", f"100644,{blob},sessions/{dir}/files/a.txt")
    with Workspace.open(repo) as ws:
        eligible = exclude.candidates(ws)
        a, b = oid_of(repo, sid, "a.txt"), oid_of(repo, sid, "b.txt")
        assert {a, b} <= set(eligible)
        carried = exclude.unstage_carried(ws, open_repo(repo), "", {a, b}, eligible)
    assert carried == {b}
    staged = run_git(repo, "ls-files", "--", ".spell/objects").stdout
    assert opath(a) in staged and opath(b) not in staged


def test_objects_a_user_staged_with_git_add_are_left_out_too(repo, spell, tmp_path):
    sid = new_session(spell, repo, "docs")
    add(spell, repo, sid, "a.txt", text(1), tmp_path)
    run_git(repo, "add", "-A")  # before spell commit has listed anything
    ok(spell("-w", str(repo), "commit"))
    assert not in_head(repo, oid_of(repo, sid, "a.txt"))
    assert clean(repo)


def test_a_sha256_repository_leaves_the_objects_out_too(tmp_path, spell):
    """Git's blob ids are SHA-256 there: the staged-blob check must compute the same."""
    root = tmp_path / "r"
    run_git(tmp_path, "init", "-q", "--object-format=sha256", str(root))
    ok(spell("init", "--git", str(root)))
    identity(root, "alice")
    sid = new_session(spell, root, "docs")
    add(spell, root, sid, "a.txt", text(1), tmp_path)
    ok(spell("-w", str(root), "commit"))
    assert not in_head(root, oid_of(root, sid, "a.txt")) and clean(root)
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(root), str(clone))
    assert ok(spell("-w", str(clone), "cat", sid, "a.txt")).encode() == text(1)
    assert clean(clone)
