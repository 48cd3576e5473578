"""MIME types come from spellfs's own table, the same on every machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

PROBE = """
import mimetypes, sys
mimetypes.knownfiles[:] = sys.argv[1:]   # what this machine's /etc/mime.types would say
mimetypes.init(sys.argv[1:])
from spellfs import Workspace
with Workspace.in_memory() as ws:
    sid = ws.sessions.create(name="m")
    for name in ("notes.md", "data.yaml", "a.tar.gz", "x.mp2"):
        ws.artifacts.store(sid, "user_input", name, b"x")
        print(ws.artifacts.get(sid, name)["metadata"]["mime_type"])
"""


@pytest.mark.parametrize("system_file", ["none", "hostile"])
def test_md_is_text_markdown_whatever_the_system_mime_file_says(
    tmp_path: Path, system_file: str
) -> None:
    args = []
    if system_file == "hostile":
        f = tmp_path / "mime.types"
        f.write_text("text/x-machine-specific md yaml\napplication/x-odd gz\n")
        args = [str(f)]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["text/markdown", "application/yaml", "application/gzip", "audio/mpeg"]


@pytest.mark.parametrize(
    "suffix, mime",
    [
        ("md", "text/markdown"),
        ("tar.gz", "application/gzip"),  # the whole suffix first ...
        ("backup.gz", "application/gzip"),  # ... then its last part
        ("old.backup.gz", "application/gzip"),  # (the last part only)
        ("tar.zst", "application/zstd"),
        ("woff2", "font/woff2"),
        ("eml", "message/rfc822"),  # not in the table: the interpreter's built-in defaults
        ("csv", "text/csv"),
        ("pict", "image/pict"),  # a type Python lists as non-standard: known too
        ("no-such-suffix", None),
        ("", None),
    ],
)
def test_a_suffix_gets_the_table_type_then_the_built_in_one(suffix: str, mime: str | None) -> None:
    from spellfs.model.mime import guess_mime

    assert guess_mime(suffix) == mime


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aB.xtgzTARGZ-", max_size=12))
def test_a_name_s_type_comes_from_its_last_two_suffixes(name: str) -> None:
    """Everything after the first dot, at most its last two parts (``a.b.tar.gz`` is a
    ``tar.gz``; ``a.gz`` a ``gz``), whatever the dots and the case."""
    from spellfs.model.mime import guess_mime, mime_for

    suffix = ".".join(name.lower().split(".")[1:][-2:])
    assert mime_for(name, b"\xff") == (guess_mime(suffix) or "application/octet-stream")
