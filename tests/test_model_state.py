"""State: JSON-able values in state.yaml files, workspace-wide or per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spellfs import ManifestError, SessionNotFound, UsageError, Workspace
from spellfs.store.yamlio import load_yaml


def test_set_get_delete_list(anyws: Workspace) -> None:
    st_ = anyws.state
    assert st_.get("missing") is None
    st_.set("config.model", "gpt")
    st_.set("config.temp", 0.5)
    st_.set("counter", 1)
    st_.set("nested", {"list": [1, "two", None, True, {"x": 1.5}]})
    assert st_.get("config.model") == "gpt"
    assert st_.get("nested") == {"list": [1, "two", None, True, {"x": 1.5}]}
    assert st_.list() == ["config.model", "config.temp", "counter", "nested"]
    assert st_.list("config.") == ["config.model", "config.temp"]
    assert st_.list("zzz") == []
    assert st_.delete("counter") is True
    assert st_.delete("counter") is False
    assert st_.get("counter") is None
    st_.set("config.temp", None)  # setting nil removes the key
    assert st_.list() == ["config.model", "nested"]


def test_types_are_kept(anyws: Workspace) -> None:
    values = {
        "int": 3,
        "big": 2**62,
        "neg": -7,
        "float": 3.0,
        "small": 1e-9,
        "bool": False,
        "str_int": "42",
        "str_bool": "true",
        "str_null": "null",
        "str_float": "1.5",
        "empty": "",
        "list": [],
        "dict": {},
        "yes": "yes",
        "octal": "0o17",
        "date": "2024-01-01",
        "time": "2024-01-01T00:00:00Z",
    }
    for k, v in values.items():
        anyws.state.set(k, v)
    for k, v in values.items():
        got = anyws.state.get(k)
        assert got == v and type(got) is type(v), (k, got)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=15),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    key=st.text(
        alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\0"),
        min_size=1,
        max_size=20,
    ).filter(lambda k: not k.startswith("session:")),
    value=json_values.filter(lambda v: v is not None),
)
def test_any_json_value_round_trips_through_the_file(tmp_path_factory, key: str, value) -> None:
    root = tmp_path_factory.mktemp("st")
    (root / "spell.yaml").write_text("")
    with Workspace.open(root) as ws:
        ws.state.set(key, value)
    with Workspace.open(root) as ws:  # read back from the file, not a cache
        assert ws.state.get(key) == value
        assert ws.state.list() == [key]
    load_yaml((root / "state.yaml").read_bytes(), "state.yaml")


def test_session_keys_live_in_the_session(ws: Workspace, root: Path) -> None:
    a = ws.sessions.create(name="a")
    b = ws.sessions.create(name="b")
    ws.state.set(f"session:{a}:step", 3)
    ws.state.set(f"session:{a[:6]}:note", "short prefix works")
    ws.state.set(f"session:{b}:step", 9)
    ws.state.set("global", True)
    a_file = root / ws.sessions.get(a)["path"] / "state.yaml"
    assert load_yaml(a_file.read_bytes(), "x") == {"step": 3, "note": "short prefix works"}
    assert load_yaml((root / "state.yaml").read_bytes(), "x") == {"global": True}
    assert ws.state.get(f"session:{a}:step") == 3
    assert ws.state.get(f"session:{b}:step") == 9
    assert ws.state.list(f"session:{a}:") == [f"session:{a}:note", f"session:{a}:step"]
    assert ws.state.list(f"session:{a}:st") == [f"session:{a}:step"]
    assert ws.state.list() == ["global"]
    assert ws.state.delete(f"session:{a}:step") is True
    assert load_yaml(a_file.read_bytes(), "x") == {"note": "short prefix works"}
    assert ws.state.session_values(b) == {"step": 9}


def test_session_keys_memory(anyws: Workspace) -> None:
    a = anyws.sessions.create(name="a")
    anyws.state.set(f"session:{a}:k", [1, 2])
    assert anyws.state.get(f"session:{a}:k") == [1, 2]
    assert anyws.storage.exists(anyws.sessions.get(a)["path"] + "/state.yaml")
    assert anyws.state.list() == []


def test_persisted_across_instances(root: Path) -> None:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="p")
        ws.state.set("count", 41)
        ws.state.set(f"session:{sid}:done", ["x"])
    with Workspace.open(root) as ws:
        assert ws.state.get("count") == 41 and isinstance(ws.state.get("count"), int)
        ws.state.set("count", ws.state.get("count") + 1)
        assert ws.state.get(f"session:{sid}:done") == ["x"]
    with Workspace.open(root) as ws:
        assert ws.state.get("count") == 42


def test_hand_edit_is_seen_and_bad_edit_is_an_error(ws: Workspace, root: Path) -> None:
    ws.state.set("k", 1)
    (root / "state.yaml").write_text("k: 2\nadded: by hand\n")
    assert ws.state.get("k") == 2 and ws.state.get("added") == "by hand"
    (root / "state.yaml").write_text("k: [unclosed\n")
    with pytest.raises(ManifestError, match="state.yaml"):
        ws.state.get("k")
    (root / "state.yaml").write_text("- a list\n")
    with pytest.raises(ManifestError, match="state.yaml:1"):
        ws.state.get("k")
    with pytest.raises(ManifestError):
        ws.state.set("k", 3)
    assert (root / "state.yaml").read_text() == "- a list\n"  # nothing lost


@pytest.mark.parametrize(
    "key", ["", None, 5, "a\0b", "x" * 1001, "session:", "session:abc", "session:abcd:"]
)
def test_bad_keys(anyws: Workspace, key) -> None:
    with pytest.raises(UsageError):
        anyws.state.set(key, 1)


def test_unknown_session_key(anyws: Workspace) -> None:
    with pytest.raises(SessionNotFound):
        anyws.state.set("session:ffffffff:k", 1)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), object(), {"x": {1, 2}}, b"\xff\xfe"]
)
def test_bad_values(anyws: Workspace, value) -> None:
    with pytest.raises(UsageError):
        anyws.state.set("k", value)
    assert anyws.state.get("k") is None
