"""Sharing through git: init --git, commit, clone, merge of two clones, status (real git, real
`spell`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import git
import pytest

from spellfs import Workspace
from spellfs.store.objects import hash_bytes

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def run_git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
    return proc


def identity(repo: Path, who: str = "tester") -> None:
    run_git(repo, "config", "user.name", who)
    run_git(repo, "config", "user.email", f"{who}@example.com")
    run_git(repo, "config", "pull.rebase", "false")


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode("utf-8", "surrogateescape")


def new_session(spell, root: Path, name: str) -> str:
    return ok(spell("-w", str(root), "new", name)).strip()


def add(spell, root: Path, sid: str, name: str, content: bytes, tmp: Path) -> None:
    src = tmp / f"src-{root.name}"
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(content)
    ok(spell("-w", str(root), "add", sid, str(src / name)))


def branch(root: Path) -> str:
    return run_git(root, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()


# -- init --git -----------------------------------------------------------------------
def test_init_git_ignores_local_state_and_keeps_records_mergeable(repo: Path, spell) -> None:
    r = git.Repo(repo)
    assert '[merge "spellfs-files"]' in (repo / ".git" / "config").read_text()
    assert run_git(repo, "config", "--get", "merge.spellfs-files.driver").stdout == "true\n"
    assert r.head.is_valid() is False  # nothing committed yet
    for local in (
        ".spell/index.sqlite",
        ".spell/locks/s-x.lock",
        ".spell/daemon.log",
        ".spell/git-head",
        "sessions/s-1234abcd/files/.notes.md.1.2.tmp",
    ):
        assert run_git(repo, "check-ignore", "-q", local, check=False).returncode == 0, local
    for shared in (
        ".spell/objects/ab/" + "c" * 62,
        "sessions/s-1234abcd/artifacts.yaml",
        "spell.yaml",
    ):
        assert run_git(repo, "check-ignore", "-q", shared, check=False).returncode == 1, shared
    attrs = run_git(
        repo,
        "check-attr",
        "merge",
        "--",
        "sessions/x-1234abcd/artifacts.yaml",
        "sessions/x-1234abcd/checkpoints.yaml",
        "sessions/x-1234abcd/runs.yaml",
        "sessions/x-1234abcd/calls.yaml",
        "sessions/x-1234abcd/files/notes.md",
    ).stdout
    assert attrs.count("merge: union") == 4
    assert "files/notes.md: merge: spellfs-files" in attrs
    before = (repo / ".gitignore").read_text(), (repo / ".gitattributes").read_text()
    ok(spell("init", "--git", str(repo)))  # idempotent
    assert ((repo / ".gitignore").read_text(), (repo / ".gitattributes").read_text()) == before


def test_init_git_keeps_an_existing_gitignore(tmp_path: Path, spell) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / ".gitignore").write_text("build/\n")
    ok(spell("init", "--git", str(root)))
    text = (root / ".gitignore").read_text()
    assert text.startswith("build/\n") and "/.spell/*" in text


# -- commit ---------------------------------------------------------------------------
def test_commit_summarises_sessions_and_says_nothing_to_commit(
    repo: Path, spell, tmp_path: Path
) -> None:
    a = new_session(spell, repo, "research")
    b = new_session(spell, repo, "other")
    for name in ("one.md", "two.md", "three.md"):
        add(spell, repo, a, name, name.encode(), tmp_path)
    out = ok(spell("-w", str(repo), "commit"))
    msg = git.Repo(repo).head.commit.message
    assert msg.startswith("spell: 2 sessions changed\n\n")
    dir_a = Workspace.open(repo).sessions.resolve(a)
    assert f"- {dir_a}: new session, 3 artifact versions stored" in msg
    assert "spell: 2 sessions changed" in out
    again = spell("-w", str(repo), "commit")
    assert (
        again.returncode == 0
        and ok(again).strip() == "nothing to commit (the workspace matches the last commit)"
    )
    # A user message becomes the subject; the summary stays in the body.
    add(spell, repo, b, "x.txt", b"x", tmp_path)
    ok(spell("-w", str(repo), "commit", "-m", "more notes"))
    msg = git.Repo(repo).head.commit.message
    assert msg.startswith("more notes\n\nspell: 1 session changed\n\n- other-")
    assert "1 artifact version stored" in msg
    assert run_git(repo, "status", "--porcelain", "--untracked-files=all").stdout == ""


def test_commit_warns_about_a_hand_edited_file_that_does_not_load(repo: Path, spell) -> None:
    new_session(spell, repo, "s")
    ok(spell("-w", str(repo), "commit"))
    (repo / "state.yaml").write_text("foo: [\n")
    r = spell("-w", str(repo), "commit")
    assert r.returncode == 0  # shared anyway: a colleague may be the one to fix it
    assert r.stderr.decode().startswith("warning: committed a file that does not load: state.yaml:")
    assert "state.yaml" in run_git(repo, "show", "--name-only", "--format=", "HEAD").stdout
    r = spell("-w", str(repo), "commit")  # nothing new staged: nothing to say
    assert r.stderr == b""


def test_commit_leaves_other_staged_work_alone(repo: Path, spell) -> None:
    new_session(spell, repo, "s")
    (repo / "README.txt").write_text("mine\n")
    run_git(repo, "add", "README.txt")
    ok(spell("-w", str(repo), "commit"))
    assert "README.txt" not in run_git(repo, "ls-tree", "-r", "--name-only", "HEAD").stdout
    assert run_git(repo, "diff", "--cached", "--name-only").stdout.strip() == "README.txt"


def test_commit_outside_git_says_how_to_make_a_repository(root: Path, spell) -> None:
    proc = spell("-w", str(root), "commit")
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("Error: not a git repository:")
    assert "spell init --git" in proc.stderr.decode()


def test_large_objects_stay_out_of_git(repo: Path, spell, tmp_path: Path) -> None:
    (repo / "spell.yaml").write_text("git:\n  max_object_bytes: 1000\n")
    sid = new_session(spell, repo, "big")
    import os

    add(spell, repo, sid, "big.bin", os.urandom(5000), tmp_path)
    add(spell, repo, sid, "small.txt", b"small", tmp_path)
    out = ok(spell("-w", str(repo), "commit"))
    assert "kept out of git" in out and "spell push" in out
    tracked = run_git(repo, "ls-files").stdout
    ws = Workspace.open(repo)
    big = ws.artifacts.find(sid, "big.bin")[1]["hash"]
    small = ws.artifacts.find(sid, "small.txt")[1]["hash"]
    assert f".spell/objects/{big[:2]}/{big[2:]}" not in tracked and "files/big.bin" not in tracked
    assert f".spell/objects/{small[:2]}/{small[2:]}" in tracked and "files/small.txt" in tracked
    assert "artifacts.yaml" in tracked  # the record itself is shared
    assert run_git(repo, "status", "--porcelain", "--untracked-files=all").stdout == ""
    assert f"/.spell/objects/{big[:2]}/{big[2:]}" in (repo / ".gitignore").read_text()


def _kept_out_of_git(repo: Path, spell, tmp_path: Path) -> tuple[str, bytes]:
    """A committed session holding big.txt, above git.max_object_bytes: kept out of git."""
    import base64
    import os

    (repo / "spell.yaml").write_text("git:\n  max_object_bytes: 1000\n")
    sid = new_session(spell, repo, "s")
    big = base64.b64encode(os.urandom(5000)) + b"\n"
    add(spell, repo, sid, "big.txt", big, tmp_path)
    assert "kept out of git" in ok(spell("-w", str(repo), "commit", "-m", "c"))
    return sid, big


def test_a_clone_lacking_a_copy_kept_out_of_git_records_no_deletion(
    repo: Path, spell, tmp_path: Path
) -> None:
    """Red-team F10: the clone has big.txt's record but no copy and no object; that is "not
    local", never a hand deletion, so nothing deletes it here or, through git, in the origin."""
    sid, big = _kept_out_of_git(repo, spell, tmp_path)
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(repo), str(clone))
    identity(clone, "bob")
    dir = Workspace.open(repo).sessions.resolve(sid)
    assert not (clone / "sessions" / dir / "files" / "big.txt").exists()
    status = ok(spell("-w", str(clone), "status"))
    assert "by hand" not in status, status
    assert "not local" in status and "big.txt" in status and "spell pull" in status
    report = json.loads(ok(spell("-w", str(clone), "status", "--json")))
    assert report["sessions"][0]["unrecorded"] == {
        "modified": [],
        "added": [],
        "deleted": [],
        "not_local": ["big.txt"],
    }
    saved = ok(spell("-w", str(clone), "save", sid, "-m", "on the clone"))
    assert "recorded hand changes" not in saved and "+1 ~0 -0" in saved
    assert '"op": "delete"' not in (clone / "sessions" / dir / "artifacts.yaml").read_text()
    ok(spell("-w", str(clone), "commit", "-m", "clone"))
    run_git(repo, "pull", "--no-rebase", "-q", str(clone), branch(clone))
    show = json.loads(ok(spell("-w", str(repo), "show", sid, "--json")))
    assert show["artifact_count"] == 1
    assert (repo / "sessions" / dir / "files" / "big.txt").read_bytes() == big
    assert spell("-w", str(repo), "cat", sid, "big.txt").stdout == big
    assert "by hand" not in ok(spell("-w", str(repo), "status"))


def test_a_copy_kept_out_of_git_deleted_by_hand_is_still_a_deletion(
    repo: Path, spell, tmp_path: Path
) -> None:
    """Where the copy was (the stat cache saw it), its absence is a hand deletion as before."""
    sid, _ = _kept_out_of_git(repo, spell, tmp_path)
    dir = Workspace.open(repo).sessions.resolve(sid)
    (repo / "sessions" / dir / "files" / "big.txt").unlink()
    assert "deleted by hand, not yet recorded: big.txt" in ok(spell("-w", str(repo), "status"))
    assert "-big.txt" in ok(spell("-w", str(repo), "save", sid))
    assert not (repo / "sessions" / dir / "files" / "big.txt").exists()


# -- clone ------------------------------------------------------------------------------
def test_a_clone_works_identically(repo: Path, spell, tmp_path: Path) -> None:
    sid = new_session(spell, repo, "research")
    add(spell, repo, sid, "notes.md", b"# v1\n", tmp_path)
    add(spell, repo, sid, "notes.md", b"# v2\n", tmp_path)
    add(
        spell, repo, sid, "data.bin", bytes(range(256)) * 100, tmp_path
    )  # above the compression threshold
    ok(spell("-w", str(repo), "save", sid, "-m", "first"))
    add(spell, repo, sid, "later.md", b"after the checkpoint\n", tmp_path)
    ok(spell("-w", str(repo), "commit"))
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert "spellfs-files" not in (clone / ".git" / "config").read_text()
    commands = [
        ["ls", "--json"],
        ["show", sid, "--json"],
        ["cat", sid, "notes.md"],
        ["cat", sid, "notes.md@1"],
        ["cat", sid, "data.bin"],
        ["fsck", "--json"],
        ["status", "--json"],
    ]
    commands += [["log", sid], ["diff", sid], ["log", sid, "--json"]]
    for args in commands:
        assert ok(spell("-w", str(clone), *args)) == ok(spell("-w", str(repo), *args)), args
    # any command run on the clone adds the merge driver its .git/config lacks
    assert '[merge "spellfs-files"]' in (clone / ".git" / "config").read_text()


# -- two clones merging ------------------------------------------------------------------
@pytest.fixture
def clones(repo: Path, spell, tmp_path: Path):
    """alice (repo) and bob, sharing a bare origin, both with a committed session `shared`."""
    sid = new_session(spell, repo, "shared")
    add(spell, repo, sid, "notes.md", b"base\n", tmp_path)
    ok(spell("-w", str(repo), "commit"))
    origin = tmp_path / "origin.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    run_git(repo, "remote", "add", "origin", str(origin))
    run_git(repo, "fetch", "-q", "origin")
    bob = tmp_path / "b"
    run_git(tmp_path, "clone", "-q", str(origin), str(bob))
    identity(bob, "bob")
    return repo, bob, sid


def pull(root: Path) -> subprocess.CompletedProcess:
    return run_git(root, "pull", "--no-rebase", "-q", "origin", branch(root), check=False)


def test_two_clones_merge_with_a_plain_git_pull(clones, spell, tmp_path: Path) -> None:
    alice, bob, sid = clones
    # bob stores first, alice later: after bob's pull, alice's version is the latest
    add(spell, bob, sid, "notes.md", b"bob's notes\n", tmp_path)
    add(spell, bob, sid, "bob.md", b"from bob\n", tmp_path)
    bob_session = new_session(spell, bob, "bob-only")
    add(spell, bob, bob_session, "b.txt", b"b\n", tmp_path)
    add(spell, alice, sid, "notes.md", b"alice's notes\n", tmp_path)
    add(spell, alice, sid, "alice.md", b"from alice\n", tmp_path)
    alice_session = new_session(spell, alice, "alice-only")
    add(spell, alice, alice_session, "a.txt", b"a\n", tmp_path)
    ok(spell("-w", str(alice), "commit"))
    run_git(alice, "push", "-q", "origin", "HEAD")
    ok(spell("-w", str(bob), "commit"))

    proc = pull(bob)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CONFLICT" not in proc.stdout + proc.stderr
    # the merge driver kept bob's copy; the next spell command rewrites it from the merged records
    assert (
        bob / "sessions" / Workspace.open(bob).sessions.resolve(sid) / "files" / "notes.md"
    ).read_bytes() == b"bob's notes\n"
    assert ok(spell("-w", str(bob), "fsck")).endswith("ok\n")
    dir = Workspace.open(bob).sessions.resolve(sid)
    assert (bob / "sessions" / dir / "files" / "notes.md").read_bytes() == b"alice's notes\n"
    assert ok(spell("-w", str(bob), "cat", sid, "notes.md")) == "alice's notes\n"
    assert ok(spell("-w", str(bob), "cat", sid, "notes.md@2")) == "bob's notes\n"
    assert ok(spell("-w", str(bob), "cat", sid, "notes.md@3")) == "alice's notes\n"
    names = {s["name"] for s in json.loads(ok(spell("-w", str(bob), "ls", "--json")))}
    assert names == {"shared", "bob-only", "alice-only"}

    out = ok(spell("-w", str(bob), "commit"))  # commits the merge's rewritten copy
    assert f"- {dir}: 1 file changed" in out
    run_git(bob, "push", "-q", "origin", "HEAD")
    proc = pull(alice)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    views = []
    for root in (alice, bob):
        show = json.loads(ok(spell("-w", str(root), "show", sid, "--json")))
        views.append(
            sorted((a["name"], a["version"], a["content_hash"]) for a in show["artifacts"])
        )
        assert ok(spell("-w", str(root), "fsck")).endswith("ok\n")
        assert [ok(spell("-w", str(root), "cat", sid, f"notes.md@{v}")) for v in (1, 2, 3)] == [
            "base\n",
            "bob's notes\n",
            "alice's notes\n",
        ]
        assert (root / "sessions" / dir / "files" / "notes.md").read_bytes() == b"alice's notes\n"
    assert views[0] == views[1]
    assert ("notes.md", 3, hash_bytes(b"alice's notes\n")) in views[0]
    assert ok(spell("-w", str(alice), "ls", "--json")) == ok(spell("-w", str(bob), "ls", "--json"))


def test_delete_on_one_side_and_store_on_the_other_is_resolved_by_commit(
    clones, spell, tmp_path: Path
) -> None:
    alice, bob, sid = clones
    with Workspace.open(alice) as ws:
        ws.artifacts.delete(sid, "notes.md")
    ok(spell("-w", str(alice), "commit"))
    run_git(alice, "push", "-q", "origin", "HEAD")
    add(spell, bob, sid, "notes.md", b"bob kept going\n", tmp_path)  # later than alice's delete
    ok(spell("-w", str(bob), "commit"))
    proc = pull(bob)
    assert (
        proc.returncode != 0 and "files/notes.md" in proc.stdout
    )  # modify/delete: git cannot know
    out = ok(spell("-w", str(bob), "commit"))
    assert "resolved 1 files/ copies" in out
    assert run_git(bob, "status", "--porcelain").stdout == ""
    assert ok(spell("-w", str(bob), "cat", sid, "notes.md")) == "bob kept going\n"
    assert ok(spell("-w", str(bob), "fsck")).endswith("ok\n")


def test_both_sides_editing_session_yaml_is_a_real_conflict(clones, spell, tmp_path: Path) -> None:
    alice, bob, sid = clones
    ok(spell("-w", str(alice), "suspend", sid))
    ok(spell("-w", str(alice), "commit"))
    run_git(alice, "push", "-q", "origin", "HEAD")
    ok(spell("-w", str(bob), "complete", sid))
    ok(spell("-w", str(bob), "commit"))
    assert pull(bob).returncode != 0
    proc = spell("-w", str(bob), "commit")
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert (
        err.startswith("Error: merge conflict: sessions/")
        and "session.yaml" in err
        and len(err.splitlines()) == 1
    )


# -- status -------------------------------------------------------------------------------
def test_status_of_a_session_whose_state_is_broken_still_names_its_checkpoint(
    root: Path, spell
) -> None:
    """A hand edit broke the session's state.yaml: status says so, and that it has a checkpoint
    whose changes since cannot be told (it used to say "no checkpoints")."""
    sid = spell("-w", str(root), "new", "beta").stdout.decode().strip()
    ok(spell("-w", str(root), "save", sid, "-m", "s1"))
    [d] = (root / "sessions").iterdir()
    (d / "state.yaml").write_text("garbage: [\n")
    text = spell("-w", str(root), "status").stdout.decode()
    assert "state.yaml:2: invalid YAML" in text
    assert "since checkpoint 1: cannot be told" in text and "no checkpoints" not in text
    [s] = json.loads(spell("-w", str(root), "status", "--json").stdout)["sessions"]
    assert s["checkpoint"]["number"] == 1 and s["since_checkpoint"] is None and s["error"]


def test_status_escapes_the_names_it_prints_on_every_line(repo: Path, spell) -> None:
    """red-team 7: a file in files/ named with an escape sequence (a clone's) or a byte that is
    not UTF-8: every line of `spell status` shows it escaped; none sends it to the terminal."""
    sid = new_session(spell, repo, "research")
    ok(spell("-w", str(repo), "commit"))
    [d] = (repo / "sessions").iterdir()
    (d / "files" / "e\x1b]0;pwned\x07vil").write_text("x")
    os.close(os.open(os.fsencode(d / "files") + b"/non\xffutf", os.O_CREAT | os.O_WRONLY))
    out = spell("-w", str(repo), "status").stdout
    assert b"\x1b" not in out and b"\x07" not in out and b"\xff" not in out, out
    assert b"e\\x1b]0;pwned\\x07vil" in out and b"non\\xffutf" in out, out
    assert sid


def test_status_reports_uncommitted_paths_per_session(repo: Path, spell, tmp_path: Path) -> None:
    sid = new_session(spell, repo, "research")
    ok(spell("-w", str(repo), "commit"))
    report = json.loads(ok(spell("-w", str(repo), "status", "--json")))
    assert report["git"] is True and report["merging"] is False
    [s] = report["sessions"]
    assert s["id"] == sid and s["uncommitted"] == []
    add(spell, repo, sid, "notes.md", b"n\n", tmp_path)
    report = json.loads(ok(spell("-w", str(repo), "status", "--json")))
    assert report["sessions"][0]["uncommitted"] == ["artifacts.yaml", "files/notes.md"]
    assert report["objects"] == 1
    text = ok(spell("-w", str(repo), "status"))
    assert "not committed: artifacts.yaml, files/notes.md" in text
    assert "no checkpoints" in text
    ok(spell("-w", str(repo), "save", sid))
    add(spell, repo, sid, "more.md", b"m\n", tmp_path)
    report = json.loads(ok(spell("-w", str(repo), "status", "--json")))
    s = report["sessions"][0]
    assert s["checkpoint"]["number"] == 1 and s["since_checkpoint"]["added"] == ["more.md"]
    assert "since checkpoint 1: 1 added" in ok(spell("-w", str(repo), "status"))


def test_status_outside_git(root: Path, spell) -> None:
    out = ok(spell("-w", str(root), "status"))
    assert out.startswith("not a git repository")
    assert json.loads(ok(spell("-w", str(root), "status", "--json")))["git"] is False


def test_commit_in_a_plain_git_repository_sets_it_up(root: Path, spell) -> None:
    run_git(root, "init", "-q")
    identity(root)
    new_session(spell, root, "s")
    ok(spell("-w", str(root), "commit"))
    assert "merge=spellfs-files" in (root / ".gitattributes").read_text()
    assert '[merge "spellfs-files"]' in (root / ".git" / "config").read_text()
    assert ".spell/index.sqlite" not in run_git(root, "ls-files").stdout


def test_an_enclosing_repository_is_left_alone_by_other_commands(tmp_path: Path, spell) -> None:
    run_git(tmp_path, "init", "-q")
    config = (tmp_path / ".git" / "config").read_text()
    ok(spell("init", str(tmp_path / "ws")))
    new_session(spell, tmp_path / "ws", "s")
    assert (tmp_path / ".git" / "config").read_text() == config


def test_packed_objects_are_committed_loose_and_a_clone_reads_every_artifact(
    repo: Path, spell, tmp_path: Path
) -> None:
    """`spell add S DIR` of 16 or more files writes their objects as one pack (store/packs.py),
    which stays local: `spell commit` writes them loose first, so git carries each one a
    clone needs and no pack."""
    sid = new_session(spell, repo, "bulk")
    for v in (1, 2):  # version 1 then lives only in the pack: no files/ copy carries it
        data = tmp_path / f"data{v}"
        data.mkdir()
        for i in range(20):
            (data / f"f{i:02}.txt").write_text(f"version {v} of file {i:02}\n")
        ok(spell("-w", str(repo), "add", sid, str(data)))
    pack_dir = repo / ".spell" / "objects" / "pack"
    packs = list(pack_dir.glob("*.pack"))
    assert len(packs) == 2
    packed = b"".join(p.read_bytes() for p in packs)
    v1 = {f"f{i:02}.txt": f"version 1 of file {i:02}\n".encode() for i in range(20)}
    v2 = {f"f{i:02}.txt": f"version 2 of file {i:02}\n".encode() for i in range(20)}
    for content in [*v1.values(), *v2.values()]:
        oid = hash_bytes(content)
        assert content in packed and not (repo / ".spell/objects" / oid[:2] / oid[2:]).exists()

    ok(spell("-w", str(repo), "commit", "-m", "bulk"))
    tracked = run_git(repo, "ls-files").stdout.splitlines()
    assert not [p for p in tracked if "/pack/" in p or p.endswith(".pack")], tracked
    for content in v1.values():  # no files/ copy carries these: git must
        oid = hash_bytes(content)
        assert f".spell/objects/{oid[:2]}/{oid[2:]}" in tracked
    assert run_git(repo, "status", "--porcelain", "--untracked-files=all").stdout == ""

    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(repo), str(clone))
    with Workspace.open(clone) as ws:
        for name in v1:
            assert ws.artifacts.get(sid, f"{name}@1")["content"] == v1[name], name
            assert ws.artifacts.get(sid, name)["content"] == v2[name], name
    assert ok(spell("-w", str(clone), "cat", sid, "f07.txt@1")) == "version 1 of file 07\n"
    assert json.loads(ok(spell("-w", str(clone), "fsck", "--json")))["ok"] is True
    assert ok(spell("-w", str(clone), "show", sid, "--json")) == ok(
        spell("-w", str(repo), "show", sid, "--json")
    )


def test_replay_from_one_of_a_merges_two_checkpoints_replays_only_its_own_runs(
    clones, spell, tmp_path: Path
) -> None:
    """alice and bob each save checkpoint 2, run a script on it, and merge: `replay --from
    2:TREE` replays only the run made on that checkpoint, which reproduces (red-team 2 R1: the
    other clone's run was replayed too, in file order, and reported as different)."""
    alice, bob, sid = clones
    script = (
        "local s = Session.list()[1].id\n"
        "local names = {}\n"
        "for _, a in ipairs(Artifact.list(s)) do names[#names + 1] = a.name end\n"
        "table.sort(names)\n"
        'Artifact.store(s, "t", "seen-" .. arg[1] .. ".txt", table.concat(names, ","))\n'
    )
    (alice / "seen.lua").write_text(script)
    ok(spell("-w", str(alice), "save", sid, "-m", "base"))
    ok(spell("-w", str(alice), "commit", "-m", "base"))
    run_git(alice, "add", "seen.lua")
    run_git(alice, "commit", "-q", "-m", "script")
    run_git(alice, "push", "-q", "origin", "HEAD")
    assert pull(bob).returncode == 0
    for who, root in (("alice", alice), ("bob", bob)):
        add(spell, root, sid, f"{who}.md", f"from {who}\n".encode(), tmp_path)
        ok(spell("-w", str(root), "save", sid, "-m", f"by {who}"))
        r = spell("-w", str(root), "run", "seen.lua", who, cwd=root)
        assert r.returncode == 0, r.stderr
        ok(spell("-w", str(root), "commit", "-m", who))
    run_git(alice, "fetch", "-q", str(bob), branch(bob))
    run_git(alice, "merge", "-q", "--no-edit", "FETCH_HEAD")
    log = json.loads(ok(spell("-w", str(alice), "log", sid, "--json")))
    for who in ("alice", "bob"):
        tree = next(c["tree"] for c in log if c["message"] == f"by {who}")
        r = spell("-w", str(alice), "replay", sid, "--from", f"2:{tree[:8]}", "--json")
        rep = json.loads(r.stdout)
        assert r.returncode == 0 and rep["same"], rep
        [run] = rep["runs"]
        assert run["args"] == [who]
    r = spell("-w", str(alice), "replay", sid, "--from", "2")
    assert r.returncode == 2 and "ambiguous checkpoint: 2" in r.stderr.decode()


def test_a_checkpoint_number_both_clones_saved_is_ambiguous_the_same_way_in_both(
    clones, spell, tmp_path: Path
) -> None:
    """alice and bob each save checkpoint 2 and merge each other's commit (so their
    checkpoints.yaml lines are in opposite orders): both clones give the same answers, `2` is an
    error naming both, `2:TREE` names one, fsck reports it (red-team F2)."""
    alice, bob, sid = clones
    ok(spell("-w", str(alice), "save", sid, "-m", "base"))
    ok(spell("-w", str(alice), "commit", "-m", "base"))
    run_git(alice, "push", "-q", "origin", "HEAD")
    assert pull(bob).returncode == 0
    for who, root in (("alice", alice), ("bob", bob)):
        add(spell, root, sid, f"{who}.md", f"from {who}\n".encode(), tmp_path)
        ok(spell("-w", str(root), "save", sid, "-m", f"by {who}"))
        ok(spell("-w", str(root), "commit", "-m", who))
    heads = {
        w: run_git(r, "rev-parse", "HEAD").stdout.strip() for w, r in (("a", alice), ("b", bob))
    }
    run_git(alice, "fetch", "-q", str(bob), branch(bob))
    run_git(alice, "merge", "-q", "--no-edit", heads["b"])
    run_git(bob, "fetch", "-q", str(alice), heads["a"])
    run_git(bob, "merge", "-q", "--no-edit", heads["a"])
    lines = {
        w: (r / "sessions" / Workspace.open(r).sessions.resolve(sid) / "checkpoints.yaml")
        .read_text()
        .splitlines()
        for w, r in (("a", alice), ("b", bob))
    }
    assert lines["a"] != lines["b"] and sorted(lines["a"]) == sorted(lines["b"])  # merge order

    def answers(root: Path) -> dict:
        w = ["-w", str(root)]
        log = json.loads(ok(spell(*w, "log", sid, "--json")))
        return {
            "log": [(c["number"], c["message"], c["tree"]) for c in log],
            "table": ok(spell(*w, "log", sid)),
            "diff": ok(spell(*w, "diff", sid, "--json")),  # from the latest checkpoint
            "restore": spell(*w, "restore", sid, "2"),
            "fsck": json.loads(ok(spell(*w, "fsck", "--json"))),
        }

    a, b = answers(alice), answers(bob)
    assert a["log"] == b["log"] and a["table"] == b["table"] and a["diff"] == b["diff"]
    assert [(n, m) for n, m, _ in a["log"]] == [(1, "base"), (2, "by alice"), (2, "by bob")] or [
        (n, m) for n, m, _ in a["log"]
    ] == [(1, "base"), (2, "by bob"), (2, "by alice")]
    twos = [t for n, _, t in a["log"] if n == 2]
    for t in twos:
        assert f"2:{t[:8]}" in a["table"]
    for r in (a["restore"], b["restore"]):
        err = r.stderr.decode()
        assert r.returncode == 2 and err.startswith("Error: ambiguous checkpoint: 2 in session")
        assert all(f"2:{t[:8]}" in err for t in twos) and "by alice" in err and "by bob" in err
        assert err.count("\n") == 1
    for report in (a["fsck"], b["fsck"]):
        shared = [p for p in report["problems"] if p["kind"] == "shared-checkpoint-number"]
        assert len(shared) == 1 and all(f"2:{t[:8]}" in shared[0]["detail"] for t in twos)
        assert report["ok"]
    # N:TREE names one; the restore then says which
    bob_tree = next(t for _, m, t in a["log"] if m == "by bob")
    out = ok(spell("-w", str(alice), "restore", sid, f"2:{bob_tree[:8]}"))
    assert "checkpoint 2" in out
    names = {
        x["name"]
        for x in json.loads(ok(spell("-w", str(alice), "show", sid, "--json")))["artifacts"]
    }
    assert names == {"notes.md", "bob.md"}
    r = spell("-w", str(alice), "diff", sid, "2:ffff")
    assert r.returncode == 2 and "checkpoint not found: 2:ffff" in r.stderr.decode()
