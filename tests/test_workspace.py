"""Finding and making a workspace; the memory backend leaves no trace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spellfs import UsageError, Workspace, WorkspaceNotFound, find_root, init_workspace


def tree(path: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(path.rglob("*"))
    }


def test_init_layout(tmp_path: Path) -> None:
    root = tmp_path / "space"
    assert init_workspace(root) is True
    for d in ("sessions", "templates", ".spell/objects"):
        assert (root / d).is_dir(), d
    assert (root / "spell.yaml").is_file()
    assert "*.swp" in (root / ".spellignore").read_text()
    # only the objects under .spell/ are shared through git
    assert (root / ".spell" / ".gitignore").read_text().splitlines() == [
        "/*",
        "!/objects/",
        "/objects/pack/",  # packed objects stay local (spell commit writes them loose)
        "!/.gitignore",
    ]


def test_init_is_idempotent_and_keeps_edits(tmp_path: Path) -> None:
    root = tmp_path / "space"
    init_workspace(root)
    (root / "spell.yaml").write_text("sessions:\n  max_sessions: 5\n")
    (root / ".spellignore").write_text("*.log\n")
    before = tree(root)
    assert init_workspace(root) is False
    assert tree(root) == before


def test_init_on_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UsageError):
        init_workspace(f)


def test_spell_init_is_idempotent(tmp_path: Path, spell) -> None:
    r = spell("init", "space", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Initialised" in r.stdout.decode()
    (tmp_path / "space" / "spell.yaml").write_text("sessions:\n  max_sessions: 5\n")
    before = tree(tmp_path / "space")
    r = spell("init", "space", cwd=tmp_path)
    assert r.returncode == 0
    assert "Already" in r.stdout.decode()
    assert tree(tmp_path / "space") == before


def test_spell_init_defaults_to_here(tmp_path: Path, spell) -> None:
    assert spell("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "spell.yaml").is_file() and (tmp_path / ".spell").is_dir()


def test_nearest_ancestor_with_spell_yaml(root: Path, spell) -> None:
    deep = root / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert find_root(deep) == root.resolve()
    r = spell("new", "from-deep", cwd=deep)
    assert r.returncode == 0, r.stderr
    assert len(list((root / "sessions").iterdir())) == 1


def test_dot_spell_alone_marks_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "w" / ".spell").mkdir(parents=True)
    (tmp_path / "w" / "sub").mkdir()
    assert find_root(tmp_path / "w" / "sub") == (tmp_path / "w").resolve()


def test_spell_yaml_alone_marks_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "w" / "sub").mkdir(parents=True)
    (tmp_path / "w" / "spell.yaml").write_text("")
    assert find_root(tmp_path / "w" / "sub") == (tmp_path / "w").resolve()


def test_nearest_wins_over_outer(tmp_path: Path) -> None:
    init_workspace(tmp_path / "outer")
    init_workspace(tmp_path / "outer" / "inner")
    assert (
        find_root(tmp_path / "outer" / "inner" / "sessions")
        == (tmp_path / "outer" / "inner").resolve()
    )


def test_workspace_option_beats_env_beats_cwd(tmp_path: Path, spell) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        init_workspace(d)
    env = {"SPELL_WORKSPACE": str(b)}
    assert spell("--workspace", str(a), "new", "in-a", cwd=c, env=env).returncode == 0
    assert spell("new", "in-b", cwd=c, env=env).returncode == 0
    assert spell("new", "in-c", cwd=c).returncode == 0
    names = {d: [p.name.rsplit("-", 1)[0] for p in (d / "sessions").iterdir()] for d in (a, b, c)}
    assert names == {a: ["in-a"], b: ["in-b"], c: ["in-c"]}


def test_no_workspace_says_how_to_make_one(tmp_path: Path, spell) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for args in (["ls"], ["new", "x"], ["show", "abcd"], ["fsck"]):
        r = spell(*args, cwd=bare)
        err = r.stderr.decode()
        assert r.returncode == 2, (args, err)
        assert err.startswith("Error: no workspace here") and "spell init" in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert list(bare.iterdir()) == []


@pytest.mark.parametrize("how", ["option", "env"])
def test_missing_explicit_workspace(tmp_path: Path, spell, how: str) -> None:
    gone = tmp_path / "gone"
    if how == "option":
        r = spell("--workspace", str(gone), "ls", cwd=tmp_path)
    else:
        r = spell("ls", cwd=tmp_path, env={"SPELL_WORKSPACE": str(gone)})
    err = r.stderr.decode()
    assert r.returncode == 2
    assert (
        err.startswith("Error: workspace not found") and str(gone) in err and "spell init" in err
    ), err
    assert not gone.exists()


@pytest.mark.parametrize("how", ["option", "env"])
def test_an_existing_folder_that_is_no_workspace_is_refused(
    tmp_path: Path, spell, how: str
) -> None:
    """-w / $SPELL_WORKSPACE naming a plain folder: nothing is written into it (a listing made
    .spell/index.sqlite, `new` made sessions/), until `spell init DIR` makes it a workspace."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "mine.txt").write_text("not spellfs's\n")
    for args in (["ls"], ["new", "x"], ["fsck"], ["run", "/dev/null"]):
        if how == "option":
            r = spell("-w", str(plain), *args, cwd=tmp_path)
        else:
            r = spell(*args, cwd=tmp_path, env={"SPELL_WORKSPACE": str(plain)})
        err = r.stderr.decode()
        assert r.returncode == 2, (args, err)
        source = "" if how == "option" else "from $SPELL_WORKSPACE; "
        assert err == (
            f"Error: not a workspace: {plain} ({source}no spell.yaml or .spell/; make one with "
            f"`spell init {plain}`)\n"
        ), (args, err)
        assert sorted(p.name for p in plain.iterdir()) == ["mine.txt"]
    with pytest.raises(WorkspaceNotFound, match="not a workspace"):
        Workspace.open(plain)
    assert spell("init", str(plain)).returncode == 0
    if how == "option":
        r = spell("-w", str(plain), "new", "x", cwd=tmp_path)
    else:
        r = spell("new", "x", cwd=tmp_path, env={"SPELL_WORKSPACE": str(plain)})
    assert r.returncode == 0, r.stderr
    assert len(list((plain / "sessions").iterdir())) == 1


def test_open_without_workspace_raises(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceNotFound):
        Workspace.open()


def test_memory_backend_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    """A full scenario on Workspace.in_memory() in an empty cwd leaves it empty."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    outside = tmp_path / "input.bin"
    outside.write_bytes(os.urandom(3000))
    monkeypatch.chdir(cwd)
    with Workspace.in_memory() as ws:
        assert ws.memory and ws.root is None
        events = ws.events.subscribe("*")
        parent = ws.sessions.create(name="parent", tags=["t"], metadata={"k": 1})
        child = ws.sessions.create(name="child", parent_session_id=parent)
        for i in range(3):
            ws.artifacts.store(child, "tool_result", "notes.md", f"version {i}".encode())
        ws.artifacts.store(child, "user_input", "big.bin", b"z" * 50_000)
        ws.artifacts.store_file(child, outside, "user_input")
        ws.artifacts.delete(child, "big.bin")
        assert ws.artifacts.get(child, "notes.md@2")["content"] == b"version 1"
        assert [a["name"] for a in ws.artifacts.query({"name_pattern": "*.md"})] == ["notes.md"]
        ws.sessions.update_metadata(child, {"x": 2})
        ws.sessions.suspend(child)
        ws.sessions.resume(child)
        ws.sessions.complete(parent)
        ws.state.set("global", {"a": [1, 2]})
        ws.state.set(f"session:{child}:local", 5)
        assert ws.state.get(f"session:{child}:local") == 5
        assert ws.sessions.list({"status": "all"})[0]["name"] == "parent"
        from spellfs.maintenance.checks import fsck

        assert fsck(ws).ok
        ws.sessions.delete(child)
        seen = []
        while (event := ws.events.receive(events, 0)) is not None:
            seen.append(event)
        kinds = [e["event_type"] for e in seen]
        assert kinds.count("session.created") == 2 and kinds.count("artifact.stored") == 5
        assert kinds.count("artifact.deleted") == 1
        assert (
            seen[-1]["event_type"] == "session.deleted" and seen[-1]["data"]["session_id"] == child
        )
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "input.bin"]
