"""Record lines: one YAML flow mapping per line that both our parser and ruamel.yaml read alike."""

from __future__ import annotations

import sys

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from spellfs import ManifestError, UsageError
from spellfs.store.records import RecordError, RecordLog, encode_record, parse_records
from spellfs.store import FsStorage, MemoryStorage

assert issubclass(RecordError, ManifestError)

SAFE = YAML(typ="safe")

TRICKY = [
    "\x00",
    "\x07",
    "\x1b[31m",
    "\t",
    "\r",
    "\r\n",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffe",
    "😀",
    "e\u0301",
    "null",
    "~",
    "true",
    "no",
    "1e3",
    "0x10",
    "- x",
    "{a: b}",
    "#c",
    "'",
    '"',
    "\\",
    ": ",
    " lead",
    "trail ",
    "",
    "\u00a0",
    "\x9f",
    "\U0010fffd",
]

scalars = (
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
    | st.sampled_from(TRICKY)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(TRICKY), inner, max_size=4)
    ),
    max_leaves=12,
)
records = st.dictionaries(st.text(max_size=10) | st.sampled_from(TRICKY), values, max_size=6)


def _one(line: bytes) -> dict:
    got = list(parse_records(line, "artifacts.yaml"))
    assert len(got) == 1
    return got[0][1]


@settings(max_examples=300, deadline=None)
@given(rec=records)
def test_round_trip_through_our_parser_and_ruamel(rec: dict) -> None:
    line = encode_record(rec)
    assert line.startswith(b"- ") and line.endswith(b"\n")
    assert line.count(b"\n") == 1  # one record, one line: grep and merge=union rely on it
    assert _one(line) == rec
    loaded = SAFE.load(line.decode("utf-8"))
    assert loaded == [rec]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_survive_ruamel(text: str) -> None:
    rec = {"name": text, "tags": [text], text: {"nested": text}}
    line = encode_record(rec)
    assert SAFE.load(line.decode("utf-8")) == [rec]
    assert _one(line) == rec


def test_ints_and_floats_keep_their_kind() -> None:
    rec = {"i": 7, "big": 2**80, "neg": -3, "f": 5.0, "tiny": 5e-324, "huge": 1e300, "z": -0.0}
    for got in (_one(encode_record(rec)), SAFE.load(encode_record(rec).decode())[0]):
        assert got == rec
        for k in rec:
            assert type(got[k]) is type(rec[k]), k


def test_nan_and_infinity_are_refused() -> None:
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(UsageError):
            encode_record({"x": bad})


def test_many_records_with_line_numbers() -> None:
    data = b"".join(encode_record({"seq": i, "name": f"n{i}"}) for i in range(1, 6))
    got = list(parse_records(data, "f.yaml"))
    assert [n for n, _ in got] == [1, 2, 3, 4, 5]
    assert [r["seq"] for _, r in got] == [1, 2, 3, 4, 5]
    # offsets carry on from where the reader left off
    got = list(parse_records(data, "f.yaml", first_line=10))
    assert got[0][0] == 10


def test_partial_trailing_line_is_ignored() -> None:
    data = encode_record({"seq": 1, "name": "a"}) + b'- {"seq": 2, "name": "b'
    assert [r["seq"] for _, r in parse_records(data, "f")] == [1]
    # even when the partial line would parse on its own
    data = encode_record({"seq": 1, "name": "a"}) + b'- {"seq": 2, "name": "b"}'
    assert [r["seq"] for _, r in parse_records(data, "f")] == [1]


def test_hand_written_yaml_lines_and_comments_are_read() -> None:
    data = b"# a comment\n- {seq: 1, name: notes.md, tags: [a, b]}\n\n- seq: 2\n"
    got = list(parse_records(data, "f"))
    assert got[0] == (2, {"seq": 1, "name": "notes.md", "tags": ["a", "b"]})
    assert got[1] == (4, {"seq": 2})


@pytest.mark.parametrize(
    "garbage",
    [
        b"- {seq: 1, name: [unclosed\n",
        b"just text\n",
        b"- [1, 2]\n",
        b'- {"a": 1\n',
        b"- 5\n",
        b"\xff\xfe garbage\n",
        b"- {a: b}\n- {c: d}x: [\n",
    ],
)
def test_garbage_line_names_file_and_line(garbage: bytes) -> None:
    data = (
        encode_record({"seq": 1, "name": "ok"}) + encode_record({"seq": 2, "name": "ok"}) + garbage
    )
    with pytest.raises(ManifestError) as exc:  # RecordError, or the YAML loader's ManifestError
        list(parse_records(data, "sessions/s-1234abcd/artifacts.yaml"))
    msg = str(exc.value)
    assert msg.startswith("sessions/s-1234abcd/artifacts.yaml:")
    line = int(msg.split(":")[1])
    assert line >= 3, msg


@pytest.mark.parametrize(
    "data, message",
    [
        (b"- {a: [}\n", "f.yaml:7: invalid YAML: did not find expected node content"),
        (b'- {"a": 1} junk\n', "f.yaml:7: invalid YAML: did not find expected '-' indicator"),
        (b"- [1, 2]\n", "f.yaml:7: not a record (expected `- {key: value, ...}`)"),
        (b"a: 1\n", "f.yaml:7: not a record (expected `- {key: value, ...}`)"),
        (b"- {a: 1}\n- 3\n", "f.yaml:8: not a record (expected `- {key: value, ...}`)"),
        (b"[{a: 1}, {a: 2}]\n", "f.yaml:7: not a record (expected `- {key: value, ...}`)"),
        (b"\xff\xfe\n", "f.yaml:7: not UTF-8"),
    ],
)
def test_a_bad_record_line_is_named_exactly(data: bytes, message: str) -> None:
    with pytest.raises(RecordError) as info:
        list(parse_records(data, "f.yaml", 7))
    assert str(info.value) == message


def test_a_value_json_cannot_hold_is_refused_by_name() -> None:
    with pytest.raises(UsageError) as info:
        encode_record({"x": float("nan")})
    assert (
        str(info.value)
        == "value cannot be stored: Out of range float values are not JSON compliant"
    )


def test_a_value_holding_itself_is_refused_by_name_and_encoding_goes_on() -> None:
    """A value holding itself is one error naming the problem, however high the program set its
    recursion limit (followed, it would overflow the C stack); the next record encodes as ever
    (a value met twice is no loop)."""
    looped: dict = {"a": 1}
    looped["self"] = looped
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        for _ in range(2):  # (the second time through an encoder made after the failure)
            with pytest.raises(UsageError, match="^value cannot be stored: Circular reference"):
                encode_record({"custom": looped})
    finally:
        sys.setrecursionlimit(limit)
    shared = {"k": "v"}
    assert encode_record({"a": shared, "b": [shared, "\u2028"]}) == (
        b'- {"a": {"k": "v"}, "b": [{"k": "v"}, "\\u2028"]}\n'
    )


def test_a_log_rewritten_to_the_same_size_and_inode_is_read_again(tmp_path) -> None:
    """A long-lived reader (a script, `spell ui`, the watcher) keeps a record file's
    (inode, offset). `git checkout` of a branch whose artifacts.yaml differs unlinks the old
    file and creates the new one, and ext4 hands it the same inode: with the same size the
    reader kept the other branch's records; with a longer file it parsed from a stale offset."""
    from spellfs.store.records import RecordLog
    from spellfs.store.storage import FsStorage

    class Log(RecordLog):
        def apply(self, rec):
            self.records.append(rec)

    f = tmp_path / "log.yaml"
    line = lambda h, s: encode_record({"seq": s, "name": "n.md", "hash": h})  # noqa: E731
    f.write_bytes(line("a" * 64, 1))
    log = Log(FsStorage(tmp_path), "log.yaml")
    assert [r["hash"] for r in log.refresh().records] == ["a" * 64]
    with open(f, "r+b") as out:  # same inode, same size, other content (a branch switch)
        out.write(line("b" * 64, 1))
    assert [r["hash"] for r in log.refresh().records] == ["b" * 64]
    with open(f, "r+b") as out:  # same inode, longer: the prefix is not what was read
        out.write(line("c" * 64, 1) + line("d" * 64, 2))
    assert [r["hash"] for r in log.refresh().records] == ["c" * 64, "d" * 64]
    with open(f, "ab") as out:  # a plain append is still read from where the reader stopped
        out.write(line("e" * 64, 3))
    assert [r["hash"] for r in log.refresh().records] == ["c" * 64, "d" * 64, "e" * 64]


def test_a_branch_switch_under_a_long_lived_process_shows_the_branchs_records(
    tmp_path, spell
) -> None:
    """Two branches each store notes.md once more (same length, so artifacts.yaml keeps its
    size); a process open across `git checkout` answers for the branch checked out."""
    import subprocess

    from spellfs import Workspace

    root = tmp_path / "ws"
    assert spell("init", "--git", str(root)).returncode == 0
    git = ["git", "-C", str(root)]
    sid = spell("-w", str(root), "new", "s").stdout.decode().strip()
    (tmp_path / "notes.md").write_text("base\n")
    spell("-w", str(root), "add", sid, str(tmp_path / "notes.md"))
    spell("-w", str(root), "commit", "-m", "base")
    subprocess.run([*git, "branch", "-M", "main"], check=True)
    for branch, text in (("b1", "AAAA\n"), ("b2", "BBBB\n")):
        subprocess.run([*git, "checkout", "-q", "-b", branch, "main"], check=True)
        (tmp_path / "notes.md").write_text(text)
        spell("-w", str(root), "add", sid, str(tmp_path / "notes.md"))
        spell("-w", str(root), "commit", "-m", branch)
    subprocess.run([*git, "checkout", "-q", "b1"], check=True)
    with Workspace.open(root) as ws:
        assert ws.artifacts.get(sid, "notes.md")["content"] == b"AAAA\n"
        subprocess.run([*git, "checkout", "-q", "b2"], check=True)
        assert ws.artifacts.get(sid, "notes.md")["content"] == b"BBBB\n"
        [d] = (root / "sessions").iterdir()
        assert ws.worktree.scan(d.name).clean  # b2's copy is b2's record, not a hand edit


# -- RecordLog: reading only what was appended (found by mutation testing) -----------------


class _Log(RecordLog):
    def apply(self, rec: dict) -> None:
        self.records.append(rec)


@pytest.fixture(params=["fs", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "memory":
        return MemoryStorage()
    (tmp_path / "sessions" / "s").mkdir(parents=True)
    return FsStorage(tmp_path)


REL = "sessions/s/artifacts.yaml"


def test_a_log_reads_what_others_appended_and_what_it_appended_itself(storage) -> None:
    log = _Log(storage, REL).refresh()
    assert log.records == []
    storage.append(REL, encode_record({"seq": 1}))
    assert [r["seq"] for r in log.refresh().records] == [1]
    # our own append, right after what we have read: taken without reading the file again
    line = encode_record({"seq": 2})
    log.note_append(storage.append(REL, line), line, [{"seq": 2}])
    assert [r["seq"] for r in log.records] == [1, 2]
    # another writer appended first: ours is not right after what we read, so both are read
    storage.append(REL, encode_record({"seq": 3}))
    line = encode_record({"seq": 4})
    log.note_append(storage.append(REL, line), line, [{"seq": 4}])
    assert [r["seq"] for r in log.records] == [1, 2, 3, 4]
    assert [r["seq"] for r in log.refresh().records] == [1, 2, 3, 4]


def test_a_line_appended_by_another_writer_right_after_ours_is_read(storage) -> None:
    """After our own append the log trusts the file without reading it only when the file holds
    nothing else: a line someone appended in the same moment is read at the next refresh."""
    log = _Log(storage, REL).refresh()
    line = encode_record({"seq": 1})
    at = storage.append(REL, line)
    storage.append(REL, encode_record({"seq": 2}))  # (a writer that takes no lock: git, a hand)
    log.note_append(at, line, [{"seq": 1}])
    assert [r["seq"] for r in log.refresh().records] == [1, 2]


def test_line_numbers_count_every_line_appended(storage) -> None:
    log = _Log(storage, REL)
    storage.append(REL, encode_record({"seq": 1}) + b"# a comment\n")
    log.refresh()
    lines = encode_record({"seq": 2}) + encode_record({"seq": 3})
    log.note_append(storage.append(REL, lines), lines, [{"seq": 2}, {"seq": 3}])
    storage.append(REL, b"- [not, a, record]\n")
    with pytest.raises(RecordError) as info:
        log.refresh()
    assert str(info.value) == f"{REL}:5: not a record (expected `- {{key: value, ...}}`)"


def test_an_unfinished_line_waits_for_its_newline(tmp_path: Path) -> None:
    storage = FsStorage(tmp_path)
    (tmp_path / "sessions" / "s").mkdir(parents=True)
    log = _Log(storage, REL)
    whole = encode_record({"seq": 1, "name": "half"})
    (tmp_path / REL).write_bytes(whole[:10])
    assert log.refresh().records == []
    with open(tmp_path / REL, "ab") as f:
        f.write(whole[10:])
    assert log.refresh().records == [{"seq": 1, "name": "half"}]


def test_a_replaced_or_shortened_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    storage = FsStorage(tmp_path)
    (tmp_path / "sessions" / "s").mkdir(parents=True)
    log = _Log(storage, REL)
    storage.write(REL, encode_record({"seq": 1}) + encode_record({"seq": 2}))
    assert [r["seq"] for r in log.refresh().records] == [1, 2]
    storage.write(REL, encode_record({"seq": 7}) + encode_record({"seq": 8}))  # a new inode
    assert [r["seq"] for r in log.refresh().records] == [7, 8]
    with open(tmp_path / REL, "r+b") as f:  # the same inode, shortened (a repair by hand)
        f.truncate(len(encode_record({"seq": 7})))
    assert [r["seq"] for r in log.refresh().records] == [7]
    (tmp_path / REL).unlink()
    assert log.refresh().records == []
    storage.append(REL, encode_record({"seq": 9}))
    assert [r["seq"] for r in log.refresh().records] == [9]


def _nested(levels: int, kind: str) -> bytes:
    """A record line whose value nests ``levels`` deep in all (the record mapping counts)."""
    inner = levels - 1
    body = "[" * inner + "]" * inner if kind == "lists" else '{"a": ' * inner + "1" + "}" * inner
    return f'- {{"v": {body}}}\n'.encode()


@pytest.mark.parametrize("kind", ["lists", "mappings"])
def test_a_record_nested_deeper_than_100_is_refused_and_100_is_read(kind: str) -> None:
    [(line, rec)] = list(parse_records(_nested(100, kind), "f.yaml", 7))
    assert line == 7 and isinstance(rec["v"], list if kind == "lists" else dict)
    with pytest.raises(RecordError) as info:
        list(parse_records(_nested(101, kind), "f.yaml", 7))
    assert str(info.value) == "f.yaml:7: nested deeper than 100 levels (refused)"


def test_nesting_too_deep_for_the_json_parser_is_the_same_one_line_error() -> None:
    line = b'- {"v": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    with pytest.raises(RecordError) as info:
        list(parse_records(encode_record({"seq": 1}) + line, "f.yaml", 7))
    assert str(info.value) == "f.yaml:8: nested deeper than 100 levels (refused)"


def test_many_brackets_side_by_side_are_not_depth() -> None:
    wide = {"lists": [[] for _ in range(150)], "maps": [{} for _ in range(150)]}
    assert _one(encode_record(wide)) == wide
    # exactly 100 deep with more than 100 brackets in the line: measured, and read
    line = _nested(100, "lists")[:-2] + b', "w": ' + encode_record(wide)[2:-1] + b"}\n"
    assert _one(line)["w"] == wide


def test_after_our_own_append_a_line_someone_else_appended_at_once_is_read(storage) -> None:
    """The log trusts the file after our append only when it holds exactly what we read and
    wrote: the same file (inode) AND the size we expect. Here the file is known (read once)
    and another writer's line lands right after ours."""
    storage.append(REL, encode_record({"seq": 1}))
    log = _Log(storage, REL).refresh()
    line = encode_record({"seq": 2})
    at = storage.append(REL, line)
    storage.append(REL, encode_record({"seq": 3}))  # a writer that takes no lock
    log.note_append(at, line, [{"seq": 2}])
    assert [r["seq"] for r in log.refresh().records] == [1, 2, 3]


def test_a_rewrite_after_our_own_append_is_noticed(tmp_path: Path) -> None:
    """What we appended ourselves counts as read: a later rewrite of the file in place (same
    inode, other bytes, longer: a branch switch) is told from an append and read again."""
    storage = FsStorage(tmp_path)
    (tmp_path / "sessions" / "s").mkdir(parents=True)
    storage.append(REL, encode_record({"seq": 1, "name": "ours"}))
    log = _Log(storage, REL).refresh()
    line = encode_record({"seq": 2, "name": "ours too"})
    log.note_append(storage.append(REL, line), line, [{"seq": 2, "name": "ours too"}])
    theirs = encode_record({"seq": 1, "name": "theirs"}) + encode_record({"seq": 2, "name": "b"})
    with open(tmp_path / REL, "r+b") as out:
        out.write(theirs + encode_record({"seq": 3, "name": "c"}))
    assert [r["name"] for r in log.refresh().records] == ["theirs", "b", "c"]
