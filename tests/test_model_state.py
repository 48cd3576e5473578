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


def test_list_is_a_string_prefix_of_session_keys_too(anyws: Workspace) -> None:
    """``State.list("session:")`` and ``State.list("session:" .. id)`` (no colon after the id)
    find the keys of every session the prefix matches, as a string prefix would (red-team
    M16: both gave [])."""
    a = anyws.sessions.create(name="a")
    b = anyws.sessions.create(name="b")
    anyws.state.set(f"session:{a}:k", 1)
    anyws.state.set(f"session:{a}:byname", 2)
    anyws.state.set(f"session:{b}:k", 3)
    anyws.state.set("sessions-seen", 4)
    both = sorted([f"session:{a}:k", f"session:{a}:byname", f"session:{b}:k"])
    assert anyws.state.list("session:") == both
    assert anyws.state.list(f"session:{a}") == sorted([f"session:{a}:k", f"session:{a}:byname"])
    assert anyws.state.list(f"session:{b[:6]}") == [f"session:{b}:k"]
    assert anyws.state.list("session:zz") == []
    assert anyws.state.list("session") == ["sessions-seen"]  # (workspace keys only)
    assert anyws.state.list() == ["sessions-seen"]


def test_list_by_prefix_keeps_the_keys_of_a_session_whose_artifact_log_is_broken(
    root: Path,
) -> None:
    """A session's State lives in its state.yaml: a broken artifacts.yaml (which `spell ls`
    warns about) does not hide its keys from ``State.list("session:")``, whether or not a
    listing that read the records came first; a broken manifest does (no id to name them by)."""
    with Workspace.open(root) as ws:
        a = ws.sessions.create(name="a")
        b = ws.sessions.create(name="b")
        c = ws.sessions.create(name="c")
        for sid in (a, b, c):
            ws.state.set(f"session:{sid}:k", 1)
        dir_a, dir_c = ws.sessions.resolve(a), ws.sessions.resolve(c)
    (root / "sessions" / dir_a / "artifacts.yaml").write_text("- {not json\n")
    (root / "sessions" / dir_c / "session.yaml").write_text("id: [\n")
    want = sorted([f"session:{a}:k", f"session:{b}:k"])
    with Workspace.open(root) as ws:
        assert ws.state.list("session:") == want
        ws.sessions.list()  # reads every session's records, and finds a's broken
        assert ws.state.list("session:") == want
        assert ws.state.list(f"session:{a[:8]}") == [f"session:{a}:k"]
    with Workspace.open(root) as ws:  # another process, after that listing
        assert ws.state.list("session:") == want


def test_a_session_whose_manifest_is_broken_leaves_the_others_keys_listed(
    anyws: Workspace,
) -> None:
    """Its keys cannot be named (no id), the sessions after it still are (the memory backend
    lists folders in name order: the broken one comes first)."""
    a = anyws.sessions.create(name="a")
    b = anyws.sessions.create(name="b")
    anyws.state.set(f"session:{a}:k", 1)
    anyws.state.set(f"session:{b}:k", 2)
    anyws.storage.write(f"sessions/{anyws.sessions.resolve(a)}/session.yaml", b"id: [\n")
    assert anyws.state.list("session:") == [f"session:{b}:k"]


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


# -- the edges of keys, listings and the file (mutation run of model/state.py) -----------------


def test_key_length_limit_and_the_message(anyws: Workspace) -> None:
    anyws.state.set("k" * 1000, 1)  # the limit itself is allowed
    assert anyws.state.get("k" * 1000) == 1
    with pytest.raises(UsageError) as exc:
        anyws.state.set("x" * 1001, 1)
    assert str(exc.value) == f"invalid State key: {'x' * 60!r} (a non-empty string)"
    with pytest.raises(UsageError) as exc:
        anyws.state.set("session:abc", 1)
    assert str(exc.value) == (
        "invalid State key: 'session:abc' (session keys look like session:<id>:<name>)"
    )


def test_a_bad_value_names_its_key(anyws: Workspace) -> None:
    with pytest.raises(UsageError, match=r"^invalid State value for count: nan "):
        anyws.state.set("count", float("nan"))


def test_a_prefix_that_is_not_a_string_is_refused_naming_it(anyws: Workspace) -> None:
    """``State.list(5)`` from Lua: a one-line error naming the prefix, not an internal one."""
    anyws.state.set("k", 1)
    with pytest.raises(UsageError) as exc:
        anyws.state.list(5)
    assert str(exc.value) == "invalid State prefix: 5 (a string, or nothing for all keys)"
    assert anyws.state.list(None) == ["k"]  # nothing: every key


def test_bytes_keys_and_prefixes_are_text(anyws: Workspace) -> None:
    """Lua strings arrive as bytes; a key that is not UTF-8 is kept with replacement characters
    rather than refused."""
    anyws.state.set(b"from.lua", 1)
    anyws.state.set(b"bad\xff", 2)
    assert anyws.state.get("from.lua") == 1 and anyws.state.get("bad\ufffd") == 2
    assert anyws.state.list(b"from") == ["from.lua"]
    assert anyws.state.list(b"bad\xff") == ["bad\ufffd"]


def test_setting_nil_on_a_missing_key_is_a_no_op(anyws: Workspace) -> None:
    anyws.state.set("kept", 1)
    anyws.state.set("never-set", None)
    assert anyws.state.list() == ["kept"]


def test_removing_the_last_key_leaves_an_empty_mapping(ws: Workspace, root: Path) -> None:
    ws.state.set("only", 1)
    assert ws.state.delete("only") is True
    text = (root / "state.yaml").read_text()
    assert text.splitlines()[1:] == ["{}"] and text.startswith("# spellfs State values")
    assert load_yaml(text.encode(), "state.yaml") == {}
    with Workspace.open(root) as fresh:
        assert fresh.state.list() == [] and fresh.state.get("only") is None


def test_an_empty_state_file_holds_no_values(ws: Workspace, root: Path) -> None:
    (root / "state.yaml").write_text("# emptied by hand\n")
    assert ws.state.list() == [] and ws.state.get("k") is None
    ws.state.set("k", 1)
    assert load_yaml((root / "state.yaml").read_bytes(), "x") == {"k": 1}


def test_colons_in_names(anyws: Workspace) -> None:
    """Only the first two colons of a session key separate; the name may hold more. Workspace
    keys may hold colons too, and are never taken for session keys."""
    sid = anyws.sessions.create(name="s")
    anyws.state.set(f"session:{sid}:a:b:c", 1)
    anyws.state.set(f"session:{sid}:a:x", 2)
    anyws.state.set(f"session:{sid}:b", 3)
    assert anyws.state.session_values(sid) == {"a:b:c": 1, "a:x": 2, "b": 3}
    assert anyws.state.get(f"session:{sid}:a:b:c") == 1
    assert anyws.state.list(f"session:{sid}:a:") == [f"session:{sid}:a:b:c", f"session:{sid}:a:x"]
    assert anyws.state.list(f"session:{sid}:a:b") == [f"session:{sid}:a:b:c"]
    anyws.state.set("x:y:z", 4)
    anyws.state.set("x:y:other", 5)
    anyws.state.set("x:q", 6)
    assert anyws.state.list("x:y:") == ["x:y:other", "x:y:z"]
    assert anyws.state.list() == ["x:q", "x:y:other", "x:y:z"]


def test_replace_session_values_replaces_the_whole_file(ws: Workspace, root: Path) -> None:
    """What restoring a checkpoint does: the session's values become exactly the given ones."""
    sid = ws.sessions.create(name="s")
    other = ws.sessions.create(name="other")
    ws.state.set(f"session:{sid}:old", 1)
    ws.state.set(f"session:{other}:keep", 2)
    values = {"new": [1, 2]}
    ws.state.replace_session_values(sid[:8], values)
    values["new"].append(3)  # the caller's dict is not kept (a copy was written)
    path = root / ws.sessions.get(sid)["path"] / "state.yaml"
    assert load_yaml(path.read_bytes(), "x") == {"new": [1, 2]}
    assert ws.state.session_values(sid) == {"new": [1, 2]}
    assert ws.state.list(f"session:{sid}:") == [f"session:{sid}:new"]
    assert ws.state.session_values(other) == {"keep": 2}
    ws.state.replace_session_values(sid, {})
    assert ws.state.session_values(sid) == {} and load_yaml(path.read_bytes(), "x") == {}


@pytest.mark.parametrize("change", ["set", "delete", "replace"])
def test_a_change_waits_while_another_writer_holds_the_state_lock(root: Path, change: str) -> None:
    """Two writers (processes, or workspaces in threads) must not interleave their
    read-modify-write of a state file, or one loses the other's key: every change takes the
    one "state" lock. While another workspace holds it, the file stays as it was."""
    import threading

    with Workspace.open(root) as holder, Workspace.open(root) as writer:
        sid = holder.sessions.create(name="s")
        holder.state.set(f"session:{sid}:old", 1)
        path = root / holder.sessions.get(sid)["path"] / "state.yaml"
        before = path.read_bytes()
        act = {
            "set": lambda: writer.state.set(f"session:{sid}:new", 2),
            "delete": lambda: writer.state.delete(f"session:{sid}:old"),
            "replace": lambda: writer.state.replace_session_values(sid, {"new": 2}),
        }[change]
        with holder.storage.lock("state"):
            thread = threading.Thread(target=act)
            thread.start()
            thread.join(1.0)
            assert path.read_bytes() == before  # still waiting for the lock
        thread.join(30)
        assert not thread.is_alive()
        want = {"set": {"old": 1, "new": 2}, "delete": {}, "replace": {"new": 2}}[change]
        assert load_yaml(path.read_bytes(), "x") == want


def test_a_value_read_is_the_callers_copy(anyws: Workspace) -> None:
    """Changing a list or table that get returned changes nothing stored (the next get and a
    fresh process agree with the file)."""
    anyws.state.set("items", [1, {"x": 1}])
    sid = anyws.sessions.create(name="s")
    anyws.state.set(f"session:{sid}:t", {"k": [1]})
    got = anyws.state.get("items")
    got.append(2)
    got[1]["x"] = 9
    anyws.state.get(f"session:{sid}:t")["k"].append(2)
    anyws.state.session_values(sid)["t"]["k"].append(3)
    assert anyws.state.get("items") == [1, {"x": 1}]
    assert anyws.state.get(f"session:{sid}:t") == {"k": [1]}
    assert anyws.state.session_values(sid) == {"t": {"k": [1]}}


@pytest.mark.parametrize(
    "values, why",
    [
        ({"x": float("nan")}, "invalid State values: nan is not a number JSON can hold"),
        ({"x": object()}, "invalid State values: a object cannot be stored"),
        ([1, 2], "invalid State values: expected a table, got list"),
    ],
)
def test_replace_session_values_checks_what_it_writes(
    ws: Workspace, root: Path, values, why: str
) -> None:
    sid = ws.sessions.create(name="s")
    ws.state.set(f"session:{sid}:kept", 1)
    path = root / ws.sessions.get(sid)["path"] / "state.yaml"
    before = path.read_bytes()
    with pytest.raises(UsageError) as exc:
        ws.state.replace_session_values(sid, values)
    assert str(exc.value) == why
    assert path.read_bytes() == before and ws.state.session_values(sid) == {"kept": 1}


def test_a_workspace_state_file_that_is_a_link_is_never_read(ws, tmp_path) -> None:
    """A cloned repository may carry state.yaml -> a file of the user's elsewhere: State.get
    would have read it, and a recorded run kept it as an object (red-team F22)."""
    from spellfs.errors import UnsafePath

    secret = tmp_path / "home_config.yaml"
    secret.write_text('aws_secret: "AKIA-SECRET"\n')
    (ws.root / "state.yaml").unlink(missing_ok=True)
    (ws.root / "state.yaml").symlink_to(secret)
    with pytest.raises(UnsafePath) as err:
        ws.state.get("aws_secret")
    assert str(err.value) == (
        "refused: state.yaml is a symbolic link (spellfs never follows links for State; remove it)"
    )
    assert secret.read_text() == 'aws_secret: "AKIA-SECRET"\n'


@pytest.mark.parametrize(
    "value, why",
    [
        ("x" * (17 << 20), "State value too large"),  # more bytes than a state file may hold
        ([0] * 1_100_000, "more than 1000000 values"),  # more values than a reader takes
    ],
)
@pytest.mark.parametrize("key", ["big", "session:{sid}:big"])
def test_a_value_its_reader_would_refuse_is_refused_and_state_goes_on(
    anyws: Workspace, value, why: str, key: str
) -> None:
    """A value that would make the state file unreadable (every later State call and every
    checkpoint of the session would fail on it) is refused, and the values before it stay."""
    from spellfs import LimitExceeded

    sid = anyws.sessions.create(name="s")
    key = key.format(sid=sid)
    neighbour = key.replace("big", "small")
    anyws.state.set(neighbour, 1)
    with pytest.raises(LimitExceeded, match=why):
        anyws.state.set(key, value)
    assert anyws.state.get(key) is None and anyws.state.get(neighbour) == 1
    anyws.state.set(neighbour, 2)
    assert anyws.state.delete(neighbour) and anyws.state.get(neighbour) is None
    anyws.history.save(sid)  # the session's state is readable: it can be checkpointed
