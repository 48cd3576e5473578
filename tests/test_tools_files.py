"""The local tools added for rs-llmspell's examples: url_analyzer, database_connector,
file_watcher, file_converter, file_search and the media tools, confined to the workspace."""

from __future__ import annotations

import struct
import threading
import time
import wave
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from spellfs.tools import TOOLS


@pytest.fixture
def ctx(root: Path):
    return SimpleNamespace(root=root, workspace=None, sandbox=False)


def run(tool: str, ctx: Any = None, **params: Any) -> dict:
    return TOOLS[tool].execute(params, ctx)


def ok(tool: str, ctx: Any = None, **params: Any) -> dict:
    out = run(tool, ctx, **params)
    assert out["success"] is True, out
    return out["result"]


def fails(tool: str, ctx: Any = None, **params: Any) -> str:
    out = run(tool, ctx, **params)
    assert out["success"] is False, out
    return out["error"]


def test_url_analyzer_splits_and_never_echoes_a_password() -> None:
    got = ok("url_analyzer", input="https://user:pw@example.com:8443/p/q?a=1&b=x%20y&a=2#frag")
    assert (got["scheme"], got["host"], got["port"], got["path"], got["fragment"]) == (
        "https",
        "example.com",
        8443,
        "/p/q",
        "frag",
    )
    assert got["query_params"] == {"a": ["1", "2"], "b": "x y"}
    assert got["username"] == "user" and got["has_password"] is True and ":pw" not in str(got)
    assert got["url"] == "https://user:***@example.com:8443/p/q?a=1&b=x%20y&a=2#frag"
    raw = ok("url_analyzer", input="http://h/?b=x%20y", decode_params=False)
    assert raw["query_params"] == {"b": "x%20y"} and raw["port"] == 80 and not raw["is_secure"]
    assert "invalid URL: not-a-url" in fails("url_analyzer", input="not-a-url")


def test_database_connector_runs_sqlite_in_the_workspace_only(ctx, root: Path) -> None:
    mem = ok("database_connector", ctx, connection_string=":memory:", query="SELECT 1 AS v")
    assert mem == {"rows": [{"v": 1}], "columns": ["v"], "row_count": 1}
    db = {"connection_string": "sqlite:///data/app.db"}
    (root / "data").mkdir()
    ok("database_connector", ctx, operation="execute", query="CREATE TABLE u (n TEXT)", **db)
    ins = ok("database_connector", ctx, operation="execute", query="INSERT INTO u VALUES (?)",
             params=["ann"], **db)  # fmt: skip
    assert ins["rows_affected"] == 1 and (root / "data" / "app.db").is_file()
    got = ok("database_connector", ctx, query="SELECT n FROM u WHERE n = ?", params=["ann"], **db)
    assert got["rows"] == [{"n": "ann"}]
    outside = root.parent / "evil.db"
    for sql in (f"ATTACH DATABASE '{outside}' AS e", f"VACUUM INTO '{outside}'"):
        assert "sqlite: " in fails("database_connector", ctx, operation="execute",
                                         query=sql, **db)  # fmt: skip
    assert not outside.exists()
    assert "outside" in fails("database_connector", ctx, connection_string="../x.db", query="s")
    assert "belongs to spellfs" in fails(
        "database_connector", ctx, connection_string="spell.yaml", query="SELECT 1"
    )
    assert "sqlite only" in fails("database_connector", ctx, provider="mysql", query="SELECT 1")
    assert "sqlite:" in fails("database_connector", ctx, query="SELEC 1")


def test_file_watcher_reports_changes_during_the_wait(ctx, root: Path) -> None:
    (root / "docs").mkdir()
    (root / "docs" / "old.md").write_text("old")
    (root / "docs" / "gone.md").write_text("x")

    def change() -> None:
        time.sleep(0.3)
        (root / "docs" / "new.md").write_text("new")
        (root / "docs" / "skip.txt").write_text("not matched")
        (root / "docs" / "gone.md").unlink()
        with (root / "docs" / "old.md").open("a") as f:
            f.write(" and more")

    t = threading.Thread(target=change)
    t.start()
    got = ok("file_watcher", ctx, input=["docs"], pattern="*.md", timeout_ms=1500)
    t.join()
    assert sorted((e["kind"], e["path"]) for e in got["events"]) == [
        ("create", "docs/new.md"),
        ("delete", "docs/gone.md"),
        ("modify", "docs/old.md"),
    ]
    only = ok("file_watcher", ctx, input="docs", events=["create"], timeout_ms=0)
    assert only["events"] == [] and only["watched"] == ["docs"]
    assert "outside" in fails("file_watcher", ctx, input=["/tmp"], timeout_ms=0)
    assert "no such file" in fails("file_watcher", ctx, input=["nope"], timeout_ms=0)


def test_file_watcher_never_reports_spellfss_own_files(ctx, root: Path) -> None:
    """Like file_search: what spellfs writes (records, spell.yaml, templates/) is not the
    script's to watch, even as a list of names and times."""
    (root / "sessions" / "x-1").mkdir(parents=True)

    def change() -> None:
        time.sleep(0.3)
        (root / "sessions" / "x-1" / "session.yaml").write_text("name: x\n")
        (root / "sessions" / "x-1" / "artifacts.yaml").write_text("")
        (root / "spell.yaml").write_text("x: 1\n")
        (root / "templates" / "new.yaml").write_text("name: t\n")
        (root / "sessions" / "x-1" / "notes.md").write_text("mine")

    t = threading.Thread(target=change)
    t.start()
    got = ok("file_watcher", ctx, input=".", timeout_ms=1200)
    t.join()
    assert [(e["kind"], e["path"]) for e in got["events"]] == [("create", "sessions/x-1/notes.md")]


def test_file_converter_rewrites_encoding_endings_and_indentation(ctx, root: Path) -> None:
    (root / "t.md").write_bytes("a\n        b é\n    c\n".encode())
    ok("file_converter", ctx, operation="line_endings", path="t.md", target_path="crlf.md",
       line_ending="crlf")  # fmt: skip
    assert (root / "crlf.md").read_bytes() == "a\r\n        b é\r\n    c\r\n".encode()
    ok("file_converter", ctx, operation="indentation", path="t.md", target_path="tabs.md",
       to_tabs=True, tab_width=4)  # fmt: skip
    assert (root / "tabs.md").read_text() == "a\n\t\tb é\n\tc\n"
    ok("file_converter", ctx, operation="indentation", path="tabs.md", to_tabs=False, tab_width=2)
    assert (root / "tabs.md").read_text() == "a\n    b é\n  c\n"
    ok("file_converter", ctx, operation="encoding", path="t.md", target_path="u16.md",
       to_encoding="utf-16le")  # fmt: skip
    assert (root / "u16.md").read_bytes() == "a\n        b é\n    c\n".encode("utf-16le")
    assert "is not utf-8 text" in fails("file_converter", ctx, operation="encoding",
                                        path="u16.md", to_encoding="latin-1")  # fmt: skip
    before = (root / "spell.yaml").read_bytes()
    assert "belongs to spellfs" in fails("file_converter", ctx, operation="line_endings",
                                         path="t.md", target_path="spell.yaml")  # fmt: skip
    assert (root / "spell.yaml").read_bytes() == before


def test_file_search_finds_text_with_context_and_skips_spellfs_files(ctx, root: Path) -> None:
    (root / "notes").mkdir()
    (root / "notes" / "a.md").write_text("intro\nLLMSpell features\nend\n")
    (root / "notes" / "b.txt").write_text("llmspell lower\n")
    (root / "notes" / "deep").mkdir()
    (root / "notes" / "deep" / "c.md").write_text("LLMSpell deep\n")
    got = ok("file_search", ctx, pattern="LLMSpell", context_lines=1)
    assert [(m["file"], m["line"]) for m in got["matches"]] == [
        ("notes/a.md", 2),
        ("notes/deep/c.md", 1),
    ]
    assert got["matches"][0]["context_before"] == ["intro"]
    assert got["matches"][0]["context_after"] == ["end"]
    got = ok("file_search", ctx, path="notes", pattern="llmspell", case_sensitive=False,
             extensions=["txt"])  # fmt: skip
    assert [m["file"] for m in got["matches"]] == ["notes/b.txt"]
    got = ok("file_search", ctx, path="notes", pattern="LLMSpell", max_depth=0)
    assert [m["file"] for m in got["matches"]] == ["notes/a.md"]
    got = ok("file_search", ctx, pattern=r"LLM\w+ d", regex=True)
    assert [m["file"] for m in got["matches"]] == ["notes/deep/c.md"]
    spellfs_files = ok("file_search", ctx, pattern="sessions")  # spell.yaml mentions sessions
    assert all(not m["file"].startswith((".spell", "spell.yaml")) for m in
               spellfs_files["matches"])  # fmt: skip
    assert "invalid regex" in fails("file_search", ctx, pattern="(", regex=True)


def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0\0\0" * 4000)


def test_media_tools_read_headers_and_refuse_conversions(ctx, root: Path) -> None:
    _wav(root / "a.wav")
    got = ok("audio_processor", ctx, operation="metadata", file_path="a.wav")
    assert (got["format"], got["channels"], got["sample_rate"], got["duration_seconds"]) == (
        "wav",
        2,
        8000,
        0.5,
    )
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", 640, 480) + b"\0" * 20
    (root / "i.png").write_bytes(png)
    got = ok("image_processor", ctx, operation="metadata", file_path="i.png")
    assert (got["format"], got["width"], got["height"]) == ("png", 640, 480)
    (root / "v.mp4").write_bytes(b"\0\0\0\x18ftypisom" + b"\0" * 100)
    assert ok("video_processor", ctx, operation="get_info", file_path="v.mp4")["format"] == "mp4"
    assert "not an audio file" in fails("audio_processor", ctx, operation="metadata",
                                        file_path="i.png")  # fmt: skip
    assert "resize is not supported" in fails("image_processor", ctx, operation="resize",
                                              input_path="i.png")  # fmt: skip
    assert "outside" in fails("video_processor", ctx, file_path="/tmp/x.mp4")
