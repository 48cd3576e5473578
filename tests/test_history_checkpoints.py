"""Checkpoints, log, diff, restore, load and fork — library on both backends, CLI as a
subprocess."""

from __future__ import annotations

import json
import os
import random

import pytest

from conftest import loose
from spellfs import CheckpointNotFound, IntegrityError, UsageError
from spellfs.history.tree import FULL_EVERY, canonical


def _session(ws, **kw):
    return ws.sessions.create(name=kw.pop("name", "hist"), **kw)


def _names(ws, sid):
    return {a["name"]: a["content_hash"] for a in ws.artifacts.list(sid)}


def _dir(ws, sid):
    return ws.sessions.resolve(sid)


# -- save / checkpoints -------------------------------------------------------------
def test_save_numbers_records_and_counts(anyws):
    ws = anyws
    sid = _session(ws)
    ws.artifacts.store(sid, "user_input", "a.md", "one")
    assert ws.history.save(sid, "first") == 1
    ws.artifacts.store(sid, "user_input", "a.md", "two")
    ws.artifacts.store(sid, "user_input", "b.md", "bee")
    assert ws.history.save(sid) == 2
    ws.artifacts.delete(sid, "b.md")
    assert ws.history.save(sid, "third") == 3
    cps = ws.history.checkpoints(sid)
    assert [c["number"] for c in cps] == [1, 2, 3]
    assert [c["parent"] for c in cps] == [None, 1, 2]
    assert [(c["added"], c["changed"], c["removed"]) for c in cps] == [
        (1, 0, 0),
        (1, 1, 0),
        (0, 0, 1),
    ]
    assert [c["message"] for c in cps] == ["first", "", "third"]
    assert cps[1]["artifacts"] == 2 and len(cps[0]["tree"]) == 64
    # one line per checkpoint in checkpoints.yaml, a YAML sequence of flow mappings
    text = ws.storage.read(f"sessions/{_dir(ws, sid)}/checkpoints.yaml").decode()
    assert len(text.splitlines()) == 3 and all(line.startswith("- {") for line in text.splitlines())


def test_checkpoint_yaml_loads_with_ruamel(ws):
    from spellfs.store.yamlio import load_yaml

    sid = _session(ws)
    ws.history.save(sid, "a: colon 'and' \"quotes\"")
    rel = f"sessions/{_dir(ws, sid)}/checkpoints.yaml"
    doc = load_yaml(ws.storage.read(rel), rel)
    assert doc[0]["message"] == "a: colon 'and' \"quotes\""


def test_unchanged_save_writes_only_a_tree(ws):
    sid = _session(ws)
    for i in range(5):
        ws.artifacts.store(sid, "user_input", f"f{i}.txt", f"content {i}")
    assert ws.history.save(sid) == 1
    before = set(ws.objects)
    assert (
        ws.history.save(sid, "again") == 1
    )  # nothing changed since checkpoint 1: no new checkpoint
    assert set(ws.objects) == before and len(ws.history.checkpoints(sid)) == 1
    ws.artifacts.store(sid, "user_input", "f0.txt", "changed")
    assert ws.history.save(sid) == 2


def test_tables_survive_many_deltas_and_full_bases(anyws):
    ws = anyws
    sid = _session(ws)
    rng = random.Random(7)
    expected = {}
    n = 0
    for _ in range(1, 2 * FULL_EVERY + 6):
        for _ in range(rng.randint(1, 3)):
            name = f"n{rng.randint(0, 12)}.txt"
            if name in expected and rng.random() < 0.3:
                ws.artifacts.delete(sid, name)
            else:
                ws.artifacts.store(sid, "t", name, f"{name} {rng.random()}")
        changed = _names(ws, sid) != expected.get(n)
        n += changed
        assert ws.history.save(sid) == max(n, 1)  # a save with nothing changed makes no checkpoint
        expected[max(n, 1)] = _names(ws, sid)
    ws.history.trees._tables.clear()  # read every table back from the store
    dir = _dir(ws, sid)
    for n, names in expected.items():
        table = ws.history.snapshot(dir, n).table
        assert {k: r["hash"] for k, r in table.items()} == names, n
    trees = [ws.history.trees.tree(c["tree"]) for c in ws.history.checkpoints(sid)]
    assert any("table" in t for t in trees[1:]) and any("delta" in t for t in trees)
    assert max(t["depth"] for t in trees) < FULL_EVERY


def test_storage_grows_with_change_not_size(ws):
    ws.config.set("sessions.max_artifacts_per_session", 100000)
    sid = _session(ws)
    dir = _dir(ws, sid)
    contents = set()
    start = set(ws.objects)
    for i in range(200):
        aid = ws.artifacts.store(sid, "t", f"artifact-{i:05d}.txt", f"content number {i}")
        contents.add(aid["content_hash"])
        ws.history.save(sid)
    added = set(ws.objects) - start - contents
    tree_bytes = sum(ws.objects.stored_size(o) for o in added)
    total = tree_bytes + len(ws.storage.read(f"sessions/{dir}/checkpoints.yaml"))
    assert total / 200 < 2048, total  # the 1,000-checkpoint budget is 2 MiB: 2 KiB each


def test_save_hook_and_event(anyws):
    ws = anyws
    sid = _session(ws)
    seen = []
    ws.hooks.register(
        "SessionSave", lambda ctx: seen.append(ctx["data"]["message"]) or {"message": "hooked"}
    )
    sub = ws.events.subscribe("session.saved")
    ws.history.save(sid, "orig")
    assert seen == ["orig"]
    assert ws.history.checkpoints(sid)[0]["message"] == "hooked"
    ev = ws.events.receive(sub)
    assert ev["data"]["checkpoint"] == 1 and ev["data"]["session_id"] == sid
    ws.hooks.register("SessionSave", lambda ctx: "cancel", priority="highest")
    from spellfs import HookCancelled

    with pytest.raises(HookCancelled):
        ws.history.save(sid)
    assert len(ws.history.checkpoints(sid)) == 1


def test_current_session_is_the_default(anyws):
    ws = anyws
    sid = _session(ws)
    ws.sessions.set_current(sid)
    assert ws.history.save(None, "x") == 1
    ws.artifacts.store(None, "user_input", "a.txt", "a")
    assert ws.history.save("", "y") == 2
    assert len(ws.history.checkpoints(None)) == 2


# -- errors -----------------------------------------------------------------------
def test_diff_without_checkpoints_is_everything_since_creation(anyws):
    ws = anyws
    sid = _session(ws, tags=["t"])
    ws.artifacts.store(sid, "user_input", "notes.md", b"line\n")
    ws.state.set(f"session:{sid}:step", 1)
    d = ws.history.diff(sid)
    assert d["from"] == "creation" and d["to"] == "now"
    assert [a["name"] for a in d["artifacts"]["added"]] == ["notes.md"]
    assert d["artifacts"]["removed"] == d["artifacts"]["changed"] == [] and d["manifest"] == {}
    assert d["state"]["added"] == {"step": 1}


def test_cli_diff_of_a_session_never_saved(root, spell):
    sid = spell("new", "fresh", cwd=root).stdout.decode().strip()
    (root / "n.txt").write_text("n\n")
    assert spell("add", sid, str(root / "n.txt"), cwd=root).returncode == 0
    out = spell("diff", sid, cwd=root)
    assert out.returncode == 0
    assert out.stdout.decode().splitlines()[:2] == ["creation → now", "+ n.txt (2 bytes)"]


def test_unknown_and_invalid_checkpoints(anyws):
    ws = anyws
    sid = _session(ws)
    with pytest.raises(CheckpointNotFound, match="no checkpoints"):
        ws.history.restore(sid, 1)
    ws.history.save(sid)
    with pytest.raises(
        CheckpointNotFound, match=r"checkpoint not found: 9 in session .*\(it has checkpoint 1;"
    ):
        ws.history.restore(sid, 9)
    with pytest.raises(CheckpointNotFound):
        ws.history.fork(sid, 2)
    for bad in ("x", -1, 0, True, 1.5):
        with pytest.raises(UsageError):
            ws.history.diff(sid, bad)
    assert ws.history.diff(sid, "1")["from"] == 1 and ws.history.diff(sid, 1.0, "#1")["to"] == 1


def test_corrupt_tree_is_an_integrity_error_naming_it(ws):
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "a")
    ws.history.save(sid)
    tree = ws.history.checkpoints(sid)[0]["tree"]
    loose(ws)
    path = ws.objects.path(tree)
    os.chmod(path, 0o644)
    path.write_bytes(b'{"type": "spellfs/tree", "oops": 1}')
    ws.history.trees._trees.clear()
    ws.history.trees._tables.clear()
    with pytest.raises(IntegrityError, match=tree):
        ws.history.diff(sid, 1)
    # bytes that hash right but are not a tree
    ws.history.records(_dir(ws, sid))[0]["tree"] = ws.objects.put_bytes(b"not json at all")
    with pytest.raises(IntegrityError, match="corrupt tree object"):
        ws.history.restore(sid, 1)


def test_tree_that_parses_but_lacks_fields(anyws):
    ws = anyws
    sid = _session(ws)
    ws.history.save(sid)
    bad = ws.objects.put_bytes(canonical({"type": "spellfs/tree", "v": 1}))
    ws.history.records(_dir(ws, sid))[0]["tree"] = bad
    with pytest.raises(IntegrityError, match=f"corrupt tree object {bad}"):
        ws.history.fork(sid, 1)


# -- diff -----------------------------------------------------------------------
def test_diff_artifacts_text_binary_and_session_fields(anyws):
    ws = anyws
    sid = _session(ws, tags=["a", "b"], metadata={"k": 1, "gone": True})
    ws.artifacts.store(sid, "t", "notes.md", "line one\nline two\n")
    ws.artifacts.store(sid, "t", "blob.bin", b"\x00\x01\x02")
    ws.artifacts.store(sid, "t", "old.txt", "old")
    ws.artifacts.store(sid, "t", "same.txt", "same", {"description": "d1"})
    ws.state.set(f"session:{sid}:counter", 1)
    ws.state.set(f"session:{sid}:dropped", "x")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "notes.md", "line one\nline 2\n")
    ws.artifacts.store(sid, "t", "blob.bin", b"\x00\x01\x02\x03")
    ws.artifacts.delete(sid, "old.txt")
    ws.artifacts.store(sid, "t", "new.txt", "fresh")
    ws.artifacts.store(sid, "t", "same.txt", "same", {"description": "d2"})
    ws.sessions.update_metadata(sid, {"k": 2, "added": "y"})
    ws.sessions.set_manifest_fields(sid, tags=["b", "c"], metadata={"k": 2, "added": "y"})
    ws.sessions.suspend(sid)
    ws.state.set(f"session:{sid}:counter", 2)
    ws.state.delete(f"session:{sid}:dropped")
    ws.state.set(f"session:{sid}:fresh", [1])
    ws.history.save(sid)
    for d in (ws.history.diff(sid, 1, 2), ws.history.diff(sid, 1)):
        arts = d["artifacts"]
        assert [a["name"] for a in arts["added"]] == ["new.txt"]
        assert [a["name"] for a in arts["removed"]] == ["old.txt"]
        changed = {c["name"]: c for c in arts["changed"]}
        assert set(changed) == {"notes.md", "blob.bin", "same.txt"}
        assert "-line two\n+line 2\n" in changed["notes.md"]["diff"]
        assert changed["blob.bin"]["binary"] and changed["blob.bin"]["diff"] is None
        assert (changed["blob.bin"]["from"]["size"], changed["blob.bin"]["to"]["size"]) == (3, 4)
        assert not changed["same.txt"]["content_changed"]
        assert changed["same.txt"]["metadata"] == {"description": {"from": "d1", "to": "d2"}}
        assert d["status"] == {"from": "active", "to": "suspended"}
        assert d["tags"] == {"added": ["c"], "removed": ["a"]}
        assert d["metadata"] == {
            "added": {"added": "y"},
            "removed": {"gone": True},
            "changed": {"k": {"from": 1, "to": 2}},
        }
        assert d["state"] == {
            "added": {"fresh": [1]},
            "removed": {"dropped": "x"},
            "changed": {"counter": {"from": 1, "to": 2}},
        }
        assert d["summary"] == {"added": 1, "removed": 1, "changed": 3}
    assert ws.history.diff(sid, 1)["to"] == "now"
    assert ws.history.diff(sid, 2)["summary"] == {"added": 0, "removed": 0, "changed": 0}


def test_restore_version_with_same_content_is_no_change(anyws):
    ws = anyws
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "same")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "a.txt", "same")  # a new version, same content and metadata
    assert ws.history.diff(sid, 1)["summary"]["changed"] == 0


# -- restore / load --------------------------------------------------------------
def test_restore_makes_live_equal_and_erases_nothing(anyws):
    ws = anyws
    sid = _session(ws, tags=["t1"])
    dir = _dir(ws, sid)
    ws.artifacts.store(sid, "t", "keep.txt", "v1")
    ws.artifacts.store(sid, "t", "gone.txt", "bye")
    ws.state.set(f"session:{sid}:x", 1)
    ws.history.save(sid, "base")
    ws.artifacts.store(sid, "t", "keep.txt", "v2")
    ws.artifacts.delete(sid, "gone.txt")
    ws.artifacts.store(sid, "t", "extra.txt", "later")
    ws.sessions.set_manifest_fields(sid, name="renamed", tags=["t2"])
    ws.state.set(f"session:{sid}:x", 2)
    ws.history.save(sid, "later")
    records_before = ws.storage.read(f"sessions/{dir}/artifacts.yaml")
    r = ws.history.restore(sid, 1)
    assert (r["added"], r["changed"], r["removed"]) == (1, 1, 1)
    assert ws.storage.read(f"sessions/{dir}/artifacts.yaml").startswith(
        records_before
    )  # appended only
    assert sorted(_names(ws, sid)) == ["gone.txt", "keep.txt"]
    assert ws.artifacts.get(sid, "keep.txt")["content"] == b"v1"
    assert ws.artifacts.get(sid, "keep.txt")["metadata"]["version"] == 3
    assert ws.artifacts.get(sid, "keep.txt@2")["content"] == b"v2"  # history kept
    assert ws.storage.read(f"sessions/{dir}/files/gone.txt") == b"bye"
    assert not ws.storage.exists(f"sessions/{dir}/files/extra.txt")
    info = ws.sessions.get(sid)
    assert info["name"] == "hist" and info["tags"] == ["t1"]
    assert ws.state.get(f"session:{sid}:x") == 1
    assert [c["number"] for c in ws.history.checkpoints(sid)] == [1, 2]
    assert ws.history.diff(sid, 1)["summary"] == {"added": 0, "removed": 0, "changed": 0}
    ws.history.restore(sid, 2)  # and forward again
    assert ws.artifacts.get(sid, "keep.txt")["content"] == b"v2" and "extra.txt" in _names(ws, sid)


def test_load_restores_latest_and_activates(anyws):
    ws = anyws
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "a")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "b.txt", "b")
    ws.sessions.complete(sid)
    assert ws.history.load(sid) == sid
    assert ws.sessions.get(sid)["status"] == "active"
    assert sorted(_names(ws, sid)) == ["a.txt"]
    other = _session(ws, name="plain")
    ws.sessions.suspend(other)
    assert ws.history.load(other) == other and ws.sessions.get(other)["status"] == "active"


# -- fork ----------------------------------------------------------------------
def test_fork_shares_objects_and_sets_parent(anyws):
    ws = anyws
    sid = _session(ws, tags=["x"], metadata={"m": 1})
    ws.artifacts.store(sid, "t", "a.txt", "alpha", {"description": "first", "tags": ["q"]})
    ws.artifacts.store(sid, "t", "b.txt", "beta")
    ws.state.set(f"session:{sid}:s", "v")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "c.txt", "gamma")
    objects = set(ws.objects)
    fid = ws.history.fork(sid)  # latest checkpoint, not now
    assert set(ws.objects) == objects
    info = ws.sessions.get(fid)
    assert (
        info["parent_session_id"] == sid
        and info["tags"] == ["x"]
        and info["custom_metadata"] == {"m": 1}
    )
    assert _names(ws, fid) == {k: v for k, v in _names(ws, sid).items() if k != "c.txt"}
    meta = ws.artifacts.get(fid, "a.txt")["metadata"]
    assert meta["description"] == "first" and meta["tags"] == ["q"] and meta["version"] == 1
    assert ws.state.get(f"session:{fid}:s") == "v"
    assert ws.storage.read(f"sessions/{_dir(ws, fid)}/files/a.txt") == b"alpha"
    ws.artifacts.store(fid, "t", "a.txt", "changed in fork")
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"alpha"
    named = ws.history.fork(sid, 1, {"name": "branch", "tags": ["y"]})
    assert ws.sessions.get(named)["name"] == "branch" and ws.sessions.get(named)["tags"] == ["y"]
    with pytest.raises(UsageError, match="unknown fork option"):
        ws.history.fork(sid, 1, {"colour": "red"})


def test_fork_without_checkpoints_takes_now(anyws):
    ws = anyws
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "alpha")
    fid = ws.history.fork(sid)
    assert _names(ws, fid) == _names(ws, sid)


# -- command line ----------------------------------------------------------------
def test_cli_save_log_diff_restore_fork(root, spell):
    from spellfs import Workspace

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="cli")
        ws.artifacts.store(sid, "t", "a.txt", "one\n")
    w = ["-w", str(root)]
    r = spell(*w, "save", sid[:8], "-m", "first")
    assert r.returncode == 0 and r.stdout.decode().startswith("checkpoint 1: +1 ~0 -0"), r.stderr
    with Workspace.open(root) as ws:
        ws.artifacts.store(sid, "t", "a.txt", "two\n")
    assert spell(*w, "save", sid, "--json").returncode == 0
    log = json.loads(spell(*w, "log", sid, "--json").stdout)
    assert [(c["number"], c["message"]) for c in log] == [(1, "first"), (2, "")]
    table = spell(*w, "log", sid).stdout.decode()
    assert "first" in table and "#" in table
    d = spell(*w, "diff", sid, "1", "2").stdout.decode()
    assert "-one\n+two\n" in d and "0 added, 1 changed, 0 removed" in d
    dj = json.loads(spell(*w, "diff", sid, "1", "--json").stdout)
    assert dj["to"] == "now" and dj["artifacts"]["changed"][0]["name"] == "a.txt"
    r = spell(*w, "restore", sid, "1")
    assert r.returncode == 0 and "checkpoint 1" in r.stdout.decode()
    r = spell(*w, "restore", sid, "7")
    assert r.returncode == 2 and b"checkpoint not found: 7" in r.stderr
    r = spell(*w, "diff", sid, "banana")
    assert r.returncode == 2 and b"invalid checkpoint" in r.stderr
    r = spell(*w, "fork", sid, "2", "--name", "branch")
    assert r.returncode == 0
    fid = r.stdout.decode().strip()
    with Workspace.open(root) as ws:
        assert ws.artifacts.get(fid, "a.txt")["content"] == b"two\n"
        assert ws.artifacts.get(sid, "a.txt")["content"] == b"one\n"
        assert ws.sessions.get(fid)["parent_session_id"] == sid
    r = spell(*w, "log", "nosuchsession")
    assert r.returncode == 2


def test_save_after_a_corrupt_parent_writes_a_full_table(ws):
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "a")
    ws.history.save(sid)
    loose(ws)
    path = ws.objects.path(ws.history.checkpoints(sid)[0]["tree"])
    os.chmod(path, 0o644)
    path.write_bytes(b"broken")
    ws.history.trees._trees.clear()
    ws.history.trees._tables.clear()
    ws.artifacts.store(sid, "t", "b.txt", "b")
    assert ws.history.save(sid) == 2
    assert sorted(ws.history.snapshot(_dir(ws, sid), 2).table) == ["a.txt", "b.txt"]
    assert "table" in ws.history.trees.tree(ws.history.checkpoints(sid)[1]["tree"])


@pytest.mark.parametrize("bad", ["²", "#²", "9" * 5000])
def test_checkpoint_digits_int_refuses_are_a_usage_error(bad):
    from spellfs.history.checkpoint_log import checkpoint_number

    with pytest.raises(UsageError):
        checkpoint_number(bad)


# -- found by mutation testing: every corrupt object is named by kind and id -------------


def _tree(ws, **fields):
    from spellfs.history.tree import TreeStore

    base = {"type": "spellfs/tree", "v": 1, "parent": None, "depth": 0}
    return TreeStore(ws.objects), ws.objects.put_bytes(canonical({**base, **fields}))


def _integrity(call, *args) -> str:
    with pytest.raises(IntegrityError) as info:
        call(*args)
    return str(info.value)


def test_each_corrupt_part_of_a_checkpoint_is_named_exactly(anyws):
    from spellfs import ObjectNotFound
    from spellfs.store import hash_bytes

    ws = anyws
    put = lambda v: ws.objects.put_bytes(canonical(v))  # noqa: E731
    manifest, state = put({"id": "x"}), put({"k": 1})
    page = put({"type": "spellfs/page", "v": 1, "records": [{"name": "a.txt", "seq": 1}]})
    table = put({"type": "spellfs/table", "v": 1, "count": 1, "pages": [page]})
    trees, good = _tree(ws, manifest=manifest, state=state, table=table)
    snap = trees.snapshot(good)
    assert (snap.manifest, snap.state, snap.table) == (
        {"id": "x"},
        {"k": 1},
        {"a.txt": {"name": "a.txt", "seq": 1}},
    )

    absent = hash_bytes(b"never stored")
    for kind, fields in (
        ("manifest", {"manifest": absent, "state": state}),
        ("state", {"manifest": manifest, "state": absent}),
        ("table", {"manifest": manifest, "state": state, "table": absent}),
    ):
        trees, oid = _tree(ws, **{"table": table, **fields})
        with pytest.raises(ObjectNotFound) as info:
            trees.snapshot(oid)
        assert str(info.value) == (
            f"{kind} object not found: {absent} (run `spell fsck`; "
            "`spell pull` may bring it from a remote)"
        )
    listed = put([1, 2])
    for fields, message in (
        ({"manifest": listed, "state": state}, "manifest or state is not a mapping"),
        ({"manifest": manifest, "state": listed}, "manifest or state is not a mapping"),
    ):
        trees, oid = _tree(ws, table=table, **fields)
        assert _integrity(trees.snapshot, oid) == f"corrupt tree object {oid}: {message}"
    other_type = put({"type": "spellfs/page", "v": 1, "manifest": manifest, "state": state})
    assert _integrity(trees.tree, other_type) == (
        f"corrupt tree object {other_type}: not a spellfs tree"
    )
    not_json = ws.objects.put_bytes(b"{not json")
    assert _integrity(trees.tree, not_json).startswith(
        f"corrupt tree object {not_json}: not JSON ("
    )
    deep = ws.objects.put_bytes(b"[" * 200 + b"]" * 200)
    assert _integrity(trees.tree, deep) == (
        f"tree object {deep}: nested deeper than 100 levels (refused)"
    )
    for bad_table, message in (
        (put({"type": "spellfs/table", "v": 1}), "no page list"),
        (put({"type": "spellfs/page", "v": 1, "pages": []}), "not a spellfs table"),
    ):
        trees, oid = _tree(ws, manifest=manifest, state=state, table=bad_table)
        assert _integrity(trees.table, oid) == f"corrupt table object {bad_table}: {message}"
    for records in ([{"seq": 1}], {"a.txt": {}}, ["a.txt"]):
        bad_page = put({"type": "spellfs/page", "v": 1, "records": records})
        tab = put({"type": "spellfs/table", "v": 1, "count": 1, "pages": [bad_page]})
        trees, oid = _tree(ws, manifest=manifest, state=state, table=tab)
        assert _integrity(trees.table, oid) == (
            f"corrupt page object {bad_page}: records are not artifact records"
        )
    not_a_page = put({"type": "spellfs/table", "v": 1, "records": []})
    tab = put({"type": "spellfs/table", "v": 1, "count": 0, "pages": [not_a_page]})
    trees, oid = _tree(ws, manifest=manifest, state=state, table=tab)
    assert _integrity(trees.table, oid) == (f"corrupt page object {not_a_page}: not a spellfs page")


def test_same_content_ignores_only_when_and_how_a_version_was_made():
    from spellfs.history.tree import same_content

    a = {"name": "a.txt", "hash": "h1", "seq": 1, "version": 1, "created_at": "t1"}
    assert same_content(None, None)
    assert not same_content(a, None) and not same_content(None, a)
    assert same_content(a, {**a, "seq": 9, "version": 3, "created_at": "t2", "created_by": "x"})
    assert not same_content(a, {**a, "hash": "h2"})
    assert not same_content(a, {**a, "tags": ["new"]})  # a field only one of them has
    assert not same_content({**a, "tags": ["old"]}, a)


def test_a_new_process_saves_on_top_of_checkpoints_it_did_not_write(root):
    from spellfs import Workspace

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="s")
        ws.artifacts.store(sid, "t", "a.txt", "one")
        ws.history.save(sid)
    with Workspace.open(root) as ws:  # nothing cached: the parent's table is read back
        ws.artifacts.store(sid, "t", "a.txt", "two")
        ws.artifacts.store(sid, "t", "b.txt", "bee")
        assert ws.history.save(sid) == 2
        summary = ws.history.diff(sid, 1, 2)["summary"]
        assert (summary["added"], summary["changed"], summary["removed"]) == (1, 1, 0)
        assert ws.history.snapshot(ws.sessions.resolve(sid), 2).table["a.txt"]["version"] == 2


def test_tree_objects_are_canonical_json_so_equal_content_is_one_object():
    """The on-disk form (module docstring): sorted keys, no whitespace, UTF-8, no NaN."""
    value = {"b": 1, "a": [1.5, "é", None, True], "c": {"z": 0, "y": "\u2028"}}
    assert canonical(value) == '{"a":[1.5,"é",null,true],"b":1,"c":{"y":"\u2028","z":0}}'.encode()
    assert canonical(json.loads(canonical(value))) == canonical(value)
    with pytest.raises(ValueError):
        canonical({"x": float("nan")})


def test_full_tables_are_paged_by_sequence_number(ws):
    from spellfs.history.tree import PAGE_SEQS

    sid = _session(ws)
    ws.artifacts.store_many(sid, [("t", f"f{i:03d}.txt", b"%d" % i, None) for i in range(130)])
    ws.history.save(sid)
    trees = ws.history.trees
    tree = trees.tree(ws.history.checkpoints(sid)[0]["tree"])
    table = trees.load_json(tree["table"], "table")
    assert table["count"] == 130 and PAGE_SEQS == 64
    pages = [trees.load_json(p, "page")["records"] for p in table["pages"]]
    assert [[r["seq"] for r in page] for page in pages] == [
        list(range(1, 64)),
        list(range(64, 128)),
        list(range(128, 131)),
    ]


# -- found by mutation testing of history/checkpoints.py ---------------------------------------


def _usage(call, *args) -> str:
    with pytest.raises(UsageError) as info:
        call(*args)
    return str(info.value)


def _records(ws, sid) -> list[dict]:
    from spellfs.store import parse_records

    rel = f"sessions/{_dir(ws, sid)}/artifacts.yaml"
    return [r for _, r in parse_records(ws.storage.read(rel), rel)]


def test_checkpoint_numbers_in_every_form_callers_send_and_the_errors_they_get():
    from spellfs.history.checkpoint_log import checkpoint_number

    assert [checkpoint_number(v) for v in (3, 3.0, "3", " #3 ", b"3", b"#3")] == [3] * 6
    hint = "(a checkpoint number ≥ 1, see `spell log`)"
    assert _usage(checkpoint_number, True) == (
        "invalid checkpoint: True (a checkpoint number, see `spell log`)"
    )
    assert _usage(checkpoint_number, 0) == f"invalid checkpoint: '0' {hint}"
    # bytes that are not UTF-8 are decoded with replacement, then refused like any other text
    assert _usage(checkpoint_number, b"\xff1") == f"invalid checkpoint: '\ufffd1' {hint}"
    assert _usage(checkpoint_number, "X3") == f"invalid checkpoint: 'X3' {hint}"
    long = "".join(str(i % 10) for i in range(39)) + "abcdef"
    assert _usage(checkpoint_number, long) == f"invalid checkpoint: {long[:40]!r} {hint}"


def test_missing_checkpoint_message_names_the_range_there_is(anyws):
    ws = anyws
    sid = _session(ws)
    hint = f"see `spell log {sid[:8]}`)"
    with pytest.raises(CheckpointNotFound) as info:
        ws.history.snapshot(_dir(ws, sid), 1)
    assert str(info.value) == (
        f"checkpoint not found: 1 in session {sid[:8]} (it has no checkpoints; {hint}"
    )
    assert ws.history.latest_number(_dir(ws, sid)) is None
    for n in (1, 2, 3):
        ws.artifacts.store(sid, "t", "a.txt", f"v{n}")
        ws.history.save(sid)
        with pytest.raises(CheckpointNotFound) as info:
            ws.history.restore(sid, 7)
        have = "it has checkpoint 1" if n == 1 else f"it has checkpoints 1–{n}"
        assert str(info.value) == f"checkpoint not found: 7 in session {sid[:8]} ({have}; {hint}"
    assert ws.history.latest_number(_dir(ws, sid)) == 3


def test_save_takes_a_bytes_message_and_refuses_any_other_type(anyws):
    ws = anyws
    sid = _session(ws)
    assert ws.history.save(sid, b"caf\xc3\xa9 \xff") == 1
    assert ws.history.checkpoints(sid)[0]["message"] == "café \ufffd"
    ws.artifacts.store(sid, "t", "a.txt", "a")
    assert _usage(ws.history.save, sid, 7) == (
        "invalid checkpoint message: expected a string, got int"
    )
    assert len(ws.history.checkpoints(sid)) == 1


def test_save_hook_gets_the_session_and_a_hook_that_leaves_the_message_keeps_it(anyws):
    ws = anyws
    sid = _session(ws)
    seen = []
    ws.hooks.register("SessionSave", lambda ctx: seen.append(ctx) or {"extra": 1})
    ws.history.save(sid, "mine")
    assert seen[0]["session_id"] == sid
    assert seen[0]["data"] == {"session_id": sid, "name": "hist", "message": "mine", "extra": 1}
    assert ws.history.checkpoints(sid)[0]["message"] == "mine"


def test_save_records_a_hand_edit_before_it_checkpoints(ws):
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "stored")
    (ws.root / "sessions" / _dir(ws, sid) / "files" / "a.txt").write_bytes(b"edited by hand")
    ws.history.save(sid)
    table = ws.history.snapshot(_dir(ws, sid), 1).table
    assert ws.objects.get(table["a.txt"]["hash"]) == b"edited by hand"


def test_a_new_process_saves_only_when_the_artifacts_manifest_or_state_changed(root):
    from spellfs import Workspace

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="s")
        ws.artifacts.store(sid, "t", "a.txt", "one")
        ws.state.set(f"session:{sid}:k", 1)
        ws.history.save(sid)
    with Workspace.open(root) as ws:  # the whole table is compared: nothing changed
        assert ws.history.save(sid) == 1
    with Workspace.open(root) as ws:
        ws.state.set(f"session:{sid}:k", 2)  # only the state
        assert ws.history.save(sid) == 2
    with Workspace.open(root) as ws:
        ws.sessions.set_manifest_fields(sid, description="now described")  # only the manifest
        assert ws.history.save(sid) == 3
    with Workspace.open(root) as ws:
        assert ws.history.save(sid) == 3


def test_restore_appends_what_differs_in_sequence_order_with_new_sequence_numbers(anyws):
    ws = anyws
    sid = _session(ws)
    # stored in an order that is not the names' order; keep.txt (unchanged) comes first
    for name in ("keep.txt", "z.txt", "a.txt", "m.txt"):
        ws.artifacts.store(sid, "t", name, f"{name} one")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "z.txt", "z two")
    ws.artifacts.store(sid, "t", "a.txt", "a two")
    ws.artifacts.delete(sid, "m.txt")
    ws.artifacts.store(sid, "t", "new.txt", "new")
    ws.history.save(sid)
    before = _records(ws, sid)
    top = max(r["seq"] for r in before)
    sub = ws.events.subscribe("session.restored")
    result = ws.history.restore(sid, 1)
    expected = {
        "session_id": sid,
        "checkpoint": 1,
        "added": 1,
        "changed": 2,
        "removed": 1,
        "kept": [],
        "saved": None,
        "unrecorded": [],
    }
    assert result == expected
    assert ws.events.receive(sub)["data"] == expected
    new = _records(ws, sid)[len(before) :]
    assert [(r["seq"], r["name"], r.get("op")) for r in new] == [
        (top + 1, "z.txt", None),
        (top + 2, "a.txt", None),
        (top + 3, "m.txt", None),
        (top + 4, "new.txt", "delete"),
    ]
    snap = ws.history.snapshot(_dir(ws, sid), 1).table
    for r in new:
        assert r["restored_from"] == 1 and r["created_by"] == ws.actor
        assert r["created_at"] == new[0]["created_at"] > snap["z.txt"]["created_at"]
        if r.get("op") is None:
            assert r["hash"] == snap[r["name"]]["hash"]
            assert "version" not in r  # a reader numbers versions by record order
    assert ws.history.restore(sid, 1)["changed"] == 0  # now equal: nothing more appended
    assert len(_records(ws, sid)) == len(before) + 4


def test_restore_guard_stops_only_for_edits_it_would_overwrite_and_force_keeps_them(ws):
    from spellfs import UnrecordedChanges

    sid = _session(ws)
    dir = _dir(ws, sid)
    files = ws.root / "sessions" / dir / "files"
    for name in ("a.txt", "b.txt"):
        ws.artifacts.store(sid, "t", name, f"{name} one")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "a.txt", "a two")
    ws.artifacts.store(sid, "t", "d.txt", "dee")
    ws.history.save(sid)  # restoring 1 rewrites a.txt, deletes d.txt and leaves b.txt

    def refused(name: str) -> str:
        with pytest.raises(UnrecordedChanges) as info:
            ws.history.restore(sid, 1)
        return str(info.value)

    (files / "d.txt").write_bytes(b"dee by hand")  # a file the restore would delete
    assert refused("d.txt") == (
        f"restore would overwrite or delete unrecorded changes: sessions/{dir}/files/: d.txt "
        f"(record them with `spell save {sid[:8]}` first, or pass --force: they are kept "
        "first, then it goes on)"
    )
    (files / "d.txt").write_bytes(b"dee")
    (files / "a.txt").write_bytes(b"a by hand")  # a file the restore would overwrite
    assert "files/: a.txt (" in refused("a.txt")
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"a two"
    (files / "a.txt").write_bytes(b"a two")
    (files / "b.txt").write_bytes(b"b by hand")  # not touched by the restore: it goes on
    assert ws.history.restore(sid, 1)["kept"] == []
    assert (files / "b.txt").read_bytes() == b"b by hand"
    assert ws.worktree.scan(dir).modified.keys() == {"b.txt"}
    assert (files / "a.txt").read_bytes() == b"a.txt one" and not (files / "d.txt").exists()
    ws.history.restore(sid, 2, force=True)  # b.txt is the same in 2: still not touched
    (files / "a.txt").write_bytes(b"a by hand again")
    assert ws.history.restore(sid, 1, force=True)["kept"] == ["a.txt@5"]
    assert ws.artifacts.get(sid, "a.txt@5")["content"] == b"a by hand again"
    assert (files / "a.txt").read_bytes() == b"a.txt one"


@pytest.mark.parametrize("force", [False, True])
def test_a_hand_edit_saved_while_a_restore_rewrites_copies_is_never_overwritten(
    ws, monkeypatch, force
):
    """Red-team F23: a restore looks for hand edits first, then (after its records land)
    rewrites the copies, for seconds in a large session. An editor that saves a copy the
    restore is about to rewrite or delete, after that look, must not lose it: the copy stays as
    the editor left it, `status` shows it and `save` records it. An interrupted restore's
    in-flight repair never takes it for a copy of its own either."""
    from spellfs.history.restores import Restores
    from spellfs.store import hash_bytes

    sid = _session(ws)
    dir = _dir(ws, sid)
    files = ws.root / "sessions" / dir / "files"
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        ws.artifacts.store(sid, "t", name, f"{name} one")
    ws.history.save(sid)
    for name in ("a.txt", "b.txt", "c.txt"):
        ws.artifacts.store(sid, "t", name, f"{name} two")
    ws.artifacts.store(sid, "t", "e.txt", "e two")
    ws.history.save(sid)  # restoring 1 rewrites a, b and c and deletes e
    hand = {"b.txt": b"b by hand meanwhile", "e.txt": b"e by hand meanwhile"}
    real = Restores._materialize

    def editor_saves_just_before(self, dir, rec, *rest):
        if rec["name"] in hand:  # the restore is about to write (or remove) this copy
            (files / rec["name"]).write_bytes(hand[rec["name"]])
        return real(self, dir, rec, *rest)

    monkeypatch.setattr(Restores, "_materialize", editor_saves_just_before)
    result = ws.history.restore(sid, 1, force=force)
    monkeypatch.undo()
    log = ws.log(dir)
    log.refresh()
    recorded = {v["hash"] for vs in log.versions.values() for v in vs}
    for name, content in hand.items():
        assert (files / name).read_bytes() == content or hash_bytes(content) in recorded, name
    assert (files / "b.txt").read_bytes() == hand["b.txt"]  # left for status and save
    assert (files / "a.txt").read_bytes() == b"a.txt one"  # the rest is restored
    assert (files / "c.txt").read_bytes() == b"c.txt one"
    assert result["unrecorded"] == ["b.txt", "e.txt"]  # the CLI names them
    wc = ws.worktree.scan(dir)
    assert set(wc.modified) == {"b.txt"} and set(wc.added) == {"e.txt"}, wc
    ws.history.save(sid)  # save records them as versions by hand
    assert ws.artifacts.get(sid, "b.txt")["content"] == hand["b.txt"]
    assert ws.artifacts.get(sid, "e.txt")["content"] == hand["e.txt"]

    # A restore that fails after an editor saved: its in-flight repair puts back its own
    # copies only; the edit (content only the disk has) stays.
    def editor_then_interrupt(self, dir, rec, *rest):
        if rec["name"] == "c.txt":
            raise KeyboardInterrupt
        if rec["name"] == "b.txt":
            (files / "b.txt").write_bytes(b"b by hand again")
        return real(self, dir, rec, *rest)

    monkeypatch.setattr(Restores, "_materialize", editor_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        ws.history.restore(sid, 2, force=force)
    monkeypatch.undo()
    assert (files / "b.txt").read_bytes() == b"b by hand again"
    assert "b.txt" in ws.worktree.scan(dir).modified


def test_restore_leaves_artifacts_over_the_copy_limit_out_of_files(ws):
    ws.config.set("watch.materialize_max_bytes", 10)
    sid = _session(ws)
    files = ws.root / "sessions" / _dir(ws, sid) / "files"
    ws.artifacts.store(sid, "t", "a.txt", "small")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "a.txt", "x" * 11)  # over the limit: no copy in files/
    ws.artifacts.store(sid, "t", "b.txt", "y" * 10)  # at the limit: a copy
    ws.history.save(sid)
    ws.history.restore(sid, 1)
    assert (files / "a.txt").read_bytes() == b"small" and not (files / "b.txt").exists()
    ws.history.restore(sid, 2)
    assert not (files / "a.txt").exists()  # the small copy is gone, not left stale
    assert (files / "b.txt").read_bytes() == b"y" * 10
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"x" * 11


def test_load_makes_the_session_active_and_takes_force(ws):
    from spellfs import UnrecordedChanges

    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "one")
    ws.sessions.suspend(sid)
    ws.history.save(sid)  # the checkpoint holds status "suspended"
    ws.sessions.resume(sid)
    ws.artifacts.store(sid, "t", "a.txt", "two")
    sub = ws.events.subscribe("session.loaded")
    assert ws.history.load(sid) == sid
    assert ws.sessions.get(sid)["status"] == "active"
    assert ws.events.receive(sub)["data"] == {"session_id": sid}
    ws.artifacts.store(sid, "t", "a.txt", "three")
    path = ws.root / "sessions" / _dir(ws, sid) / "files" / "a.txt"
    path.write_bytes(b"by hand")
    with pytest.raises(UnrecordedChanges):
        ws.history.load(sid)
    ws.history.load(sid, force=True)
    assert path.read_bytes() == b"one"
    assert ws.artifacts.get(sid, "a.txt@5")["content"] == b"by hand"
    # an active session without checkpoints: load changes nothing on disk
    other = _session(ws, name="plain")
    manifest = f"sessions/{_dir(ws, other)}/session.yaml"
    before = ws.storage.read(manifest)
    assert ws.history.load(other) == other
    assert ws.storage.read(manifest) == before


def test_diff_defaults_to_the_latest_checkpoint_and_now_with_hand_changes(ws):
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "one\n")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "b.txt", "bee\n")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "c.txt", "sea\n")
    (ws.root / "sessions" / _dir(ws, sid) / "files" / "a.txt").write_bytes(b"one\nmore\n")
    for d in (ws.history.diff(sid), ws.history.diff(sid, "", ""), ws.history.diff(sid, 2, "now")):
        assert (d["from"], d["to"]) == (2, "now")
        assert [a["name"] for a in d["artifacts"]["added"]] == ["c.txt"]
        assert [m["name"] for m in d["unrecorded"]["modified"]] == ["a.txt"]
    d = ws.history.diff(sid, 1, 2)
    assert [a["name"] for a in d["artifacts"]["added"]] == ["b.txt"] and "unrecorded" not in d


def test_fork_options_names_event_and_description(anyws):
    ws = anyws
    sid = _session(ws, description="first words", metadata={"m": 1, "k": "old"})
    ws.artifacts.store(sid, "t", "a.txt", "alpha")
    ws.history.save(sid)
    ws.sessions.set_manifest_fields(sid, description="later words")
    ws.artifacts.store(sid, "t", "b.txt", "beta")
    ws.history.save(sid)
    assert _usage(ws.history.fork, sid, 1, "name") == (
        "invalid fork options: expected a table (name, description, tags, metadata)"
    )
    assert _usage(ws.history.fork, sid, 1, {"colour": "red"}) == (
        "unknown fork option: colour (known: name, description, tags, metadata)"
    )
    sub = ws.events.subscribe("session.forked")
    fid = ws.history.fork(sid, 1, {"description": None, "metadata": {"k": "new"}})
    assert ws.events.receive(sub)["data"] == {
        "session_id": fid,
        "parent_session_id": sid,
        "checkpoint": 1,
    }
    info = ws.sessions.get(fid)
    assert info["name"] == "hist (fork 1)"
    assert info["description"] == "first words"  # the checkpoint's, not the session's now
    assert info["custom_metadata"] == {"m": 1, "k": "new"}
    described = ws.sessions.get(ws.history.fork(sid, "", {"description": "mine"}))
    assert described["description"] == "mine" and described["name"] == "hist (fork 2)"
    assert sorted(_names(ws, described["id"])) == ["a.txt", "b.txt"]  # "": the latest


def test_fork_names_count_past_the_highest_fork_of_the_same_name(anyws):
    ws = anyws
    sid = _session(ws, name="plan")
    f1 = ws.history.fork(sid)
    assert ws.sessions.get(f1)["name"] == "plan (fork 1)"
    ws.sessions.complete(f1)  # finished forks still hold their number
    assert ws.sessions.get(ws.history.fork(sid))["name"] == "plan (fork 2)"
    assert ws.sessions.get(ws.history.fork(f1))["name"] == "plan (fork 3)"  # a fork of a fork
    _session(ws, name="plan (fork 10)")
    _session(ws, name="other (fork 50)")
    _session(ws, name="plan (fork x)")
    assert ws.sessions.get(ws.history.fork(sid))["name"] == "plan (fork 11)"
    other = _session(ws, name="solo")
    assert ws.sessions.get(ws.history.fork(other))["name"] == "solo (fork 1)"
    # an empty name is no name: the fork must not be named exactly like its source
    assert ws.sessions.get(ws.history.fork(other, None, {"name": ""}))["name"] == "solo (fork 2)"


def test_fork_records_start_again_at_sequence_one_in_the_sources_order(anyws):
    from spellfs.model.artifact_log import identity_problems

    ws = anyws
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "z.txt", "zed")
    ws.artifacts.store(sid, "t", "a.txt", "a one")
    ws.artifacts.store(sid, "t", "a.txt", "a two")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "a.txt", "a three")
    ws.history.restore(sid, 1)  # a.txt@4 is "a two", restored_from 1
    ws.history.save(sid)
    fid = ws.history.fork(sid, 2)
    recs = _records(ws, fid)
    assert [(r["seq"], r["name"], r["version"]) for r in recs] == [(1, "z.txt", 1), (2, "a.txt", 1)]
    assert all("restored_from" not in r for r in recs)
    assert ws.artifacts.get(fid, "a.txt")["content"] == b"a two"
    assert [a["sequence"] for a in ws.artifacts.list(fid)] == [1, 2]
    assert identity_problems(ws, _dir(ws, fid)) == []


def test_a_fork_that_fails_part_way_leaves_no_session(ws):
    from spellfs import ObjectNotFound

    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "alpha")
    ws.artifacts.store(sid, "t", "b.txt", "beta")
    ws.history.save(sid)
    loose(ws)
    lost = ws.objects.path(ws.artifacts.get(sid, "b.txt")["metadata"]["content_hash"])
    lost.unlink()
    dirs = sorted(p.name for p in (ws.root / "sessions").iterdir())
    with pytest.raises(ObjectNotFound):
        ws.history.fork(sid)
    assert sorted(p.name for p in (ws.root / "sessions").iterdir()) == dirs
    assert [s["id"] for s in ws.sessions.list({"status": "all"})] == [sid]


def test_replay_calls_reach_the_replay_module(tmp_path):
    from spellfs import ReplayError, Workspace
    from spellfs.history.runs import begin_run

    with Workspace.in_memory() as ws:
        sid = ws.sessions.create(name="m")
        with pytest.raises(ReplayError) as info:
            ws.history.replay(sid)
        assert str(info.value) == (
            f"nothing to replay: session {sid[:8]} has no recorded runs (runs are recorded by "
            "`spell run`)"
        )
        assert not ws.history.can_replay(sid) and ws.history.list_replayable() == []
        run = begin_run(ws, tmp_path / "m.lua", b"--", [])
        ws.artifacts.store(sid, "t", "a.txt", "a")
        run.finish(0)
        assert ws.history.can_replay(sid)
        meta = ws.history.replay_metadata(sid)
        assert (meta["session_id"], meta["run_count"]) == (sid, 1)
        assert [r["session_id"] for r in ws.history.list_replayable()] == [sid]
        with pytest.raises(ReplayError, match="^cannot replay in a memory workspace"):
            ws.history.replay(sid)


def test_a_merge_rewriting_the_records_between_two_saves_is_in_the_next_checkpoint(ws):
    """The O(change) save applies only the records appended since this process's last save;
    after the record file is replaced (a `git merge` inserting another clone's lines) it must
    compare the whole table instead."""
    from spellfs.names import now
    from spellfs.store import encode_record

    sid = _session(ws)
    dir = _dir(ws, sid)
    ws.artifacts.store(sid, "t", "a.txt", "alpha")
    ws.history.save(sid)
    rel = f"sessions/{dir}/artifacts.yaml"
    (mine,) = _records(ws, sid)
    theirs = {**mine, "seq": 2, "name": "merged.txt", "created_at": now()}
    theirs["hash"] = ws.objects.put_bytes(b"from the other clone")
    theirs["size"] = len(b"from the other clone")
    (ws.root / "sessions" / dir / "files" / "merged.txt").write_bytes(b"from the other clone")
    ws.storage.write(rel, encode_record(theirs) + ws.storage.read(rel))  # a new file
    ws.artifacts.store(sid, "t", "b.txt", "beta")
    assert ws.history.save(sid) == 2
    assert sorted(ws.history.snapshot(dir, 2).table) == ["a.txt", "b.txt", "merged.txt"]
    assert ws.history.checkpoints(sid)[1]["added"] == 2


def test_a_replaced_checkpoint_log_is_read_again_whole(anyws):
    from spellfs.store import encode_record

    ws = anyws
    sid = _session(ws)
    dir = _dir(ws, sid)
    for message in ("one", "two"):
        ws.artifacts.store(sid, "t", "a.txt", message)
        ws.history.save(sid, message)
    first, second = ws.history.checkpoints(sid)  # read, so the log is cached
    rel = f"sessions/{dir}/checkpoints.yaml"
    replaced = (
        encode_record({**first, "message": "one, as the other clone wrote it"})
        + encode_record(second)
        + encode_record({**second, "number": 3, "parent": 2, "message": "three"})
    )
    ws.storage.write(rel, replaced)
    assert [c["message"] for c in ws.history.checkpoints(sid)] == [
        "one, as the other clone wrote it",
        "two",
        "three",
    ]
    assert ws.history.latest_number(dir) == 3


def test_a_checkpoint_log_cut_short_in_place_is_read_again_whole(ws):
    sid = _session(ws)
    dir = _dir(ws, sid)
    for message in ("one", "two"):
        ws.artifacts.store(sid, "t", "a.txt", message)
        ws.history.save(sid, message)
    assert ws.history.latest_number(dir) == 2
    path = ws.root / "sessions" / dir / "checkpoints.yaml"
    first = path.read_bytes().splitlines(keepends=True)[0]
    with open(path, "r+b") as f:  # the same file (inode), shorter: an editor saving in place
        f.truncate(len(first))
    assert [c["message"] for c in ws.history.checkpoints(sid)] == ["one"]
    assert ws.history.save(sid, "again") == 2


def test_checkpoint_record_and_event_fields(anyws):
    ws = anyws
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "a")
    created = ws.sessions.get(sid)["created_at"]
    sub = ws.events.subscribe("session.saved")
    ws.history.save(sid, "first")
    (cp,) = ws.history.checkpoints(sid)
    assert set(cp) == {
        "number",
        "time",
        "message",
        "tree",
        "parent",
        "added",
        "changed",
        "removed",
        "artifacts",
        "by",
        "seq",
    }
    assert cp["by"] == ws.actor and cp["time"] >= created and cp["seq"] == 1
    assert ws.events.receive(sub)["data"] == {
        "session_id": sid,
        "checkpoint": 1,
        "message": "first",
        "tree": cp["tree"],
    }


def test_a_new_process_writes_a_delta_with_counts_against_the_latest_checkpoint(root):
    from spellfs import Workspace

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="s")
        for name in ("a.txt", "b.txt", "c.txt"):
            ws.artifacts.store(sid, "t", name, name)
        ws.history.save(sid)
    with Workspace.open(root) as ws:
        ws.artifacts.store(sid, "t", "a.txt", "changed")
        ws.artifacts.delete(sid, "b.txt")
        ws.artifacts.store(sid, "t", "d.txt", "new")
        assert ws.history.save(sid) == 2
        cp = ws.history.checkpoints(sid)[1]
        assert (cp["added"], cp["changed"], cp["removed"], cp["artifacts"]) == (1, 1, 1, 3)
        tree = ws.history.trees.tree(cp["tree"])
        assert tree["parent"] == ws.history.checkpoints(sid)[0]["tree"] and "delta" in tree
    with Workspace.open(root) as ws:
        assert ws.history.save(sid, force=True) == 3  # forced: a new one with nothing changed


def test_a_run_that_only_saves_a_session_gets_a_run_record_in_it(tmp_path, anyws):
    from spellfs.history.runs import begin_run

    ws = anyws
    sid = _session(ws)
    run = begin_run(ws, tmp_path / "save.lua", b"Session.save()", [])
    ws.history.save(sid, "from a script")
    (record,) = run.finish(0)
    assert record["session_id"] == sid and record["artifacts"] == []


def test_a_restore_inside_a_run_is_in_the_runs_record(tmp_path, anyws):
    from spellfs.history.runs import begin_run

    ws = anyws
    sid = _session(ws)
    ws.artifacts.store(sid, "t", "a.txt", "one")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "a.txt", "two")
    ws.artifacts.store(sid, "t", "b.txt", "bee")
    run = begin_run(ws, tmp_path / "restore.lua", b"Session.restore(sid, 1)", [])
    ws.history.restore(sid, 1)
    (record,) = run.finish(0)
    one = ws.history.snapshot(_dir(ws, sid), 1).table["a.txt"]["hash"]
    assert record["session_id"] == sid and record["checkpoint"] == 1
    assert record["artifacts"] == [
        {"seq": 4, "name": "a.txt", "hash": one},
        {"seq": 5, "name": "b.txt", "op": "delete"},
    ]


def test_checkpoint_log_errors_name_the_file_and_line_and_odd_lines_are_skipped(anyws):
    from spellfs.store.records import RecordError
    from spellfs.store import encode_record

    ws = anyws
    sid = _session(ws)
    dir = _dir(ws, sid)
    rel = f"sessions/{dir}/checkpoints.yaml"
    for message in ("one", "two"):
        ws.artifacts.store(sid, "t", "a.txt", message)
        ws.history.save(sid, message)
    assert len(ws.history.checkpoints(sid)) == 2  # read: the next read goes on from line 3
    # a record without a tree, one without a number: not checkpoints, skipped
    ws.storage.append(rel, encode_record({"number": 5}) + encode_record({"tree": "x" * 64}))
    assert [c["number"] for c in ws.history.checkpoints(sid)] == [1, 2]
    ws.storage.append(rel, b"- [not, a, record]\n")
    with pytest.raises(RecordError) as info:
        ws.history.checkpoints(sid)
    assert str(info.value) == f"{rel}:5: not a record (expected `- {{key: value, ...}}`)"


@pytest.mark.parametrize("theirs_first", [False, True])
def test_after_a_merge_the_later_time_of_a_repeated_number_is_the_latest(anyws, theirs_first):
    """Two records numbered 2 (a git merge of two clones): "the latest" is the one saved later,
    whichever line the merge put last (so both clones agree); `2` alone is an error naming
    both, `2:TREE` names one."""
    from spellfs.store import encode_record

    ws = anyws
    sid = _session(ws)
    dir = _dir(ws, sid)
    for name in ("a.txt", "b.txt", "c.txt"):
        ws.artifacts.store(sid, "t", name, name)
        ws.history.save(sid)
    one, two, three = ws.history.checkpoints(sid)
    theirs = {**three, "number": 2, "parent": 1}  # the other clone's checkpoint 2, saved later
    rel = f"sessions/{dir}/checkpoints.yaml"
    order = (one, theirs, two) if theirs_first else (one, two, theirs)
    ws.storage.write(rel, b"".join(encode_record(r) for r in order))
    assert ws.history.latest_number(dir) == 2
    assert [c["tree"] for c in ws.history.checkpoints(sid)] == [
        one["tree"],
        two["tree"],
        three["tree"],
    ]
    with pytest.raises(UsageError, match="ambiguous checkpoint: 2 in session") as exc:
        ws.history.snapshot(dir, 2)
    assert f"2:{two['tree'][:8]}" in str(exc.value) and f"2:{three['tree'][:8]}" in str(exc.value)
    with pytest.raises(UsageError, match="ambiguous checkpoint"):
        ws.history.restore(sid, "#2")
    assert sorted(ws.history.snapshot(dir, f"2:{three['tree'][:6]}").table) == [
        "a.txt",
        "b.txt",
        "c.txt",
    ]
    assert sorted(ws.history.snapshot(dir, f"2:{two['tree'][:8].upper()}").table) == [
        "a.txt",
        "b.txt",
    ]
    d = ws.history.diff(sid, f"2:{two['tree'][:8]}", f"2:{three['tree']}")
    assert [a["name"] for a in d["artifacts"]["added"]] == ["c.txt"]
    assert ws.history.duplicated_numbers(dir) == {2: [two, theirs]}
    fid = ws.history.fork(sid)  # the latest checkpoint: the one saved later
    assert sorted(_names(ws, fid)) == ["a.txt", "b.txt", "c.txt"]
    ws.artifacts.store(sid, "t", "d.txt", "d")
    assert ws.history.save(sid) == 3  # on top of the later checkpoint's tree
    cp = ws.history.checkpoints(sid)[-1]
    assert (cp["parent"], cp["added"], cp["changed"], cp["removed"]) == (2, 1, 0, 0)
    assert ws.history.trees.tree(cp["tree"])["parent"] == three["tree"]


@pytest.mark.parametrize("bad", ["2:", "2:xyz1", "2:abc", ":abcd", "0:abcd"])
def test_a_bad_number_colon_tree_reference_is_a_usage_error(anyws, bad):
    sid = _session(anyws)
    anyws.history.save(sid)
    with pytest.raises(UsageError, match="invalid checkpoint"):
        anyws.history.snapshot(_dir(anyws, sid), bad)


def test_restore_counts_every_artifact_it_adds_back(anyws):
    ws = anyws
    sid = _session(ws)
    for name in ("a.txt", "b.txt", "c.txt"):
        ws.artifacts.store(sid, "t", name, name)
    ws.history.save(sid)
    ws.artifacts.delete(sid, "a.txt")
    ws.artifacts.delete(sid, "b.txt")
    ws.artifacts.store(sid, "t", "c.txt", "changed")
    r = ws.history.restore(sid, 1)
    assert (r["added"], r["changed"], r["removed"]) == (2, 1, 0)


def test_memory_backend_in_a_workspace_folder_saves_diffs_and_restores(root, spell):
    """`storage_backend: memory` in a workspace's spell.yaml: checkpoints live in memory like
    everything else (save once failed: it asked the memory store for paths to fsync), and
    nothing is written to the folder."""
    from spellfs import Workspace

    (root / "spell.yaml").write_text("sessions:\n  storage_backend: memory\n")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with Workspace.open(root) as ws:
        assert ws.memory
        sid = ws.sessions.create(name="mem")
        ws.artifacts.store(sid, "user_input", "a.txt", "one\n")
        assert ws.history.save(sid, "first") == 1
        ws.artifacts.store(sid, "user_input", "a.txt", "two\n")
        ws.artifacts.store(sid, "user_input", "b.txt", "new\n")
        assert ws.history.save(sid) == 2
        d = ws.history.diff(sid, 1, 2)
        assert [a["name"] for a in d["artifacts"]["added"]] == ["b.txt"]
        assert "-one\n+two\n" in d["artifacts"]["changed"][0]["diff"]
        ws.history.restore(sid, 1)
        assert ws.artifacts.get(sid, "a.txt")["content"] == b"one\n"
        assert [a["name"] for a in ws.artifacts.list(sid)] == ["a.txt"]
    (root / "m.lua").write_text(
        'local s = Session.create({name="mem"})\n'
        'Artifact.store(s, "user_input", "a.txt", "one\\n")\n'
        "print(Session.save(s))\n"
    )
    before.append((root / "m.lua").relative_to(root))
    r = spell("-w", str(root), "run", str(root / "m.lua"))
    assert r.returncode == 0 and r.stdout == b"1\n", r.stderr
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == sorted(before)


# -- found by mutation testing of the functions F2 and F5 changed (session 6) -----------------


def test_a_bytes_number_colon_tree_reference_and_the_errors_of_bad_ones():
    """`N:TREE` comes as text or bytes (Lua strings); bytes that are not UTF-8 are decoded with
    replacement and refused like any bad number, and each refusal says what N:TREE takes."""
    from spellfs.history.checkpoint_log import checkpoint_ref

    assert checkpoint_ref(b"2:ABCD12") == (2, "abcd12")
    assert checkpoint_ref(" #3:abcd ") == (3, "abcd")
    hint = "(a checkpoint number ≥ 1, see `spell log`)"
    assert _usage(checkpoint_ref, b"\xff:abcd") == f"invalid checkpoint: '\ufffd' {hint}"
    # the number is what comes before the first colon: the rest must be all hex
    take = "(N:TREE takes at least 4 hex digits of the tree id, see `spell log`)"
    assert _usage(checkpoint_ref, "2:abcd:abcd") == f"invalid checkpoint: '2:abcd:abcd' {take}"
    long = "2:" + "abcd" * 19 + "xyz"  # 81 characters: the message shows the first 80
    assert _usage(checkpoint_ref, long) == f"invalid checkpoint: {long[:80]!r} {take}"


def _merged(ws, dir, *records):
    """Write ``checkpoints.yaml`` as a git merge of two clones leaves it: ``records`` in that
    order (two of them may share a number)."""
    from spellfs.store import encode_record

    ws.storage.write(
        f"sessions/{dir}/checkpoints.yaml", b"".join(encode_record(r) for r in records)
    )


def test_an_ambiguous_checkpoint_error_names_both_checkpoints_in_full(anyws):
    """`spell restore 2` after two clones each saved a checkpoint 2: the error lists both, each
    as N:TREE (the reference to pass instead), with its message and time, oldest first."""
    ws = anyws
    sid = _session(ws)
    dir = _dir(ws, sid)
    ws.artifacts.store(sid, "t", "a.txt", "a")
    ws.history.save(sid, "one")
    ws.artifacts.store(sid, "t", "b.txt", "b")
    ws.history.save(sid, "ours: " + "m" * 60)
    one, ours = ws.history.checkpoints(sid)
    ws.artifacts.store(sid, "t", "c.txt", "c")
    ws.history.save(sid)
    theirs = {**ws.history.checkpoints(sid)[-1], "number": 2, "parent": 1, "message": ""}
    _merged(ws, dir, one, theirs, ours)
    msg = _usage(ws.history.snapshot, dir, 2)
    both = (
        f"2:{ours['tree'][:8]} {('ours: ' + 'm' * 60)[:40]!r} at {ours['time']}; "
        f"2:{theirs['tree'][:8]} '' at {theirs['time']}"
    )
    assert msg == (
        f"ambiguous checkpoint: 2 in session {sid[:8]} names 2 checkpoints (a git merge of two "
        f"clones): {both} (name one as N:TREE)"
    )


def test_a_tree_prefix_two_checkpoints_share_is_ambiguous_and_one_no_tree_has_is_not_found(
    anyws,
):
    """N:TREE with a prefix both checkpoints' tree ids start with is refused like N alone,
    naming the reference given; a prefix no checkpoint N has says which session to look at."""
    ws = anyws
    sid = _session(ws)
    dir = _dir(ws, sid)
    ws.history.save(sid, "one")
    (one,) = ws.history.checkpoints(sid)
    a = {**one, "number": 2, "parent": 1, "tree": "abcd1" + one["tree"][5:]}
    b = {**one, "number": 2, "parent": 1, "tree": "abcd2" + one["tree"][5:]}
    _merged(ws, dir, one, a, b)
    msg = _usage(ws.history.snapshot, dir, "2:ABCD")
    assert msg.startswith(f"ambiguous checkpoint: 2:abcd in session {sid[:8]} names 2 ")
    with pytest.raises(CheckpointNotFound) as info:
        ws.history.snapshot(dir, "2:abce")
    assert str(info.value) == (
        f"checkpoint not found: 2:abce in session {sid[:8]} (see `spell log {sid[:8]}`)"
    )


def test_a_checkpoint_record_without_a_time_counts_as_the_older_of_its_number(anyws):
    """A record with no ``time`` (written by hand, or by a spellfs from before times were
    recorded) sorts before the timed checkpoint of the same number, in every clone alike: the
    timed one is the latest, and the one `spell log` lists last."""
    ws = anyws
    sid = _session(ws)
    dir = _dir(ws, sid)
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "a.txt", "a")
    ws.history.save(sid)
    one, two = ws.history.checkpoints(sid)
    untimed = {k: v for k, v in one.items() if k != "time"}
    untimed["number"] = 2
    for order in ((one, two, untimed), (one, untimed, two)):
        _merged(ws, dir, *order)
        assert [c["tree"] for c in ws.history.checkpoints(sid)] == [
            one["tree"],
            one["tree"],
            two["tree"],
        ]
        assert ws.history.duplicated_numbers(dir) == {2: [untimed, two]}
        ws.artifacts.store(sid, "t", "b.txt", "b")
        assert ws.history.save(sid) == 3  # on top of the timed checkpoint 2
        three = ws.history.checkpoints(sid)[-1]
        assert (three["added"], three["changed"], three["removed"]) == (1, 0, 0)
        ws.artifacts.delete(sid, "b.txt")


def test_a_checkpoint_line_a_killed_save_left_unfinished_is_skipped_until_the_next_save(anyws):
    """A save killed while appending its line leaves half a line: readers skip it (the
    session has no checkpoint 1 yet), and the next save's line is read once it is there."""
    from spellfs.store import encode_record

    ws = anyws
    sid = _session(ws)
    dir = _dir(ws, sid)
    ws.history.save(sid, "killed")
    rel = f"sessions/{dir}/checkpoints.yaml"
    ws.storage.write(rel, encode_record(ws.history.checkpoints(sid)[0])[:20])
    assert ws.history.checkpoints(sid) == [] and ws.history.latest_number(dir) is None
    assert ws.history.save(sid, "again") == 1
    assert [c["message"] for c in ws.history.checkpoints(sid)] == ["again"]
    ws.artifacts.store(sid, "t", "a.txt", "a")
    assert ws.history.save(sid, "two") == 2
    assert [c["message"] for c in ws.history.checkpoints(sid)] == ["again", "two"]


def test_load_names_itself_in_its_refusals_and_in_what_it_keeps(ws):
    """`spell load` over unsaved changes says it is load that would discard them, and with
    --force what it keeps is marked as kept by load (not by restore)."""
    from spellfs import UnrecordedChanges

    sid = _session(ws)
    dir = _dir(ws, sid)
    ws.artifacts.store(sid, "t", "a.txt", "one")
    ws.history.save(sid)
    ws.artifacts.store(sid, "t", "a.txt", "two")
    path = ws.root / "sessions" / dir / "files" / "a.txt"
    path.write_bytes(b"by hand")
    with pytest.raises(UnrecordedChanges) as info:
        ws.history.load(sid)
    assert str(info.value).startswith(
        f"load would overwrite or delete unrecorded changes: sessions/{dir}/files/: a.txt "
    )
    ws.history.load(sid, force=True)
    kept = ws.artifacts.get(sid, "a.txt@3")
    assert kept["content"] == b"by hand" and kept["metadata"]["custom"] == {"kept_by": "load"}
    ws.state.set(f"session:{sid}:k", "v")
    with pytest.raises(UnrecordedChanges) as info:
        ws.history.load(sid)
    assert str(info.value).startswith("load would discard unsaved changes: ")
    ws.history.load(sid, force=True)
    assert ws.history.checkpoints(sid)[-1]["message"] == "kept by load"


def test_a_checkpoint_log_removed_and_written_again_is_read_whole(ws):
    """A session's log that disappears (a `git checkout` of a commit without it) and comes back
    with other content (checked out again, longer) is read from its start: the file system may
    give the new file the old one's inode, so what was read of the old file must be forgotten
    when it is gone."""
    from spellfs.store import encode_record

    sid = _session(ws)
    dir = _dir(ws, sid)
    rel = f"sessions/{dir}/checkpoints.yaml"
    ws.history.save(sid, "one")
    (one,) = ws.history.checkpoints(sid)
    path = ws.root / rel
    reused = ws.root / "same-inode"  # (ext4 hands a freed inode to the next new file: made
    os.link(path, reused)  # certain here by keeping the old one for the new content)
    path.unlink()
    assert ws.history.checkpoints(sid) == [] and ws.history.latest_number(dir) is None
    other = [
        {**one, "message": "the other branch's first, with a longer message"},
        {**one, "number": 2, "parent": 1, "message": "and its second"},
    ]
    reused.write_bytes(b"".join(encode_record(r) for r in other))
    os.link(reused, path)
    reused.unlink()
    assert [c["message"] for c in ws.history.checkpoints(sid)] == [r["message"] for r in other]
