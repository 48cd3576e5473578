"""Sessions are named on the command line by an exact unique name; forks get their own names."""

from __future__ import annotations

import json
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


def test_an_id_prefix_wins_over_a_name(root: Path) -> None:
    with Workspace.open(root) as ws:
        target = ws.sessions.create(name="x")
        ws.sessions.create(name=target[:6])  # a session *named* like the other's id prefix
        assert ws.sessions.get(target[:6])["id"] == target


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
