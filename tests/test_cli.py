"""The `spell` command as a user runs it: real subprocesses, exact bytes, exit codes 0/1/2."""

from __future__ import annotations

import ctypes
import importlib.metadata
import json
import shutil
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from spellfs.store.objects import hash_bytes

from conftest import SESSION_FIELDS, SPELL


def ok(r) -> str:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout.decode()


def fails(r, code: int, starts: str = "Error: ") -> str:
    err = r.stderr.decode()
    assert r.returncode == code, (r.returncode, r.stdout, err)
    assert err.startswith(starts), err
    assert "Traceback" not in err and "Traceback" not in r.stdout.decode()
    return err


def one_line_error(r, code: int, starts: str = "Error: ") -> str:
    err = fails(r, code, starts)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    return err


def new(spell, root: Path, *args: str) -> str:
    sid = ok(spell("new", *args, cwd=root)).strip()
    assert str(uuid.UUID(sid)) == sid
    return sid


def test_init_new_ls(tmp_path: Path, spell) -> None:
    out = ok(spell("init", "space", cwd=tmp_path))
    root = tmp_path / "space"
    assert out == f"Initialised a spellfs workspace in {root.resolve()}\n"
    assert (
        ok(spell("ls", cwd=root))
        == "no sessions (make one with `spell new NAME`; --all shows finished ones)\n"
    )
    sid = new(spell, root, "My Research", "--tag", "papers", "--tag", "ml", "-d", "reading list")
    out = ok(spell("ls", cwd=root))
    assert sid[:8] in out and "My Research" in out and "active" in out and "papers" in out
    # piped, each session is one line, path included: `spell ls | grep` works
    (line,) = [ln for ln in out.splitlines() if sid[:8] in ln]
    assert "My Research" in line and f"sessions/my-research-{sid[:8]}" in line
    (s,) = json.loads(ok(spell("ls", "--json", cwd=root)))
    assert SESSION_FIELDS <= set(s)
    assert (s["id"], s["name"], s["description"], s["tags"]) == (
        sid,
        "My Research",
        "reading list",
        ["papers", "ml"],
    )
    assert (
        s["path"] == f"sessions/my-research-{sid[:8]}"
        and (root / s["path"] / "session.yaml").is_file()
    )


def test_ls_filters(root: Path, spell) -> None:
    a = new(spell, root, "a", "--tag", "x", "--tag", "y")
    b = new(spell, root, "b", "--tag", "x")
    c = new(spell, root, "c")
    ok(spell("complete", c, cwd=root))
    ok(spell("suspend", b, cwd=root))
    ids = lambda *args: [s["id"] for s in json.loads(ok(spell("ls", "--json", *args, cwd=root)))]  # noqa: E731
    assert ids() == [a, b]
    assert ids("--all") == [a, b, c]
    assert ids("--status", "completed") == [c]
    assert ids("--status", "suspended") == [b]
    assert ids("--tag", "x") == [a, b]
    assert ids("--tag", "x", "--tag", "y") == [a]
    assert ids("--sort", "name", "--all", "--limit", "2") == [a, b]
    err = one_line_error(
        spell("ls", "--status", "bogus", cwd=root), 2, "Error: Invalid value for '--status'"
    )
    assert err.endswith("(see `spell ls --help`)\n")


def test_new_with_template_and_parent(root: Path, spell) -> None:
    (root / "templates" / "daily.yaml").write_text(
        "description: daily notes\ntags: [daily]\nmetadata: {k: v}\n"
    )
    parent = new(spell, root, "parent")
    sid = new(spell, root, "today", "--template", "daily", "--parent", parent[:6])
    s = json.loads(ok(spell("show", sid, "--json", cwd=root)))
    assert (
        s["description"] == "daily notes"
        and s["tags"] == ["daily"]
        and s["custom_metadata"] == {"k": "v"}
    )
    assert s["parent_session_id"] == parent
    one_line_error(
        spell("new", "x", "--template", "nope", cwd=root), 2, "Error: template not found: nope"
    )


def test_show(root: Path, spell, tmp_path: Path) -> None:
    sid = new(spell, root, "shown", "--tag", "t")
    f = tmp_path / "notes.md"
    f.write_text("# notes\n")
    ok(spell("add", sid, str(f), cwd=root))
    out = ok(spell("show", sid[:8], cwd=root))
    assert sid in out and "shown" in out and "notes.md" in out and "text/markdown" in out
    info = json.loads(ok(spell("show", sid, "--json", cwd=root)))
    assert SESSION_FIELDS <= set(info)
    assert info["artifact_count"] == 1 and info["tags"] == ["t"]
    (art,) = info["artifacts"]
    assert art["name"] == "notes.md" and art["size"] == 8 and art["version"] == 1
    assert art["content_hash"] == hash_bytes(b"# notes\n")
    assert art["id"] == {"content_hash": art["content_hash"], "session_id": sid, "sequence": 1}
    assert art["metadata"]["artifact_type"] == "user_input"
    # by directory name too
    dirname = info["path"].split("/")[1]
    assert json.loads(ok(spell("show", dirname, "--json", cwd=root)))["id"] == sid


def test_add_and_cat_exact_bytes(root: Path, spell, tmp_path: Path) -> None:
    sid = new(spell, root, "bytes")
    binary = tmp_path / "all.bin"
    binary.write_bytes(bytes(range(256)) * 4 + b"\r\n\x00")
    big = tmp_path / "big.txt"
    big.write_bytes(b"line of text\n" * 5000)  # compressed in the store
    text = tmp_path / "text.txt"
    text.write_bytes(b"version one\n")
    out = ok(spell("add", sid, str(binary), str(big), str(text), cwd=root))
    assert out.count("stored ") == 3
    assert spell("cat", sid, "all.bin", cwd=root).stdout == binary.read_bytes()
    assert spell("cat", sid, "big.txt", cwd=root).stdout == big.read_bytes()
    text.write_bytes(b"version two, longer\n")
    ok(spell("add", sid, str(text), cwd=root))
    assert spell("cat", sid, "text.txt", cwd=root).stdout == b"version two, longer\n"
    assert spell("cat", sid, "text.txt@1", cwd=root).stdout == b"version one\n"
    assert spell("cat", sid, "text.txt@2", cwd=root).stdout == b"version two, longer\n"
    assert spell("cat", sid, "#1", cwd=root).stdout == binary.read_bytes()
    [session_dir] = (root / "sessions").iterdir()
    files = session_dir / "files"
    assert (files / "all.bin").read_bytes() == binary.read_bytes()
    assert (files / "text.txt").read_bytes() == b"version two, longer\n"
    one_line_error(
        spell("cat", sid, "text.txt@3", cwd=root), 2, "Error: artifact not found: text.txt@3"
    )
    one_line_error(spell("cat", sid, "nope", cwd=root), 2, "Error: artifact not found: nope")


def test_cat_digits_int_refuses_are_not_found(root: Path, spell) -> None:
    """'#²' and 'x@²' pass str.isdigit but not int(): an error line, not a traceback."""
    sid = new(spell, root, "digits")
    one_line_error(spell("cat", sid, "#²", cwd=root), 2, "Error: artifact not found: #²")
    one_line_error(spell("cat", sid, "x@²", cwd=root), 2, "Error: artifact not found: x@²")
    one_line_error(spell("restore", sid, "²", cwd=root), 2, "Error: invalid checkpoint")


def test_add_options_and_json(root: Path, spell, tmp_path: Path) -> None:
    sid = new(spell, root, "opts")
    f = tmp_path / "a.txt"
    f.write_bytes(b"aaa")
    (res,) = json.loads(
        ok(
            spell(
                "add",
                sid,
                str(f),
                "--type",
                "tool_result",
                "--name",
                "renamed.txt",
                "--tag",
                "k",
                "--json",
                cwd=root,
            )
        )
    )
    assert (
        res["sequence"] == 1
        and res["content_hash"] == hash_bytes(b"aaa")
        and res["session_id"] == sid
    )
    (art,) = json.loads(ok(spell("show", sid, "--json", cwd=root)))["artifacts"]
    assert (art["name"], art["artifact_type"], art["tags"]) == ("renamed.txt", "tool_result", ["k"])
    one_line_error(
        spell("add", sid, str(f), str(f), "--name", "x", cwd=root),
        2,
        "Error: --name works with one file only (see `spell add --help`)",
    )


def test_add_skips_spellignored(root: Path, spell) -> None:
    sid = new(spell, root, "ignore")
    (root / ".spellignore").write_text("*.log\nscratch/\n")
    work = root / "work"
    (work / "scratch").mkdir(parents=True)
    (work / "keep.md").write_text("keep")
    (work / "debug.log").write_text("noise")
    (work / "scratch" / "tmp.md").write_text("noise")
    (work / "edit.md.swp").write_text("noise")  # not ignored any more: .spellignore was replaced
    r = spell("add", sid, "work/keep.md", "work/debug.log", "work/scratch/tmp.md", cwd=root)
    ok(r)
    err = r.stderr.decode()
    assert "skipped (in .spellignore): work/debug.log" in err and "work/scratch/tmp.md" in err
    names = [a["name"] for a in json.loads(ok(spell("show", sid, "--json", cwd=root)))["artifacts"]]
    assert names == ["keep.md"]


def test_add_errors(root: Path, spell, tmp_path: Path) -> None:
    sid = new(spell, root, "errs")
    one_line_error(
        spell("add", sid, str(tmp_path / "absent.txt"), cwd=root), 2, "Error: file not found"
    )
    hidden = tmp_path / ".hidden"
    hidden.write_text("x")
    one_line_error(spell("add", sid, str(hidden), cwd=root), 2, "Error: invalid artifact name")
    f = tmp_path / "ok.txt"
    f.write_text("x")
    one_line_error(
        spell("add", "ffffffff", str(f), cwd=root), 2, "Error: session not found: ffffffff"
    )
    assert json.loads(ok(spell("show", sid, "--json", cwd=root)))["artifacts"] == []


def test_status_commands(root: Path, spell) -> None:
    sid = new(spell, root, "life")
    assert ok(spell("suspend", sid, cwd=root)).strip() == f"{sid[:8]} life: suspended"
    one_line_error(spell("suspend", sid, cwd=root), 1, "Error: cannot make session")
    assert "suspended" in ok(spell("show", sid, cwd=root))
    assert ok(spell("resume", sid[:5], cwd=root)).strip().endswith("active")
    assert ok(spell("complete", sid, cwd=root)).strip().endswith("completed")
    err = one_line_error(spell("resume", sid, cwd=root), 1)
    assert "it is completed" in err
    other = new(spell, root, "other")
    assert ok(spell("fail", other, cwd=root)).strip().endswith("failed")
    one_line_error(spell("complete", other, cwd=root), 1, "Error: cannot make session")
    two = [new(spell, root, "x"), new(spell, root, "y")]
    out = ok(spell("suspend", *two, cwd=root))
    assert out.count("suspended") == 2


def test_rm(root: Path, spell) -> None:
    keep = new(spell, root, "keep")
    sid = new(spell, root, "doomed")
    path = root / json.loads(ok(spell("show", sid, "--json", cwd=root)))["path"]
    # off a terminal (a pipe, a script) nobody can answer: without -y nothing is removed
    r = spell("rm", sid[:8], cwd=root, input=b"n\n")
    assert r.returncode == 2 and path.exists()
    assert r.stderr.decode() == (
        f"Error: not removing {path.relative_to(root)}: nobody to ask (stdin is not a "
        "terminal); pass -y to remove without asking\n"
    )
    out = ok(spell("rm", "-y", sid[:8], cwd=root))
    assert out.startswith(f"removed {sid[:8]}")
    assert not path.exists()
    assert [s["id"] for s in json.loads(ok(spell("ls", "--json", "--all", cwd=root)))] == [keep]
    one_line_error(spell("rm", "-y", sid, cwd=root), 2, "Error: session not found")
    one_line_error(spell("show", sid, cwd=root), 2, "Error: session not found")


@pytest.mark.parametrize(
    "args, code, starts",
    [
        (["show", "ffffffff"], 2, "Error: session not found: ffffffff"),
        (["show", "abc"], 2, "Error: session id prefix too short"),
        (["show", "../../etc"], 2, "Error: session not found"),
        (["cat", "ffffffff", "x"], 2, "Error: session not found"),
        (["suspend", "ffffffff"], 2, "Error: session not found"),
        (["new", "x", "--tag", "a/b"], 2, "Error: invalid tag"),
        (["new", "x", "--parent", "ffffffff"], 2, "Error: session not found"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    root: Path, spell, args: list[str], code: int, starts: str
) -> None:
    new(spell, root, "exists")
    one_line_error(spell(*args, cwd=root), code, starts)


def test_ambiguous_prefix_via_cli(root: Path, spell) -> None:
    # two sessions whose ids share a prefix: write the second by hand, as a git merge might
    sid = new(spell, root, "first")
    src = next((root / "sessions").iterdir())
    twin = sid[:4] + ("0" if sid[4] != "0" else "1") + sid[5:]
    dst = root / "sessions" / f"twin-{twin[:8]}"
    dst.mkdir()
    (dst / "session.yaml").write_text((src / "session.yaml").read_text().replace(sid, twin))
    err = one_line_error(spell("show", sid[:4], cwd=root), 2, "Error: ambiguous session id")
    assert "2 sessions" in err
    assert json.loads(ok(spell("show", sid[:5], "--json", cwd=root)))["id"] == sid
    assert json.loads(ok(spell("show", twin[:5], "--json", cwd=root)))["id"] == twin


def test_usage_errors_are_one_line_saying_where_help_is(root: Path, spell) -> None:
    one_line_error(
        spell("nosuchcommand", cwd=root),
        2,
        "Error: No such command 'nosuchcommand' (see `spell --help`)",
    )
    one_line_error(
        spell("new", cwd=root), 2, "Error: Missing argument 'NAME' (see `spell new --help`)"
    )
    one_line_error(
        spell("show", cwd=root), 2, "Error: Missing argument 'SESSION' (see `spell show --help`)"
    )
    one_line_error(
        spell("add", "x", cwd=root),
        2,
        "Error: Missing argument 'FILES...' (see `spell add --help`)",
    )
    one_line_error(
        spell("ls", "--bogus", cwd=root),
        2,
        "Error: No such option '--bogus' (see `spell ls --help`)",
    )
    one_line_error(
        spell("ad", "x", cwd=root),
        2,
        "Error: No such command 'ad'; did you mean 'add'? (see `spell --help`)",
    )


def test_help_and_version(spell, tmp_path: Path) -> None:
    out = ok(spell("--help", cwd=tmp_path))
    for cmd in (
        "init",
        "new",
        "ls",
        "show",
        "cat",
        "add",
        "suspend",
        "resume",
        "complete",
        "fail",
        "rm",
        "fsck",
    ):
        assert f"  {cmd} " in out or f"  {cmd}\n" in out, cmd
    assert (
        ok(spell("--version", cwd=tmp_path))
        == f"spell, version {importlib.metadata.version('spellfs')}\n"
    )
    for args in (
        (),
        ("remote",),
        ("daemon",),
    ):  # a command group alone shows its help, not an error line
        r = spell(*args, cwd=tmp_path)
        err = r.stderr.decode()
        assert (
            r.returncode == 2
            and err.startswith(f"Usage: {' '.join(('spell',) + args)} ")
            and "Commands:" in err
        )
        assert "Error" not in err


def test_json_output_is_parseable_with_unicode(root: Path, spell) -> None:
    sid = new(spell, root, "naïve 😀 \u2028 name")
    (s,) = json.loads(ok(spell("ls", "--json", cwd=root)))
    assert s["id"] == sid and s["name"] == "naïve 😀 \u2028 name"


def test_workspace_committed_and_moved_still_works(root: Path, spell, tmp_path: Path) -> None:
    """No absolute paths in the files: a copied workspace (a clone) works the same."""
    import shutil

    sid = new(spell, root, "portable")
    f = tmp_path / "data.txt"
    f.write_bytes(b"portable bytes")
    ok(spell("add", sid, str(f), cwd=root))
    for p in root.rglob("*.yaml"):
        assert str(root) not in p.read_text() and str(tmp_path) not in p.read_text(), p
    clone = tmp_path / "clone"
    shutil.copytree(root, clone, ignore=shutil.ignore_patterns("index.sqlite*", "locks"))
    assert spell("cat", sid, "data.txt", cwd=clone).stdout == b"portable bytes"
    assert json.loads(ok(spell("ls", "--json", cwd=clone)))[0]["path"].startswith(
        "sessions/portable-"
    )
    ok(spell("fsck", cwd=clone))


def _without_root_privilege() -> None:
    """In the child before exec: drop the capabilities that let root read any file.

    Root's capabilities after exec come from the bounding set, so without
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH the file modes apply to `spell` as they do
    to any user (while it can still run the interpreter under /root).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_permission_problem_is_one_line(root) -> None:
    """An unreadable spell.yaml: one line naming it, exit 1. Runs unprivileged also under root
    (CI)."""
    (root / "spell.yaml").chmod(0)
    try:
        r = subprocess.run(
            [*SPELL, "-w", str(root), "ls"],
            capture_output=True,
            timeout=60,
            preexec_fn=_without_root_privilege if os.geteuid() == 0 else None,
        )
    finally:
        (root / "spell.yaml").chmod(0o644)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert err == f"Error: Permission denied: {root / 'spell.yaml'}\n"


def test_a_spell_yaml_that_is_a_directory_is_one_line(root, spell) -> None:
    (root / "spell.yaml").unlink()
    (root / "spell.yaml").mkdir()
    r = spell("-w", str(root), "ls")
    err = r.stderr.decode()
    assert r.returncode == 1 and err.startswith("Error: ") and "spell.yaml" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_name_that_also_reads_as_a_reference_is_an_error_listing_both(
    root: Path, spell, tmp_path: Path
) -> None:
    """SPEC: a reference two records could match is an error listing both, never a silent
    pick (the exact name used to win); name@version of the name reads it unambiguously."""
    sid = new(spell, root, "names")
    for name, content in (
        ("h.txt", b"h1"),
        ("h.txt", b"h2"),
        ("#1", b"hash one"),
        ("h.txt@1", b"at one"),
    ):
        (tmp_path / "f").write_bytes(content)
        ok(spell("add", sid, str(tmp_path / "f"), "--name", name, cwd=root))
    for ref, other in (("#1", "h.txt@1 (#1)"), ("h.txt@1", "h.txt@1 (#1)")):
        r = spell("cat", sid, ref, cwd=root)
        assert r.returncode == 2 and r.stdout == b""
        assert f"ambiguous artifact reference '{ref}'" in r.stderr.decode()
        assert f"and {other}" in r.stderr.decode()
    assert spell("cat", sid, "#1@1", cwd=root).stdout == b"hash one"  # the artifact named "#1"
    assert spell("cat", sid, "h.txt@1@1", cwd=root).stdout == b"at one"  # named "h.txt@1"
    assert spell("cat", sid, "h.txt@2", cwd=root).stdout == b"h2"  # no such name: version 2
    assert spell("cat", sid, "#2", cwd=root).stdout == b"h2"  # no such name: sequence 2


def test_add_is_all_or_nothing_and_refuses_an_empty_name(root: Path, spell, tmp_path: Path) -> None:
    (root / "spell.yaml").write_text(
        "sessions:\n  max_artifacts_per_session: 2\n  max_artifact_size: 100\n"
    )
    sid = new(spell, root, "batch")
    for n in ("a", "b", "c"):
        (tmp_path / f"{n}.txt").write_text(n)
    before = sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if ".spell/" not in str(p) or "objects/" in str(p)
    )
    one_line_error(
        spell("add", sid, *(str(tmp_path / f"{n}.txt") for n in "abc"), cwd=root),
        1,
        "Error: too many artifacts in session",
    )
    (tmp_path / "big.txt").write_text("x" * 101)
    err = one_line_error(
        spell("add", sid, str(tmp_path / "a.txt"), str(tmp_path / "big.txt"), cwd=root), 1
    )
    assert (
        "big.txt is 101 bytes; max_artifact_size is 100 (raise sessions.max_artifact_size in "
        "spell.yaml)" in err
    )
    one_line_error(
        spell("add", sid, str(tmp_path / "a.txt"), "--name", "", cwd=root),
        2,
        "Error: invalid artifact name: empty",
    )
    after = sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if ".spell/" not in str(p) or "objects/" in str(p)
    )
    assert after == before
    assert json.loads(ok(spell("show", sid, "--json", cwd=root)))["artifacts"] == []
    ok(spell("add", sid, str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), cwd=root))
    assert [
        a["name"] for a in json.loads(ok(spell("show", sid, "--json", cwd=root)))["artifacts"]
    ] == ["a.txt", "b.txt"]


def test_small_mistakes_get_the_right_one_line_answer(root: Path, spell) -> None:
    """Red-team minors: `replay --timeout -1` was accepted and reported a timeout, `ls --limit
    0` said there were no sessions at all, `add S ''` said "file not found: ."."""
    sid = new(spell, root, "m")
    r = spell("replay", sid, "--timeout", "-1", cwd=root)
    assert r.returncode == 2 and "Invalid value for '--timeout'" in r.stderr.decode()
    assert ok(spell("ls", "--limit", "0", cwd=root)).strip() == "no sessions match"
    one_line_error(
        spell("add", sid, "", cwd=root), 2, "Error: invalid file: an empty path (name a file"
    )


def test_one_session_with_a_linked_files_folder_does_not_hide_the_others_status(
    root: Path, spell, tmp_path: Path
) -> None:
    """`spell status` failed as a whole, showing nothing of the healthy sessions (red-team
    M1); now the linked one carries its error and the rest are shown."""
    good = new(spell, root, "good")
    bad = new(spell, root, "bad")
    (tmp_path / "outside").mkdir()
    bad_dir = next(d for d in (root / "sessions").iterdir() if d.name.endswith(bad[:8]))
    shutil.rmtree(bad_dir / "files")
    (bad_dir / "files").symlink_to(tmp_path / "outside")
    r = spell("status", "--json", cwd=root)
    assert r.returncode == 0, r.stderr.decode()
    sessions = {s["path"].split("/")[1][-8:]: s for s in json.loads(r.stdout)["sessions"]}
    assert "is a symbolic link" in sessions[bad[:8]]["error"]
    assert sessions[good[:8]]["unrecorded"] == {"modified": [], "added": [], "deleted": []}
