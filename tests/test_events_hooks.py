"""Events published by session/artifact operations, and hooks that change or cancel them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from spellfs import HookCancelled, NotFound, UsageError, Workspace
from spellfs.events import EventBus
from spellfs.store.objects import hash_bytes


def drain(ws: Workspace, sub: int) -> list[dict]:
    out = []
    while (event := ws.events.receive(sub, 0)) is not None:
        out.append(event)
    return out


def test_wildcard_receives_session_and_artifact_events(anyws: Workspace) -> None:
    everything = anyws.events.subscribe("*")
    artifacts = anyws.events.subscribe("artifact.*")
    created = anyws.events.subscribe("session.created")
    sid = anyws.sessions.create(name="ev")
    anyws.artifacts.store(sid, "user_input", "a.txt", b"a")
    anyws.artifacts.delete(sid, "a.txt")
    anyws.sessions.suspend(sid)
    anyws.sessions.resume(sid)
    anyws.sessions.update_metadata(sid, {"k": 1})
    anyws.sessions.complete(sid)
    anyws.sessions.delete(sid)
    got = drain(anyws, everything)
    assert [e["event_type"] for e in got] == [
        "session.created",
        "artifact.stored",
        "artifact.deleted",
        "session.suspended",
        "session.resumed",
        "session.updated",
        "session.completed",
        "session.deleted",
    ]
    stored = got[1]
    assert stored["data"]["session_id"] == sid and stored["data"]["name"] == "a.txt"
    assert stored["data"]["content_hash"] == hash_bytes(b"a") and stored["data"]["sequence"] == 1
    assert isinstance(stored["timestamp"], float)
    assert got[0]["data"] == {"session_id": sid, "name": "ev", "status": "active"}
    assert [e["event_type"] for e in drain(anyws, artifacts)] == [
        "artifact.stored",
        "artifact.deleted",
    ]
    assert [e["event_type"] for e in drain(anyws, created)] == ["session.created"]


def test_each_subscriber_has_its_own_queue() -> None:
    bus = EventBus()
    a, b = bus.subscribe("x.*"), bus.subscribe("x.*")
    assert bus.publish("x.y", {"n": 1}) == 2
    assert bus.receive(a, 0)["data"] == {"n": 1}
    assert bus.receive(b, 0)["data"] == {"n": 1}
    assert bus.receive(a, 0) is None
    assert bus.publish("other", 1) == 0
    assert bus.unsubscribe(a) is True and bus.unsubscribe(a) is False
    with pytest.raises(NotFound):
        bus.receive(a, 0)
    quiet = bus.subscribe("")  # rs-llmspell: an empty pattern matches nothing, it is no error
    assert bus.publish("", 1) == 0 and bus.publish("x", 1) == 0 and bus.receive(quiet, 0) is None
    with pytest.raises(UsageError):
        bus.subscribe(5)
    sub = bus.subscribe("m")
    bus.publish("m", {"k": 1}, language="lua")
    got = bus.receive(sub, 0)
    assert (
        got["metadata"]["source_language"] == "lua"
        and got["metadata"]["timestamp"] == got["timestamp"]
    )


def test_receive_waits_for_a_publish() -> None:
    bus = EventBus()
    sub = bus.subscribe("*")
    timer = threading.Timer(0.05, bus.publish, args=("late", 1))
    timer.start()
    try:
        event = bus.receive(sub, 5000)
    finally:
        timer.join()
    assert event["event_type"] == "late"
    assert bus.receive(sub, 10) is None


def test_before_store_hook_sees_and_replaces_content(anyws: Workspace) -> None:
    sid = anyws.sessions.create(name="h")
    seen = []

    def redact(ctx):
        seen.append(ctx)
        return {
            "content": ctx["data"]["content"].replace(b"secret", b"******"),
            "metadata": {**ctx["data"]["metadata"], "redacted": True},
        }

    anyws.hooks.register("BeforeArtifactStore", redact)
    aid = anyws.artifacts.store(
        sid, "tool_result", "out.txt", b"the secret word", {"description": "d"}
    )
    got = anyws.artifacts.get(sid, "out.txt")
    assert got["content"] == b"the ****** word"
    assert aid["content_hash"] == hash_bytes(b"the ****** word")
    assert got["metadata"]["custom"] == {"redacted": True} and got["metadata"]["description"] == "d"
    (ctx,) = seen
    assert (
        ctx["point"] == "BeforeArtifactStore" and ctx["session_id"] == sid and ctx["correlation_id"]
    )
    assert ctx["data"]["name"] == "out.txt" and ctx["data"]["type"] == "tool_result"
    assert ctx["data"]["session_id"] == sid
    if not anyws.memory:
        files = anyws.root / anyws.sessions.get(sid)["path"] / "files" / "out.txt"
        assert files.read_bytes() == b"the ****** word"


def test_before_store_hook_can_cancel(anyws: Workspace) -> None:
    sid = anyws.sessions.create(name="h")
    anyws.hooks.register(
        "BeforeArtifactStore",
        lambda ctx: "cancel" if ctx["data"]["name"].endswith(".exe") else None,
    )
    sub = anyws.events.subscribe("artifact.*")
    with pytest.raises(HookCancelled, match="cancelled by a BeforeArtifactStore hook: virus.exe"):
        anyws.artifacts.store(sid, "user_input", "virus.exe", b"MZ")
    assert anyws.artifacts.list(sid) == []
    assert not anyws.objects.has(hash_bytes(b"MZ"))
    assert not anyws.storage.exists(anyws.sessions.get(sid)["path"] + "/files/virus.exe")
    assert not anyws.storage.exists(anyws.sessions.get(sid)["path"] + "/artifacts.yaml")
    assert drain(anyws, sub) == []
    anyws.artifacts.store(sid, "user_input", "fine.txt", b"ok")
    assert [a["name"] for a in anyws.artifacts.list(sid)] == ["fine.txt"]


def test_hook_cannot_smuggle_a_hostile_name(anyws: Workspace) -> None:
    sid = anyws.sessions.create(name="h")
    anyws.hooks.register("BeforeArtifactStore", lambda ctx: {"name": "../../escape"})
    with pytest.raises(UsageError, match="invalid artifact name"):
        anyws.artifacts.store(sid, "user_input", "innocent.txt", b"x")
    assert anyws.artifacts.list(sid) == []


def test_priorities_order(anyws: Workspace) -> None:
    sid = anyws.sessions.create(name="h")
    order = []

    def hook(tag):
        def fn(ctx):
            order.append(tag)
            return {"content": ctx["data"]["content"] + tag.encode()}

        return fn

    anyws.hooks.register("BeforeArtifactStore", hook("normal1"))
    anyws.hooks.register("BeforeArtifactStore", hook("lowest"), "lowest")
    anyws.hooks.register("BeforeArtifactStore", hook("n50"), 50)
    anyws.hooks.register("BeforeArtifactStore", hook("highest"), "highest")
    anyws.hooks.register("BeforeArtifactStore", hook("normal2"), "normal")
    anyws.hooks.register("BeforeArtifactStore", hook("high"), "HIGH")
    anyws.hooks.register("BeforeArtifactStore", hook("low"), "low")
    anyws.artifacts.store(sid, "user_input", "x", b"")
    expected = ["highest", "high", "n50", "normal1", "normal2", "low", "lowest"]
    assert order == expected
    # each hook saw the previous one's replacement
    assert anyws.artifacts.get(sid, "x")["content"] == "".join(expected).encode()


def test_cancel_stops_later_hooks_and_unregister(anyws: Workspace) -> None:
    sid = anyws.sessions.create(name="h")
    calls = []
    anyws.hooks.register("BeforeArtifactStore", lambda ctx: calls.append("late"), "low")
    handle = anyws.hooks.register("BeforeArtifactStore", lambda ctx: "cancel", "high")
    with pytest.raises(HookCancelled):
        anyws.artifacts.store(sid, "user_input", "x", b"x")
    assert calls == []
    assert anyws.hooks.unregister(handle) is True
    assert anyws.hooks.unregister(handle) is False
    anyws.artifacts.store(sid, "user_input", "x", b"x")
    assert calls == ["late"]


def test_before_delete_hook_can_cancel_and_after_delete_runs(anyws: Workspace) -> None:
    sid = anyws.sessions.create(name="h")
    anyws.artifacts.store(sid, "user_input", "keep.txt", b"precious")
    anyws.artifacts.store(sid, "user_input", "tmp.txt", b"scratch")
    path = anyws.sessions.get(sid)["path"]
    seen = []
    anyws.hooks.register(
        "BeforeArtifactDelete", lambda ctx: "cancel" if ctx["data"]["name"] == "keep.txt" else None
    )
    anyws.hooks.register(
        "AfterArtifactDelete", lambda ctx: seen.append((ctx["session_id"], ctx["data"]))
    )
    sub = anyws.events.subscribe("artifact.*")
    with pytest.raises(HookCancelled, match="cancelled by a BeforeArtifactDelete hook: keep.txt"):
        anyws.artifacts.delete(sid, "keep.txt")
    assert anyws.artifacts.get(sid, "keep.txt")["content"] == b"precious"
    assert anyws.storage.read(path + "/files/keep.txt") == b"precious"
    assert drain(anyws, sub) == []
    assert seen == []  # a cancelled delete is no delete
    anyws.artifacts.delete(sid, "tmp.txt")
    assert [a["name"] for a in anyws.artifacts.list(sid)] == ["keep.txt"]
    assert not anyws.storage.exists(path + "/files/tmp.txt")
    assert seen == [(sid, {"session_id": sid, "name": "tmp.txt"})]


def test_after_store_and_session_hooks(anyws: Workspace) -> None:
    seen = []
    for point in (
        "SessionStart",
        "SessionEnd",
        "SessionSuspend",
        "SessionResume",
        "AfterArtifactStore",
    ):
        anyws.hooks.register(
            point, lambda ctx: seen.append((ctx["point"], ctx["data"].get("status")))
        )
    sid = anyws.sessions.create(name="h")
    anyws.artifacts.store(sid, "user_input", "x", b"x")
    anyws.sessions.suspend(sid)
    anyws.sessions.resume(sid)
    anyws.sessions.complete(sid)
    assert seen == [
        ("SessionStart", "active"),
        ("AfterArtifactStore", None),
        ("SessionSuspend", "suspended"),
        ("SessionResume", "active"),
        ("SessionEnd", "completed"),
    ]


@pytest.mark.parametrize(
    "point, priority",
    [
        ("NoSuchPoint", "normal"),
        ("BeforeArtifactStore", "urgent"),
        ("BeforeArtifactStore", True),
        ("BeforeArtifactStore", [1]),
    ],
)
def test_bad_registrations(anyws: Workspace, point: str, priority) -> None:
    with pytest.raises(UsageError):
        anyws.hooks.register(point, lambda ctx: None, priority)


def test_hook_returning_nonsense_is_an_error(anyws: Workspace) -> None:
    sid = anyws.sessions.create(name="h")
    anyws.hooks.register("BeforeArtifactStore", lambda ctx: 42)
    with pytest.raises(UsageError, match="BeforeArtifactStore hook returned 42"):
        anyws.artifacts.store(sid, "user_input", "x", b"x")
    assert anyws.artifacts.list(sid) == []


def test_a_file_too_big_to_read_up_front_still_goes_through_the_store_hook(
    ws: Workspace, tmp_path: Path
) -> None:
    """Files over 1 MiB stored by path are streamed, not read up front; the hook still sees
    each (its content nil) and can cancel it: a policy hook cannot be passed by size."""
    sid = ws.sessions.create(name="h")
    seen = []

    def policy(ctx):
        seen.append((ctx["data"]["name"], ctx["data"]["content"]))
        return "cancel" if ctx["data"]["name"].endswith(".exe") else None

    ws.hooks.register("BeforeArtifactStore", policy)
    big = tmp_path / "big.exe"
    big.write_bytes(b"MZ" + b"\0" * (2 << 20))
    small = tmp_path / "small.txt"
    small.write_bytes(b"fine")
    with pytest.raises(HookCancelled, match="big.exe"):
        ws.artifacts.store_files(sid, [big], "user_input")
    assert ws.artifacts.list(sid) == []
    ok = tmp_path / "big.bin"
    ok.write_bytes(b"\1" * (2 << 20))
    ws.artifacts.store_files(sid, [ok, small], "user_input")
    assert seen == [("big.exe", None), ("big.bin", None), ("small.txt", b"fine")]
    assert ws.artifacts.get(sid, "big.bin")["content"] == b"\1" * (2 << 20)
