"""Lua <-> Python conversion and the JSON global's text format."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lupa import lua54

from spellfs.errors import UsageError
from spellfs.lua.values import MAX_DEPTH, json_parse, json_stringify, to_lua, to_python

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | INT64 | FLOATS | st.text()
KEYS = st.text(min_size=1)


def _nested(scalars):
    # Non-empty lists only: an empty list comes back as {} (documented).
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, min_size=1, max_size=5)
            | st.dictionaries(KEYS, inner, min_size=1, max_size=5)
        ),
        max_leaves=20,
    )


# None inside a list leaves a hole and inside a dict drops the key, so round-trip
# values carry no None below the top level.
NESTED = _nested(st.booleans() | INT64 | FLOATS | st.text())


@pytest.fixture(scope="module")
def lua():
    return lua54.LuaRuntime(encoding=None, unpack_returned_tuples=True, register_eval=False)


def same(a, b):
    """Equal, with int/float kept apart (1 != 1.0 here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@settings(max_examples=300, deadline=None)
@given(value=st.none() | SCALARS | NESTED)
def test_python_lua_python_round_trip(lua, value):
    assert same(to_python(to_lua(lua, value)), value)


@settings(deadline=None)
@given(data=st.binary(max_size=300))
def test_bytes_pass_unchanged(lua, data):
    back = lua.eval("function(s) return s end")(to_lua(lua, data))
    assert back == data
    assert to_python(back, binary=True) == data


def test_every_byte_value_survives(lua):
    data = bytes(range(256)) * 4
    length, same_bytes = lua.eval("function(s) return #s, s end")(to_lua(lua, data))
    assert length == 1024 and same_bytes == data
    assert to_python(same_bytes) == data  # invalid UTF-8 stays bytes


@settings(deadline=None)
@given(text=st.text())
def test_str_becomes_utf8_lua_string(lua, text):
    length = lua.eval("function(s) return #s end")(to_lua(lua, text))
    assert length == len(text.encode("utf-8"))


@settings(deadline=None)
@given(number=INT64)
def test_ints_are_lua_integers(lua, number):
    kind, back = lua.eval("function(n) return math.type(n), n end")(to_lua(lua, number))
    assert kind == b"integer" and back == number and type(back) is int


@settings(deadline=None)
@given(number=FLOATS)
def test_floats_stay_floats(lua, number):
    kind, back = lua.eval("function(n) return math.type(n), n end")(to_lua(lua, number))
    assert kind == b"float" and back == number and type(back) is float


def test_integral_float_prints_as_float(lua):
    check = lua.eval("function(x) return math.type(x), tostring(x), tostring(10/2) end")
    assert check(to_lua(lua, 5.0)) == (b"float", b"5.0", b"5.0")
    assert to_python(lua.eval("10/2")) == 5.0 and type(to_python(lua.eval("10/2"))) is float
    assert type(to_python(lua.eval("10//2"))) is int


def test_int_beyond_int64_becomes_float(lua):
    kind = lua.eval("function(n) return math.type(n) end")(to_lua(lua, 2**64))
    assert kind == b"float"


def test_lists_are_sequences(lua):
    length = lua.eval("function(t) return #t, t[1], t[3] end")
    assert length(to_lua(lua, ["a", "b", "c"])) == (3, b"a", b"c")
    assert length(to_lua(lua, ("a", "b", "c"))) == (3, b"a", b"c")


def test_lua_tables_to_python(lua):
    assert to_python(lua.eval("{10, 20, 30}")) == [10, 20, 30]
    assert to_python(lua.eval("{}")) == {}
    assert to_python(lua.eval("{x = 1, y = {true, false}}")) == {"x": 1, "y": [True, False]}
    # Not a sequence: integer (and float) keys become their decimal text.
    assert to_python(lua.eval("{[1] = 'a', [3] = 'c'}")) == {"1": "a", "3": "c"}
    assert to_python(lua.eval("{1, 2, n = 2}")) == {"1": 1, "2": 2, "n": 2}
    assert to_python(lua.eval("{[1.5] = 'x'}")) == {"1.5": "x"}
    assert to_python(lua.eval("'\\xff\\xfe'")) == b"\xff\xfe"
    assert to_python(lua.eval("'abc'"), binary=True) == b"abc"


def test_sequence_built_out_of_order(lua):
    table = lua.eval("(function() local t = {} for i = 50, 1, -1 do t[i] = i end return t end)()")
    assert to_python(table) == list(range(1, 51))


@pytest.mark.parametrize(
    "code, word",
    [
        ("function() end", "function"),
        ("{f = print}", "function"),
        ("coroutine.create(function() end)", "function"),
        ("io.stdout", "userdata"),
        ("{[true] = 1}", "boolean key"),
        ("{[{}] = 1}", "table key"),
    ],
)
def test_unconvertible_lua_values(lua, code, word):
    with pytest.raises(UsageError, match=word):
        to_python(lua.eval(code))


def test_cycles_and_depth_are_refused(lua):
    cyclic = lua.eval("(function() local t = {} t.me = t return t end)()")
    with pytest.raises(UsageError, match="cyclic"):
        to_python(cyclic)
    deep = lua.eval(
        "(function() local t = {} for i = 1, %d do t = {t} end return t end)()" % (MAX_DEPTH + 5)
    )
    with pytest.raises(UsageError, match="nested too deeply"):
        to_python(deep)
    value: list = [1]
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(UsageError, match="nested too deeply"):
        to_lua(lua, value)
    python_cycle: list = []
    python_cycle.append(python_cycle)
    with pytest.raises(UsageError, match="nested too deeply"):
        to_lua(lua, python_cycle)


def test_shared_subtable_is_not_a_cycle(lua):
    shared = lua.eval("(function() local s = {1} return {a = s, b = s} end)()")
    assert to_python(shared) == {"a": [1], "b": [1]}


def test_unconvertible_python_values(lua):
    with pytest.raises(UsageError, match="set"):
        to_lua(lua, {1, 2})
    with pytest.raises(UsageError, match="key"):
        to_lua(lua, {None: 1})
    with pytest.raises(UsageError, match="Unicode"):
        to_lua(lua, "\ud800")


def test_lua_objects_pass_through(lua):
    fn = lua.eval("function() return 7 end")
    assert lua.eval("function(t) return t.f() end")(to_lua(lua, {"f": fn})) == 7


# -- JSON --------------------------------------------------------------------

JSONABLE = _nested(st.booleans() | INT64 | FLOATS | st.text())


@settings(max_examples=300, deadline=None)
@given(value=JSONABLE)
def test_json_round_trip_through_lua(lua, value):
    text = json_stringify(to_lua(lua, value))
    assert same(to_python(json_parse(lua, text)), value)
    # And again, from inside Lua: parse -> table -> stringify gives the same text.
    assert json_stringify(json_parse(lua, text)) == text


def test_json_shapes(lua):
    assert json_stringify(lua.eval("{}")) == "[]"
    assert json_stringify(lua.eval("{b = 1, a = {1, 2.5, 'x'}}")) == '{"a":[1,2.5,"x"],"b":1}'
    assert json_stringify(lua.eval("10/2")) == "5.0"
    assert json_stringify(lua.eval("{[2] = 'x'}")) == '{"2":"x"}'
    assert json_stringify(lua.eval("'é'")) == '"é"'
    assert json_stringify(None) == "null"


def test_json_parse_into_lua(lua):
    check = lua.eval("""function(t)
        return #t.list, math.type(t.list[1]), math.type(t.list[2]), tostring(t.list[2]),
               t.obj.k, t.none
    end""")
    parsed = json_parse(lua, '{"list": [1, 5.0, 3], "obj": {"k": "v"}, "none": null}')
    assert check(parsed) == (3, b"integer", b"float", b"5.0", b"v", None)
    assert json_parse(lua, b'"\xc3\xa9"') == "é".encode()
    big = lua.eval("function(n) return math.type(n) end")(json_parse(lua, str(2**70)))
    assert big == b"float"


@pytest.mark.parametrize("text", ["[1,", "{'a': 1}", "NaN", "[Infinity]", "1e999", "{} x", ""])
def test_json_parse_errors(lua, text):
    with pytest.raises(UsageError, match="JSON parse error"):
        json_parse(lua, text)


def test_json_parse_error_gives_position(lua):
    with pytest.raises(UsageError, match=r"line 2 column 3"):
        json_parse(lua, "[1,\n  ]")


def test_json_stringify_refuses(lua):
    for value in (math.nan, math.inf, [1.0, -math.inf]):
        with pytest.raises(UsageError, match="NaN"):
            json_stringify(to_lua(lua, value))
    with pytest.raises(UsageError, match="UTF-8"):
        json_stringify(lua.eval("'\\xff'"))
    with pytest.raises(UsageError, match="function"):
        json_stringify(lua.eval("{f = print}"))
