"""Lua <-> Python values through the real globals: what goes in comes back out."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spellfs import Workspace
from spellfs.lua.runtime import Runtime
from spellfs.lua.values import to_lua, to_python

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
KEYS = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=10)
SCALARS = st.one_of(st.booleans(), INT64, FLOATS, TEXT)
# Empty lists are left out: Lua has one empty table, which comes back as {}.
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4), st.dictionaries(KEYS, inner, max_size=4)
    ),
    max_leaves=12,
)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def rt(ws: Workspace) -> Runtime:
    runtime = Runtime(ws)
    runtime.install()
    return runtime


def same(a, b) -> bool:
    """Equal, with integers and floats kept apart (1 is not 1.0 here)."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@SETTINGS
@given(value=VALUES)
def test_state_round_trip(rt: Runtime, value) -> None:
    got = rt.lua.execute(b"State.set('k', ...) return State.get('k')", to_lua(rt.lua, value))
    assert same(to_python(got), value)
    # and the types as Lua sees them
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        kind = rt.lua.execute(b"return math.type(State.get('k'))")
        assert kind == (b"integer" if isinstance(value, int) else b"float")


@SETTINGS
@given(
    content=st.binary(max_size=2048),
    custom=st.dictionaries(
        KEYS.filter(lambda k: k not in ("mime_type", "description", "tags", "custom")),
        VALUES,
        max_size=4,
    ),
)
def test_artifact_round_trip(rt: Runtime, content: bytes, custom: dict) -> None:
    sid = rt.lua.execute(b"S = S or Session.create({name = 'values'}) return S")
    got = rt.lua.execute(
        b"""local sid, content, meta = ...
        local id = Artifact.store(sid, "user_input", "blob", content, meta)
        return Artifact.get(sid, id)""",
        sid,
        content,
        to_lua(rt.lua, custom),
    )
    assert got[b"content"] == content
    assert got[b"metadata"][b"size"] == len(content)
    assert same(to_python(got[b"metadata"][b"custom"]), custom)
    again = rt.lua.execute(b"return Artifact.get(S, 'blob').content")
    assert again == content


@SETTINGS
@given(value=VALUES)
def test_json_round_trip(rt: Runtime, value) -> None:
    got = rt.lua.execute(b"return JSON.parse(JSON.stringify(...))", to_lua(rt.lua, value))
    assert same(to_python(got), value)


def test_specific_shapes_through_state_and_metadata(rt: Runtime) -> None:
    out = rt.lua.execute(b"""
    local v = {
      seq = {10, 20, 30}, map = {a = 1, b = 2}, empty = {}, nested = {{x = {1, {2, {3}}}}},
      big = math.maxinteger, small = math.mininteger, f = 5.0, third = 1 / 3, neg = -0.5,
      uni = "h\\u{e4}llo \\u{1F600} \\u{4E2D}", yes = true, no = false, sparse = {[1] = "a", [3] = "c"},
    }
    State.set("shapes", v)
    local g = State.get("shapes")
    local s = Session.create({name = "m", metadata = v})
    local m = Session.get(s).custom_metadata
    local a = Artifact.store(s, "user_input", "x", "x", v)
    local c = Artifact.get(s, a).metadata.custom
    local function check(t)
      return #t.seq, t.seq[3], t.map.b, next(t.empty) == nil, t.nested[1].x[2][2][1],
        t.big, math.type(t.big), t.small, math.type(t.f), tostring(t.f), t.third, t.neg, t.uni,
        t.yes, t.no, t.sparse["1"], t.sparse["3"]
    end
    return {check(g)}, {check(m)}, {check(c)}
    """)  # noqa: E501
    expected = [
        3,
        30,
        2,
        True,
        3,
        2**63 - 1,
        b"integer",
        -(2**63),
        b"float",
        b"5.0",
        1 / 3,
        -0.5,
        "hällo 😀 中".encode(),
        True,
        False,
        b"a",
        b"c",
    ]
    for result in out:
        assert list(result.values()) == expected


def test_integer_outside_int64_from_python_becomes_float(rt: Runtime) -> None:
    rt.ws.state.set("huge", 2**70)
    assert rt.lua.execute(b"return math.type(State.get('huge')), State.get('huge') == 2^70") == (
        b"float",
        True,
    )


def test_cyclic_and_too_deep_tables_are_errors(rt: Runtime) -> None:
    ok, message = rt.lua.execute(b"local t = {} t.self = t return pcall(State.set, 'c', t)")
    assert ok is False and b"cyclic" in message
    ok, message = rt.lua.execute(b"""local t = {} local c = t
        for i = 1, 200 do c.n = {} c = c.n end return pcall(State.set, 'd', t)""")
    assert ok is False and b"nested too deeply" in message


def test_strings_with_nul_and_invalid_utf8(rt: Runtime) -> None:
    assert rt.lua.execute(b"State.set('nul', 'a\\0b') return State.get('nul')") == b"a\x00b"
    ok, message = rt.lua.execute(b"return pcall(State.set, 'bin', '\\255')")
    assert ok is False and b"binary strings cannot be stored" in message
