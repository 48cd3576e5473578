"""Artifacts: store, versions, get/list/query/delete, limits and hostile names, on both backends."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from spellfs import (
    ArtifactNotFound,
    LimitExceeded,
    SessionNotFound,
    UnrecordedChanges,
    UsageError,
    Workspace,
)
from spellfs.config import Config
from spellfs.store.objects import hash_bytes
from spellfs.store.records import parse_records
from conftest import META_FIELDS, before_appends, store_v2_while


@pytest.fixture
def sid(anyws: Workspace) -> str:
    return anyws.sessions.create(name="art")


def sdir(ws: Workspace, sid: str) -> str:
    return ws.sessions.get(sid)["path"]


def files_copy(ws: Workspace, sid: str, name: str) -> bytes:
    return ws.storage.read(f"{sdir(ws, sid)}/files/{name}")


def records(ws: Workspace, sid: str) -> list[dict]:
    rel = f"{sdir(ws, sid)}/artifacts.yaml"
    if not ws.storage.exists(rel):
        return []
    return [r for _, r in parse_records(ws.storage.read(rel), rel)]


def snapshot(ws: Workspace) -> dict:
    """Everything the workspace holds, to show that a refused operation wrote nothing."""
    if ws.memory:
        return {"files": dict(ws.storage.files), "objects": dict(ws.objects.objects)}
    return {
        str(p.relative_to(ws.root)): p.read_bytes()
        for p in ws.root.rglob("*")
        if p.is_file() and ".spell/index" not in str(p) and ".spell/locks" not in str(p)
    }


def test_store_and_get(anyws: Workspace, sid: str) -> None:
    aid = anyws.artifacts.store(
        sid,
        "tool_result",
        "result.json",
        '{"answer": 42}',
        {
            "mime_type": "application/json",
            "description": "the answer",
            "tags": ["t1", "t2"],
            "model": "gpt",
            "score": 0.5,
            "custom": {"run": 3},
        },
    )
    assert aid == {"content_hash": hash_bytes(b'{"answer": 42}'), "session_id": sid, "sequence": 1}
    got = anyws.artifacts.get(sid, aid)
    assert got["content"] == b'{"answer": 42}'
    meta = got["metadata"]
    assert set(meta) == META_FIELDS
    assert meta["name"] == "result.json" and meta["artifact_type"] == "tool_result"
    assert meta["mime_type"] == "application/json" and meta["description"] == "the answer"
    assert meta["tags"] == ["t1", "t2"]
    assert meta["custom"] == {"run": 3, "model": "gpt", "score": 0.5}
    assert (
        meta["size"] == meta["original_size"] == 14
        and meta["version"] == 1
        and meta["sequence"] == 1
    )
    assert meta["content_hash"] == aid["content_hash"] and meta["is_compressed"] is False
    assert meta["created_by"] == "api" and meta["created_at"].endswith("Z")
    assert anyws.sessions.get(sid)["artifact_count"] == 1


@pytest.mark.parametrize(
    "type_", ["tool_result", "agent_output", "user_input", "system_generated", "my_custom"]
)
def test_types(anyws: Workspace, sid: str, type_: str) -> None:
    anyws.artifacts.store(sid, type_, "x.txt", b"x")
    assert anyws.artifacts.get(sid, "x.txt")["metadata"]["artifact_type"] == type_


@pytest.mark.parametrize("type_", ["", "a/b", "bad\ntype", "x" * 65, None, 5])
def test_bad_types(anyws: Workspace, sid: str, type_) -> None:
    with pytest.raises(UsageError):
        anyws.artifacts.store(sid, type_, "x.txt", b"x")
    assert records(anyws, sid) == []


def test_mime_type_guessed(anyws: Workspace, sid: str) -> None:
    anyws.artifacts.store(sid, "user_input", "notes.md", b"# hi")
    anyws.artifacts.store(sid, "user_input", "blob", bytes([0xFF, 0xFE, 0x00]))
    anyws.artifacts.store(sid, "user_input", "plain", b"words")
    assert anyws.artifacts.get(sid, "notes.md")["metadata"]["mime_type"] == "text/markdown"
    assert anyws.artifacts.get(sid, "blob")["metadata"]["mime_type"] == "application/octet-stream"
    assert anyws.artifacts.get(sid, "plain")["metadata"]["mime_type"] == "text/plain"


def test_versions_by_name(anyws: Workspace, sid: str) -> None:
    ids = [
        anyws.artifacts.store(sid, "agent_output", "draft.md", f"draft {i}".encode())
        for i in range(1, 4)
    ]
    assert [a["sequence"] for a in ids] == [1, 2, 3]
    assert anyws.artifacts.get(sid, "draft.md")["content"] == b"draft 3"
    assert anyws.artifacts.get(sid, "draft.md")["metadata"]["version"] == 3
    for v in (1, 2, 3):
        got = anyws.artifacts.get(sid, f"draft.md@{v}")
        assert got["content"] == f"draft {v}".encode() and got["metadata"]["version"] == v
        assert anyws.artifacts.get(sid, ids[v - 1])["content"] == f"draft {v}".encode()
        assert anyws.artifacts.get(sid, v)["content"] == f"draft {v}".encode()  # by sequence
    with pytest.raises(ArtifactNotFound):
        anyws.artifacts.get(sid, "draft.md@4")
    with pytest.raises(ArtifactNotFound):
        anyws.artifacts.get(sid, "draft.md@0")
    assert files_copy(anyws, sid, "draft.md") == b"draft 3"
    assert anyws.sessions.get(sid)["artifact_count"] == 1
    listed = anyws.artifacts.list(sid)
    assert [(a["name"], a["version"]) for a in listed] == [("draft.md", 3)]


def test_name_containing_at_sign(anyws: Workspace, sid: str) -> None:
    anyws.artifacts.store(sid, "user_input", "user@host", b"addr")
    anyws.artifacts.store(sid, "user_input", "v@2", b"literal")
    assert anyws.artifacts.get(sid, "user@host")["content"] == b"addr"
    assert anyws.artifacts.get(sid, "v@2")["content"] == b"literal"
    assert anyws.artifacts.get(sid, "user@host@1")["content"] == b"addr"


def test_id_table_with_wrong_hash_is_not_found(anyws: Workspace, sid: str) -> None:
    aid = anyws.artifacts.store(sid, "user_input", "a", b"a")
    with pytest.raises(ArtifactNotFound):
        anyws.artifacts.get(sid, {**aid, "content_hash": hash_bytes(b"other")})
    with pytest.raises(UsageError):
        anyws.artifacts.get(sid, {"content_hash": aid["content_hash"]})


def test_store_file(anyws: Workspace, sid: str, tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_bytes(b"small file")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 5000)  # > 1 MiB: streamed
    a = anyws.artifacts.store_file(sid, small, "user_input", {"tags": ["f"]})
    b = anyws.artifacts.store_file(sid, str(big), "user_input")
    assert anyws.artifacts.get(sid, "small.txt")["content"] == b"small file"
    assert anyws.artifacts.get(sid, "small.txt")["metadata"]["tags"] == ["f"]
    got = anyws.artifacts.get(sid, b)
    assert got["content"] == big.read_bytes() and got["metadata"]["name"] == "big.bin"
    assert (
        got["metadata"]["is_compressed"] is True and got["metadata"]["size"] == big.stat().st_size
    )
    assert files_copy(anyws, sid, "big.bin") == big.read_bytes()
    assert a["sequence"] == 1 and b["sequence"] == 2
    with pytest.raises(ArtifactNotFound, match="file not found"):
        anyws.artifacts.store_file(sid, tmp_path / "absent.txt", "user_input")


def test_compression_flag(anyws: Workspace, sid: str) -> None:
    threshold = anyws.config.threshold
    anyws.artifacts.store(sid, "user_input", "small", b"s" * (threshold - 1))
    anyws.artifacts.store(sid, "user_input", "large", b"l" * threshold)
    assert anyws.artifacts.get(sid, "small")["metadata"]["is_compressed"] is False
    assert anyws.artifacts.get(sid, "large")["metadata"]["is_compressed"] is True
    assert anyws.artifacts.get(sid, "large")["content"] == b"l" * threshold


def test_binary_content_every_byte(anyws: Workspace, sid: str) -> None:
    data = bytes(range(256)) * 3
    aid = anyws.artifacts.store(sid, "tool_result", "all-bytes.bin", data)
    assert anyws.artifacts.get(sid, aid)["content"] == data
    assert anyws.artifacts.get(sid, "all-bytes.bin")["content"] == data
    assert files_copy(anyws, sid, "all-bytes.bin") == data
    # a str carrying surrogate-escaped bytes (how binary arrives from some callers) round-trips too
    anyws.artifacts.store(
        sid, "tool_result", "escaped.bin", data.decode("utf-8", "surrogateescape")
    )
    assert anyws.artifacts.get(sid, "escaped.bin")["content"] == data


def test_empty_content(anyws: Workspace, sid: str) -> None:
    anyws.artifacts.store(sid, "user_input", "empty", b"")
    got = anyws.artifacts.get(sid, "empty")
    assert got["content"] == b"" and got["metadata"]["size"] == 0
    assert files_copy(anyws, sid, "empty") == b""


def test_unicode_names(anyws: Workspace, sid: str) -> None:
    for name in (
        "résumé.txt",
        "日本語.md",
        "emoji 😀.txt",
        "with space.txt",
        "a@b",
        "UPPER",
        "-dash",
    ):
        anyws.artifacts.store(sid, "user_input", name, name.encode())
        assert anyws.artifacts.get(sid, name)["content"] == name.encode()
        assert files_copy(anyws, sid, name) == name.encode()


HOSTILE = [
    "../x",
    "../../../../tmp/pwned",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "nul\0byte",
    "x" * 10_000,
    ".hidden",
    ".",
    "..",
    "",
    "tab\tname",
    "new\nline",
    " padded ",
    "\ud800",
    b"\xff\xfe",
    None,
    42,
    ["list"],
]


@pytest.mark.parametrize("name", HOSTILE, ids=[repr(n)[:30] for n in HOSTILE])
def test_hostile_names_are_refused_and_nothing_is_created(anyws: Workspace, sid: str, name) -> None:
    before = snapshot(anyws)
    with pytest.raises(UsageError, match="invalid artifact name"):
        anyws.artifacts.store(sid, "user_input", name, b"payload")
    assert snapshot(anyws) == before
    if not anyws.memory:
        root = anyws.root
        assert sorted(p.name for p in root.iterdir()) == [
            ".spell",
            ".spellignore",
            "sessions",
            "spell.yaml",
            "templates",
        ]
        assert list((root / sdir(anyws, sid) / "files").iterdir()) == []
        assert not (root.parent / "x").exists() and not Path("/tmp/pwned").exists()


def test_hostile_refs_are_not_found(anyws: Workspace, sid: str) -> None:
    anyws.artifacts.store(sid, "user_input", "real.txt", b"x")
    for ref in ("../real.txt", "/etc/passwd", "nope", "real.txt@x", "", -1, 99):
        with pytest.raises((ArtifactNotFound, UsageError)):
            anyws.artifacts.get(sid, ref)
    with pytest.raises(UsageError):
        anyws.artifacts.get(sid, 1.5)


def test_unknown_session_and_artifact(anyws: Workspace, sid: str) -> None:
    with pytest.raises(SessionNotFound):
        anyws.artifacts.store("ffffffff-ffff-4fff-8fff-ffffffffffff", "user_input", "a", b"x")
    with pytest.raises(SessionNotFound):
        anyws.artifacts.list("ffffffff")
    with pytest.raises(SessionNotFound):
        anyws.artifacts.get("ffffffff", "a")
    with pytest.raises(SessionNotFound):
        anyws.artifacts.query({"session_id": "ffffffff"})
    with pytest.raises(
        ArtifactNotFound, match=f"artifact not found: missing.txt in session {sid[:8]}"
    ):
        anyws.artifacts.get(sid, "missing.txt")
    with pytest.raises(ArtifactNotFound):
        anyws.artifacts.delete(sid, "missing.txt")
    with pytest.raises(ArtifactNotFound):
        anyws.artifacts.get(sid, {"content_hash": "0" * 64, "session_id": sid, "sequence": 7})


def test_list_latest_live_only(anyws: Workspace, sid: str) -> None:
    other = anyws.sessions.create(name="other")
    anyws.artifacts.store(sid, "user_input", "a.txt", b"a1")
    anyws.artifacts.store(sid, "user_input", "b.txt", b"b1")
    anyws.artifacts.store(sid, "user_input", "a.txt", b"a2")
    anyws.artifacts.store(sid, "user_input", "c.txt", b"c1")
    anyws.artifacts.store(other, "user_input", "z.txt", b"z")
    anyws.artifacts.delete(sid, "c.txt")
    listed = anyws.artifacts.list(sid)
    assert [(a["name"], a["version"]) for a in listed] == [("b.txt", 1), ("a.txt", 2)]
    for item in listed:
        assert META_FIELDS <= set(item)
        assert item["metadata"] == {k: item[k] for k in META_FIELDS}
        assert item["id"] == {
            "content_hash": item["content_hash"],
            "session_id": sid,
            "sequence": item["sequence"],
        }
        assert anyws.artifacts.get(sid, item["id"])["metadata"] == item["metadata"]
    assert anyws.artifacts.list(other)[0]["name"] == "z.txt"


def test_delete(anyws: Workspace, sid: str) -> None:
    first = anyws.artifacts.store(sid, "user_input", "doc.txt", b"v1")
    anyws.artifacts.store(sid, "user_input", "doc.txt", b"v2")
    anyws.artifacts.store(sid, "user_input", "keep.txt", b"k")
    anyws.artifacts.delete(sid, "doc.txt")
    assert [a["name"] for a in anyws.artifacts.list(sid)] == ["keep.txt"]
    assert not anyws.storage.exists(f"{sdir(anyws, sid)}/files/doc.txt")
    assert anyws.sessions.get(sid)["artifact_count"] == 1
    for gone in ("doc.txt", 2, "#2", first):  # as in rs-llmspell: its ids no longer read
        with pytest.raises(
            ArtifactNotFound,
            match=r"\(doc.txt was deleted; its versions still read as "
            r"doc.txt@1..doc.txt@2\)",
        ):
            anyws.artifacts.get(sid, gone)
    assert (
        anyws.artifacts.get(sid, "doc.txt@1")["content"] == b"v1"
    )  # an explicit version reads from history
    assert anyws.artifacts.get(sid, "doc.txt@2")["content"] == b"v2"
    assert anyws.artifacts.get(sid, "keep.txt")["content"] == b"k"
    assert anyws.artifacts.query({"name_pattern": "doc*"}) == []
    with pytest.raises(ArtifactNotFound):
        anyws.artifacts.delete(sid, "doc.txt")
    # the log is append-only: the tombstone is a new line, nothing is rewritten
    recs = records(anyws, sid)
    assert [r.get("op") for r in recs] == [None, None, None, "delete"]
    # storing the name again revives it as version 3, and its history with it
    anyws.artifacts.store(sid, "user_input", "doc.txt", b"v3")
    assert anyws.artifacts.get(sid, "doc.txt")["metadata"]["version"] == 3
    assert anyws.artifacts.get(sid, "doc.txt@1")["content"] == b"v1"
    assert anyws.artifacts.get(sid, first)["content"] == b"v1"
    assert files_copy(anyws, sid, "doc.txt") == b"v3"


def test_delete_by_id_table(anyws: Workspace, sid: str) -> None:
    aid = anyws.artifacts.store(sid, "user_input", "x", b"x")
    anyws.artifacts.delete(sid, aid)
    assert anyws.artifacts.list(sid) == []


def test_files_copy_tracks_latest(anyws: Workspace, sid: str) -> None:
    for i in range(5):
        content = f"content {i}".encode() * (i * 3000 + 1)
        anyws.artifacts.store(sid, "user_input", "f.txt", content)
        assert (
            files_copy(anyws, sid, "f.txt")
            == content
            == anyws.artifacts.get(sid, "f.txt")["content"]
        )


def test_records_are_one_line_each_and_append_only(ws: Workspace, root: Path) -> None:
    sid = ws.sessions.create(name="log")
    path = root / sdir(ws, sid) / "artifacts.yaml"
    ws.artifacts.store(sid, "user_input", "a", b"a", {"description": "multi\nline\u2028text\x85"})
    first = path.read_bytes()
    ws.artifacts.store(sid, "user_input", "b", b"b")
    assert path.read_bytes().startswith(first)
    assert path.read_bytes().count(b"\n") == 2
    from ruamel.yaml import YAML

    docs = YAML(typ="safe").load(path.read_text())
    assert [d["name"] for d in docs] == ["a", "b"]
    assert docs[0]["description"] == "multi\nline\u2028text\x85"


# -- query ------------------------------------------------------------------------


@pytest.fixture
def populated(anyws: Workspace):
    s1 = anyws.sessions.create(name="one")
    s2 = anyws.sessions.create(name="two")
    anyws.artifacts.store(s1, "tool_result", "calc.json", b"1" * 10, {"tags": ["math", "x"]})
    time.sleep(0.01)
    anyws.artifacts.store(s1, "agent_output", "answer.md", b"2" * 100, {"tags": ["math"]})
    time.sleep(0.01)
    anyws.artifacts.store(s2, "tool_result", "other.json", b"3" * 1000, {"tags": ["x"]})
    time.sleep(0.01)
    anyws.artifacts.store(s2, "user_input", "notes.md", b"4" * 50)
    anyws.artifacts.store(
        s2, "user_input", "notes.md", b"5" * 60
    )  # only the latest version is listed
    anyws.sessions.complete(s2)  # finished sessions' artifacts are still queryable
    return anyws, s1, s2


def names(items: list[dict]) -> list[str]:
    return [a["name"] for a in items]


def test_query_all_and_by_session(populated) -> None:
    ws, s1, s2 = populated
    assert names(ws.artifacts.query()) == ["calc.json", "answer.md", "other.json", "notes.md"]
    assert names(ws.artifacts.query({"session_id": s1})) == ["calc.json", "answer.md"]
    assert names(ws.artifacts.query({"session_id": s2[:6]})) == ["other.json", "notes.md"]
    items = ws.artifacts.query({"session_id": s2})
    assert items[1]["size"] == 60 and items[1]["version"] == 2
    assert all(i["session_id"] == s2 and i["id"]["session_id"] == s2 for i in items)
    assert {i["session_id"] for i in ws.artifacts.query()} == {s1, s2}


def test_query_fields(populated) -> None:
    ws, s1, s2 = populated
    q = lambda **kw: names(ws.artifacts.query(kw))  # noqa: E731
    assert q(type="tool_result") == ["calc.json", "other.json"]
    assert q(type="nothing") == []
    assert q(name_pattern="*.md") == ["answer.md", "notes.md"]
    assert q(name_pattern="?alc.*") == ["calc.json"]
    assert q(name_pattern="*.MD") == []
    assert q(tags=["math"]) == ["calc.json", "answer.md"]
    assert q(tags=["math", "x"]) == ["calc.json"]
    assert q(min_size=60) == ["answer.md", "other.json", "notes.md"]
    assert q(max_size=60) == ["calc.json", "notes.md"]
    assert q(min_size=60, max_size=100) == ["answer.md", "notes.md"]
    assert q(limit=2) == ["calc.json", "answer.md"]
    assert q(limit=0) == []
    assert q(session_id=s1, type="agent_output", tags=["math"], name_pattern="*.md") == [
        "answer.md"
    ]


def test_query_by_time(populated) -> None:
    ws, s1, s2 = populated
    t = ws.artifacts.get(s1, "answer.md")["metadata"]["created_at"]
    epoch = datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
    q = lambda **kw: names(ws.artifacts.query(kw))  # noqa: E731
    assert q(created_after=epoch - 0.005) == ["answer.md", "other.json", "notes.md"]
    assert q(created_before=epoch + 0.005) == ["calc.json", "answer.md"]
    assert q(created_after=t) == ["other.json", "notes.md"]  # strictly after
    assert q(created_after=epoch - 0.005, created_before=epoch + 0.005) == ["answer.md"]
    assert q(created_before="2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize(
    "query",
    [
        {"colour": "red"},
        {"min_size": "big"},
        {"max_size": True},
        {"limit": -1},
        {"name_pattern": 5},
        {"created_after": "soon"},
        {"tags": "math"},
    ],
)
def test_bad_query(populated, query: dict) -> None:
    ws, _, _ = populated
    with pytest.raises(UsageError):
        ws.artifacts.query(query)


def test_query_sees_other_processes_writes(root: Path, spell) -> None:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="shared")
        assert ws.artifacts.query() == []
        f = root.parent / "from-cli.txt"
        f.write_bytes(b"cli")
        assert spell("add", sid, str(f), cwd=root).returncode == 0
        assert names(ws.artifacts.query()) == ["from-cli.txt"]
        assert names(ws.artifacts.query({"session_id": sid})) == ["from-cli.txt"]


def test_index_is_rebuildable(root: Path) -> None:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="i")
        ws.artifacts.store(sid, "user_input", "a.md", b"a")
        before = ws.artifacts.query()
    for p in (root / ".spell").glob("index.sqlite*"):
        p.unlink()
    with Workspace.open(root) as ws:
        assert ws.artifacts.query() == before
        assert ws.sessions.get(sid)["artifact_count"] == 1


# -- limits -----------------------------------------------------------------------


def limited_ws(anyws: Workspace, **values) -> Workspace:
    config = Config()
    for key, value in values.items():
        config.set(f"sessions.{key}", value)
    return Workspace.in_memory(config) if anyws.memory else Workspace(anyws.root, config)


def test_max_artifacts_per_session(anyws: Workspace, tmp_path: Path) -> None:
    with limited_ws(anyws, max_artifacts_per_session=2) as ws:
        s = ws.sessions.create(name="lim")
        ws.artifacts.store(s, "user_input", "a", b"a")
        ws.artifacts.store(s, "user_input", "b", b"b")
        before = snapshot(ws)
        with pytest.raises(LimitExceeded, match="max_artifacts_per_session is 2"):
            ws.artifacts.store(s, "user_input", "c", b"c")
        f = tmp_path / "c.txt"
        f.write_bytes(b"c")
        with pytest.raises(LimitExceeded):
            ws.artifacts.store_file(s, f, "user_input")
        assert snapshot(ws) == before
        assert not ws.objects.has(hash_bytes(b"c"))
        # a new version of a live name is not a new artifact
        ws.artifacts.store(s, "user_input", "a", b"a2")
        # deleting frees a slot
        ws.artifacts.delete(s, "b")
        ws.artifacts.store(s, "user_input", "c", b"c")
        assert names(ws.artifacts.list(s)) == ["a", "c"]
        other = ws.sessions.create(name="per session")
        ws.artifacts.store(other, "user_input", "x", b"x")


def test_max_artifact_size(anyws: Workspace, tmp_path: Path) -> None:
    with limited_ws(anyws, max_artifact_size=1000, artifact_compression_threshold=100) as ws:
        s = ws.sessions.create(name="lim")
        ws.artifacts.store(s, "user_input", "exact", b"e" * 1000)
        before = snapshot(ws)
        with pytest.raises(
            LimitExceeded, match="artifact too large: big is 1001 bytes; max_artifact_size is 1000"
        ):
            ws.artifacts.store(s, "user_input", "big", b"b" * 1001)
        f = tmp_path / "big.bin"
        f.write_bytes(b"b" * 5000)
        with pytest.raises(LimitExceeded, match="big.bin"):
            ws.artifacts.store_file(s, f, "user_input")
        assert snapshot(ws) == before
        assert names(ws.artifacts.list(s)) == ["exact"]
        assert [r["name"] for r in records(ws, s)] == ["exact"]


# -- records written by hand or merged from another clone ---------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../session.yaml",
        "../../../../../../tmp/spellfs-pwned",
        "/etc/hostname",
        "a/b",
        ".hidden",
        "",
    ],
)
def test_hostile_name_in_a_hand_written_record_is_never_used(
    ws: Workspace, root: Path, name: str
) -> None:
    """A record is data from outside (a hand edit, a merged clone): its name must not become a
    path."""
    sid = ws.sessions.create(name="merged")
    aid = ws.artifacts.store(sid, "user_input", "a.txt", b"a")
    sdir_path = root / sdir(ws, sid)
    import json

    rec = {
        "seq": 2,
        "name": name,
        "version": 1,
        "hash": aid["content_hash"],
        "size": 1,
        "type": "user_input",
        "created_at": "2030-01-01T00:00:00Z",
    }
    with open(sdir_path / "artifacts.yaml", "a") as f:
        f.write("- " + json.dumps(rec) + "\n")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".spell" not in p.parts}
    assert names(ws.artifacts.list(sid)) == ["a.txt"]
    assert names(ws.artifacts.query()) == ["a.txt"]
    with pytest.raises((ArtifactNotFound, UsageError)):
        ws.artifacts.delete(sid, name)
    with pytest.raises((ArtifactNotFound, UsageError)):
        ws.artifacts.get(sid, name)
    ws.artifacts.store(sid, "user_input", "b.txt", b"b")
    assert (sdir_path / "session.yaml").is_file()
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".spell" not in p.parts}
    assert {p: v for p, v in after.items() if p.name not in ("b.txt", "artifacts.yaml")} == {
        p: v for p, v in before.items() if p.name != "artifacts.yaml"
    }
    assert ws.sessions.get(sid)["artifact_count"] == 2


@pytest.mark.parametrize("ref", ["a.txt@²", "a.txt@" + "9" * 5000])
def test_version_suffix_that_int_refuses_is_not_found(anyws: Workspace, sid: str, ref: str) -> None:
    """'²' passes str.isdigit and 5000 digits pass it too; int() refuses both: never a
    ValueError."""
    anyws.artifacts.store(sid, "user_input", "a.txt", b"a")
    with pytest.raises(ArtifactNotFound):
        anyws.artifacts.get(sid, ref)


def test_store_many_commits_every_artifact_with_one_append(anyws: Workspace, sid: str) -> None:
    ids = anyws.artifacts.store_many(
        sid,
        [
            ("agent_output", "q.json", b'{"q": 1}', {"mime_type": "application/json"}),
            ("agent_output", "notes.md", "first", {"tags": ["t"]}),
            ("agent_output", "notes.md", "second", None),
        ],
    )
    recs = records(anyws, sid)
    assert [r["seq"] for r in recs] == [1, 2, 3] == [i["sequence"] for i in ids]
    assert [(r["name"], r["version"]) for r in recs] == [
        ("q.json", 1),
        ("notes.md", 1),
        ("notes.md", 2),
    ]
    assert recs[0]["mime_type"] == "application/json" and recs[1]["tags"] == ["t"]
    assert anyws.artifacts.get(sid, "notes.md")["content"] == b"second"
    assert anyws.artifacts.get(sid, "notes.md@1")["content"] == b"first"
    assert files_copy(anyws, sid, "notes.md") == b"second"
    assert [i["content_hash"] for i in ids] == [
        hash_bytes(b'{"q": 1}'),
        hash_bytes(b"first"),
        hash_bytes(b"second"),
    ]


def test_store_many_refuses_the_whole_batch_and_writes_nothing(
    anyws: Workspace, tmp_path: Path
) -> None:
    with limited_ws(anyws, max_artifacts_per_session=3) as ws:
        s = ws.sessions.create(name="batch")
        ws.artifacts.store(s, "user_input", "a", b"a")
        before = snapshot(ws)
        with pytest.raises(LimitExceeded, match="max_artifacts_per_session is 3"):
            ws.artifacts.store_many(
                s,
                [
                    ("user_input", "b", b"b", None),
                    ("user_input", "c", b"c", None),
                    ("user_input", "d", b"d", None),
                ],
            )
        with pytest.raises(UsageError, match="invalid artifact name"):
            ws.artifacts.store_many(
                s, [("user_input", "b", b"b", None), ("user_input", "../x", b"x", None)]
            )
        assert snapshot(ws) == before
        assert not ws.objects.has(hash_bytes(b"b"))
        # new versions of a live name take no new slot
        ws.artifacts.store_many(
            s,
            [
                ("user_input", "a", b"a2", None),
                ("user_input", "b", b"b", None),
                ("user_input", "c", b"c", None),
            ],
        )
        assert names(ws.artifacts.list(s)) == ["a", "b", "c"]


def test_name_limit_is_255_bytes_not_characters(anyws: Workspace) -> None:
    """'日' is 3 bytes in UTF-8: 85 of them (255 bytes) are a name, 100 (300 bytes) are not."""
    sid = anyws.sessions.create(name="names")
    with pytest.raises(UsageError, match=r"invalid artifact name '日{60}'…: longer than 255 bytes"):
        anyws.artifacts.store(sid, "user_input", "日" * 100, b"x")
    assert anyws.artifacts.list(sid) == []
    anyws.artifacts.store(sid, "user_input", "日" * 85, b"fits")
    assert anyws.artifacts.get(sid, "日" * 85)["content"] == b"fits"
    assert anyws.storage.read(anyws.sessions.get(sid)["path"] + "/files/" + "日" * 85) == b"fits"


@pytest.mark.parametrize("count", [2, 20])  # one store's copies, and a bulk add's (16+)
def test_a_hand_edit_made_while_a_store_runs_is_never_overwritten(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """A bulk add checks every copy for hand edits first, then writes thousands of copies
    over seconds: an editor that saves (or a file dropped in) after that check and before
    the copy is written must not lose its content. Here the "editor" writes just before the
    store's own copy of that name; it may be recorded or left in files/, never dropped."""
    sid = ws.sessions.create(name="race")
    ws.artifacts.store_many(
        sid, [("tool_result", f"f{i}.txt", f"v1 {i}", None) for i in range(count)]
    )
    files = ws.root / "sessions" / ws.sessions.resolve(sid) / "files"
    real, real_many = ws.objects.put_bytes, ws.objects.put_many
    hand = {"f1.txt": b"HAND EDIT\n", "new.txt": b"DROPPED IN\n"}
    by_content = {b"v2 1": "f1.txt", b"stored": "new.txt"}

    def editor_saves_meanwhile(content: bytes, *args, **kw):
        name = by_content.get(content)  # the store is writing this name's object right now
        if name is not None:
            (files / name).write_bytes(hand[name])
        return real(content, *args, **kw)

    def editor_saves_meanwhile_many(contents: list[bytes]):  # a bulk store's pack
        for content in contents:
            if content in by_content:
                (files / by_content[content]).write_bytes(hand[by_content[content]])
        return real_many(contents)

    monkeypatch.setattr(ws.objects, "put_bytes", editor_saves_meanwhile)
    monkeypatch.setattr(ws.objects, "put_many", editor_saves_meanwhile_many)
    items = [("tool_result", f"f{i}.txt", f"v2 {i}", None) for i in range(count)]
    ws.artifacts.store_many(sid, [*items, ("tool_result", "new.txt", "stored", None)])
    monkeypatch.undo()
    log = ws.log(ws.sessions.resolve(sid))
    log.refresh()
    recorded = {v["hash"] for vs in log.versions.values() for v in vs}
    for name, content in hand.items():
        assert (files / name).read_bytes() == content or hash_bytes(content) in recorded, name
    wc = ws.worktree.scan(ws.sessions.resolve(sid))
    assert {"f1.txt", "new.txt"} <= set(wc.modified), wc  # status shows them, save records them


@pytest.mark.parametrize("count", [1, 40])
def test_an_edit_right_after_the_hand_edit_look_is_never_overwritten(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """The stat a store vouches a copy by is the one its hand-edit look was based on: an
    editor that saves just after that look (before any copy is written) is left as it is, not
    replaced unrecorded (a second stat taken after the look would have vouched for the edit)."""
    sid = ws.sessions.create(name="race")
    ws.artifacts.store_many(
        sid, [("tool_result", f"f{i}.txt", f"v1 {i}", None) for i in range(count)]
    )
    files = ws.root / "sessions" / ws.sessions.resolve(sid) / "files"
    real = ws.worktree.keep_before_store

    def editor_saves_just_after(*args, **kw):
        kept = real(*args, **kw)
        (files / "f0.txt").write_bytes(b"HAND EDIT\n")
        return kept

    monkeypatch.setattr(ws.worktree, "keep_before_store", editor_saves_just_after)
    ws.artifacts.store_many(
        sid, [("tool_result", f"f{i}.txt", f"v2 {i}", None) for i in range(count)]
    )
    monkeypatch.undo()
    assert (files / "f0.txt").read_bytes() == b"HAND EDIT\n"
    assert ws.artifacts.get(sid, "f0.txt")["content"] == b"v2 0"  # the store's record landed
    assert "f0.txt" in ws.worktree.scan(ws.sessions.resolve(sid)).modified  # save records it


# -- what the rest of the API reads off a record, and the checks a store makes ------------


def test_a_plain_store_reads_back_the_whole_metadata_table(anyws: Workspace, sid: str) -> None:
    aid = anyws.artifacts.store(sid, "tool_result", "plain.txt", b"abc")
    meta = anyws.artifacts.get(sid, aid)["metadata"]
    at = meta.pop("created_at")
    assert at.endswith("Z") and at[:4] == str(datetime.now().year)
    assert meta == {
        "name": "plain.txt",
        "description": "",
        "artifact_type": "tool_result",
        "mime_type": "text/plain",
        "size": 3,
        "tags": [],
        "custom": {},
        "version": 1,
        "created_by": "api",
        "is_compressed": False,
        "original_size": 3,
        "content_hash": hash_bytes(b"abc"),
        "sequence": 1,
    }
    [rec] = records(anyws, sid)  # nothing empty is written to the record
    assert set(rec) == {
        "seq",
        "name",
        "version",
        "hash",
        "size",
        "type",
        "mime_type",
        "created_at",
        "created_by",
    }


def test_metadata_is_checked_and_sorted_into_fields(anyws: Workspace, sid: str) -> None:
    a = anyws.artifacts
    a.store(sid, "t", "m.bin", b"x", {"mime_type": "x" * 150 + "/" + "y" * 100})
    assert a.get(sid, "m.bin")["metadata"]["mime_type"] == "x" * 150 + "/" + "y" * 49
    a.store(sid, "t", "w.bin", b"x", {"mime_type": "plainword", "custom": "not a table"})
    a.store(sid, "t", "long.bin", b"x", {"mime_type": "y" * 200})
    assert a.get(sid, "long.bin")["metadata"]["mime_type"] == "y" * 200
    assert a.get(sid, "w.bin")["metadata"]["mime_type"] == "plainword"
    assert a.get(sid, "w.bin")["metadata"]["custom"] == {}
    a.store(sid, "t", "e.txt", b"x", {"description": "", "tags": [], "mime_type": None})
    assert not {"description", "tags", "custom"} & records(anyws, sid)[-1].keys()
    assert a.get(sid, "e.txt")["metadata"]["mime_type"] == "text/plain"
    for bad, message in (
        ("a table", "invalid metadata for x.txt: expected a table"),
        (["list"], "invalid metadata for x.txt: expected a table"),
        ({"description": 5}, "invalid description for x.txt: expected a string"),
        ({"mime_type": "bad\tword"}, "invalid mime_type"),
        ({"mime_type": "x" * 201}, "invalid mime_type: 'x{60}' .*at most 200 characters"),
        ({"k": {1, 2}}, "^invalid metadata for x.txt: a set cannot be stored$"),
    ):
        with pytest.raises(UsageError, match=message):
            a.store(sid, "t", "x.txt", b"x", bad)
    assert [r["name"] for r in records(anyws, sid)] == ["m.bin", "w.bin", "long.bin", "e.txt"]


@pytest.mark.parametrize(
    "content, stored",
    [(bytearray(b"ba"), b"ba"), (memoryview(b"mv"), b"mv"), ("text é", "text é".encode())],
)
def test_content_may_be_bytes_like_or_text(
    anyws: Workspace, sid: str, content: object, stored: bytes
) -> None:
    anyws.artifacts.store(sid, "t", "c.bin", content)
    assert anyws.artifacts.get(sid, "c.bin")["content"] == stored
    assert files_copy(anyws, sid, "c.bin") == stored


@pytest.mark.parametrize(
    "content, kind",
    [
        (5, "a number"),
        (True, "a boolean"),
        (None, "NoneType"),
        (["x"], "a table"),
        ({"a": 1}, "a table"),
    ],
)
def test_other_content_is_refused_by_type(
    anyws: Workspace, sid: str, content: object, kind: str
) -> None:
    """Named in a script writer's words (a Lua table was "_LuaTable": red-team M9)."""
    before = snapshot(anyws)
    with pytest.raises(
        UsageError, match=rf"invalid content for c\.bin: expected a string, got {kind}$"
    ):
        anyws.artifacts.store(sid, "t", "c.bin", content)
    assert snapshot(anyws) == before


def test_a_version_above_the_materialize_limit_takes_away_the_older_copy(
    anyws: Workspace, sid: str
) -> None:
    anyws.config.set("watch.materialize_max_bytes", 10)
    anyws.artifacts.store(sid, "t", "a.txt", b"small")
    assert files_copy(anyws, sid, "a.txt") == b"small"
    anyws.artifacts.store(sid, "t", "a.txt", b"x" * 10)  # exactly the limit: still copied
    assert files_copy(anyws, sid, "a.txt") == b"x" * 10
    anyws.artifacts.store(sid, "t", "a.txt", b"y" * 11)
    assert not anyws.storage.exists(f"{sdir(anyws, sid)}/files/a.txt")  # no stale copy
    assert anyws.artifacts.get(sid, "a.txt")["content"] == b"y" * 11
    if not anyws.memory:
        assert anyws.worktree.scan(anyws.sessions.resolve(sid)).clean


def test_a_deleted_artifact_of_one_version_names_that_version(anyws: Workspace, sid: str) -> None:
    anyws.artifacts.store(sid, "t", "once.txt", b"1")
    anyws.artifacts.delete(sid, "once.txt")
    with pytest.raises(ArtifactNotFound) as e:
        anyws.artifacts.get(sid, "once.txt")
    assert str(e.value) == (
        f"artifact not found: once.txt in session {sid[:8]} "
        "(once.txt was deleted; its versions still read as once.txt@1)"
    )
    with pytest.raises(ArtifactNotFound) as e:
        anyws.artifacts.get(sid, "never.txt")
    assert str(e.value) == f"artifact not found: never.txt in session {sid[:8]}"
    with pytest.raises(ArtifactNotFound) as e:
        anyws.artifacts.get(sid, 7)
    assert str(e.value) == f"artifact not found: #7 in session {sid[:8]}"


def test_every_kind_of_reference(anyws: Workspace, sid: str) -> None:
    aid = anyws.artifacts.store(sid, "t", "r.txt", b"one")
    anyws.artifacts.store(sid, "t", "r.txt", b"two")
    get = anyws.artifacts.get
    assert get(sid, {**aid, "sequence": 1.0})["content"] == b"one"  # from Lua, a float
    assert get(sid, {"sequence": 1, "session_id": sid})["content"] == b"one"
    assert get(sid, {"sequence": 2, "content_hash": ""})["content"] == b"two"
    assert get(sid, b"r.txt@1")["content"] == b"one"
    assert get(sid, "#2")["content"] == b"two"
    for ref in (True, 1.5, None, ["r.txt"], {"sequence": "1"}, {"sequence": 1.5}):
        with pytest.raises(UsageError, match="invalid artifact id"):
            get(sid, ref)
    for ref in ("#x", "#", "r.txt@", "@1", "#-1"):
        with pytest.raises(ArtifactNotFound, match=f"artifact not found: {ref} in session"):
            get(sid, ref)
    with pytest.raises(ArtifactNotFound, match=f"artifact not found: {'y' * 80} in session"):
        get(sid, "y" * 300)


def test_store_file_checks_every_path_before_storing_any(
    anyws: Workspace, sid: str, tmp_path: Path
) -> None:
    ok = tmp_path / "ok.txt"
    ok.write_bytes(b"ok")
    before = snapshot(anyws)
    with pytest.raises(UsageError, match=f"not a regular file: {tmp_path} \\(a folder; "):
        anyws.artifacts.store_files(sid, [ok, tmp_path], "t")
    with pytest.raises(ArtifactNotFound, match="file not found: .*ok.txt/x$"):
        anyws.artifacts.store_files(sid, [ok, ok / "x"], "t")
    assert snapshot(anyws) == before
    ids = anyws.artifacts.store_files(sid, [ok, str(ok).encode()], "t", None, ["a.txt", None])
    assert [i["sequence"] for i in ids] == [1, 2]
    assert [(a["name"], a["content_hash"]) for a in anyws.artifacts.list(sid)] == [
        ("a.txt", hash_bytes(b"ok")),
        ("ok.txt", hash_bytes(b"ok")),
    ]
    anyws.artifacts.store_file(sid, ok, "t", name="b.txt")
    assert anyws.artifacts.get(sid, "b.txt")["content"] == b"ok"


def test_a_bulk_store_numbers_in_order_and_copies_the_last_of_each_name(
    anyws: Workspace, sid: str, tmp_path: Path
) -> None:
    paths = []
    for i in range(40):
        p = tmp_path / f"in{i:02d}"
        p.write_bytes(f"content {i}".encode() * (i + 1))
        paths.append(p)
    names_ = [f"f{i % 20:02d}.txt" for i in range(40)]  # every name twice
    ids = anyws.artifacts.store_files(sid, paths, "t", {"tags": ["bulk"]}, names_, by="hand")
    assert [i["sequence"] for i in ids] == list(range(1, 41))
    recs = records(anyws, sid)
    assert [(r["name"], r["version"]) for r in recs] == [
        (n, 1 if i < 20 else 2) for i, n in enumerate(names_)
    ]
    assert {r["created_by"] for r in recs} == {"hand"} and all(r["tags"] == ["bulk"] for r in recs)
    for i in range(20):
        last = f"content {20 + i}".encode() * (21 + i)
        assert files_copy(anyws, sid, f"f{i:02d}.txt") == last
        assert anyws.artifacts.get(sid, f"f{i:02d}.txt")["content"] == last
        assert anyws.artifacts.get(sid, f"f{i:02d}.txt@1")["content"] == paths[i].read_bytes()
    if not anyws.memory:
        assert anyws.worktree.scan(anyws.sessions.resolve(sid)).clean


def test_store_events_and_hooks_carry_the_stored_version(anyws: Workspace, sid: str) -> None:
    seen = []
    anyws.hooks.register(
        "AfterArtifactStore", lambda ctx: seen.append(ctx["data"]) or sids.append(ctx["session_id"])
    )
    sids: list[str] = []
    sub = anyws.events.subscribe("artifact.*")
    anyws.artifacts.store(sid, "t", "e.txt", b"one")
    anyws.artifacts.store_many(sid, [("t", "e.txt", b"two!", None), ("u", "f.txt", b"f", None)])
    events = []
    while (event := anyws.events.receive(sub, 0)) is not None:
        events.append(event["data"])
    expect = [
        ("e.txt", "t", 3, 1, b"one", 1),
        ("e.txt", "t", 4, 2, b"two!", 2),
        ("f.txt", "u", 1, 3, b"f", 1),
    ]
    assert events == [
        {
            "content_hash": hash_bytes(content),
            "session_id": sid,
            "sequence": seq,
            "name": name,
            "type": type_,
            "size": size,
            "version": version,
        }
        for name, type_, size, seq, content, version in expect
    ]
    assert seen == [{k: v for k, v in e.items() if k != "version"} for e in events]
    assert sids == [sid] * 3


def test_delete_event_and_its_record(anyws: Workspace, sid: str) -> None:
    anyws.artifacts.store(sid, "t", "d.txt", b"d")
    anyws.artifacts.store(sid, "t", "keep.txt", b"k")
    sub = anyws.events.subscribe("artifact.deleted")
    rec = anyws.artifacts.delete(sid, "d.txt")
    assert (rec["name"], rec["seq"], rec["hash"]) == ("d.txt", 1, hash_bytes(b"d"))
    assert anyws.events.receive(sub, 0)["data"] == {"session_id": sid, "name": "d.txt"}
    tomb = records(anyws, sid)[-1]
    assert tomb.keys() == {"seq", "op", "name", "created_at", "created_by"}
    assert (tomb["seq"], tomb["op"], tomb["name"], tomb["created_by"]) == (
        3,
        "delete",
        "d.txt",
        "api",
    )
    assert anyws.artifacts.store(sid, "t", "n.txt", b"n")["sequence"] == 4


def test_the_before_delete_hook_is_told_which_session_and_name(anyws: Workspace, sid: str) -> None:
    anyws.artifacts.store(sid, "t", "d.txt", b"d")
    seen = []
    anyws.hooks.register("BeforeArtifactDelete", lambda ctx: seen.append(ctx))
    anyws.artifacts.delete(sid, "d.txt")
    [ctx] = seen
    assert ctx["session_id"] == sid
    assert ctx["data"] == {"session_id": sid, "name": "d.txt"}


def test_two_deletes_at_once_record_one_and_the_other_is_not_found(ws: Workspace) -> None:
    sid = ws.sessions.create(name="race")
    ws.artifacts.store(sid, "t", "d.txt", b"d")

    def another_process_deletes_first(ctx: dict) -> None:
        with Workspace.open(ws.root) as other:  # its own locks, as another process has
            other.artifacts.delete(sid, "d.txt")

    ws.hooks.register("BeforeArtifactDelete", another_process_deletes_first)
    with pytest.raises(ArtifactNotFound) as e:
        ws.artifacts.delete(sid, "d.txt")
    assert str(e.value) == f"artifact not found: d.txt in session {sid[:8]}"
    assert [r.get("op") for r in records(ws, sid)] == [None, "delete"]


def test_a_materialized_store_leaves_the_copy_it_records_in_place(ws: Workspace) -> None:
    sid = ws.sessions.create(name="hand")
    files = ws.root / sdir(ws, sid) / "files"
    files.mkdir(exist_ok=True)
    (files / "h.txt").write_bytes(b"typed by hand")
    before = (files / "h.txt").stat()
    ws.artifacts.store_file(sid, files / "h.txt", "user_input", materialized=True)
    after = (files / "h.txt").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert ws.artifacts.get(sid, "h.txt")["content"] == b"typed by hand"
    assert ws.worktree.scan(ws.sessions.resolve(sid)).clean


def test_the_before_store_hook_sees_and_may_change_what_a_file_store_holds(
    anyws: Workspace, sid: str, tmp_path: Path
) -> None:
    seen = []

    def redact(ctx: dict) -> dict:
        seen.append((ctx["data"]["name"], ctx["data"]["content"]))
        return {**ctx["data"], "content": ctx["data"]["content"].replace(b"secret", b"******")}

    anyws.hooks.register("BeforeArtifactStore", redact)
    paths = []
    for i in range(3):
        p = tmp_path / f"f{i}.txt"
        p.write_bytes(f"the secret {i}".encode())
        paths.append(p)
    anyws.artifacts.store_files(sid, paths[:2], "t")
    anyws.artifacts.store_file(sid, paths[2], "t")
    assert seen == [(f"f{i}.txt", f"the secret {i}".encode()) for i in range(3)]
    for i in range(3):
        assert anyws.artifacts.get(sid, f"f{i}.txt")["content"] == f"the ****** {i}".encode()
        assert files_copy(anyws, sid, f"f{i}.txt") == f"the ****** {i}".encode()


def test_a_file_of_exactly_the_size_limit_is_stored(anyws: Workspace, tmp_path: Path) -> None:
    with limited_ws(anyws, max_artifact_size=1000) as ws:
        s = ws.sessions.create(name="lim")
        exact = tmp_path / "exact.bin"
        exact.write_bytes(b"e" * 1000)
        ws.artifacts.store_file(s, exact, "t")
        assert ws.artifacts.get(s, "exact.bin")["metadata"]["size"] == 1000


def test_on_commit_is_told_of_each_committed_chunk(
    anyws: Workspace, sid: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spellfs.model.artifact_writes as artifact

    monkeypatch.setattr(artifact, "CHUNK_RECORDS", 2)
    paths = []
    for i in range(5):
        p = tmp_path / f"c{i}.txt"
        p.write_bytes(f"c{i}".encode())
        paths.append(p)
    chunks: list[list[dict]] = []
    ids = anyws.artifacts.store_files(sid, paths, "t", on_commit=chunks.append)
    assert [[i["sequence"] for i in chunk] for chunk in chunks] == [[1, 2], [3, 4], [5]]
    assert [i for chunk in chunks for i in chunk] == ids


def test_a_batch_of_many_chunks_starts_its_writer_threads_once_and_joins_them(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk of a large batch is written on the writer threads; they are started for the
    batch, not again for every chunk, and none is left running when the store returns."""
    import threading

    import spellfs.model.artifact_writes as artifact
    from spellfs.model import chunk_writes

    monkeypatch.setattr(artifact, "CHUNK_RECORDS", 20)
    sid = ws.sessions.create(name="threads")
    starts = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda t: (starts.append(t), start(t))[1])
    paths = []
    for i in range(100):  # five chunks, each large enough for the threads
        p = tmp_path / f"w{i:03d}.txt"
        p.write_bytes(b"w%d" % i)
        paths.append(p)
    ids = ws.artifacts.store_files(sid, paths, "t")
    assert [i["sequence"] for i in ids] == list(range(1, 101))
    assert all(files_copy(ws, sid, p.name) == p.read_bytes() for p in paths)
    assert 0 < len(starts) <= chunk_writes.WRITERS
    assert not any(t.is_alive() for t in starts)


def test_a_recorded_run_notes_every_store_and_delete(ws: Workspace, tmp_path: Path) -> None:
    from spellfs.history.runs import begin_run

    sid = ws.sessions.create(name="run")
    script = tmp_path / "make.lua"
    script.write_bytes(b"-- makes out.md")
    run = begin_run(ws, script, script.read_bytes(), [])
    ws.artifacts.store(sid, "t", "out.md", b"out")
    ws.artifacts.store_many(sid, [("t", "old.md", b"old", None)])
    ws.artifacts.delete(sid, "old.md")
    [rec] = run.finish(0)
    assert rec["artifacts"] == [
        {"seq": 1, "name": "out.md", "hash": hash_bytes(b"out")},
        {"seq": 2, "name": "old.md", "hash": hash_bytes(b"old")},
        {"seq": 3, "name": "old.md", "op": "delete"},
    ]


def test_mime_types_by_suffix_whatever_its_case(
    anyws: Workspace, sid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spellfs.model.mime as mime_table

    monkeypatch.setattr(mime_table, "_MIME_BY_SUFFIX", {})  # the same on a cold and a warm cache
    for name, content, mime in (
        ("NOTES.MD", b"# hi", "text/markdown"),
        ("again.md", b"# hi", "text/markdown"),
        ("NOTES.MD", b"# hi", "text/markdown"),
        ("Data.Tar.Gz", b"\x1f\x8b\x08\x00", "application/gzip"),
        ("README", b"words", "text/plain"),
        ("blob.unknownsuffix", b"\xff\xfe\x00", "application/octet-stream"),
    ):
        anyws.artifacts.store(sid, "t", name, content)
        assert anyws.artifacts.get(sid, name)["metadata"]["mime_type"] == mime, name


def test_a_query_of_one_session_sees_another_processes_store(root: Path) -> None:
    with Workspace.open(root) as ws, Workspace.open(root) as other:
        sid = ws.sessions.create(name="shared")
        assert ws.artifacts.query({"session_id": sid}) == []
        other.artifacts.store(sid, "t", "theirs.txt", b"from elsewhere")
        assert names(ws.artifacts.query({"session_id": sid})) == ["theirs.txt"]


def test_bad_queries_say_what_is_wrong(populated) -> None:
    ws, s1, _ = populated
    with pytest.raises(UsageError) as e:
        ws.artifacts.query({"colour": "red", "size": 1})
    assert str(e.value) == (
        "unknown query field: colour (known: created_after, created_before, limit, max_size, "
        "min_size, name_pattern, session_id, tags, type)"
    )
    for key, value in (("min_size", "big"), ("max_size", True)):
        with pytest.raises(UsageError) as e:
            ws.artifacts.query({key: value})
        assert str(e.value) == f"invalid {key}: {value!r} (a number of bytes)"
    # an empty session id means every session, as no session id does
    assert names(ws.artifacts.query({"session_id": ""})) == names(ws.artifacts.query())


def test_list_marks_the_artifacts_whose_copy_was_changed_by_hand(ws: Workspace) -> None:
    sid = ws.sessions.create(name="marks")
    for name in ("a.txt", "b.txt", "c.txt"):
        ws.artifacts.store(sid, "t", name, name.encode())
    files = ws.root / sdir(ws, sid) / "files"
    (files / "a.txt").write_bytes(b"by hand")
    (files / "c.txt").unlink()
    assert [(a["name"], a["modified_on_disk"]) for a in ws.artifacts.list(sid)] == [
        ("a.txt", True),
        ("b.txt", False),
        ("c.txt", True),
    ]


def test_query_filters_each_record_on_its_own(populated) -> None:
    ws, s1, _ = populated
    q = lambda **kw: names(ws.artifacts.query(kw))  # noqa: E731
    assert q(tags=["x"]) == ["calc.json", "other.json"]
    assert q(name_pattern="*.json") == ["calc.json", "other.json"]
    t = ws.artifacts.get(s1, "answer.md")["metadata"]["created_at"]
    assert q(created_before=t) == ["calc.json"]  # strictly before
    for bad, message in (
        ({"name_pattern": 5}, "invalid name_pattern: expected a glob string like '*.md'"),
        ({"limit": "5"}, "invalid limit: '5' (a non-negative integer)"),
        ({"limit": True}, "invalid limit: True (a non-negative integer)"),
        ({"limit": 1.5}, "invalid limit: 1.5 (a non-negative integer)"),
    ):
        with pytest.raises(UsageError) as e:
            ws.artifacts.query(bad)
        assert str(e.value) == message


def test_references_that_are_not_text_or_an_id_say_so(anyws: Workspace, sid: str) -> None:
    anyws.artifacts.store(sid, "t", "r.txt", b"r")
    with pytest.raises(ArtifactNotFound, match="^artifact not found: \ufffd\ufffd in session"):
        anyws.artifacts.get(sid, b"\xff\xfe")  # bytes that are no UTF-8: never a decode error
    with pytest.raises(UsageError) as e:
        anyws.artifacts.get(sid, {"content_hash": hash_bytes(b"r")})
    assert str(e.value) == "invalid artifact id: expected {content_hash, session_id, sequence}"


def _three_copies(ws: Workspace) -> tuple[str, Path]:
    """A session holding f0.txt..f2.txt at "v1 i"; return its id and its files/ folder."""
    sid = ws.sessions.create(name="race")
    ws.artifacts.store_many(sid, [("t", f"f{i}.txt", f"v1 {i}", None) for i in range(3)])
    return sid, ws.root / sdir(ws, sid) / "files"


def test_a_copy_deleted_by_hand_while_a_store_runs_is_written_again(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid, files = _three_copies(ws)
    store_v2_while(ws, sid, monkeypatch, (files / "f1.txt").unlink)
    assert (files / "f1.txt").read_bytes() == b"v2 1"
    assert ws.worktree.scan(ws.sessions.resolve(sid)).clean


def test_a_copy_set_back_to_recorded_content_while_a_store_runs_is_replaced(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only content no record has is left in place: a copy someone put back to a recorded version
    (a checkout, an undo) mid-store is the store's to replace."""
    sid, files = _three_copies(ws)
    (files / "f1.txt").write_bytes(b"an edit, kept before the store")
    store_v2_while(ws, sid, monkeypatch, lambda: (files / "f1.txt").write_bytes(b"v1 1"))
    assert (files / "f1.txt").read_bytes() == b"v2 1"
    assert ws.artifacts.get(sid, "f1.txt@2")["content"] == b"an edit, kept before the store"
    assert ws.worktree.scan(ws.sessions.resolve(sid)).clean


def test_a_copy_being_written_while_a_store_runs_is_left_to_its_writer(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spellfs.model.handedits as handedits

    sid, files = _three_copies(ws)
    real_hash = handedits.hash_path
    writing: set[str] = set()

    def an_editor_starts_saving() -> None:
        (files / "f1.txt").write_bytes(b"half of a save")
        writing.add(str(files / "f1.txt"))

    # hash_path says None when the file moved while it was read: here, the editor's save (the
    # store's check, in handedits, reads it through its own name for the function)
    monkeypatch.setattr(
        handedits, "hash_path", lambda p, *a: None if p in writing else real_hash(p, *a)
    )
    store_v2_while(ws, sid, monkeypatch, an_editor_starts_saving)
    assert (files / "f1.txt").read_bytes() == b"half of a save"
    assert (files / "f0.txt").read_bytes() == b"v2 0"
    assert ws.artifacts.get(sid, "f1.txt")["content"] == b"v2 1"  # the record still lands


def test_a_store_that_fails_at_its_append_puts_the_copy_back(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    sid = ws.sessions.create(name="full")
    ws.artifacts.store(sid, "t", "a.txt", b"v1")
    files = ws.root / sdir(ws, sid) / "files"

    def disk_full(rel: str, data: bytes) -> None:
        if rel.endswith("/artifacts.yaml"):
            raise OSError(errno.ENOSPC, "No space left on device")

    before_appends(monkeypatch, ws, disk_full)
    with pytest.raises(OSError):
        ws.artifacts.store(sid, "t", "a.txt", b"v2 never recorded")
    monkeypatch.undo()
    assert (files / "a.txt").read_bytes() == b"v1"  # not a phantom of the failed store
    assert ws.worktree.scan(ws.sessions.resolve(sid)).clean
    assert [r["version"] for r in records(ws, sid)] == [1]


def test_a_bulk_stores_copies_need_no_read_to_be_trusted(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spellfs.model.worktree as worktree

    sid = ws.sessions.create(name="bulk")
    ws.artifacts.store_many(sid, [("t", f"b{i:02d}.txt", f"bulk {i}", None) for i in range(16)])
    reads: list[str] = []
    real = worktree.hash_path
    monkeypatch.setattr(worktree, "hash_path", lambda p, *a: reads.append(p) or real(p, *a))
    assert ws.worktree.scan(ws.sessions.resolve(sid)).clean
    assert reads == []


def test_a_streamed_file_of_no_known_suffix_is_typed_by_its_first_bytes(
    anyws: Workspace, sid: str, tmp_path: Path
) -> None:
    text = tmp_path / "big.log1"
    text.write_bytes(b"line of text\n" * 100_000)  # > 1 MiB: streamed, not read whole
    blob = tmp_path / "big.dat1"
    blob.write_bytes(b"\xff\xfe\x00" * 500_000)
    anyws.artifacts.store_files(sid, [text, blob], "t")
    assert anyws.artifacts.get(sid, "big.log1")["metadata"]["mime_type"] == "text/plain"
    assert anyws.artifacts.get(sid, "big.dat1")["metadata"]["mime_type"] == (
        "application/octet-stream"
    )


def test_a_name_that_also_reads_as_a_version_or_a_sequence_is_ambiguous(
    anyws: Workspace, sid: str
) -> None:
    """An artifact named "x@2" beside x's version 2, or one named "#3" beside sequence #3:
    the exact name silently won (red-team F16); SPEC: an error listing both."""
    anyws.artifacts.store(sid, "user_input", "x@2", b"literal")  # #1
    anyws.artifacts.store(sid, "user_input", "x", b"one")  # #2
    assert anyws.artifacts.get(sid, "x@2")["content"] == b"literal"  # (no x@2 version yet)
    anyws.artifacts.store(sid, "user_input", "x", b"two")  # #3
    with pytest.raises(UsageError) as err:
        anyws.artifacts.get(sid, "x@2")
    assert str(err.value) == (
        f"ambiguous artifact reference 'x@2' in session {sid[:8]}: the artifact named so (#1), "
        "and x@2 (#3) (name the first as x@2@1, the second as #3)"
    )
    assert anyws.artifacts.get(sid, "x@2@1")["content"] == b"literal"
    assert anyws.artifacts.get(sid, "#3")["content"] == b"two"
    anyws.artifacts.store(sid, "user_input", "#3", b"hash name")  # #4
    with pytest.raises(UsageError, match=r"ambiguous artifact reference '#3' .* and x@2 \(#3\)"):
        anyws.artifacts.get(sid, "#3")
    assert anyws.artifacts.get(sid, "#3@1")["content"] == b"hash name"


def test_a_long_ambiguous_name_is_cut_in_the_message_and_its_hint_still_names_it(
    anyws: Workspace, sid: str
) -> None:
    """The reference is shown cut to 80 characters (one readable line), but the way on it
    gives must be a reference that works: a cut name named no artifact."""
    long = "n" * 90
    anyws.artifacts.store(sid, "user_input", f"{long}@2", b"literal")  # #1
    anyws.artifacts.store(sid, "user_input", long, b"one")  # #2
    anyws.artifacts.store(sid, "user_input", long, b"two")  # #3
    with pytest.raises(UsageError) as err:
        anyws.artifacts.get(sid, f"{long}@2")
    assert str(err.value) == (
        f"ambiguous artifact reference {'n' * 80!r} in session {sid[:8]}: the artifact named so "
        f"(#1), and {long}@2 (#3) (name the first as {long}@2@1, the second as #3)"
    )
    assert anyws.artifacts.get(sid, f"{long}@2@1")["content"] == b"literal"


def test_delete_refuses_over_a_hand_edit_and_force_keeps_it_first(ws: Workspace) -> None:
    sid = ws.sessions.create(name="art")
    ws.artifacts.store(sid, "user_input", "a.txt", b"v1")
    copy = ws.root / sdir(ws, sid) / "files" / "a.txt"
    copy.write_bytes(b"by hand")
    with pytest.raises(UnrecordedChanges) as err:
        ws.artifacts.delete(sid, "a.txt")
    assert str(err.value) == (
        f"delete would overwrite or delete unrecorded changes: {sdir(ws, sid)}/files/: a.txt "
        f"(record them with `spell save {sid[:8]}` first, or pass --force: they are kept "
        "first, then it goes on)"
    )
    assert copy.read_bytes() == b"by hand" and ws.artifacts.get(sid, "a.txt")["content"] == b"v1"
    ws.artifacts.delete(sid, "a.txt", force=True)
    assert not copy.exists() and ws.artifacts.list(sid) == []
    kept = ws.artifacts.get(sid, "a.txt@2")
    assert kept["content"] == b"by hand" and kept["metadata"]["custom"] == {"kept_by": "delete"}
    assert [(r["name"], r.get("op")) for r in records(ws, sid)][1:] == [
        ("a.txt", None),
        ("a.txt", "delete"),
    ]


def test_a_run_that_only_deletes_names_the_session_in_its_record(
    ws: Workspace, tmp_path: Path
) -> None:
    from spellfs.history.runs import begin_run

    sid = ws.sessions.create(name="run")
    ws.artifacts.store(sid, "t", "old.md", b"old")
    script = tmp_path / "clean.lua"
    script.write_bytes(b"-- deletes old.md")
    run = begin_run(ws, script, script.read_bytes(), [])
    ws.artifacts.delete(sid, "old.md")  # the first thing the run does to the session
    [rec] = run.finish(0)
    assert rec["session_id"] == sid
    assert rec["artifacts"] == [{"seq": 2, "name": "old.md", "op": "delete"}]


def test_store_files_names_what_is_wrong_with_a_path_in_one_line(
    anyws: Workspace, tmp_path: Path
) -> None:
    """Every path is checked before any is stored, and a bad one is named exactly: an empty
    path, a missing file, a path through a file, a FIFO (a read would block), a file too big."""
    import os

    ok = tmp_path / "ok.txt"
    ok.write_bytes(b"ok")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * 1001)
    with limited_ws(anyws, max_artifact_size=1000) as ws:
        s = ws.sessions.create(name="paths")
        before = snapshot(ws)
        for bad, error, message in (
            ("", UsageError, "invalid file: an empty path (name a file to store)"),
            (b"", UsageError, "invalid file: an empty path (name a file to store)"),
            (tmp_path / "absent", ArtifactNotFound, f"file not found: {tmp_path / 'absent'}"),
            (ok / "x", ArtifactNotFound, f"file not found: {ok / 'x'}"),
            (fifo, UsageError, f"not a regular file: {fifo} (a FIFO; store a file)"),
            (
                big,
                LimitExceeded,
                "artifact too large: big.bin is 1001 bytes; max_artifact_size is 1000 "
                "(raise sessions.max_artifact_size in spell.yaml)",
            ),
        ):
            with pytest.raises(error) as exc:
                ws.artifacts.store_files(s, [ok, bad], "t")
            assert str(exc.value) == message
        assert snapshot(ws) == before


def test_a_bulk_store_of_small_middling_and_large_files_keeps_every_byte(
    anyws: Workspace, sid: str, tmp_path: Path
) -> None:
    """A bulk store packs its small files, stores larger ones on their own and streams those
    over 1 MiB: each comes back whole, with its size, whatever way it was written."""
    import os

    from spellfs.store import PACKED_MAX

    sizes = [0, 1, 100, PACKED_MAX - 1, PACKED_MAX, PACKED_MAX + 1, (1 << 20), (1 << 20) + 1]
    sizes += [10 + i for i in range(20 - len(sizes))]  # a bulk store: 20 files
    paths = []
    for i, size in enumerate(sizes):
        p = tmp_path / f"f{i:02d}.bin"
        p.write_bytes(os.urandom(size))
        paths.append(p)
    ids = anyws.artifacts.store_files(sid, paths, "t")
    assert [i["sequence"] for i in ids] == list(range(1, 21))
    assert [(r["name"], r["size"]) for r in records(anyws, sid)] == [
        (p.name, s) for p, s in zip(paths, sizes)
    ]
    for p in paths:
        assert anyws.artifacts.get(sid, p.name)["content"] == p.read_bytes()
        assert files_copy(anyws, sid, p.name) == p.read_bytes()
    if not anyws.memory:
        assert anyws.worktree.scan(anyws.sessions.resolve(sid)).clean


def test_a_store_hook_sees_the_content_of_files_up_to_1_mib_while_the_batch_holds_16(
    ws: Workspace, tmp_path: Path
) -> None:
    """With a BeforeArtifactStore hook, files of at most 1 MiB are read up front so the hook
    sees their bytes, until the batch holds 16 MiB; larger or later ones reach it as nil (read
    from disk when stored), so a bulk store's memory stays bounded."""
    seen = []
    ws.hooks.register("BeforeArtifactStore", lambda ctx: seen.append(ctx["data"]["content"]))
    sid = ws.sessions.create(name="hooked")
    mib = 1 << 20
    specs = [("over.bin", mib + 1)] + [(f"m{i:02d}.bin", mib) for i in range(17)]
    specs.append(("tiny.txt", 4))
    paths = []
    for i, (name, size) in enumerate(specs):
        p = tmp_path / name
        p.write_bytes(bytes([i]) * size)
        paths.append(p)
    ws.artifacts.store_files(sid, paths, "t")
    assert [c is not None for c in seen] == [False] + [True] * 16 + [False, False]
    assert all(c == p.read_bytes() for c, p in zip(seen, paths) if c is not None)
    for p in paths:
        assert ws.artifacts.get(sid, p.name)["content"] == p.read_bytes()


def test_read_small_reads_a_file_up_to_its_limit_whole_and_leaves_a_larger_one(
    tmp_path: Path,
) -> None:
    """`read_small` decides whether a stored file is read into memory (at most ``limit`` bytes)
    or streamed (None). A file whose content is longer than its stat said (one still being
    written; /proc files say 0) is read on to its end, never cut at the stat size."""
    from spellfs.model.store_inputs import read_small

    exact = tmp_path / "exact.bin"
    exact.write_bytes(b"e" * 1000)
    assert read_small(exact, 1000) == b"e" * 1000
    assert read_small(exact, 999) is None
    assert read_small(exact) == b"e" * 1000
    proc = Path("/proc/self/cmdline")  # stat says 0 bytes; reading gives the command line
    whole = proc.read_bytes()
    assert proc.stat().st_size == 0 and len(whole) > 2
    assert read_small(proc) == whole
    assert read_small(proc, len(whole)) == whole
    assert read_small(proc, len(whole) - 1) is None
    assert read_small(proc, 1) is None  # (its first read gives 1 byte: the limit, not the end)


def test_a_file_longer_than_its_stat_said_is_stored_whole(anyws: Workspace, sid: str) -> None:
    whole = Path("/proc/self/cmdline").read_bytes()  # (its stat says 0 bytes)
    anyws.artifacts.store_file(sid, "/proc/self/cmdline", "t", name="cmdline")
    assert anyws.artifacts.get(sid, "cmdline")["content"] == whole
    assert anyws.artifacts.get(sid, "cmdline")["metadata"]["size"] == len(whole)


def test_a_bulk_store_of_files_writes_its_small_objects_as_one_pack(
    ws: Workspace, tmp_path: Path
) -> None:
    """A bulk `store_files` (20 files) writes its objects of at most PACKED_MAX bytes into one
    pack file rather than one file each; a larger file is an object file of its own."""
    import os

    from spellfs.store import PACKED_MAX

    sid = ws.sessions.create(name="bulk")
    contents = {f"f{i:02d}.txt": f"small file {i}\n".encode() for i in range(18)}
    contents["edge.txt"] = b"a" * PACKED_MAX
    contents["over.txt"] = os.urandom(PACKED_MAX + 1)  # stored form over PACKED_MAX too
    paths = []
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    ws.artifacts.store_files(sid, paths, "user_input")
    assert len(list((ws.root / ".spell" / "objects" / "pack").glob("*.pack"))) == 1
    for name, data in contents.items():
        oid = hash_bytes(data)
        in_pack_only = ws.objects.packed(oid) is not None
        assert in_pack_only == (name != "over.txt"), name
        assert ws.objects.path(oid).exists() == (name == "over.txt"), name
        assert ws.artifacts.get(sid, name)["content"] == data
