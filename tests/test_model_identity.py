"""Identities survive a merge (SPEC §1): two real git clones append to one session and merge."""

from __future__ import annotations

import json
from pathlib import Path

from spellfs import Workspace
from test_git_commits import add, clones, ok, pull, run_git  # noqa: F401 - fixtures (repo: conftest)

from spellfs.store import hash_bytes


def _merged(clones, spell, tmp_path: Path):
    alice, bob, sid = clones
    add(spell, bob, sid, "y.txt", b"from bob\n", tmp_path)  # each clone is told "#2"
    add(spell, alice, sid, "x.txt", b"from alice\n", tmp_path)
    ok(spell("-w", str(alice), "commit"))
    run_git(alice, "push", "-q", "origin", "HEAD")
    ok(spell("-w", str(bob), "commit"))
    proc = pull(bob)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return alice, bob, sid


def test_a_sequence_both_clones_used_is_an_error_listing_both(
    clones, spell, tmp_path: Path
) -> None:
    alice, bob, sid = _merged(clones, spell, tmp_path)
    r = spell("-w", str(bob), "cat", sid, "#2")
    err = r.stderr.decode()
    assert r.returncode == 2 and "ambiguous artifact reference #2" in err
    assert "x.txt@1" in err and "y.txt@1" in err and "Traceback" not in err
    # the id table each clone was given still names its own content
    script = tmp_path / "get.lua"
    script.write_text(f"""
local a = Artifact.get("{sid}", {{content_hash = "{hash_bytes(b"from bob" + bytes([10]))}", session_id = "{sid}", sequence = 2}})
local b = Artifact.get("{sid}", {{content_hash = "{hash_bytes(b"from alice" + bytes([10]))}", session_id = "{sid}", sequence = 2}})
io.write(a.content, b.content, a.metadata.version, b.metadata.version)
local ok, e = pcall(Artifact.get, "{sid}", 2)
print(ok, e)
""")  # noqa: E501
    out = ok(spell("-w", str(bob), "run", str(script)))
    assert (
        out.startswith("from bob\nfrom alice\n11false") and "ambiguous artifact reference #2" in out
    )
    # names and versions read the same as `show` says; fsck names the shared sequence, and is ok
    show = json.loads(ok(spell("-w", str(bob), "show", sid, "--json")))
    assert sorted((a["name"], a["version"], a["sequence"]) for a in show["artifacts"]) == [
        ("notes.md", 1, 1),
        ("x.txt", 1, 2),
        ("y.txt", 1, 2),
    ]
    assert ok(spell("-w", str(bob), "cat", sid, "y.txt@1")) == "from bob\n"
    report = json.loads(spell("-w", str(bob), "fsck", "--json").stdout)
    assert report["ok"]
    assert [p["kind"] for p in report["problems"]] == ["shared-sequence"]
    # a store after the merge takes a sequence nobody has
    add(spell, bob, sid, "z.txt", b"z\n", tmp_path)
    assert ok(spell("-w", str(bob), "cat", sid, "#3")) == "z\n"


def test_a_pull_never_clobbers_unrecorded_content(clones, spell, tmp_path: Path) -> None:
    alice, bob, sid = clones
    with Workspace.open(alice) as ws:
        dir = ws.sessions.resolve(sid)
    # alice edits by hand and commits with plain git, never recording it
    (alice / "sessions" / dir / "files" / "notes.md").write_text("alice by hand\n")
    run_git(alice, "commit", "-qam", "hand edit")
    run_git(alice, "push", "-q", "origin", "HEAD")
    add(spell, bob, sid, "other.txt", b"bob\n", tmp_path)
    ok(spell("-w", str(bob), "commit"))
    assert pull(bob).returncode == 0
    status = json.loads(ok(spell("-w", str(bob), "status", "--json")))
    [s] = [s for s in status["sessions"] if s["id"] == sid]
    assert s["unrecorded"]["modified"] == ["notes.md"]
    assert (bob / "sessions" / dir / "files" / "notes.md").read_text() == "alice by hand\n"
    ok(spell("-w", str(bob), "save", sid))
    assert ok(spell("-w", str(bob), "cat", sid, "notes.md")) == "alice by hand\n"
