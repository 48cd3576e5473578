"""No link under ``sessions/`` is followed: PathGuard's checks, in-process, on a real folder."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from spellfs.errors import UnsafePath
from spellfs.store.links import PathGuard, refusal
from spellfs.store.storage import FsStorage

HINT = "spellfs never follows links under sessions/; remove it, or the session"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A workspace-like folder with one real session and a place outside it to point at."""
    root = tmp_path / "ws"
    (root / "sessions" / "s" / "files").mkdir(parents=True)
    (root / "sessions" / "s" / "artifacts.yaml").write_text("")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    return root


def guard(root: Path) -> PathGuard:
    return PathGuard(os.fspath(root) + "/")


def test_refusal_names_the_path_and_what_it_is() -> None:
    assert str(refusal("sessions/s/files", stat.S_IFLNK | 0o777)) == (
        f"refused: sessions/s/files is a symbolic link ({HINT})"
    )
    assert str(refusal("sessions/s/x", stat.S_IFIFO | 0o644)) == (
        f"refused: sessions/s/x is a special file (device, fifo or socket) ({HINT})"
    )


def test_plain_session_paths_pass(tree: Path) -> None:
    g = guard(tree)
    g.check("sessions/s/artifacts.yaml")
    g.check("sessions/s/files/new.txt")  # not there yet: nothing to follow
    g.check("sessions/s/files", final=True)


def test_a_linked_folder_on_the_way_is_refused_by_name(tree: Path) -> None:
    shutil.rmtree(tree / "sessions" / "s" / "files")
    os.symlink("../../../outside", tree / "sessions" / "s" / "files")
    with pytest.raises(UnsafePath) as err:
        guard(tree).check("sessions/s/files/secret.txt", final=False)
    assert str(err.value) == f"refused: sessions/s/files is a symbolic link ({HINT})"


def test_sessions_itself_a_link_is_refused(tree: Path) -> None:
    shutil.rmtree(tree / "sessions")
    os.symlink("../outside", tree / "sessions")
    with pytest.raises(UnsafePath, match=r"^refused: sessions is a symbolic link"):
        guard(tree).check("sessions/s/artifacts.yaml", final=False)


def test_the_last_part_is_checked_only_when_final(tree: Path) -> None:
    log = tree / "sessions" / "s" / "artifacts.yaml"
    log.unlink()
    os.symlink("../../../outside/secret.txt", log)
    guard(tree).check("sessions/s/artifacts.yaml", final=False)  # the open refuses it itself
    with pytest.raises(UnsafePath) as err:
        guard(tree).check("sessions/s/artifacts.yaml")
    assert str(err.value) == f"refused: sessions/s/artifacts.yaml is a symbolic link ({HINT})"


def test_a_fifo_is_refused_as_a_special_file(tree: Path) -> None:
    os.mkfifo(tree / "sessions" / "s" / "events.yaml")
    with pytest.raises(UnsafePath) as err:
        guard(tree).check("sessions/s/events.yaml")
    assert str(err.value) == (
        f"refused: sessions/s/events.yaml is a special file (device, fifo or socket) ({HINT})"
    )


def test_links_outside_sessions_are_not_checked(tree: Path) -> None:
    (tree / "templates").symlink_to(tree.parent / "outside")
    guard(tree).check("templates/secret.txt")
    guard(tree).check("templates")


def test_a_plain_file_on_the_way_stops_the_check(tree: Path) -> None:
    """``sessions/s/artifacts.yaml/x``: the open fails with ENOTDIR, nothing is followed, and a
    link further down cannot exist."""
    guard(tree).check("sessions/s/artifacts.yaml/x/y")


def test_a_missing_folder_stops_the_check(tree: Path) -> None:
    guard(tree).check("sessions/t/files/a.txt")


def test_a_folder_seen_real_is_not_looked_at_again_until_forgotten(tree: Path) -> None:
    """The cache is what makes the check cheap; ``forget`` is what keeps it right when a
    session is removed and a link put in its place."""
    g = guard(tree)
    g.check("sessions/s/files/a.txt")
    shutil.rmtree(tree / "sessions" / "s")
    os.symlink("../../outside", tree / "sessions" / "s")
    g.check("sessions/s/files/a.txt")  # cached as a real folder: not looked at again
    g.forget("sessions/s")
    with pytest.raises(UnsafePath, match=r"^refused: sessions/s is a symbolic link"):
        g.check("sessions/s/files/a.txt")


def test_forget_drops_what_is_under_the_folder_too(tree: Path) -> None:
    g = guard(tree)
    g.check("sessions/s/files/a.txt")
    shutil.rmtree(tree / "sessions" / "s" / "files")
    os.symlink("../../../outside", tree / "sessions" / "s" / "files")
    g.forget("sessions/s")
    with pytest.raises(UnsafePath, match=r"^refused: sessions/s/files is a symbolic link"):
        g.check("sessions/s/files/secret.txt")


def test_storage_reads_through_a_linked_session_folder_are_refused(tree: Path) -> None:
    storage = FsStorage(tree)
    assert storage.read("sessions/s/artifacts.yaml") == b""
    shutil.rmtree(tree / "sessions" / "s" / "files")
    os.symlink("../../../outside", tree / "sessions" / "s" / "files")
    with pytest.raises(UnsafePath, match=r"^refused: sessions/s/files is a symbolic link"):
        storage.read("sessions/s/files/secret.txt")
