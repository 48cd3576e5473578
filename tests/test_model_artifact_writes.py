"""The store path's own helpers: a file's path and default name read as pathlib reads them, and
what a store reads checked to be a file when it reads it."""

from __future__ import annotations

import sys
import subprocess
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spellfs import LimitExceeded, Workspace
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


_SWAP = """
import os, sys
from spellfs import LimitExceeded, Workspace
root, big, kind = sys.argv[1:4]
with Workspace.open(root) as ws:
    sid = ws.sessions.create(name="s")

    def swap(ctx):  # the batch was checked: now the file is something else
        if ctx["data"]["name"] == os.path.basename(big) and os.path.isfile(big):
            os.remove(big)
            os.mkfifo(big) if kind == "fifo" else os.mkdir(big)
        return None

    ws.hooks.register("BeforeArtifactStore", swap)
    names = sorted(os.listdir(os.path.dirname(big)))
    try:
        ws.artifacts.store_files(sid, [os.path.join(os.path.dirname(big), n) for n in names], "t")
    except Exception as exc:
        print(type(exc).__name__, exc)
"""


@pytest.mark.parametrize("kind", ["fifo", "folder"])
@pytest.mark.parametrize("count", [1, 40])
def test_a_file_that_turns_into_a_fifo_or_folder_after_the_check_is_one_error(
    root: Path, tmp_path: Path, kind: str, count: int
) -> None:
    """A FIFO read would block for ever (the add hung); a folder's read said only "Is a
    directory". The store opens what it reads without blocking and checks it is a file."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(count - 1):
        (src / f"a{i:02d}.txt").write_text(f"{i}\n")
    big = src / "big.bin"  # past 1 MiB: read when its turn comes, not up front for the hook
    big.write_bytes(os.urandom(1 << 20) + b"!")
    out = subprocess.run(
        [sys.executable, "-c", _SWAP, str(root), str(big), kind],
        capture_output=True,
        text=True,
        timeout=60,
    )
    what = "a FIFO" if kind == "fifo" else "a folder"
    assert out.stdout.strip() == f"UsageError not a regular file: {big} ({what}; store a file)"
    with Workspace.open(root) as ws:
        [s] = ws.sessions.list()
        assert ws.artifacts.list(s["id"]) == []  # nothing of the batch was committed


def test_a_file_that_grows_past_the_size_limit_after_the_check_is_refused(root: Path) -> None:
    """The limit bounds what one artifact costs: a file checked at 1.5 MiB and 2.5 MiB when its
    turn came was stored whole."""
    (root / "spell.yaml").write_text("sessions:\n  max_artifact_size: 2000000\n")
    big = root.parent / "big.bin"
    big.write_bytes(os.urandom(1_500_000))
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="s")

        def grow(ctx: dict) -> None:
            with big.open("ab") as f:
                f.write(os.urandom(1 << 20))

        ws.hooks.register("BeforeArtifactStore", grow)
        with pytest.raises(LimitExceeded, match=r"artifact too large: big.bin is 2548576 bytes"):
            ws.artifacts.store_file(sid, big, "t")
        assert ws.artifacts.list(sid) == []
        assert not (ws.root / "sessions" / ws.sessions.resolve(sid) / "files" / "big.bin").exists()
