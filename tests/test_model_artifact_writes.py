"""The store path's own helpers: a file's path and default name read as pathlib reads them."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from spellfs import Workspace
from spellfs.model.store_inputs import file_name, local_path

_paths = st.text(alphabet="a./ é", min_size=1, max_size=24)


@given(_paths)
def test_a_path_and_its_name_read_as_pathlib_reads_them(path: str) -> None:
    """``spell add`` names 20,000 paths; building a ``Path`` for each cost more than the rest of
    its check. Without one, every spelling (``//``, ``.`` parts, a trailing slash, a leading
    ``./``) still gives what ``Path`` gives, which is what the store opens and names."""
    assert local_path(path) == os.fspath(Path(path))
    assert file_name(path) == Path(path).name


def test_a_file_named_with_a_trailing_slash_or_dot_parts_is_stored_by_its_name(
    ws: Workspace, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.md").write_bytes(b"n")
    monkeypatch.chdir(tmp_path)
    sid = ws.sessions.create(name="p")
    ids = ws.artifacts.store_files(sid, ["./d//notes.md/", "d/./notes.md"], "t")
    assert [i["sequence"] for i in ids] == [1, 2]
    assert ws.artifacts.get(sid, "notes.md@2")["content"] == b"n"
