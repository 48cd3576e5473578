"""Checkpoint tree objects (history/tree.py) read and written directly: what a tree reaches
(gc, fsck and push keep exactly that), and how trees are laid out in the store."""

from __future__ import annotations

import pytest

from spellfs import IntegrityError
from spellfs.history.tree import TreeStore, canonical


def _put(ws, value) -> str:
    return ws.objects.put_bytes(canonical(value))


def _page(ws, *contents: bytes) -> tuple[str, list[str]]:
    hashes = [ws.objects.put_bytes(c) for c in contents]
    records = [{"name": f"f{i}-{h[:6]}.txt", "seq": i, "hash": h} for i, h in enumerate(hashes)]
    return _put(ws, {"type": "spellfs/page", "v": 1, "records": records}), hashes


def _table(ws, *pages: str) -> str:
    return _put(ws, {"type": "spellfs/table", "v": 1, "count": 0, "pages": list(pages)})


def _tree(ws, manifest: str, state: str, parent: str | None = None, **body) -> str:
    return _put(
        ws,
        {
            "type": "spellfs/tree",
            "v": 1,
            "manifest": manifest,
            "state": state,
            "parent": parent,
            "depth": 0,
            **body,
        },
    )


def test_refs_reach_every_object_once_across_trees_that_share_parts(anyws):
    """gc walks every checkpoint with one ``seen`` set; trees share manifests, tables and
    pages (unchanged pages are the same object, forks share a source's table). A part seen
    before must be skipped without cutting the walk of what follows it."""
    ws = anyws
    manifest, state = _put(ws, {"id": "m"}), _put(ws, {"k": 1})
    p_shared, h_shared = _page(ws, b"shared one", b"shared two")
    p_old, h_old = _page(ws, b"only in the old table")
    p_new, h_new = _page(ws, b"only in the new table")
    t_old = _table(ws, p_shared, p_old)
    t_new = _table(ws, p_shared, p_new)  # the first page is the same object as before
    base = _tree(ws, manifest, state, table=t_old)
    in_delta = ws.objects.put_bytes(b"put by a delta")
    delta = {"put": {"d.txt": {"name": "d.txt", "seq": 9, "hash": in_delta}}, "del": []}
    child = _tree(ws, manifest, state, parent=base, delta=delta)
    other_parent = _tree(ws, _put(ws, {"id": "other"}), state, table=t_new)
    # a full tree whose table was seen already, whose parent was not
    sharer = _tree(ws, manifest, state, parent=other_parent, table=t_old)
    trees = TreeStore(ws.objects)
    seen: set[str] = set()
    first = list(trees.refs(child, seen))
    assert sorted(first) == sorted(
        {child, base, manifest, state, t_old, p_shared, p_old, in_delta, *h_shared, *h_old}
    )
    second = list(trees.refs(sharer, seen))
    assert sorted(second) == sorted(
        {sharer, other_parent, _put(ws, {"id": "other"}), t_new, p_new, *h_new}
    )
    assert len(first) + len(second) == len(set(first) | set(second))  # each once
    assert list(trees.refs(child, seen)) == [] and list(trees.refs(sharer, seen)) == []


def test_refs_refuse_a_table_that_is_not_a_table(anyws):
    ws = anyws
    manifest, state = _put(ws, {"id": "m"}), _put(ws, {"k": 1})
    page, _ = _page(ws, b"x")
    tree = _tree(ws, manifest, state, table=page)  # names a page where its table should be
    with pytest.raises(IntegrityError, match=f"corrupt table object {page}: not a spellfs table"):
        list(TreeStore(ws.objects).refs(tree, set()))


def test_a_full_table_after_deletes_and_new_names_holds_exactly_the_live_artifacts(anyws):
    """A full table rewrites only the pages whose records changed since the last full table
    this process wrote: a page that lost a record (a delete) and one that gained a record (a
    new name whose sequence number falls in an existing page) must both be rewritten."""
    from spellfs.history.tree import FULL_EVERY

    ws = anyws
    sid = ws.sessions.create(name="t")
    dir = ws.sessions.resolve(sid)
    ws.artifacts.store_many(sid, [("t", f"f{i:03d}.txt", b"%d" % i, None) for i in range(70)])
    ws.history.save(sid)  # pages 0 (sequences 1-63) and 1 (64-127)
    ws.artifacts.delete(sid, "f000.txt")
    expected = {}
    for i in range(FULL_EVERY + 1):
        ws.artifacts.store(sid, "t", f"n{i:02d}.txt", b"new %d" % i)  # sequence 72 on: page 1
        number = ws.history.save(sid)
        expected[number] = sorted(a["name"] for a in ws.artifacts.list(sid))
    trees = ws.history.trees
    full = [
        c["number"] for c in ws.history.checkpoints(sid)[1:] if "table" in trees.tree(c["tree"])
    ]
    # one full table every FULL_EVERY checkpoints, deltas between (depth counts them)
    assert full == [FULL_EVERY + 1]
    depths = [trees.tree(c["tree"])["depth"] for c in ws.history.checkpoints(sid)]
    assert depths == [*range(FULL_EVERY), 0, 1]
    trees._tables.clear()
    trees._pages.clear()
    for number, names in expected.items():
        assert sorted(ws.history.snapshot(dir, number).table) == names, number


def test_tree_objects_have_the_documented_fields_and_a_delta_holds_only_the_change(root):
    """The on-disk form of the module docstring; a new process (whole-table compare) writes
    a delta of what changed since the parent, not the table."""
    from spellfs import Workspace

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="t")
        for name in ("a.txt", "b.txt", "c.txt"):
            ws.artifacts.store(sid, "t", name, name)
        ws.history.save(sid)
        first = ws.history.trees.tree(ws.history.checkpoints(sid)[0]["tree"])
        assert set(first) == {"type", "v", "manifest", "state", "parent", "depth", "table"}
        assert (first["type"], first["v"], first["parent"], first["depth"]) == (
            "spellfs/tree",
            1,
            None,
            0,
        )
        table = ws.history.trees.load_json(first["table"], "table")
        assert (table["v"], table["count"]) == (1, 3)
        assert ws.history.trees.load_json(table["pages"][0], "page")["v"] == 1
    with Workspace.open(root) as ws:
        ws.artifacts.store(sid, "t", "a.txt", "changed")
        ws.artifacts.delete(sid, "b.txt")
        ws.history.save(sid)
        cps = ws.history.checkpoints(sid)
        tree = ws.history.trees.tree(cps[1]["tree"])
        assert set(tree) == {"type", "v", "manifest", "state", "parent", "depth", "delta"}
        assert (tree["v"], tree["parent"], tree["depth"]) == (1, cps[0]["tree"], 1)
        assert set(tree["delta"]["put"]) == {"a.txt"} and tree["delta"]["del"] == ["b.txt"]


def test_saves_each_in_a_new_process_still_write_a_full_table_every_full_every(root):
    """`spell save` runs in a new process each time (the whole-table compare); the chain of
    deltas a read walks must stay bounded there too."""
    from spellfs import Workspace
    from spellfs.history.tree import FULL_EVERY

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="t")
    for i in range(FULL_EVERY + 2):
        with Workspace.open(root) as ws:
            ws.artifacts.store(sid, "t", "a.txt", b"round %d" % i)
            assert ws.history.save(sid) == i + 1
    with Workspace.open(root) as ws:
        trees = [ws.history.trees.tree(c["tree"]) for c in ws.history.checkpoints(sid)]
    assert [t["depth"] for t in trees] == [*range(FULL_EVERY), 0, 1]
    assert ["table" in t for t in trees] == [True] + [False] * (FULL_EVERY - 1) + [True, False]


@pytest.mark.parametrize(
    ("artifacts", "changed", "deleted", "full"),
    [
        (100, 64, 0, False),  # a change of up to 64 artifacts is a delta ...
        (100, 65, 0, True),  # ... one over 64 a full table
        (100, 0, 65, True),  # deletes count as change
        (400, 100, 0, False),  # in a large session: up to a quarter of it ...
        (400, 101, 0, True),  # ... and over it
    ],
)
def test_a_large_change_is_written_as_a_full_table(ws, artifacts, changed, deleted, full):
    sid = ws.sessions.create(name="t")
    names = [f"f{i:03d}.txt" for i in range(artifacts)]
    ws.artifacts.store_many(sid, [("t", n, b"one " + n.encode(), None) for n in names])
    ws.history.save(sid)
    ws.artifacts.store_many(sid, [("t", n, b"two " + n.encode(), None) for n in names[:changed]])
    for n in names[-deleted:] if deleted else []:
        ws.artifacts.delete(sid, n)
    ws.history.save(sid)
    tree = ws.history.trees.tree(ws.history.checkpoints(sid)[1]["tree"])
    assert ("table" in tree, "delta" in tree) == (full, not full)
    assert tree["depth"] == (0 if full else 1)


def test_page_records_are_in_sequence_order_not_name_order(anyws):
    ws = anyws
    sid = ws.sessions.create(name="t")
    for name in ("z.txt", "m.txt", "a.txt"):
        ws.artifacts.store(sid, "t", name, name)
    ws.history.save(sid)
    trees = ws.history.trees
    table = trees.load_json(trees.tree(ws.history.checkpoints(sid)[0]["tree"])["table"], "table")
    (page,) = table["pages"]
    records = trees.load_json(page, "page")["records"]
    assert [(r["seq"], r["name"]) for r in records] == [(1, "z.txt"), (2, "m.txt"), (3, "a.txt")]


def test_canonical_keeps_lone_surrogates_byte_for_byte():
    """A name or value that came from bytes that are not UTF-8 (surrogateescape) must still
    be stored, as the same bytes each time."""
    assert canonical({"k": "\udcff"}) == b'{"k":"\xed\xb3\xbf"}'


@pytest.mark.parametrize("new_process", [False, True])
def test_a_new_version_with_the_same_content_is_not_counted_as_changed(root, new_process):
    from spellfs import Workspace

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="t")
        ws.artifacts.store(sid, "t", "a.txt", "same")
        ws.artifacts.store(sid, "t", "b.txt", "one")
        ws.history.save(sid)
        if not new_process:
            ws.artifacts.store(sid, "t", "a.txt", "same")  # version 2, same content
            ws.artifacts.store(sid, "t", "b.txt", "two")
            ws.history.save(sid)
    if new_process:
        with Workspace.open(root) as ws:
            ws.artifacts.store(sid, "t", "a.txt", "same")
            ws.artifacts.store(sid, "t", "b.txt", "two")
            ws.history.save(sid)
    with Workspace.open(root) as ws:
        cp = ws.history.checkpoints(sid)[1]
        assert (cp["added"], cp["changed"], cp["removed"]) == (0, 1, 0)


def test_a_tree_missing_any_required_part_is_refused(anyws):
    ws = anyws
    manifest, state = _put(ws, {"id": "m"}), _put(ws, {"k": 1})
    table = _table(ws)
    parent = _tree(ws, manifest, state, table=table)
    delta = {"put": {}, "del": []}
    for body in (
        {"state": state, "table": table},  # no manifest
        {"manifest": manifest, "table": table},  # no state
        {"manifest": manifest, "state": state},  # neither table nor delta
        {"manifest": manifest, "state": state, "delta": delta},  # a delta without a parent
        {"manifest": manifest, "state": state, "parent": parent},  # a parent without a delta
    ):
        oid = _put(ws, {"type": "spellfs/tree", "v": 1, "depth": 0, **body})
        with pytest.raises(IntegrityError) as info:
            TreeStore(ws.objects).tree(oid)
        assert str(info.value) == f"corrupt tree object {oid}: missing manifest, state or table"
    ok = _put(ws, {"type": "spellfs/tree", "v": 1, "manifest": manifest, "state": state,
                   "parent": parent, "delta": delta, "depth": 1})  # fmt: skip
    assert TreeStore(ws.objects).table(ok) == {}


def test_a_new_process_saves_twice_in_a_row(root):
    """The first save of a process compares whole tables; the next one applies only the
    change to what the first wrote."""
    from spellfs import Workspace

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="t")
        ws.artifacts.store(sid, "t", "a.txt", "one")
        ws.history.save(sid)
    with Workspace.open(root) as ws:
        dir = ws.sessions.resolve(sid)
        ws.artifacts.store(sid, "t", "b.txt", "bee")
        assert ws.history.save(sid) == 2
        ws.artifacts.store(sid, "t", "c.txt", "sea")
        assert ws.history.save(sid) == 3
        assert sorted(ws.history.snapshot(dir, 3).table) == ["a.txt", "b.txt", "c.txt"]
