"""Sessions are named on the command line by an exact unique name; forks get their own names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spellfs import SessionNotFound, UsageError, Workspace

from conftest import run_spell


def test_show_by_exact_name(root: Path) -> None:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="Literature review")
        ws.sessions.create(name="Literature")
    r = run_spell("show", "Literature review", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["id"] == sid


def test_ambiguous_name_lists_candidates(root: Path) -> None:
    with Workspace.open(root) as ws:
        a = ws.sessions.create(name="draft")
        b = ws.sessions.create(name="draft")
        with pytest.raises(UsageError, match="ambiguous session name"):
            ws.sessions.get("draft")
        with pytest.raises(SessionNotFound):
            ws.sessions.get("no such name")
    r = run_spell("show", "draft", cwd=root)
    err = r.stderr.decode()
    assert r.returncode == 2 and err.count("\n") == 1 and a[:8] in err and b[:8] in err


def test_an_id_prefix_that_is_another_sessions_name_is_refused_naming_both(
    root: Path, tmp_path: Path
) -> None:
    """Red-team F8: `spell add P x.txt` stored into the session whose id starts with P, not the
    one named P; a reference two sessions could match is an error listing both (SPEC §1)."""
    with Workspace.open(root) as ws:
        alpha = ws.sessions.create(name="alpha")
        named = ws.sessions.create(name=alpha[:6])  # named like alpha's id prefix
    (tmp_path / "x.txt").write_text("x\n")
    r = run_spell("add", alpha[:6], str(tmp_path / "x.txt"), cwd=root)
    assert r.returncode == 2 and r.stderr.decode() == (
        f"Error: ambiguous session: '{alpha[:6]}' is the id prefix of alpha ({alpha[:8]}) and "
        f"the name of {alpha[:6]} ({named[:8]}) (give the whole id)\n"
    )
    with Workspace.open(root) as ws:  # nothing was stored anywhere
        assert ws.artifacts.list(alpha) == [] and ws.artifacts.list(named) == []
    for ref, sid in ((alpha, alpha), (named, named), (alpha[:9], alpha)):
        r = run_spell("show", ref, "--json", cwd=root)
        assert r.returncode == 0 and json.loads(r.stdout)["id"] == sid, ref


def test_forks_are_named_name_fork_n(root: Path) -> None:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="Literature review")
        f1 = ws.history.fork(sid)
        f2 = ws.history.fork(sid)
        f3 = ws.history.fork(f1)
        named = ws.history.fork(sid, None, {"name": "mine"})
        names = [ws.sessions.get(s)["name"] for s in (f1, f2, f3, named)]
    assert names == [
        "Literature review (fork 1)",
        "Literature review (fork 2)",
        "Literature review (fork 3)",
        "mine",
    ]
    r = run_spell("show", "Literature review (fork 2)", "--json", cwd=root)
    assert json.loads(r.stdout)["id"] == f2


def test_diff_prints_json_scalars_not_python_reprs(root: Path) -> None:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="d")
        ws.history.save(sid)
        ws.sessions.update_metadata(sid, {"owner": "ana", "n": None, "ok": True})
        ws.sessions.set_manifest_fields(sid, description="it's new")
    out = run_spell("diff", sid, cwd=root).stdout.decode()
    assert (
        'metadata: +owner = "ana"' in out and "metadata: +n = null" in out and "+ok = true" in out
    )
    assert "'" not in out.replace("it's", "")


BAD_NAMES = [
    ("notes\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2gK\x07", "contains U+001B"),  # OSC 52: the clipboard
    ("ring\x07", "contains U+0007"),
    ("tab\there", "contains U+0009"),
    ("del\x7f", "contains U+007F"),
    ("reports/2026", "may not contain '/'"),
    ("C:\\temp", "may not contain '/' or '\\'"),
    (".hidden notes", "start with '.'"),
    ("w" * 201, "at most 200 characters"),
]


@pytest.mark.parametrize("name, why", BAD_NAMES)
def test_names_a_terminal_would_run_or_no_reference_could_reach_are_refused(
    root: Path, name: str, why: str
) -> None:
    """A session name is printed by ls/show and typed back to name the session: control
    characters (ESC, BEL, TAB: artifact names and tags refuse them too) and what a reference
    can never be (a path character, a leading dot, past 200 characters) are refused, by `spell
    new`, by `fork --name` and by the Lua API, and nothing is created."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="source")
        with pytest.raises(UsageError, match=re.escape(why)):
            ws.sessions.create(name=name)
    r = run_spell("new", name, cwd=root)
    err = r.stderr.decode()
    assert r.returncode == 2 and err.startswith("Error: invalid session name"), err
    assert why in err and "\x1b" not in err and "\x07" not in err and err.count("\n") == 1
    r = run_spell("fork", sid, "--name", name, cwd=root)
    assert r.returncode == 2 and why in r.stderr.decode(), r.stderr
    lua_string = "".join(f"\\{b:03d}" for b in name.encode())  # Lua's decimal escapes
    (root / "make.lua").write_text(f'Session.create({{name = "{lua_string}"}})\n')
    r = run_spell("run", "make.lua", cwd=root)
    assert r.returncode == 1 and why in r.stderr.decode(), r.stderr
    assert [p.name[:-9] for p in (root / "sessions").iterdir()] == ["source"]


@pytest.mark.parametrize(
    "name", ["w" * 200, "Q3 report (draft) — ünïcode 😀", "x (fork 2)", "a.b", "  spaced  "]
)
def test_every_name_new_takes_names_its_session(root: Path, name: str) -> None:
    r = run_spell("new", name, cwd=root)
    assert r.returncode == 0, r.stderr
    sid = r.stdout.decode().strip()
    r = run_spell("show", name, "--json", cwd=root)
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == sid, r.stderr


def test_a_hand_edited_name_is_printed_escaped_and_forks_under_a_clean_name(root: Path) -> None:
    """A name spellfs would refuse can still arrive by hand edit or clone: ls, show and csv
    print its ESC/BEL escaped (rich strips CSI but sends OSC: window title, clipboard)."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="good")
        dir = ws.sessions.resolve(sid)
    manifest = root / "sessions" / dir / "session.yaml"
    text = manifest.read_text().replace("name: good", 'name: "evil\\e]0;owned\\a\\u202eboss"')
    manifest.write_text(text)
    shown = "evil\\x1b]0;owned\\x07\\u202eboss"
    for args in (["ls"], ["ls", "--format", "csv"], ["ls", "--format", "tsv"], ["show", sid]):
        r = run_spell(*args, cwd=root)
        out = r.stdout.decode()
        assert r.returncode == 0, (args, r.stderr)
        assert shown in out and not re.search("[\x00-\x08\x0b-\x1f\x7f\u202e]", out), (args, out)
    r = run_spell("ls", "--json", cwd=root)  # JSON escapes ESC and BEL itself: the real name
    assert json.loads(r.stdout)[0]["name"] == "evil\x1b]0;owned\x07\u202eboss"
    r = run_spell("fork", sid, cwd=root)
    assert r.returncode == 0, r.stderr
    r = run_spell("show", "evil ]0;owned boss (fork 1)", "--json", cwd=root)
    assert r.returncode == 0 and json.loads(r.stdout)["parent_session_id"] == sid, r.stderr


def test_the_fork_of_a_200_character_name_is_cut_to_fit(root: Path) -> None:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="n" * 200)
        f1 = ws.history.fork(sid)
        f2 = ws.history.fork(f1)
        names = [ws.sessions.get(s)["name"] for s in (f1, f2)]
    assert names == ["n" * 176 + " (fork 1)", "n" * 176 + " (fork 2)"]
