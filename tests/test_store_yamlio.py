"""YAML in and out: errors named by file and line, the size, depth and alias limits, and
threads that each have their own ruamel.yaml instance."""

from __future__ import annotations

import threading

import pytest

from spellfs.errors import ManifestError
from spellfs.store import dump_yaml, load_yaml
from spellfs.store.yamlio import MAX_YAML_BYTES


def on_eight_threads(work) -> None:
    """``work(n)`` on eight threads at once, n = 0..7; returns when all have finished."""
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_eight_threads_dump_concurrently_without_errors() -> None:
    errors: list[BaseException] = []
    wrong: list[int] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        for i in range(300):
            doc = {
                "thread": n,
                "i": i,
                "items": [f"v{j}" for j in range(20)],
                "nested": {"a": {"b": i}},
            }
            try:
                if load_yaml(dump_yaml(doc), "t") != doc:
                    wrong.append(i)
            except BaseException as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)

    on_eight_threads(work)
    assert errors == [] and wrong == []


# -- the reader's promises, one by one (found by mutation testing: tools/mutation.py) -------


def _error(text: str | bytes, where: str = "notes.yaml", first_line: int = 1) -> str:
    with pytest.raises(ManifestError) as info:
        load_yaml(text, where, first_line)
    return str(info.value)


def test_a_syntax_error_names_the_file_and_the_line() -> None:
    assert _error("a: [1, 2\nb: 3\n") == (
        "notes.yaml:2: invalid YAML: did not find expected ',' or ']'"
    )
    # a document that starts further down a file (a record line) counts from there
    assert _error("a: [1, 2\nb: 3\n", "records.yaml", 10) == (
        "records.yaml:11: invalid YAML: did not find expected ',' or ']'"
    )
    assert _error("a: 1\na: 2\n") == (
        'notes.yaml:2: invalid YAML: found duplicate key "a" with value "2" (original value: "1")'
    )


def test_bytes_that_are_not_utf8_are_named_by_offset() -> None:
    assert _error(b"a: \xff\n") == "notes.yaml: not UTF-8 (byte 3)"
    assert load_yaml("a: 日本\n".encode(), "notes.yaml") == {"a": "日本"}


def test_no_python_objects_from_tags() -> None:
    assert _error("a: !!python/object:os.system {}\n") == (
        "notes.yaml:1: invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system'"
    )


def test_size_limit_is_16_mib_exactly() -> None:
    at_limit = "a: " + "x" * (MAX_YAML_BYTES - 3)
    assert MAX_YAML_BYTES == 16 * 1024 * 1024
    assert load_yaml(at_limit, "big.yaml") == {"a": "x" * (MAX_YAML_BYTES - 3)}
    over = f"big.yaml: file too large ({MAX_YAML_BYTES + 1} bytes, limit {MAX_YAML_BYTES})"
    assert _error(at_limit + "x", "big.yaml") == over
    assert _error((at_limit + "x").encode(), "big.yaml") == over


def test_timestamps_come_back_as_the_utc_strings_they_mean() -> None:
    doc = load_yaml(
        "t: 2024-01-02T03:04:05Z\n"
        "u: 2024-01-02T03:04:05.5+02:00\n"
        "n: 2024-01-02 03:04:05\n"
        "d: 2024-01-02\n",
        "notes.yaml",
    )
    assert doc == {
        "t": "2024-01-02T03:04:05Z",
        "u": "2024-01-02T01:04:05.500000Z",
        "n": "2024-01-02T03:04:05Z",  # no zone written: read as UTC
        "d": "2024-01-02",
    }


def test_timestamps_do_not_depend_on_the_local_time_zone(monkeypatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        doc = load_yaml("u: 2024-01-02T03:04:05+02:00\nn: 2024-01-02 03:04:05\n", "notes.yaml")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert doc == {"u": "2024-01-02T01:04:05Z", "n": "2024-01-02T03:04:05Z"}


def test_keys_other_than_strings_and_integers_become_strings() -> None:
    doc = load_yaml("7: seven\n1.5: b\nname: c\nnull: n\n2024-01-02: d\n", "notes.yaml")
    assert doc == {7: "seven", "1.5": "b", "name": "c", "null": "n", "2024-01-02": "d"}
    assert [type(k) for k in doc] == [int, str, str, str, str]
    with pytest.raises(
        ManifestError, match=r"notes\.yaml: refused: a mapping key must .* not tuple"
    ):
        load_yaml("? [1, 2]\n: x\n", "notes.yaml")


def _alias_chain(levels: int) -> str:
    """Each line nests the previous alias one list deeper: deep values, flat text."""
    lines = ["a0: &a0 x"]
    lines += [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_nesting_through_aliases_is_limited_to_100_levels() -> None:
    # the parser's event stream never nests deeper than 2 here: only expanding the aliases
    # shows the depth, and the 101st level is refused
    deep = load_yaml(_alias_chain(100), "state.yaml")["a99"]
    for _ in range(99):
        assert isinstance(deep, list) and len(deep) == 1
        deep = deep[0]
    assert deep == "x"
    assert _error(_alias_chain(101), "state.yaml") == "state.yaml: refused: nested too deeply"


@pytest.mark.parametrize(
    "text, line",
    [
        ("a: " + "[" * 101 + "]" * 101, 1),  # flow sequences
        ("a: " + "{b: " * 101 + "}" * 101, 1),  # flow mappings
        ("- " * 101 + "x\n", 1),  # block sequences on one line
        ("? " * 101 + "x\n", 1),  # complex keys
        ("".join("  " * i + "-\n" for i in range(101)) + "  " * 101 + "x\n", 101),
        ("".join("  " * i + "a:\n" for i in range(101)) + "  " * 101 + "x\n", 101),
        ('{"a":' * 101 + "1" + "}" * 101, 1),  # JSON-style: no space after the colons
    ],
    ids=["flow-seq", "flow-map", "block-seq", "complex-key", "line-per-level", "block-map", "json"],
)
def test_nesting_deeper_than_100_is_refused_before_loading(text: str, line: int) -> None:
    assert (
        _error(text, "state.yaml") == f"state.yaml:{line}: nested deeper than 100 levels (refused)"
    )
    assert _error(text, "state.yaml", 5) == (
        f"state.yaml:{line + 4}: nested deeper than 100 levels (refused)"
    )


def test_nesting_of_exactly_100_levels_loads() -> None:
    doc = load_yaml("- " * 100 + "x\n", "state.yaml")
    for _ in range(100):
        assert isinstance(doc, list) and len(doc) == 1
        doc = doc[0]
    assert doc == "x"


def _values(extra: int) -> str:
    """A document of 1,000,000 + extra - 997 values once its aliases are expanded: the root
    mapping (1), ``l`` (1 + 999), ``m`` (1 + 998 * 1000) and ``p`` (1 + extra)."""
    zeros = ", ".join(["0"] * 999)
    aliases = ", ".join(["*l"] * 998)
    return f"l: &l [{zeros}]\nm: [{aliases}]\np: [{', '.join(['0'] * extra)}]\n"


def test_a_million_values_load_and_one_more_is_refused() -> None:
    doc = load_yaml(_values(997), "state.yaml")
    assert len(doc["m"]) == 998 and len(doc["p"]) == 997
    assert _error(_values(998), "state.yaml") == (
        "state.yaml: refused: more than 1000000 values (aliases expanded)"
    )


def test_dump_is_block_yaml_in_insertion_order_with_raw_unicode_and_long_lines() -> None:
    long = "w " * 300
    out = dump_yaml({"b": 1, "a": ["日本", {"x": None}], "long": long})
    assert out == ("b: 1\na:\n- 日本\n- x: null\nlong: '" + long + "'\n").encode("utf-8")
    assert load_yaml(out, "state.yaml") == {"b": 1, "a": ["日本", {"x": None}], "long": long}


def test_errors_without_a_position_still_name_the_file() -> None:
    assert _error("a: \x07\n") == (
        "notes.yaml: invalid YAML: unacceptable character #x0007:"
        " control characters are not allowed"
    )
    assert _error("t: 2024-13-45\n") == "notes.yaml: invalid YAML: month must be in 1..12"


def test_depth_is_counted_again_after_a_collection_closes() -> None:
    # 60 levels, a sibling opened and closed, then 40 more inside: 101 with the root mapping
    deep = "a: " + "[" * 60 + "[], " + "[" * 40 + "1" + "]" * 40 + "]" * 60
    assert _error(deep, "state.yaml") == "state.yaml:1: nested deeper than 100 levels (refused)"
    fits = "a: " + "[" * 60 + "[], " + "[" * 39 + "1" + "]" * 39 + "]" * 60

    def depth(value) -> int:
        children = list(value.values()) if isinstance(value, dict) else value
        if not isinstance(value, (dict, list)):
            return 0
        return 1 + max((depth(c) for c in children), default=0)

    assert depth(load_yaml(fits, "state.yaml")) == 100


def test_a_round_trip_rewrite_keeps_every_character_of_a_string_it_writes() -> None:
    """The round-trip writer (session.yaml's rewrites, F19) wrote a NEL (U+0085) raw inside
    single quotes, where a reader takes it for a line break and folds it to a space: a
    description or metadata value came back changed. It is escaped (``\\N``) as the safe
    writer does."""
    from spellfs.store.yamlio import dump_yaml_rt, load_yaml_rt

    values = ["a\x85b", "\x85", "x\x85\x85", "a\u2028b", "tab\there", "日本", "line\nbreak"]
    doc = load_yaml_rt(b"# kept\nk: 1  # this too\n", "session.yaml")
    doc["k"] = values
    doc["a\x85key"] = "v"
    out = dump_yaml_rt(doc)
    assert load_yaml(out, "session.yaml") == {"k": values, "a\x85key": "v"}
    assert out.startswith(b"# kept\nk:")


def test_eight_threads_rewrite_with_comments_concurrently_without_errors() -> None:
    """The round-trip reader and writer (session.yaml's rewrites) keep one instance per thread
    too, each set up on the thread's first use as the safe writer is: block style, quotes and
    comments as loaded, raw Unicode, long lines whole, ``null`` written out."""
    from spellfs.store.yamlio import dump_yaml_rt, load_yaml_rt

    errors: list[BaseException] = []
    wrong: list[int] = []
    start = threading.Barrier(8)
    long = "w " * 300

    def work(n: int) -> None:
        start.wait()
        for i in range(50):
            try:
                doc = load_yaml_rt(f"# thread {n}\nthread: {n}\nname: 'q'  # kept\ni: 0\n", "t")
                doc["i"] = i
                doc["items"] = ["日本", None]
                doc["long"] = long
                doc["map"] = {"a": [1]}
                want = (
                    f"# thread {n}\nthread: {n}\nname: 'q'  # kept\ni: {i}\nitems:\n- 日本\n"
                    f"- null\nlong: '{long}'\nmap:\n  a:\n  - 1\n"
                )
                if dump_yaml_rt(doc) != want.encode():
                    wrong.append(i)
            except BaseException as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)

    on_eight_threads(work)
    assert errors == [] and wrong == []


def test_the_round_trip_reader_names_the_file_and_line_of_an_error() -> None:
    from spellfs.store.yamlio import load_yaml_rt

    with pytest.raises(ManifestError) as info:
        load_yaml_rt(b"# a comment\nname: x\nbad: [unclosed\n", "sessions/s/session.yaml")
    assert str(info.value).startswith("sessions/s/session.yaml:4: invalid YAML: ")
