"""``session.yaml``: the hand-editable manifest of one session.

Loading checks every field; a bad hand edit is a :class:`ManifestError` naming
the file and the line of the offending key, and the file itself is left as it is.
A rewrite (a status change, a tag) keeps what a person wrote around the fields: their
comments and the layout of the values it does not change (:func:`update_manifest`).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ManifestError, UsageError
from ..names import jsonable
from ..store import dump_yaml, dump_yaml_rt, load_yaml, load_yaml_rt

__all__ = [
    "FIELDS",
    "LIVE",
    "SESSION_ID",
    "STATUSES",
    "dump_manifest",
    "load_manifest",
    "update_manifest",
]

FIELDS = (
    "id",
    "name",
    "description",
    "status",
    "tags",
    "metadata",
    "parent",
    "template",
    "created_at",
    "updated_at",
)
STATUSES = ("active", "suspended", "completed", "failed")
LIVE = ("active", "suspended")  # what a listing shows unless asked for another status
#: A session id as spellfs writes it (lower-case hex); ``fullmatch`` it.
SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _line_of(text: str, key: str) -> str:
    m = re.search(rf"^{re.escape(key)}\s*:", text, re.M)
    return f":{text.count(chr(10), 0, m.start()) + 1}" if m else ""


def load_manifest(data: bytes, where: str, dirname: str | None = None) -> dict[str, Any]:
    doc = load_yaml(data, where)
    text = data.decode("utf-8", "replace")

    def bad(key: str, why: str) -> ManifestError:
        return ManifestError(f"{where}{_line_of(text, key)}: {key}: {why}")

    if not isinstance(doc, dict):
        raise ManifestError(f"{where}:1: expected a mapping of fields ({', '.join(FIELDS)})")
    unknown = [k for k in doc if k not in FIELDS]
    if unknown:
        raise bad(str(unknown[0]), f"unknown field (known: {', '.join(FIELDS)})")
    sid = doc.get("id")
    if not isinstance(sid, str) or not SESSION_ID.fullmatch(sid):
        raise bad("id", "must be the session's UUID")
    if dirname is not None and not dirname.endswith(sid[:8]):
        raise bad("id", f"does not match the directory {dirname} (the id cannot be changed)")
    m: dict[str, Any] = {"id": sid}
    for key in ("name", "description"):
        value = doc.get(key, "")
        if value is None:
            value = ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise bad(key, "must be a string")
        m[key] = value
    status = doc.get("status", "active")
    if status not in STATUSES:
        raise bad("status", f"must be one of {', '.join(STATUSES)} (got {status!r})")
    m["status"] = status
    tags = doc.get("tags") or []
    if not isinstance(tags, list) or not all(
        isinstance(t, (str, int, float)) and not isinstance(t, bool) for t in tags
    ):
        raise bad("tags", "must be a list of words")
    m["tags"] = [str(t) for t in tags]
    meta = doc.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise bad("metadata", "must be a mapping")
    try:  # JSON's data, as every other reader of it takes it (a key 1 is the key "1")
        m["metadata"] = jsonable(meta, "metadata")
    except UsageError as exc:
        raise bad("metadata", str(exc).removeprefix("invalid metadata: ")) from None
    for key in ("parent", "template"):
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            raise bad(key, "must be a string or empty")
        m[key] = value or None
    for key in ("created_at", "updated_at"):
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise bad(key, "must be an RFC 3339 time")
        m[key] = value
    return m


def dump_manifest(m: dict[str, Any]) -> bytes:
    header = (
        b"# spellfs session manifest: name, description, status, tags and metadata may be edited "
        b"by hand\n"
    )
    return header + dump_yaml({k: m.get(k) for k in FIELDS})


def update_manifest(old: bytes, m: dict[str, Any], where: str) -> bytes:
    """``session.yaml`` as ``old`` (the file now) with the fields of ``m``, keeping the comments
    a person wrote and the lines of the values that did not change; a field ``old`` lacks goes
    after the one before it in :data:`FIELDS`, a key that is no field goes. An ``old`` that is
    no mapping (or no YAML) is written afresh (:func:`dump_manifest`)."""
    from ruamel.yaml.comments import CommentedMap

    try:
        doc = load_yaml_rt(old, where)
    except ManifestError:
        return dump_manifest(m)
    if not isinstance(doc, CommentedMap):
        return dump_manifest(m)
    for key in [k for k in doc if k not in FIELDS]:
        del doc[key]
    at = 0
    shared = _shared(doc)
    for key in FIELDS:
        value = m.get(key)
        if key not in doc:
            doc.insert(at, key, value)
        else:
            _merge(doc, key, value, shared)
        at = list(doc).index(key) + 1
    return dump_yaml_rt(doc)


def _merge(node: Any, key: Any, value: Any, shared: set[int]) -> None:
    """Set ``node[key]`` to ``value``; a mapping that holds keys already is changed key by key,
    so the comments inside it stay, unless it is ``shared`` (see :func:`_shared`)."""
    old = node[key]
    if _same(old, value):
        return
    if isinstance(old, dict) and old and isinstance(value, dict) and value:
        if id(old) not in shared:
            for k in [k for k in old if k not in value]:
                del old[k]
            for k, v in value.items():
                if k in old:
                    _merge(old, k, v, shared)
                else:
                    old[k] = v
            return
    node[key] = value


def _shared(doc: Any) -> set[int]:
    """The ids of the mappings in ``doc`` that a change in place would also change somewhere
    else: one a person wrote once and refers to again (``&v`` ... ``*v`` load as one object,
    whatever the anchor's name), one that takes keys from another (``<<: *v``: a key deleted
    would stay) and that other. :func:`_merge` replaces such a mapping whole."""
    seen: set[int] = set()
    shared: set[int] = set()
    todo = [doc]
    while todo:
        node = todo.pop()
        if not isinstance(node, (dict, list)):
            continue
        if id(node) in seen:
            shared.add(id(node))
            continue
        seen.add(id(node))
        if isinstance(node, list):
            todo.extend(node)
            continue
        for item in getattr(node, "merge", ()):  # (ruamel 0.18: (position, mapping) pairs)
            shared.add(id(node))
            todo.append(item[1] if isinstance(item, tuple) else item)  # (written elsewhere: twice)
        todo.extend(node.values())
    return shared


def _same(a: Any, b: Any) -> bool:
    """Equal as YAML values: ``1``, ``1.0`` and ``true`` are three different ones."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_same(a[k], b[k]) for k in a)
        )
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and all(map(_same, a, b))
        )
    return (
        a == b
        and isinstance(a, bool) == isinstance(b, bool)
        and isinstance(a, float) == isinstance(b, float)
    )
