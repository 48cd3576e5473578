"""Hostile input: every parser either answers or raises a SpellError naming the problem."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spellfs import ManifestError, SpellError, Workspace
from spellfs.model.manifest import load_manifest
from spellfs.store.records import RecordError, parse_records
from spellfs.store.yamlio import load_yaml

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_record_parser_never_crashes(data: bytes) -> None:
    try:
        for lineno, rec in parse_records(data, "artifacts.yaml"):
            assert isinstance(rec, dict) and lineno >= 1
    except RecordError as exc:
        assert str(exc).startswith("artifacts.yaml:")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_manifest_parser_never_crashes(text: str) -> None:
    try:
        m = load_manifest(text.encode("utf-8", "surrogatepass"), "sessions/x/session.yaml")
        assert set(m) >= {"id", "status", "tags"}
    except ManifestError as exc:
        assert str(exc).startswith("sessions/x/session.yaml")


def test_yaml_bomb_is_refused_quickly() -> None:
    t0 = time.perf_counter()
    with pytest.raises(ManifestError, match="refused"):
        load_yaml(BOMB, "state.yaml")
    assert time.perf_counter() - t0 < 5


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ManifestError, match="state.yaml"):
        load_yaml("a: " + "[" * 5000 + "]" * 5000, "state.yaml")


def test_bomb_in_state_file_leaves_workspace_usable(ws: Workspace) -> None:
    (ws.root / "state.yaml").write_text(BOMB)
    with pytest.raises(SpellError, match="state.yaml"):
        ws.state.get("a")
    sid = ws.sessions.create(name="still works")
    assert ws.sessions.get(sid)["name"] == "still works"
    assert (ws.root / "state.yaml").read_text() == BOMB


def test_huge_and_non_utf8_manifests_are_named(root: Path, spell) -> None:
    with Workspace.open(root) as ws:
        good = ws.sessions.create(name="good")
        bad = ws.sessions.create(name="bad")
        path = ws.root / ws.sessions.get(bad)["path"] / "session.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    r = spell("-w", str(root), "show", bad)
    assert r.returncode == 1 and b"session.yaml" in r.stderr and b"UTF-8" in r.stderr
    assert b"Traceback" not in r.stderr
    path.write_bytes(b"name: " + b"x" * (17 << 20) + b"\n")
    r = spell("-w", str(root), "show", bad)
    assert r.returncode == 1 and b"too large" in r.stderr
    r = spell("-w", str(root), "ls", "--json")
    assert r.returncode == 0 and good.encode() in r.stdout and bad.encode() not in r.stdout


def test_non_utf8_content_round_trips(ws: Workspace) -> None:
    sid = ws.sessions.create(name="bin")
    blob = bytes(range(256)) * 3
    ws.artifacts.store(sid, "tool_result", "blob.bin", blob)
    assert ws.artifacts.get(sid, "blob.bin")["content"] == blob
    assert (ws.root / ws.sessions.get(sid)["path"] / "files" / "blob.bin").read_bytes() == blob
