"""Checkpoint trees: immutable snapshots of a session in the object store.

A checkpoint is one record in ``sessions/<dir>/checkpoints.yaml`` naming a *tree*
object. Every object below is canonical JSON (sorted keys, no spaces) stored
through the object store, so identical content is one object and every read is
verified against its BLAKE3 id. ::

    tree   {"type": "spellfs/tree", "v": 1, "manifest": M, "state": S,
            "parent": T' | null, "depth": d,
            "table": A}                              # a full table, or
            "delta": {"put": {name: record}, "del": [name]}   # changes since T'
    table  {"type": "spellfs/table", "v": 1, "count": n, "pages": [P, ...]}
    page   {"type": "spellfs/page", "v": 1, "records": [record, ...]}   # by seq
    M      the session.yaml fields, as JSON;  S  the session State values

Storage grows with change, not size: a checkpoint normally writes one small
delta tree (what was added, changed or removed since its parent). Every
:data:`FULL_EVERY` checkpoints — or when the delta is large — the tree holds a
full table instead, split into pages by sequence number (``seq // PAGE_SEQS``),
so a page whose records did not change is the same object as before and is not
written again. Reading a table walks at most ``FULL_EVERY`` delta trees back to a
full one; tables are cached by tree id.

A tree that does not parse, or is not what it claims, is an
:class:`~spellfs.errors.IntegrityError` naming the object.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import IntegrityError, ObjectNotFound
from ..store import load_json

if TYPE_CHECKING:
    from ..store import ObjectStore

__all__ = ["FULL_EVERY", "PAGE_SEQS", "Snapshot", "TreeStore", "canonical", "same_content"]

FULL_EVERY = 32
PAGE_SEQS = 64
#: Record fields that say when and how a version was made, not what it is.
VOLATILE = frozenset({"seq", "version", "created_at", "created_by", "restored_from"})


def canonical(value: Any) -> bytes:
    """The one byte form of a JSON value: sorted keys, no whitespace."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "surrogatepass")


def same_content(a: dict | None, b: dict | None) -> bool:
    """True when two artifact records describe the same artifact (content and metadata)."""
    if a is None or b is None:
        return a is b
    keys = (set(a) | set(b)) - VOLATILE
    return all(a.get(k) == b.get(k) for k in keys)


def _page_key(rec: dict) -> int:
    seq = rec.get("seq")
    return (seq if isinstance(seq, int) else 0) // PAGE_SEQS


class Snapshot:
    """A session at one point: manifest, live artifact table (name → record), state."""

    __slots__ = ("label", "manifest", "table", "state")

    def __init__(self, label: Any, manifest: dict, table: dict[str, dict], state: dict) -> None:
        self.label = label
        self.manifest = manifest
        self.table = table
        self.state = state


class TreeStore:
    """Reads and writes tree objects, with small caches of parsed trees and tables."""

    def __init__(self, objects: "ObjectStore", cache: int = 8) -> None:
        self.objects = objects
        self._trees: OrderedDict[str, dict] = OrderedDict()
        self._tables: OrderedDict[str, dict[str, dict]] = OrderedDict()
        self._pages: OrderedDict[str, list[dict]] = OrderedDict()
        self._cache = cache
        #: Ids of the objects :meth:`put_json` was asked for since a caller reset it (a checkpoint
        #: makes exactly these durable).
        self.written: list[str] = []
        #: tree id -> how its table was paged (see :meth:`_write_table`); only the newest tree's
        self._layouts: dict[str, tuple] = {}

    # -- reading -----------------------------------------------------------------
    def load_json(self, oid: str, kind: str) -> Any:
        try:
            data = self.objects.get(oid)
        except ObjectNotFound:
            raise ObjectNotFound(
                f"{kind} object not found: {oid} (run `spell fsck`; "
                "`spell pull` may bring it from a remote)"
            ) from None
        try:
            value = load_json(data, f"{kind} object {oid}", IntegrityError)
        except ValueError as exc:
            raise IntegrityError(f"corrupt {kind} object {oid}: not JSON ({exc})") from None
        if kind in ("tree", "table", "page"):
            if not isinstance(value, dict) or value.get("type") != f"spellfs/{kind}":
                raise IntegrityError(f"corrupt {kind} object {oid}: not a spellfs {kind}")
        return value

    def tree(self, oid: str) -> dict:
        t = self._trees.get(oid)
        if t is None:
            t = self.load_json(oid, "tree")
            ok = (
                isinstance(t.get("manifest"), str)
                and isinstance(t.get("state"), str)
                and (
                    isinstance(t.get("table"), str)
                    or isinstance(t.get("delta"), dict)
                    and isinstance(t.get("parent"), str)
                )
            )
            if not ok:
                raise IntegrityError(f"corrupt tree object {oid}: missing manifest, state or table")
            self._remember(self._trees, oid, t, 256)
        return t

    def _page(self, oid: str) -> list[dict]:
        records = self._pages.get(oid)
        if records is None:
            page = self.load_json(oid, "page")
            records = page.get("records")
            if not isinstance(records, list) or not all(
                isinstance(r, dict) and isinstance(r.get("name"), str) for r in records
            ):
                raise IntegrityError(f"corrupt page object {oid}: records are not artifact records")
            self._remember(self._pages, oid, records, 4096)
        return records

    def table(self, oid: str) -> dict[str, dict]:
        """The artifact table of tree ``oid`` (cached; callers must not change it)."""
        hit = self._tables.get(oid)
        if hit is not None:
            self._tables.move_to_end(oid)
            return hit
        chain = []
        cur = oid
        while True:
            t = self.tree(cur)
            if cur in self._tables:
                table = dict(self._tables[cur])
                break
            if "table" in t:
                table = self._full(t["table"])
                break
            chain.append(t)
            cur = t["parent"]
            if len(chain) > 100000:
                raise IntegrityError(f"corrupt tree object {oid}: its parent chain does not end")
        for t in reversed(chain):
            delta = t["delta"]
            for name in delta.get("del", ()):
                table.pop(name, None)
            table.update(delta.get("put", {}))
        self._remember(self._tables, oid, table, self._cache)
        return table

    def _full(self, oid: str) -> dict[str, dict]:
        tab = self.load_json(oid, "table")
        pages = tab.get("pages")
        if not isinstance(pages, list):
            raise IntegrityError(f"corrupt table object {oid}: no page list")
        table: dict[str, dict] = {}
        for p in pages:
            for rec in self._page(p):
                table[rec["name"]] = rec
        return table

    def snapshot(self, oid: str, label: Any = None) -> Snapshot:
        t = self.tree(oid)
        manifest = self.load_json(t["manifest"], "manifest")
        state = self.load_json(t["state"], "state")
        if not isinstance(manifest, dict) or not isinstance(state, dict):
            raise IntegrityError(f"corrupt tree object {oid}: manifest or state is not a mapping")
        return Snapshot(label, manifest, self.table(oid), state)

    def refs(self, oid: str, seen: set[str]) -> Iterator[str]:
        """Every object tree ``oid`` reaches (itself, parents, pages, artifact contents) not yet in
        ``seen``."""
        stack = [oid]
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            yield cur
            t = self.tree(cur)
            for key in ("manifest", "state"):
                if t[key] not in seen:
                    seen.add(t[key])
                    yield t[key]
            if t.get("parent"):
                stack.append(t["parent"])
            if "table" in t:
                if t["table"] in seen:
                    continue
                seen.add(t["table"])
                yield t["table"]
                for p in self.load_json(t["table"], "table").get("pages", ()):
                    if p in seen:
                        continue
                    seen.add(p)
                    yield p
                    for rec in self._page(p):
                        if rec.get("hash"):
                            yield rec["hash"]
            else:
                for rec in t["delta"].get("put", {}).values():
                    if isinstance(rec, dict) and rec.get("hash"):
                        yield rec["hash"]

    # -- writing -----------------------------------------------------------------
    def put_json(self, value: Any) -> str:
        oid = self.objects.put_bytes(canonical(value))
        self.written.append(oid)
        return oid

    def _header(self, manifest: dict, state: dict, parent: str | None) -> dict[str, Any]:
        """A new tree object's fields before its table or delta: manifest and state stored."""
        return {
            "type": "spellfs/tree",
            "v": 1,
            "manifest": self.put_json(manifest),
            "state": self.put_json(state),
            "parent": parent,
        }

    def write(
        self, manifest: dict, state: dict, table: dict[str, dict], parent: str | None, full: bool
    ) -> tuple[str, dict]:
        """Store a tree for ``table``; return (tree id, delta counts vs the parent)."""
        base = self.table(parent) if parent else {}
        put = {n: r for n, r in table.items() if base.get(n) != r}
        gone = sorted(n for n in base if n not in table)
        counts = _counts(base, put, gone)
        depth = self.tree(parent).get("depth", 0) + 1 if parent else 0
        tree = self._header(manifest, state, parent)
        oid = self._finish(tree, table, put, gone, depth, full or parent is None, None)
        return oid, counts

    def has_table(self, oid: str) -> bool:
        """True when the table of tree ``oid`` is cached (so a change costs no rebuild)."""
        return oid in self._tables

    def write_changes(
        self, manifest: dict, state: dict, changes: dict[str, dict | None], parent: str
    ) -> tuple[str, dict, int]:
        """:meth:`write` when only ``changes`` (name -> record, None: removed) differ from the
        parent's table: the cost follows the change, not the session. Returns (tree id, counts,
        artifacts in the new table). A full table, when one is due, rewrites only the pages
        whose records changed since the last full table this process wrote."""
        base = dict(self._tables[parent])  # a copy: snapshots handed out may hold the parent's
        layout = self._layouts.pop(parent, None)
        put = {n: r for n, r in changes.items() if r is not None and base.get(n) != r}
        gone = sorted(n for n, r in changes.items() if r is None and n in base)
        counts = _counts(base, put, gone)
        for n in [*gone, *put]:
            old = base.get(n)
            if layout is not None and old is not None:
                key = _page_key(old)
                layout[1].setdefault(key, set()).discard(n)
                layout[2].add(key)
        for n in gone:
            del base[n]
        base.update(put)
        if layout is not None:
            for n, r in put.items():
                key = _page_key(r)
                layout[1].setdefault(key, set()).add(n)
                layout[2].add(key)
        depth = self.tree(parent).get("depth", 0) + 1
        tree = self._header(manifest, state, parent)
        oid = self._finish(tree, base, put, gone, depth, False, layout)
        return oid, counts, len(base)

    def _finish(
        self,
        tree: dict,
        table: dict[str, dict],
        put: dict,
        gone: list[str],
        depth: int,
        full: bool,
        layout: tuple | None,
    ) -> str:
        """Complete and store ``tree`` for ``table``: a full table when asked, every
        FULL_EVERY trees, or when the change is over a quarter of it (rewriting only the pages
        ``layout`` marks changed, when known); else the delta. Return its id."""
        if full or depth >= FULL_EVERY or len(put) + len(gone) > max(64, len(table) // 4):
            tree["table"], layout = self._write_table(table, layout)
            tree["depth"] = 0
        else:
            tree["delta"] = {"put": put, "del": gone}
            tree["depth"] = depth
        oid = self.put_json(tree)
        self._remember(self._trees, oid, tree, 256)
        self._remember(self._tables, oid, table, self._cache)
        if layout is not None:
            self._layouts = {oid: layout}  # only the newest tree is the parent of the next save
        return oid

    def _write_table(
        self, table: dict[str, dict], layout: tuple | None = None
    ) -> tuple[str, tuple]:
        """Write ``table`` as pages (``seq // PAGE_SEQS``) and a table object; return its id and
        the layout (page ids, names by page, changed pages) that lets the next full table
        rewrite only the pages that changed. Without a layout every page is built."""
        if layout is None:
            names: dict[int, set[str]] = {}
            for name, rec in table.items():
                names.setdefault(_page_key(rec), set()).add(name)
            layout = ({}, names, set(names))
        ids, names, dirty = layout
        for key in list(names):
            if not names[key]:
                del names[key]
                ids.pop(key, None)
            elif key in dirty or key not in ids:
                records = sorted(
                    (table[n] for n in names[key]), key=lambda r: (r.get("seq", 0), r["name"])
                )
                ids[key] = self.put_json({"type": "spellfs/page", "v": 1, "records": records})
        dirty.clear()
        oid = self.put_json(
            {
                "type": "spellfs/table",
                "v": 1,
                "count": len(table),
                "pages": [ids[k] for k in sorted(names)],
            }
        )
        return oid, layout

    @staticmethod
    def _remember(cache: OrderedDict, key: str, value: Any, size: int) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > size:
            cache.popitem(last=False)


def _counts(base: dict[str, dict], put: dict[str, dict], gone: list[str]) -> dict[str, int]:
    """What a tree's delta against its parent's table adds, changes (content) and removes."""
    return {
        "added": sum(1 for n in put if n not in base),
        "changed": sum(1 for n in put if n in base and not same_content(base[n], put[n])),
        "removed": len(gone),
    }
