"""Every global of SPEC §2 through a real Lua runtime over a real workspace on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from lupa import lua54

from spellfs import Workspace
from spellfs.lua.runtime import Runtime
from conftest import META_FIELDS, SESSION_FIELDS
from spellfs.store.yamlio import load_yaml


@pytest.fixture
def lua(ws: Workspace):
    rt = Runtime(ws)
    rt.install()

    def run(code: str, *args):
        return rt.lua.execute(code.encode(), *args)

    run.rt = rt
    run.ws = ws
    return run


def err(lua, code: str) -> str:
    """The message of the Lua error ``code`` raises (it must raise)."""
    ok, message = lua(f"return pcall(function() {code} end)")
    assert ok is False, f"no error from: {code}"
    return message.decode() if isinstance(message, bytes) else str(message)


def session_dir(root: Path, sid: bytes | str) -> Path:
    sid = sid.decode() if isinstance(sid, bytes) else sid
    [d] = [p for p in (root / "sessions").iterdir() if p.name.endswith(sid[:8])]
    return d


# -- Session ------------------------------------------------------------------------


def test_session_create_get_shape_and_disk(lua, root: Path) -> None:
    sid = lua("""return Session.create({name = "Data Analysis", description = "Q4",
        tags = {"analysis", "q4"}, metadata = {dept = "sales", n = 3, ratio = 0.5, nested = {a = {1, 2}}}})""")  # noqa: E501
    s = lua("return Session.get(...)", sid)
    keys = set(k.decode() for k in s.keys())
    assert SESSION_FIELDS - {"parent_session_id"} <= keys  # (a nil field is no key in Lua)
    assert (s[b"id"], s[b"name"], s[b"status"]) == (sid, b"Data Analysis", b"active")
    assert list(s[b"tags"].values()) == [b"analysis", b"q4"]
    assert s[b"artifact_count"] == 0 and s[b"parent_session_id"] is None  # nil: no parent
    assert s[b"created_at"].endswith(b"Z")
    assert lua(
        "local m = Session.get(...).custom_metadata return math.type(m.n), "
        "math.type(m.ratio), m.nested.a[2]",
        sid,
    ) == (b"integer", b"float", 2)
    d = session_dir(root, sid)
    assert s[b"path"].decode() == f"sessions/{d.name}"
    m = load_yaml((d / "session.yaml").read_bytes(), "session.yaml")
    assert m["name"] == "Data Analysis" and m["tags"] == ["analysis", "q4"]
    assert m["metadata"] == {"dept": "sales", "n": 3, "ratio": 0.5, "nested": {"a": [1, 2]}}


def test_session_create_defaults_parent_and_template(lua, root: Path) -> None:
    parent = lua("return Session.create()")
    child = lua("return Session.create({name = 'child', parent_session_id = ...})", parent)
    assert lua("return Session.get(...).parent_session_id", child) == parent
    (root / "templates" / "research.yaml").write_text(
        "description: from template\ntags: [t1]\nmetadata: {k: 1}\n"
    )
    sid = lua("return Session.create({name = 'r', template = 'research', tags = {'own'}})")
    s = lua(
        "local s = Session.get(...) "
        "return s.description, s.tags[1], s.tags[2], s.custom_metadata.k",
        sid,
    )
    assert s == (b"from template", b"t1", b"own", 1)
    assert "unknown option: nmae" in err(lua, "Session.create({nmae = 'x'})")
    assert "template not found: nope" in err(lua, "Session.create({template = 'nope'})")
    assert "expected a table of options" in err(lua, "Session.create('x')")


def test_session_list_queries(lua) -> None:
    lua("""
    A = Session.create({name = "b-one", tags = {"x", "y"}})
    B = Session.create({name = "a-two", tags = {"x"}})
    C = Session.create({name = "c-three"})
    Session.complete(C)
    """)
    names = lambda q: [s[b"name"].decode() for s in lua(f"return Session.list({q})").values()]  # noqa: E731
    assert names("") == ["b-one", "a-two"]
    assert names("{status = 'all'}") == ["b-one", "a-two", "c-three"]
    assert names("{status = 'completed'}") == ["c-three"]
    assert names("{tags = {'x', 'y'}}") == ["b-one"]
    assert names("{sort_by = 'name'}") == ["a-two", "b-one"]
    assert names("{limit = 1, offset = 1}") == ["a-two"]
    assert names("{created_after = 0}") == ["b-one", "a-two"]
    assert names("{created_before = '2000-01-01T00:00:00Z'}") == []
    assert names("{parent_session_id = A}") == []
    assert lua("return #Session.list({})") == 2
    assert "invalid status" in err(lua, "Session.list({status = 'zzz'})")
    assert "unknown query field: bogus" in err(lua, "Session.list({bogus = 1})")


def test_session_lifecycle_and_invalid_transitions(lua) -> None:
    sid = lua("return Session.create({name = 'life'})")
    get_status = lambda: lua("return Session.get(...).status", sid)  # noqa: E731
    assert lua("return Session.suspend(...)", sid) is True and get_status() == b"suspended"
    lua("Session.resume(...)", sid)
    assert get_status() == b"active"
    assert "it is active" in err(lua, f"Session.resume('{sid.decode()}')")
    lua("Session.complete(...)", sid)
    assert get_status() == b"completed"
    message = err(lua, f"Session.resume('{sid.decode()}')")
    assert "cannot make session" in message and "completed" in message
    other = lua("return Session.create({})")
    lua("Session.fail(...)", other)
    assert lua("return Session.get(...).status", other) == b"failed"
    assert "completed" in err(lua, f"Session.complete('{other.decode()}')")


def test_session_delete_update_metadata_and_unknown_ids(lua, root: Path) -> None:
    sid = lua("return Session.create({metadata = {a = 1, b = 'x'}})")
    lua("Session.update_metadata(..., {b = 'y', c = {1, 2, 3}})", sid)
    meta = lua("local m = Session.get(...).custom_metadata return m.a, m.b, #m.c", sid)
    assert meta == (1, b"y", 3)
    d = session_dir(root, sid)
    assert lua("return Session.delete(...)", sid) is True
    assert not d.exists()
    assert "session not found" in err(lua, f"Session.get('{sid.decode()}')")
    assert "session not found: 1234" in err(lua, "Session.get('1234')")
    assert "prefix too short" in err(lua, "Session.get('12')")
    assert "session not found" in err(lua, "Session.get('../../etc')")
    assert "expected a string" in err(lua, "Session.get({})")
    assert "invalid metadata" in err(lua, "Session.update_metadata(Session.create({}), 'no')")


def test_current_session_context(lua) -> None:
    assert lua("return Session.getCurrent()") is None
    assert "no current session" in err(lua, "Session.get()")
    assert "no current session" in err(lua, "Artifact.store(nil, 'user_input', 'a.txt', 'x')")
    sid = lua("local s = Session.create({name = 'cur'}) Session.setCurrent(s) return s")
    assert lua("return Session.getCurrent()") == sid
    assert lua("return Session.get().id, Session.get('').id") == (sid, sid)
    lua("Artifact.store(nil, 'user_input', 'a.txt', 'hello')")
    assert lua("return Artifact.get('', 'a.txt').content, #Artifact.list('')") == (b"hello", 1)
    prefix = sid[:8].decode()
    lua(f"Session.setCurrent('{prefix}')")
    assert lua("return Session.getCurrent()") == sid
    lua("Session.setCurrent(nil)")
    assert lua("return Session.getCurrent()") is None


def test_history_functions_bound_by_name(lua) -> None:
    sid = lua("return Session.create({name = 'h'})")
    for name in (
        "save",
        "load",
        "checkpoints",
        "diff",
        "restore",
        "fork",
        "canReplay",
        "replay",
        "getReplayMetadata",
        "listReplayable",
    ):
        assert lua(f"return type(Session.{name})") == b"function"
    if "history" not in dir(Workspace):
        assert "not available yet" in err(lua, f"Session.save('{sid.decode()}', 'm')")
        return
    lua("Artifact.store(..., 'user_input', 'a.txt', 'one')", sid)
    n = lua("return Session.save(..., 'first')", sid)
    assert lua("return math.type(...)", n) == b"integer"
    lua("Artifact.store(..., 'user_input', 'a.txt', 'two')", sid)
    lua("local s, n = ... Session.restore(s, n)", sid, n)
    assert lua("return Artifact.get(..., 'a.txt').content", sid) == b"one"
    assert lua("return #Session.checkpoints(...)", sid) >= 1


# -- Artifact -------------------------------------------------------------------------


def test_artifact_store_get_list_shapes(lua, root: Path) -> None:
    sid = lua("return Session.create({name = 'art'})")
    aid = lua(
        """return Artifact.store(..., "tool_result", "out.txt", "hello",
        {mime_type = "text/plain", description = "d", tags = {"t"}, tool = "calc", n = 7})""",
        sid,
    )
    assert set(aid.keys()) == {b"content_hash", b"session_id", b"sequence"}
    assert aid[b"session_id"] == sid and aid[b"sequence"] == 1 and len(aid[b"content_hash"]) == 64
    got = lua("return Artifact.get(...)", sid, aid)
    meta = got[b"metadata"]
    assert got[b"content"] == b"hello"
    for key in META_FIELDS:
        assert key.encode() in meta, key
    assert (meta[b"name"], meta[b"artifact_type"], meta[b"mime_type"], meta[b"size"]) == (
        b"out.txt",
        b"tool_result",
        b"text/plain",
        5,
    )
    assert meta[b"custom"][b"tool"] == b"calc" and meta[b"custom"][b"n"] == 7
    assert meta[b"created_by"] == b"api"
    assert (session_dir(root, sid) / "files" / "out.txt").read_bytes() == b"hello"
    lua("Artifact.store(..., 'tool_result', 'out.txt', 'hello v2')", sid)
    assert lua("return Artifact.get(..., 'out.txt').content", sid) == b"hello v2"
    assert lua("return Artifact.get(..., 'out.txt@1').content", sid) == b"hello"
    assert lua("return Artifact.get(..., 'out.txt').metadata.version", sid) == 2
    items = lua("return Artifact.list(...)", sid)
    assert len(items) == 1
    item = items[1]
    assert (
        item[b"name"] == b"out.txt" and item[b"version"] == 2 and item[b"metadata"][b"version"] == 2
    )
    assert item[b"id"][b"sequence"] == 2 and item[b"id"][b"session_id"] == sid
    assert (
        lua("return Artifact.get(..., Artifact.list(...)[1].id).content", sid, sid) == b"hello v2"
    )
    records = (session_dir(root, sid) / "artifacts.yaml").read_text().splitlines()
    assert len([r for r in records if r.startswith("- {")]) == 2


def test_artifact_binary_every_byte_and_compression(lua, root: Path) -> None:
    sid = lua("return Session.create({})")
    blob = bytes(range(256)) * 4
    aid = lua(
        "return Artifact.store(..., 'system_generated', 'b.bin', select(3, ...))", sid, None, blob
    )
    assert lua("return Artifact.get(...).content", sid, aid) == blob
    assert (session_dir(root, sid) / "files" / "b.bin").read_bytes() == blob
    big = lua(
        "local s = string.rep('compress me ', 5000) "
        "Artifact.store(..., 'x', 'big.txt', s) return s",
        sid,
    )
    got = lua("return Artifact.get(..., 'big.txt')", sid)
    assert got[b"content"] == big and got[b"metadata"][b"is_compressed"] is True
    assert got[b"metadata"][b"original_size"] == len(big)


def test_artifact_query_and_delete(lua, root: Path) -> None:
    a, b = lua("return Session.create({name = 'a'}), Session.create({name = 'b'})")
    lua(
        """local a, b = ...
    Artifact.store(a, "tool_result", "r1.json", "{}", {tags = {"x"}})
    Artifact.store(a, "user_input", "notes.md", string.rep("n", 100))
    Artifact.store(b, "tool_result", "r2.json", "[1,2]", {tags = {"x", "y"}})
    """,
        a,
        b,
    )

    def names(q: str) -> list[str]:
        return sorted(i[b"name"].decode() for i in lua(f"return Artifact.query({q})").values())

    assert names("") == ["notes.md", "r1.json", "r2.json"]
    assert names("{type = 'tool_result'}") == ["r1.json", "r2.json"]
    assert names("{name_pattern = '*.json', tags = {'y'}}") == ["r2.json"]
    assert names("{min_size = 50}") == ["notes.md"]
    assert names("{max_size = 2}") == ["r1.json"]
    assert len(lua("return Artifact.query({session_id = ...})", a)) == 2
    assert len(lua("return Artifact.query({limit = 1})")) == 1
    assert "unknown query field" in err(lua, "Artifact.query({nope = 1})")
    assert lua("return Artifact.delete(..., 'r1.json')", a) is True
    assert not (session_dir(root, a) / "files" / "r1.json").exists()
    assert [i[b"name"] for i in lua("return Artifact.list(...)", a).values()] == [b"notes.md"]
    assert "artifact not found: r1.json" in err(lua, f"Artifact.delete('{a.decode()}', 'r1.json')")
    assert "artifact not found: zzz" in err(lua, f"Artifact.get('{a.decode()}', 'zzz')")
    # as in rs-llmspell's examples: after a delete, the artifact's id no longer reads
    ok, message = lua(
        """local sid = ...
    local id = Artifact.store(sid, "tool_result", "temp.txt", "t")
    Artifact.delete(sid, id)
    return pcall(Artifact.get, sid, id)""",
        a,
    )
    assert ok is False and b"artifact not found" in message


def test_artifact_store_file(lua, tmp_path: Path) -> None:
    src = tmp_path / "report.csv"
    src.write_bytes(b"a,b\n1,2\n")
    sid = lua("return Session.create({})")
    aid = lua(
        "return Artifact.storeFile(..., select(2, ...), 'user_input', {source = 'disk'})",
        sid,
        str(src).encode(),
    )
    got = lua("return Artifact.get(...)", sid, aid)
    assert got[b"content"] == b"a,b\n1,2\n" and got[b"metadata"][b"name"] == b"report.csv"
    assert got[b"metadata"][b"custom"][b"source"] == b"disk"
    assert "file not found" in err(
        lua, f"Artifact.storeFile('{sid.decode()}', '/no/such/file', 'user_input')"
    )


@pytest.mark.parametrize(
    "name, problem",
    [
        ("'../x'", "may not start with '.'"),
        ("'a/../../x'", "may not contain '/'"),
        ("'/etc/passwd'", "may not contain '/'"),
        ("'a\\0b'", "control characters"),
        ("string.rep('n', 10000)", "longer than 255 bytes"),
        ("''", "empty"),
        ("'.hidden'", "may not start with '.'"),
        ("'..'", "may not start with '.'"),
        ("'a\\\\b'", "may not contain"),
        ("'\\255\\254'", "not UTF-8"),
        ("42", "expected a string"),
    ],
)
def test_hostile_artifact_names_are_catchable_errors(
    lua, root: Path, name: str, problem: str
) -> None:
    sid = lua("return Session.create({})")
    message = err(lua, f"Artifact.store('{sid.decode()}', 'user_input', {name}, 'x')")
    assert "invalid artifact name" in message and problem in message
    assert list((session_dir(root, sid) / "files").iterdir()) == []
    assert not (root / "x").exists()


def test_artifact_bad_arguments(lua) -> None:
    sid = lua("return Session.create({})").decode()
    assert "content must be a string, got table" in err(
        lua, f"Artifact.store('{sid}', 'user_input', 'a', {{}})"
    )
    assert "content must be a string, got nil" in err(
        lua, f"Artifact.store('{sid}', 'user_input', 'a')"
    )
    assert "invalid artifact type" in err(lua, f"Artifact.store('{sid}', 'a/b', 'a', 'x')")
    assert "metadata must be a table" in err(
        lua, f"Artifact.store('{sid}', 'user_input', 'a', 'x', 5)"
    )
    assert "binary strings cannot be stored" in err(
        lua, f"Artifact.store('{sid}', 'user_input', 'a', 'x', {{k = '\\255'}})"
    )
    assert "session not found" in err(
        lua, "Artifact.store('ffffffff-0000', 'user_input', 'a', 'x')"
    )


def test_error_message_carries_script_position(lua) -> None:
    rt = lua.rt
    with pytest.raises(Exception, match=r"s\.lua:3: session not found: abcd1234"):
        rt.run("s.lua", b"local a = 1\nlocal b = 2\nSession.get('abcd1234')\n")


# -- State ------------------------------------------------------------------------------


def test_state_workspace_and_session_scoped(lua, root: Path) -> None:
    sid = lua("return Session.create({name = 'st'})")
    lua(
        """local sid = ...
    State.set("config", {retries = 3, ratio = 0.25, names = {"a", "b"}, empty = {}})
    State.set("session:" .. sid .. ":progress", {step = 2})
    State.set("counter", 1)
    State.set("counter", State.get("counter") + 1)
    """,
        sid,
    )
    assert lua(
        "local c = State.get('config') return c.retries, math.type(c.retries), c.ratio, c.names[2]"
    ) == (3, b"integer", 0.25, b"b")
    assert lua("return State.get('counter'), State.get('missing')") == (2, None)
    ws_state = load_yaml((root / "state.yaml").read_bytes(), "state.yaml")
    assert ws_state["config"]["retries"] == 3 and ws_state["counter"] == 2
    sess_state = load_yaml((session_dir(root, sid) / "state.yaml").read_bytes(), "state.yaml")
    assert sess_state == {"progress": {"step": 2}}
    assert list(lua("return State.list()").values()) == [b"config", b"counter"]
    assert list(lua("return State.list('session:' .. ... .. ':')", sid).values()) == [
        b"session:" + sid + b":progress"
    ]
    assert lua("return State.delete('counter'), State.delete('counter')") == (True, False)
    assert "invalid State key" in err(lua, "State.set('', 1)")
    assert "cannot convert a Lua function" in err(lua, "State.set('f', print)")
    assert "session not found" in err(lua, "State.set('session:nope1234:x', 1)")


def test_state_scoped_calls_of_rs_llmspell(lua, root: Path) -> None:
    sid = lua("return Session.create({name = 'scoped'})")
    lua(
        """local sid = ...
    State.save("global", "app_name", "demo")
    State.save("agent:analyzer", "processed", 1000)
    State.save("session:" .. sid, "step", 3)
    State.save("global", "temp", "x")
    State.save("global", "temp", nil)
    """,
        sid,
    )
    assert lua("return State.load('global', 'app_name'), State.get('app_name')") == (
        b"demo",
        b"demo",
    )
    assert lua(
        "return State.load('agent:analyzer', 'processed'), State.load('agent:other', 'processed')"
    ) == (1000, None)
    assert lua("return State.load('session:' .. ..., 'step')", sid) == 3
    assert load_yaml((session_dir(root, sid) / "state.yaml").read_bytes(), "state.yaml") == {
        "step": 3
    }
    ws_state = load_yaml((root / "state.yaml").read_bytes(), "state.yaml")
    assert ws_state == {"app_name": "demo", "agent:analyzer:processed": 1000}
    assert lua(
        "return State.delete('agent:analyzer', 'processed'), State.load('agent:analyzer', "
        "'processed')"
    ) == (True, None)
    assert "scope must be a non-empty string" in err(lua, "State.save('', 'k', 1)")
    assert "key must be a non-empty string" in err(lua, "State.load('global', '')")


def test_state_persists_across_runs(root: Path) -> None:
    with Workspace.open(root) as ws:
        rt = Runtime(ws)
        rt.install()
        rt.lua.execute(b"State.set('k', {1, 2, {x = 'y'}})")
    with Workspace.open(root) as ws:
        rt = Runtime(ws)
        rt.install()
        assert rt.lua.execute(b"local v = State.get('k') return #v, v[3].x") == (3, b"y")


# -- JSON -------------------------------------------------------------------------------


def test_json_global(lua) -> None:
    assert (
        lua("return JSON.stringify({b = 1, a = {1, 2.5, 'x'}, e = {}})")
        == b'{"a":[1,2.5,"x"],"b":1,"e":[]}'
    )
    assert lua(
        "local t = JSON.parse('{\"a\": [1, 2.0, null, true]}') return math.type(t.a[1]), "
        "math.type(t.a[2]), t.a[4]"
    ) == (b"integer", b"float", True)
    assert "JSON parse error" in err(lua, "JSON.parse('{bad')")


# -- Event ------------------------------------------------------------------------------


def test_events_wildcards_and_builtin(lua) -> None:
    lua("""
    ALL = Event.subscribe("*")
    ART = Event.subscribe("artifact.*")
    S = Session.create({name = "ev"})
    Artifact.store(S, "user_input", "a.txt", "x")
    Event.publish("custom.thing", {n = 1, list = {1, 2}})
    """)
    kinds = []
    while True:
        e = lua("return Event.receive(ALL, 0)")
        if e is None:
            break
        kinds.append(e[b"event_type"].decode())
        assert isinstance(e[b"timestamp"], float)
    assert kinds == ["session.created", "artifact.stored", "custom.thing"]
    e = lua("return Event.receive(ART)")
    assert e[b"event_type"] == b"artifact.stored" and e[b"data"][b"name"] == b"a.txt"
    assert lua("return Event.receive(ART, 10)") is None
    assert lua("return Event.unsubscribe(ART), Event.unsubscribe(ART)") == (True, False)
    assert "subscription not found" in err(lua, "Event.receive(ART)")
    assert "expected a subscription" in err(lua, "Event.receive('x')")
    assert "pattern" in err(lua, "Event.subscribe(nil)")


def test_event_subscriptions_and_stats_of_rs_llmspell(lua) -> None:
    out = lua("""
    local a = Event.subscribe("user.*")
    local b = Event.subscribe("*.error")
    Event.publish("user.login", {})
    Event.publish("db.error", {})
    Event.publish("nobody.listens", {})
    Event.receive(a)
    local subs = Event.list_subscriptions()
    local stats = Event.get_stats().event_bus_stats
    Event.unsubscribe(a)
    return #subs, subs[1].pattern, subs[1].queued, subs[2].pattern, subs[2].queued,
           stats.published, stats.delivered, stats.subscriptions, stats.queued, #Event.list_subscriptions()
    """)  # noqa: E501
    assert out == (2, b"user.*", 0, b"*.error", 1, 3, 2, 2, 1, 1)


# -- Hook -------------------------------------------------------------------------------


def test_hook_before_artifact_store_modifies_binary_content(lua, root: Path) -> None:
    sid = lua("return Session.create({})")
    lua("""
    SEEN = {}
    H = Hook.register("BeforeArtifactStore", function(ctx)
      SEEN.point, SEEN.sid, SEEN.name, SEEN.len = ctx.point, ctx.session_id, ctx.data.name, #ctx.data.content
      SEEN.corr = ctx.correlation_id
      return {content = ctx.data.content .. "\\0\\255", metadata = {tags = {"hooked"}}}
    end)
    """)  # noqa: E501
    lua("Artifact.store(..., 'user_input', 'bin', '\\1\\2\\128')", sid)
    assert lua("return SEEN.point, SEEN.sid, SEEN.name, SEEN.len") == (
        b"BeforeArtifactStore",
        sid,
        b"bin",
        3,
    )
    assert lua("return #SEEN.corr") == 36
    got = lua("return Artifact.get(..., 'bin')", sid)
    assert got[b"content"] == b"\x01\x02\x80\x00\xff"
    assert list(got[b"metadata"][b"tags"].values()) == [b"hooked"]
    assert (session_dir(root, sid) / "files" / "bin").read_bytes() == b"\x01\x02\x80\x00\xff"
    lua("H:unregister()")
    lua("Artifact.store(..., 'user_input', 'plain', 'p')", sid)
    assert lua("return Artifact.get(..., 'plain').content", sid) == b"p"


def test_hook_cancel_priority_and_errors(lua, root: Path) -> None:
    sid = lua("return Session.create({})").decode()
    lua("""
    ORDER = {}
    Hook.register("BeforeArtifactStore", function(ctx) ORDER[#ORDER + 1] = "low" end, "low")
    Hook.register("BeforeArtifactStore", function(ctx)
      ORDER[#ORDER + 1] = "high"
      if ctx.data.name == "secret.txt" then return "cancel" end
      return "continue"
    end, "high")
    """)
    message = err(lua, f"Artifact.store('{sid}', 'user_input', 'secret.txt', 'x')")
    assert "cancelled by a BeforeArtifactStore hook: secret.txt" in message
    assert not (session_dir(root, sid) / "files" / "secret.txt").exists()
    assert lua("return #Artifact.list(...)", sid) == 0
    lua(f"Artifact.store('{sid}', 'user_input', 'ok.txt', 'x')")
    assert [v.decode() for v in lua("return ORDER").values()] == ["high", "high", "low"]
    lua("Hook.register('AfterArtifactStore', function(ctx) error('after hook broke') end)")
    assert "after hook broke" in err(lua, f"Artifact.store('{sid}', 'user_input', 'z.txt', 'x')")
    assert "unknown hook point" in err(lua, "Hook.register('Nope', function() end)")
    assert "expected a function" in err(lua, "Hook.register('SessionStart', 5)")
    assert "unknown hook priority" in err(
        lua, "Hook.register('SessionStart', function() end, 'urgent')"
    )
    assert "expected 'continue', 'cancel' or a table" in err(
        lua, "Hook.register('SessionStart', function() return 42 end) Session.create({})"
    )


def test_hook_handles_and_listing_of_rs_llmspell(lua) -> None:
    """rs-llmspell's hook-basic: its agent points register, handles have id() and hook_point(),
    Hook.list lists."""
    out = lua("""
    local h1 = Hook.register("BeforeAgentInit", function(ctx) end)
    local h2 = Hook.register("BeforeToolExecution", function(ctx) end, "high")
    local before = #Hook.list()
    local tools = Hook.list("BeforeToolExecution")
    local by_table = Hook.list({hook_point = "BeforeAgentInit"})
    local removed = Hook.unregister(h2)
    local named = tools[1].name:find("BeforeToolExecution", 1, true) ~= nil
    return h1:id(), h1:hook_point(), h2:hook_point(), before, #tools, tools[1].priority, tools[1].language,
           #by_table, removed, #Hook.list(), h1:unregister(), #Hook.list(), tools[1].point, named
    """)  # noqa: E501
    assert out[1:] == (
        b"BeforeAgentInit",
        b"BeforeToolExecution",
        2,
        1,
        b"Priority(-100)",
        b"lua",
        1,
        True,
        1,
        True,
        0,
        b"BeforeToolExecution",
        True,
    )
    assert isinstance(out[0], int)
    assert (
        lua("""local ran = false
    Hook.register("BeforeAgentInit", function() ran = true end)
    Session.create({}); Tool.invoke("calculator", {operation = "evaluate", expression = "1+1"})
    return ran""")
        is False
    )  # registered and listed, never run: spellfs has no such event
    assert "unknown hook point: 'Nope'" in err(lua, "Hook.register('Nope', function() end)")
    assert "expected a hook point name" in err(lua, "Hook.list(5)")


def test_hook_results_in_rs_llmspell_form(lua, root: Path) -> None:
    sid = lua("return Session.create({})").decode()
    lua("""
    Hook.register("BeforeToolExecution", function(ctx)
      if ctx.data.params.expression == "6*7" then return {type = "cancel", reason = "no"} end
      return {type = "continue"}
    end, "high")
    Hook.register("BeforeArtifactStore", function(ctx)
      return {type = "modified", data = {content = "\0changed", metadata = {tags = {"hooked"}}}}
    end, "low")
    """)
    assert "cancelled by a BeforeToolExecution hook" in err(
        lua,
        "local r = Tool.invoke('calculator', {operation = 'evaluate', expression = '6*7'}) "
        "error(r.error)",
    )
    assert (
        lua(
            "return Tool.invoke('calculator', {operation = 'evaluate', expression = "
            "'1+1'}).result.result"
        )
        == 2
    )
    lua(f"Artifact.store('{sid}', 'user_input', 'a.bin', 'original')")
    assert (session_dir(root, sid) / "files" / "a.bin").read_bytes() == b"\0changed"
    assert lua(f"return Artifact.get('{sid}', 'a.bin').metadata.tags[1]") == b"hooked"
    assert lua(
        "return #Hook.list({priority = 'high'}), #Hook.list({priority = 'low'}), "
        "#Hook.list({priority = 5})"
    ) == (1, 1, 0)


def test_session_hooks_and_api_calls_inside_hooks(lua) -> None:
    lua("""
    STARTED, ENDED = {}, {}
    Hook.register("SessionStart", function(ctx) STARTED[#STARTED + 1] = ctx.data.name end)
    local h = Hook.register("SessionEnd", function(ctx)
      Artifact.store(ctx.session_id, "system_generated", "summary.txt", "ended " .. ctx.data.status)
      ENDED[#ENDED + 1] = ctx.session_id
    end)
    S = Session.create({name = "hooked"})
    Session.complete(S)
    assert(Hook.unregister(h) == true)
    """)
    assert lua("return STARTED[1], #ENDED") == (b"hooked", 1)
    assert lua("return Artifact.get(S, 'summary.txt').content") == b"ended completed"


# -- Tool -------------------------------------------------------------------------------


def test_tools_and_tool_hooks(lua, root: Path) -> None:
    listed = list(lua("return Tool.list()").values())
    assert [t[b"name"] for t in listed][:3] == [
        b"api_tester",
        b"archive_handler",
        b"audio_processor",
    ]
    assert all(t[b"description"] and t[b"version"] for t in listed)
    assert lua("return Tool.exists('calculator'), Tool.exists('nope')") == (True, False)
    schema = lua("return Tool.get('calculator'):getSchema()")
    assert schema[b"name"] == b"calculator" and schema[b"parameters"][1][b"name"] == b"operation"
    r = lua(
        "return Tool.get('calculator'):execute({operation = 'evaluate', expression = '42 * "
        "10 + 7'})"
    )
    assert r[b"success"] is True and r[b"result"][b"result"] == 427
    assert (
        lua("return math.type(Tool.invoke('calculator', {expression = '7 / 2'}).result.result)")
        == b"float"
    )
    assert lua("return Tool.get('nope')") is None
    assert "tool not found: nope" in err(lua, "Tool.invoke('nope', {})")
    r = lua("return Tool.invoke('calculator', {expression = '__import__(\"os\")'})")
    assert r[b"success"] is False and r[b"error"]
    r = lua(
        "return Tool.invoke('template_engine', {template = 'Hi {{name}}', variables = {name "
        "= 'Ada'}})"
    )
    assert r[b"result"][b"rendered"] == b"Hi Ada"
    assert len(lua("return Tool.invoke('uuid_generator', {}).result.uuid")) == 36
    lua(
        "Tool.invoke('file_operations', {operation = 'write', path = 'notes/a.txt', input = 'hey'})"
    )
    assert (root / "notes" / "a.txt").read_text() == "hey"
    lua("""
    LOG = {}
    Hook.register("BeforeToolExecution", function(ctx)
      LOG[#LOG + 1] = "before " .. ctx.data.tool
      if ctx.data.params.expression == "forbidden" then return "cancel" end
      return {params = {operation = "evaluate", expression = "1 + 1"}}
    end)
    Hook.register("AfterToolExecution", function(ctx)
      LOG[#LOG + 1] = "after " .. tostring(ctx.data.result.result.result)
    end)
    """)
    assert lua("return Tool.invoke('calculator', {expression = '100'}).result.result") == 2
    assert [v.decode() for v in lua("return LOG").values()] == ["before calculator", "after 2"]
    assert "cancelled by a BeforeToolExecution hook: calculator" in err(
        lua, "Tool.invoke('calculator', {expression = 'forbidden'})"
    )


def test_internal_python_errors_are_lua_errors_not_tracebacks(lua, monkeypatch) -> None:
    def broken(*a, **k):
        raise KeyError("oops")

    monkeypatch.setattr(lua.ws.sessions.__class__, "get", broken)
    message = err(lua, "Session.get('x')")
    assert "Session.get: internal error: KeyError" in message
    with pytest.raises(lua54.LuaError):
        lua("Session.get('x')")


def test_rs_llmspell_fixes_after_delete_hook_session_scope_and_event_metadata(lua) -> None:
    out = lua("""
    local sid = Session.create({name = "s"}); Session.setCurrent(sid)
    local deleted = {}
    Hook.register("AfterArtifactDelete", function(ctx) deleted[#deleted + 1] = ctx.data.name end)
    Artifact.store(sid, "user_input", "gone.txt", "x")
    Artifact.delete(sid, "gone.txt")
    State.save("session", "abc", 1)
    local quiet = Event.subscribe("")
    local sub = Event.subscribe("demo.*")
    Event.publish("demo.one", {n = 1})
    local got = Event.receive(sub, 0)
    return deleted[1], State.load("session", "abc"), State.get("session:" .. sid .. ":abc"),
           Event.receive(quiet, 0), got.metadata.source_language
    """)
    assert out == (b"gone.txt", 1, 1, None, b"lua")


def test_checkpoint_functions_without_an_id_use_the_current_session(lua) -> None:
    """Lua drops a trailing nil: `Session.save()` reached Python with no session at all and
    failed as an internal TypeError (red-team F3)."""
    sid = lua("local s = Session.create({name = 'cur'}) Session.setCurrent(s) return s")
    lua("Artifact.store(nil, 'user_input', 'a.txt', 'one')")
    assert lua("return Session.save()") == 1
    lua("Artifact.store(nil, 'user_input', 'a.txt', 'two')")
    assert lua("return Session.save(nil)") == 2
    assert lua("return #Session.checkpoints()") == 2
    assert lua("return Session.canReplay()") == lua("return Session.canReplay(...)", sid)
    assert lua("return Session.load()") == sid
    assert "takes no arguments" in err(lua, "Session.listReplayable(5)")
    lua("Session.setCurrent(nil)")
    assert "no current session" in err(lua, "Session.save()")


def test_arguments_of_the_wrong_kind_are_named_not_internal_errors(lua) -> None:
    for code, says in [
        ("Session.create({name = 'x', metadata = 'a'})", "invalid metadata: expected a table"),
        ("State.list(5)", "invalid State prefix: 5"),
        ("Workflow.get({})", "Workflow.get: expected a workflow id or name"),
        ("Workflow.remove({})", "Workflow.remove: expected a workflow id or name"),
    ]:
        message = err(lua, code)
        assert says in message and "internal error" not in message, (code, message)


def test_a_numeric_hook_priority_is_rs_llmspells_lower_runs_first(lua) -> None:
    """Hook.list printed the number a script gave with its sign flipped (red-team F18): a
    number is rs-llmspell's Priority(n), lower first, as the names are (high is -100)."""
    sid = lua("return Session.create({})").decode()
    lua("""
    ORDER = {}
    Hook.register("BeforeArtifactStore", function() ORDER[#ORDER + 1] = "high" end, "high")
    Hook.register("BeforeArtifactStore", function() ORDER[#ORDER + 1] = "-100" end, -100)
    Hook.register("BeforeArtifactStore", function() ORDER[#ORDER + 1] = "100" end, 100)
    Hook.register("BeforeArtifactStore", function() ORDER[#ORDER + 1] = "-500" end, -500)
    """)
    lua(f"Artifact.store('{sid}', 'user_input', 'a.txt', 'x')")
    assert [v.decode() for v in lua("return ORDER").values()] == ["-500", "high", "-100", "100"]
    shown = lua(
        "local out = {} for _, h in ipairs(Hook.list('BeforeArtifactStore')) do "
        "out[#out + 1] = h.priority end return table.concat(out, ' ')"
    )
    assert shown == b"Priority(-500) Priority(-100) Priority(-100) Priority(100)"
    assert lua("return #Hook.list({priority = -100}), #Hook.list({priority = 100})") == (2, 1)


def test_a_hook_giving_a_table_for_content_is_told_so_in_lua_words(lua) -> None:
    sid = lua("return Session.create({})").decode()
    lua('Hook.register("BeforeArtifactStore", function(ctx) return {content = {}} end)')
    message = err(lua, f"Artifact.store('{sid}', 'user_input', 'x.txt', 'x')")
    assert "invalid content for x.txt: expected a string, got a table" in message
    assert "_LuaTable" not in message
