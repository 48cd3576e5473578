"""Artifact previews in `spell ui`: JSON pretty-printed, hostile JSON shown as text, never a
crash."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette", reason="the ui extra (pip install 'spellfs[ui]') is not installed")

from spellfs.ui.preview import preview  # noqa: E402


def test_json_is_pretty_printed() -> None:
    got = preview(b'{"a": [1, 2]}', "application/json", "x.json")
    assert got["kind"] == "json"
    assert got["text"] == json.dumps({"a": [1, 2]}, indent=2)


def test_json_nested_too_deep_is_shown_as_text_not_a_crash() -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    got = preview(deep, "application/json", "deep.json")
    assert got["kind"] == "text"
    assert got["text"].startswith("[[[[")


def test_a_diff_of_repetitive_text_finishes_and_says_what_changed() -> None:
    """Two 80 KB texts of repeated lines (red-team 2 U1): the side-by-side diff took minutes and
    held every other page behind it; it must finish (a generous 60 s bound, in a thread: this
    machine does it in milliseconds) and still show the first line removed and added."""
    import threading

    from spellfs.ui.preview import side_by_side

    a, b = "a\nb\n" * 20000 + "x\n", "y\n" + "b\na\n" * 20000
    got: list = []
    worker = threading.Thread(target=lambda: got.append(side_by_side(a, b)), daemon=True)
    worker.start()
    worker.join(60)
    assert got, "the diff did not finish in 60 s"
    rows = got[0]
    assert any(r["left_no"] == 1 and r["left"] == "a" and r["tag"] != "equal" for r in rows)
    assert any(r["right_no"] == 1 and r["right"] == "y" for r in rows)
    assert any(r["right"] == "a" and r["right_no"] == 40001 for r in rows)


def test_json_larger_than_a_page_is_shown_as_its_text_not_parsed() -> None:
    """A JSON artifact bigger than the page shows is not parsed to pretty-print a part of it
    (red-team 2 U2: 35 MB took a minute and held the UI): its first bytes as text, truncated."""
    from spellfs.ui.preview import PREVIEW_MAX

    big = json.dumps([{"i": i, "pad": "x" * 50} for i in range(PREVIEW_MAX // 40)]).encode()
    assert len(big) > PREVIEW_MAX
    got = preview(big, "application/json", "big.json")
    assert (got["kind"], got["truncated"]) == ("text", True)
    assert got["text"] == big[:PREVIEW_MAX].decode()
    small = preview(b'{"a": 1}', "application/json", "small.json")
    assert (small["kind"], small["text"]) == ("json", '{\n  "a": 1\n}')
