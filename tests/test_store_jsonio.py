"""JSON read with a nesting limit: 100 levels read, 101 refused by name, never a traceback."""

from __future__ import annotations

import json
from collections import OrderedDict
from decimal import Decimal

import pytest

from spellfs.errors import IntegrityError, ManifestError
from spellfs.store.jsonio import MAX_DEPTH, depth_of, load_json


def nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_maps(depth: int) -> str:
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def test_the_limit_is_100_levels() -> None:
    assert MAX_DEPTH == 100


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("x", 0),
        (None, 0),
        ([], 1),
        ({}, 1),
        ([1, "a"], 1),
        ([[1]], 2),
        ({"a": [{"b": 1}]}, 3),
        ([[[]], []], 3),
        ([[], [[[]]], 1], 4),  # the deepest branch is not the first one
        ({"a": 1, "b": {"c": {"d": []}}}, 4),
    ],
)
def test_depth_of(value: object, depth: int) -> None:
    assert depth_of(value) == depth


def test_depth_of_stops_past_the_limit() -> None:
    value = json.loads(nested_lists(50))
    assert depth_of(value) == 50
    assert depth_of(value, limit=3) == 4
    assert depth_of(value, limit=49) == 50  # deeper than the limit: stops at the first past it


@pytest.mark.parametrize("make", [nested_lists, nested_maps])
@pytest.mark.parametrize("kind", [str, bytes, bytearray])
def test_100_levels_are_read_101_refused(make, kind) -> None:
    def encode(text: str):
        return text if kind is str else kind(text.encode())

    value = load_json(encode(make(MAX_DEPTH)), "f.json")
    assert depth_of(value) == MAX_DEPTH
    with pytest.raises(ManifestError) as err:
        load_json(encode(make(MAX_DEPTH + 1)), "sessions/s/f.json")
    assert str(err.value) == "sessions/s/f.json: nested deeper than 100 levels (refused)"


def test_past_json_own_recursion_limit_the_same_error() -> None:
    with pytest.raises(ManifestError) as err:
        load_json(nested_lists(100_000), "big.json")
    assert str(err.value) == "big.json: nested deeper than 100 levels (refused)"
    assert err.value.__cause__ is None and err.value.__suppress_context__


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_the_error_class_is_the_callers(depth: int) -> None:
    with pytest.raises(IntegrityError, match=r"^tree object ab: nested deeper than 100"):
        load_json(nested_lists(depth), "tree object ab", IntegrityError)


def test_exactly_100_deep_is_read_among_more_brackets() -> None:
    """Text with more than 100 brackets is measured; 100 levels is still within the limit."""
    text = "[[]," + nested_lists(MAX_DEPTH - 1) + "]"
    assert depth_of(load_json(text, "f")) == MAX_DEPTH
    with pytest.raises(ManifestError, match=r"^f: nested deeper than 100 levels"):
        load_json("[[]," + nested_lists(MAX_DEPTH) + "]", "f")


def test_many_brackets_side_by_side_are_not_depth() -> None:
    text = "[" + ",".join(["[]"] * 300) + "]"
    assert load_json(text, "f") == [[]] * 300
    assert load_json(json.dumps(["[" * 500]), "f") == ["[" * 500]


def test_keyword_arguments_reach_json_loads() -> None:
    got = load_json('{"b": 0.1, "a": 2}', "f", object_pairs_hook=OrderedDict, parse_float=Decimal)
    assert type(got) is OrderedDict
    assert got == OrderedDict([("b", Decimal("0.1")), ("a", 2)])
    assert got["b"] != 0.1  # the float would be


def test_other_decoding_errors_are_value_errors() -> None:
    with pytest.raises(json.JSONDecodeError):
        load_json("{", "f")
    with pytest.raises(ValueError):
        load_json(b"\xff", "f")
