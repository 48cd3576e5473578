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
