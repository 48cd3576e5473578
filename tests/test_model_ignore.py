""".spellignore and what ``spell add`` collects from its arguments (files and folders)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from spellfs import UsageError, Workspace
from spellfs.model.ignore import Ignore, collect_files


def write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_without_a_spellignore_nothing_is_ignored(ws) -> None:
    (ws.root / ".spellignore").unlink()  # the default one of a new workspace
    ignore = Ignore(ws)
    assert not ignore.matches("a.txt")
    assert not ignore.matches("build/x.o")


def test_patterns_are_gitignore_syntax_and_follow_edits(ws) -> None:
    ignore = Ignore(ws)
    write(ws.root / ".spellignore", "*.log\nbuild/\n!keep.log\n/top.txt\n")
    assert ignore.matches("a.log")
    assert ignore.matches("sub/a.log")
    assert not ignore.matches("keep.log")
    assert ignore.matches("build/x.o")
    assert ignore.matches("top.txt")
    assert not ignore.matches("sub/top.txt")
    assert not ignore.matches("a.txt")
    write(ws.root / ".spellignore", "*.txt\n")
    assert ignore.matches("a.txt") and not ignore.matches("a.log")
    (ws.root / ".spellignore").unlink()
    assert not ignore.matches("a.txt")


def test_a_spellignore_that_is_not_utf8_still_applies(ws) -> None:
    (ws.root / ".spellignore").write_bytes(b"caf\xe9.txt\n*.log\n")
    assert Ignore(ws).matches("x.log")


def test_in_a_memory_workspace_nothing_is_ignored_until_written() -> None:
    with Workspace.in_memory() as ws:
        ignore = Ignore(ws)
        assert not ignore.matches("a.log")
        assert not ignore.matches_path(Path("/somewhere/a.log"))
        ws.storage.write(".spellignore", b"*.log\n")
        assert ignore.matches("a.log")
        assert ignore.matches_path(Path("/somewhere/a.log"))  # by its name
        assert not ignore.matches_path(Path("/somewhere/a.txt"))


def test_paths_inside_the_workspace_match_relative_to_its_root(ws, monkeypatch) -> None:
    write(ws.root / ".spellignore", "/top.txt\nbuild/\n")
    ignore = Ignore(ws)
    assert ignore.matches_path(ws.root / "top.txt")
    assert not ignore.matches_path(ws.root / "sub" / "top.txt")
    assert ignore.matches_path(ws.root / "build" / "x.o")
    monkeypatch.chdir(ws.root / "..")
    assert ignore.matches_path(Path("ws/top.txt"))  # relative to the current folder
    assert not ignore.matches_path(Path("ws/sub/top.txt"))


def test_paths_outside_the_workspace_match_by_name(ws, tmp_path) -> None:
    write(ws.root / ".spellignore", "/top.txt\n*.log\n")
    ignore = Ignore(ws)
    assert ignore.matches_path(tmp_path / "elsewhere" / "a.log")
    assert ignore.matches_path(tmp_path / "elsewhere" / "top.txt")
    assert not ignore.matches_path(tmp_path / "elsewhere" / "a.txt")


def test_files_named_are_taken_in_order_unless_ignored(ws) -> None:
    write(ws.root / ".spellignore", "*.log\n")
    b, a, log = (write(ws.root / n) for n in ("b.txt", "a.txt", "c.log"))
    chosen, skipped = collect_files(ws, ws.ignore, [str(b), str(log), str(a)])
    assert chosen == [str(b), str(a)]
    assert skipped == [(str(log), "in .spellignore")]


def test_a_folder_stands_for_its_files_in_name_order(ws) -> None:
    top = ws.root / "data"
    for name in ("b.txt", "a.txt", "sub/z.txt", "sub/deeper/y.txt", "aa/c.txt"):
        write(top / name)
    chosen, skipped = collect_files(ws, ws.ignore, [str(top)])
    expected = ["a.txt", "b.txt", "aa/c.txt", "sub/z.txt", "sub/deeper/y.txt"]
    assert chosen == [str(top / n) for n in expected]
    assert skipped == []


def test_hidden_entries_and_links_are_skipped_with_why(ws, tmp_path) -> None:
    top = ws.root / "data"
    write(top / "a.txt")
    write(top / ".hidden.txt")
    write(top / ".git" / "config")
    write(top / ".cache" / "b.txt")
    write(top / "sub" / "c.txt")  # after the hidden folders in name order
    write(top / "z.txt")  # after the link in name order
    write(tmp_path / "target.txt")
    os.symlink(tmp_path / "target.txt", top / "link.txt")
    os.symlink(tmp_path, top / "linkdir")
    chosen, skipped = collect_files(ws, ws.ignore, [str(top)])
    assert chosen == [str(top / "a.txt"), str(top / "z.txt"), str(top / "sub" / "c.txt")]
    assert skipped == [  # (a folder's folders are looked at before its files)
        (str(top / "linkdir"), "a link: add what it points at by name"),
        (str(top / ".hidden.txt"), "hidden: artifact names may not start with '.'"),
        (str(top / "link.txt"), "a link: add what it points at by name"),
    ]


def test_the_workspace_own_folders_are_never_entered(ws) -> None:
    before, _ = collect_files(ws, ws.ignore, [str(ws.root)])  # spell.yaml, templates/...
    write(ws.root / "a.txt")
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "x.txt", b"x")
    assert (ws.root / "sessions").is_dir() and (ws.root / ".spell").is_dir()
    chosen, skipped = collect_files(ws, ws.ignore, [str(ws.root)])
    assert [p for p in chosen if p not in before] == [str(ws.root / "a.txt")]
    assert not any("/sessions/" in p or "/.spell/" in p for p in chosen)
    assert skipped == [
        (str(ws.root / ".spellignore"), "hidden: artifact names may not start with '.'")
    ]


def test_the_workspace_folders_are_known_through_a_link(ws, tmp_path) -> None:
    """Walking the workspace through another path to it still skips sessions/ and .spell/."""
    sid = ws.sessions.create(name="s")
    ws.artifacts.store(sid, "user_input", "x.txt", b"x")
    os.symlink(ws.root, tmp_path / "alias")
    chosen, _ = collect_files(ws, ws.ignore, [str(tmp_path / "alias") + "/"])
    assert chosen and not any("/sessions/" in p or "/.spell/" in p for p in chosen)


def test_ignored_folders_are_not_entered_and_files_are_matched_by_their_workspace_path(ws) -> None:
    write(ws.root / ".spellignore", "data/raw/\ndata/*.tmp\nbuild/\n*.o\n")
    top = ws.root / "data"
    for name in ("a.txt", "x.tmp", "raw/big.bin", "sub/x.tmp", "sub/y.o", "build/b.txt"):
        write(top / name)
    chosen, skipped = collect_files(ws, ws.ignore, [str(top)])
    assert chosen == [str(top / "a.txt"), str(top / "sub" / "x.tmp")]
    assert skipped == [
        (str(top / "build") + "/", "in .spellignore"),
        (str(top / "raw") + "/", "in .spellignore"),
        (str(top / "x.tmp"), "in .spellignore"),
        (str(top / "sub" / "y.o"), "in .spellignore"),
    ]


def test_deeper_files_match_by_their_whole_workspace_path(ws) -> None:
    write(ws.root / ".spellignore", "/data/sub/y.txt\n/sub/z.txt\n")
    top = ws.root / "data"
    for name in ("sub/y.txt", "sub/z.txt"):
        write(top / name)
    chosen, skipped = collect_files(ws, ws.ignore, [str(top)])
    assert chosen == [str(top / "sub" / "z.txt")]
    assert skipped == [(str(top / "sub" / "y.txt"), "in .spellignore")]


def test_walking_the_root_matches_patterns_from_the_root(ws) -> None:
    before, _ = collect_files(ws, ws.ignore, [str(ws.root)])  # spell.yaml, templates/...
    write(ws.root / ".spellignore", "/a.txt\nraw/\n")
    for name in ("a.txt", "b.txt", "sub/a.txt", "raw/r.txt"):
        write(ws.root / name)
    chosen, skipped = collect_files(ws, ws.ignore, [str(ws.root)])
    assert [p for p in chosen if p not in before] == [
        str(ws.root / "b.txt"),
        str(ws.root / "sub" / "a.txt"),
    ]
    assert skipped == [
        (str(ws.root / "raw") + "/", "in .spellignore"),
        (str(ws.root / ".spellignore"), "hidden: artifact names may not start with '.'"),
        (str(ws.root / "a.txt"), "in .spellignore"),
    ]


def test_a_folder_outside_the_workspace_matches_patterns_from_itself(ws, tmp_path) -> None:
    write(ws.root / ".spellignore", "/a.txt\nraw/\n")
    top = tmp_path / "outside"
    for name in ("a.txt", "b.txt", "sub/a.txt", "raw/r.txt"):
        write(top / name)
    chosen, skipped = collect_files(ws, ws.ignore, [str(top)])
    assert chosen == [str(top / "b.txt"), str(top / "sub" / "a.txt")]
    assert skipped == [
        (str(top / "raw") + "/", "in .spellignore"),
        (str(top / "a.txt"), "in .spellignore"),
    ]


def test_a_memory_workspace_collects_a_folder_on_disk(tmp_path) -> None:
    top = tmp_path / "d"
    for name in ("b.txt", "a.log", "sub/c.txt", "top.txt", "sub/top.txt"):
        write(top / name)
    with Workspace.in_memory() as ws:
        ws.storage.write(".spellignore", b"*.log\n/top.txt\n")
        chosen, skipped = collect_files(ws, Ignore(ws), [str(top)])
    assert chosen == [str(top / "b.txt"), str(top / "sub" / "c.txt"), str(top / "sub" / "top.txt")]
    assert skipped == [
        (str(top / "a.log"), "in .spellignore"),
        (str(top / "top.txt"), "in .spellignore"),
    ]


def test_two_files_of_one_name_are_refused_naming_both(ws) -> None:
    top = ws.root / "data"
    write(top / "one" / "same.txt")
    write(top / "two" / "same.txt")
    with pytest.raises(UsageError) as err:
        collect_files(ws, ws.ignore, [str(top)])
    assert str(err.value) == (
        f"two files would both be artifact same.txt: {top / 'one' / 'same.txt'} and "
        f"{top / 'two' / 'same.txt'} (add one of them separately with --name)"
    )


def test_a_folder_is_entered_down_to_max_depth_and_a_deeper_tree_is_refused(ws) -> None:
    from spellfs.model.ignore import MAX_DEPTH

    top = ws.root / "data"
    deepest = top.joinpath(*["d"] * MAX_DEPTH)
    write(deepest / "leaf.txt")
    assert collect_files(ws, ws.ignore, [str(top)]) == ([str(deepest / "leaf.txt")], [])
    (deepest / "d").mkdir()  # one folder deeper: refused before anything is stored
    with pytest.raises(UsageError) as err:
        collect_files(ws, ws.ignore, [str(top)])
    too_deep = str(deepest / "d")
    assert len(too_deep) > 200  # named by its first 200 characters: the message stays one line
    assert str(err.value) == (
        f"too deeply nested: {too_deep[:200]}… is more than {MAX_DEPTH} folders below {top} "
        "(add the files of a shallower folder)"
    )


def test_a_fifo_is_skipped_with_why_and_the_files_after_it_are_still_taken(ws) -> None:
    """Reading a FIFO would block ``spell add`` for ever; it is named, and the walk goes on."""
    top = ws.root / "data"
    write(top / "a.txt")
    os.mkfifo(top / "m.pipe")
    write(top / "z.txt")  # after the FIFO in name order
    chosen, skipped = collect_files(ws, ws.ignore, [str(top)])
    assert chosen == [str(top / "a.txt"), str(top / "z.txt")]
    assert skipped == [(str(top / "m.pipe"), "not a regular file: a FIFO, socket or device")]


def test_a_file_whose_name_cannot_be_an_artifact_is_skipped_with_why(ws) -> None:
    """One such file stopped the whole add (red-team M15); hidden and linked ones were already
    skipped with a line each."""
    top = ws.root / "data"
    write(top / "f1.txt")
    write(top / "back\\slash.txt")
    write(top / "new\nline.txt")
    chosen, skipped = collect_files(ws, ws.ignore, [str(top)])
    assert chosen == [str(top / "f1.txt")]
    assert sorted(skipped) == [
        (str(top / "back\\slash.txt"), "not a valid artifact name: add it with --name"),
        (str(top / "new\nline.txt"), "not a valid artifact name: add it with --name"),
    ]


def _walk_as_before(ws, top: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The walk as it was written on ``os.walk`` (``islink`` and ``isfile`` a file), the oracle
    for the one on ``scandir``: the same files, in the same order, the same skips (and, since,
    a link to a folder said to be skipped, as a link to a file is)."""
    from spellfs.model.artifact_log import valid_name
    from spellfs.model.ignore import _relative_base

    spec, skipped, found = ws.ignore.spec, [], []
    base = _relative_base(ws, top)
    private = {os.path.realpath(os.path.join(ws.root, d)) for d in (".spell", "sessions")}
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        prefix = base if rel == "." else (f"{base}/{rel}" if base else rel)
        keep = []
        for d in sorted(dirnames):
            path = os.path.join(dirpath, d)
            if d.startswith(".") or os.path.realpath(path) in private:
                continue
            if spec.match_file(f"{prefix}/{d}/" if prefix else f"{d}/"):
                skipped.append((path + "/", "in .spellignore"))
                continue
            if os.path.islink(path):
                skipped.append((path, "a link: add what it points at by name"))
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            path = os.path.join(dirpath, f)
            if f.startswith("."):
                skipped.append((path, "hidden: artifact names may not start with '.'"))
            elif os.path.islink(path):
                skipped.append((path, "a link: add what it points at by name"))
            elif not os.path.isfile(path):
                skipped.append((path, "not a regular file: a FIFO, socket or device"))
            elif spec.match_file(f"{prefix}/{f}" if prefix else f):
                skipped.append((path, "in .spellignore"))
            elif not valid_name(f):
                skipped.append((path, "not a valid artifact name: add it with --name"))
            else:
                found.append(path)
    return found, skipped


@pytest.mark.parametrize("where", ["inside", "outside", "root"])
def test_the_walk_takes_and_skips_what_the_os_walk_one_did(ws, tmp_path, where: str) -> None:
    """Links to files, folders and nothing, a FIFO, hidden and ignored entries, bad names and
    several levels: the walk that reads each entry's kind from ``scandir`` agrees, entry for
    entry and in order, with the one that asked ``islink`` and ``isfile`` of every file."""
    write(ws.root / ".spellignore", "*.log\nbuild/\nlinked-ign/\n!keep.log\nsub/b/x.txt\n")
    top = {"inside": ws.root / "data", "outside": tmp_path / "out", "root": ws.root}[where]
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "t.txt")
    for i, name in enumerate(
        ["z.txt", "a.txt", "A.txt", "keep.log", "x.log", "build/o.txt", "sub/b/x.txt",
         "sub/b/y.txt", "sub/a.txt.d/q.txt", "sub/c/d/e/f.txt", ".h/in.txt", "bad\\name.txt",
         "new\nline.txt", "sp ace.txt", "ünï.txt", "deep/" * 6 + "leaf.txt"]
    ):  # fmt: skip
        write(top / name, str(i))
    os.symlink(elsewhere / "t.txt", top / "to-file.txt")
    os.symlink(elsewhere, top / "to-dir")
    os.symlink(elsewhere, top / "linked-ign")
    os.symlink(tmp_path / "nothing", top / "dangling.txt")
    os.symlink(elsewhere / "t.txt", top / "sub" / "c" / "inner-link")
    os.mkfifo(top / "sub" / "pipe")
    chosen, skipped = collect_files(ws, ws.ignore, [str(top)])
    assert (chosen, skipped) == _walk_as_before(ws, str(top))
    assert str(top / "sub" / "c" / "d" / "e" / "f.txt") in chosen
    assert (str(top / "to-dir"), "a link: add what it points at by name") in skipped
    assert (str(top / "linked-ign") + "/", "in .spellignore") in skipped  # (listed as os.walk did)


_PIECES = ["*", "**", "?", "a", "b", "x.y", ".", "/", "[ab]", "\\#", "~", "(?P<n>", "^$"]


@given(
    patterns=st.lists(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=5), max_size=6),
    paths=st.lists(
        st.lists(st.sampled_from(["a", "b", "x.y", ".a", "ab", "a~", "#b#", "c"]), min_size=1),
        min_size=1,
        max_size=8,
    ),
    dir=st.booleans(),
)
@example(patterns=[["*", "/"]], paths=[["a", "a"]], dir=False)  # no anchor: pathspec searches
def test_patterns_that_only_exclude_match_as_one_expression_what_pathspec_matches(
    patterns: list[list[str]], paths: list[list[str]], dir: bool
) -> None:
    """One regular expression for all the patterns (what a bulk add checks each path against)
    ignores exactly what pathspec ignores, trying them in turn."""
    import pathspec

    from spellfs.model.ignore import _AnyOf

    lines = ["".join(p) for p in patterns] + ["# a comment", ""]
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    one = _AnyOf.of(spec)
    assert one is not None
    for parts in paths:
        path = "/".join(parts) + ("/" if dir else "")
        for form in (path, "./" + path, "/" + path):
            assert one.match_file(form) == spec.match_file(form), (lines, form)


def test_a_pattern_that_re_includes_keeps_pathspec_order(ws) -> None:
    write(ws.root / ".spellignore", "*.log\n!keep.log\n")
    ignore = Ignore(ws)
    assert ignore.matches("a.log") and not ignore.matches("keep.log")
    from spellfs.model.ignore import _AnyOf

    assert not isinstance(ignore.spec, _AnyOf)
