"""Recall: a clean working-copy scan remembered, given again only while no stat it saw moved."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from spellfs.model.recall import Recall
from spellfs.model.statcache import RACY_NS

KEY = ("records-sig", "rules-sig")


def scan(fdir: Path) -> tuple[os.stat_result, list[os.DirEntry]]:
    """What a working-copy scan sees: the folder's stat and its entries, by name."""
    with os.scandir(fdir) as it:
        kept = sorted(it, key=lambda e: e.name)
    return os.stat(fdir), kept


def settled(fdir: Path) -> int:
    """A scan start later than every stat under ``fdir`` by more than the racy window."""
    dst, kept = scan(fdir)
    newest = max(
        [
            dst.st_ctime_ns,
            dst.st_mtime_ns,
            *(e.stat(follow_symlinks=False).st_ctime_ns for e in kept),
        ]
    )
    while time.time_ns() <= newest + RACY_NS:
        time.sleep(0.02)
    return time.time_ns()


@pytest.fixture
def fdir(tmp_path: Path) -> Path:
    d = tmp_path / "sessions" / "s" / "files"
    d.mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "b.txt").write_text("b")
    return d


def remembered(fdir: Path, answer: dict | None = None) -> tuple[Recall, dict]:
    recall = Recall()
    answer = answer if answer is not None else {"clean": ["a.txt", "b.txt"]}
    start = settled(fdir)
    dst, kept = scan(fdir)
    recall.remember("s", KEY, start, dst, kept, answer)
    return recall, answer


def test_a_settled_scan_is_given_again_as_a_copy(fdir: Path) -> None:
    recall, answer = remembered(fdir)
    got = recall.answer("s", KEY, str(fdir))
    assert got == answer
    got["clean"] = []  # the caller may change its copy ...
    answer["clean"] = ["changed"]  # ... and the remembering one its own
    assert recall.answer("s", KEY, str(fdir)) == {"clean": ["a.txt", "b.txt"]}


def test_nothing_remembered_for_another_session_or_key(fdir: Path) -> None:
    recall, _ = remembered(fdir)
    assert recall.answer("t", KEY, str(fdir)) is None
    assert recall.answer("s", ("records-sig", "other rules"), str(fdir)) is None


def test_a_file_written_since_is_noticed(fdir: Path) -> None:
    recall, _ = remembered(fdir)
    (fdir / "b.txt").write_text("B")  # same size, maybe the same mtime tick: ctime moves
    assert recall.answer("s", KEY, str(fdir)) is None


def test_a_chmod_since_is_noticed(fdir: Path) -> None:
    recall, _ = remembered(fdir)
    os.chmod(fdir / "a.txt", 0o600)
    assert recall.answer("s", KEY, str(fdir)) is None


@pytest.mark.parametrize("change", ["create", "remove", "rename"])
def test_a_name_added_or_gone_is_noticed(fdir: Path, change: str) -> None:
    recall, _ = remembered(fdir)
    if change == "create":
        (fdir / "c.txt").write_text("c")
    elif change == "remove":
        (fdir / "a.txt").unlink()
    else:
        os.rename(fdir / "a.txt", fdir / "z.txt")
    assert recall.answer("s", KEY, str(fdir)) is None


def test_a_folder_gone_or_replaced_by_a_link_is_noticed(fdir: Path, tmp_path: Path) -> None:
    recall, _ = remembered(fdir)
    os.rename(fdir, tmp_path / "moved")
    assert recall.answer("s", KEY, str(fdir)) is None
    os.symlink(tmp_path / "moved", fdir)  # the same folder, its stats unchanged, via a link
    assert recall.answer("s", KEY, str(fdir)) is None


def test_another_folder_with_the_same_names_is_noticed(fdir: Path, tmp_path: Path) -> None:
    recall, _ = remembered(fdir)
    other = tmp_path / "other"
    other.mkdir()
    for name in ("a.txt", "b.txt"):
        (other / name).write_text(name[0])
    assert recall.answer("s", KEY, str(other)) is None


def test_forget(fdir: Path) -> None:
    recall, _ = remembered(fdir)
    recall.forget("s")
    assert recall.answer("s", KEY, str(fdir)) is None
    recall.forget("never seen")


def test_a_scan_within_the_racy_window_is_not_remembered(fdir: Path) -> None:
    """A change in the same tick as the scan could leave every stat as it was."""
    recall = Recall()
    dst, kept = scan(fdir)
    newest = max(
        [
            dst.st_ctime_ns,
            dst.st_mtime_ns,
            *(e.stat(follow_symlinks=False).st_ctime_ns for e in kept),
        ]
    )
    recall.remember("s", KEY, newest + RACY_NS, dst, kept, {"clean": []})
    assert recall.answer("s", KEY, str(fdir)) is None
    recall.remember("s", KEY, newest + RACY_NS + 1, dst, kept, {"clean": []})
    assert recall.answer("s", KEY, str(fdir)) == {"clean": []}


def test_the_newest_file_decides_the_racy_window(fdir: Path) -> None:
    recall = Recall()
    start = settled(fdir)
    (fdir / "b.txt").write_text("late")  # the folder does not change: only b.txt's ctime
    dst, kept = scan(fdir)
    assert kept[1].name == "b.txt"
    recall.remember("s", KEY, start, dst, kept, {"clean": []})
    assert recall.answer("s", KEY, str(fdir)) is None


def test_a_folder_with_a_future_mtime_is_not_remembered(fdir: Path) -> None:
    start = settled(fdir)
    future = time.time_ns() + 3600 * 10**9
    os.utime(fdir, ns=(future, future))
    dst, kept = scan(fdir)
    recall = Recall()
    recall.remember("s", KEY, start + 2 * RACY_NS, dst, kept, {"clean": []})
    assert recall.answer("s", KEY, str(fdir)) is None


def test_the_last_64_sessions_are_kept(tmp_path: Path) -> None:
    dirs = []
    for i in range(65):
        d = tmp_path / f"s{i}"
        d.mkdir()
        (d / "a.txt").write_text(str(i))
        dirs.append(d)
    start = max(settled(d) for d in dirs)
    recall = Recall()
    for i, d in enumerate(dirs):
        dst, kept = scan(d)
        recall.remember(f"s{i}", KEY, start, dst, kept, {"n": i})
    assert recall.answer("s0", KEY, str(dirs[0])) is None
    assert [recall.answer(f"s{i}", KEY, str(dirs[i])) for i in range(1, 65)] == [
        {"n": i} for i in range(1, 65)
    ]


def test_a_link_to_the_folder_is_not_followed(fdir: Path, tmp_path: Path) -> None:
    """Asked through another path that links to the same folder (stats all unchanged), no
    answer: a link where files/ should be is never followed."""
    recall, _ = remembered(fdir)
    os.symlink(fdir, tmp_path / "alias")
    assert recall.answer("s", KEY, str(fdir)) is not None
    assert recall.answer("s", KEY, str(tmp_path / "alias")) is None


def test_links_in_the_folder_count_as_themselves(fdir: Path, tmp_path: Path) -> None:
    """A link under files/ is no artifact: its own ctime is what the scan saw. A dangling one
    does not break remembering, and a change to what a link points at changes no answer."""
    (tmp_path / "target.txt").write_text("t")
    os.symlink(tmp_path / "target.txt", fdir / "link.txt")
    os.symlink(tmp_path / "nowhere", fdir / "dangling.txt")
    recall, answer = remembered(fdir)
    assert recall.answer("s", KEY, str(fdir)) == answer
    (tmp_path / "target.txt").write_text("changed")
    assert recall.answer("s", KEY, str(fdir)) == answer
