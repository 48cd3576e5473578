"""Only active sessions take stores (SPEC §1, as in rs-llmspell): every path refuses, with the way
on."""

from __future__ import annotations

from pathlib import Path

import pytest

from spellfs import SessionNotActive, Workspace


def _files(ws: Workspace, sid: str) -> Path:
    return ws.root / "sessions" / ws.sessions.resolve(sid) / "files"


@pytest.mark.parametrize("finish", ["complete", "fail"])
def test_finished_session_refuses_store_and_delete(ws: Workspace, finish: str) -> None:
    sid = ws.sessions.create(name="done")
    ws.artifacts.store(sid, "user_input", "a.txt", b"one")
    getattr(ws.sessions, finish)(sid)
    status = "completed" if finish == "complete" else "failed"
    with pytest.raises(
        SessionNotActive, match=rf"cannot store artifacts in {status} session {sid[:8]}.*spell fork"
    ):
        ws.artifacts.store(sid, "user_input", "a.txt", b"two")
    with pytest.raises(SessionNotActive, match="cannot delete artifacts in"):
        ws.artifacts.delete(sid, "a.txt")
    with pytest.raises(SessionNotActive):
        ws.artifacts.store_many(sid, [("tool_result", "b.txt", b"x", None)])
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"one"
    assert (_files(ws, sid) / "a.txt").read_bytes() == b"one"  # nothing half-written either
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["a.txt"]


def test_suspended_session_refuses_until_resumed(ws: Workspace) -> None:
    sid = ws.sessions.create(name="paused")
    ws.sessions.suspend(sid)
    with pytest.raises(
        SessionNotActive, match=rf"suspended session {sid[:8]} \(resume it first: `spell resume"
    ):
        ws.artifacts.store(sid, "user_input", "a.txt", b"x")
    ws.sessions.resume(sid)
    ws.artifacts.store(sid, "user_input", "a.txt", b"x")
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"x"


def test_cli_add_resumes_a_suspended_session_and_refuses_a_completed_one(
    spell, root: Path, tmp_path: Path
) -> None:
    f = tmp_path / "x.txt"
    f.write_text("hello")
    sid = spell("-w", str(root), "new", "s").stdout.decode().strip()
    spell("-w", str(root), "suspend", sid)
    r = spell("-w", str(root), "add", sid, str(f))
    assert r.returncode == 0, r.stderr
    assert f"resumed suspended session {sid[:8]}" in r.stderr.decode()
    assert "stored" in r.stdout.decode()
    spell("-w", str(root), "complete", sid)
    r = spell("-w", str(root), "add", sid, str(f))
    err = r.stderr.decode()
    assert r.returncode == 1
    assert f"cannot store artifacts in completed session {sid[:8]}" in err and "fork" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    show = spell("-w", str(root), "show", sid, "--json")
    assert b'"artifact_count": 1' in show.stdout


def test_lua_store_into_completed_session_is_a_catchable_error(
    spell, root: Path, tmp_path: Path
) -> None:
    script = tmp_path / "s.lua"
    script.write_text("""
local id = Session.create({name = "x"})
Artifact.store(id, "tool_result", "a.txt", "one")
Session.complete(id)
local ok, err = pcall(Artifact.store, id, "tool_result", "a.txt", "two")
print(ok, err)
print(Artifact.get(id, "a.txt").content)
""")
    r = spell("-w", str(root), "run", str(script))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("false") and "cannot store artifacts in completed session" in out
    assert out.strip().endswith("one")
