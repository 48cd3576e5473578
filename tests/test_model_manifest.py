"""session.yaml (model/manifest.py): what a hand edit may change, how the library reads it back,
and the one-line error naming file, line and field when an edit is wrong. Real workspaces: the
file is edited on disk and read through ``ws.sessions`` as any command would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spellfs import ManifestError, Workspace
from spellfs.model.manifest import FIELDS, dump_manifest, load_manifest
from spellfs.store.yamlio import load_yaml

SID = "0123abcd-0000-4000-8000-00000000beef"
BASE = {
    "id": SID,
    "name": "n",
    "description": "",
    "status": "active",
    "tags": [],
    "metadata": {},
    "parent": None,
    "template": None,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}


def made(ws: Workspace, root: Path) -> tuple[str, Path]:
    """A session made by the library: (its directory name, its session.yaml)."""
    sid = ws.sessions.create(name="made")
    dirname = ws.sessions.get(sid)["path"].split("/")[1]
    return dirname, root / "sessions" / dirname / "session.yaml"


def edited(ws: Workspace, path: Path, text: str) -> dict:
    """Write ``text`` over the manifest by hand and read the session back as a command would."""
    path.write_text(text)
    return ws.sessions.get(path.parent.name)


def refused(ws: Workspace, path: Path, text: str) -> str:
    """Write a bad manifest by hand; the one-line error, with the file left as written."""
    path.write_text(text)
    with pytest.raises(ManifestError) as exc:
        ws.sessions.get(path.parent.name)
    assert path.read_text() == text  # nothing "repaired" behind the user's back
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_the_error_names_the_line_of_the_offending_key(ws: Workspace, root: Path) -> None:
    dirname, path = made(ws, root)
    text = path.read_text()
    rel = f"sessions/{dirname}/session.yaml"
    lines = text.splitlines()
    lineno = next(i for i, line in enumerate(lines, 1) if line.startswith("status:"))
    assert lineno > 2  # after the header and the id, so a wrong count shows
    message = refused(ws, path, text.replace("status: active", "status: finished"))
    assert message == (
        f"{rel}:{lineno}: status: must be one of active, suspended, completed, failed "
        "(got 'finished')"
    )
    # a key is found at the start of its line only (here "name:" also occurs inside a value)
    text2 = text.replace("description: ''", "description: 'name: x'").replace(
        "status: active", "status: 7"
    )
    assert "description: 'name: x'" in text2
    message = refused(ws, path, text2)
    assert message.startswith(f"{rel}:{lineno}: status: ")
    # spaces before the colon are still the key's line
    message = refused(ws, path, text.replace("status: active", "status   : nope"))
    assert message.startswith(f"{rel}:{lineno}: status: ")


def test_lines_are_counted_from_the_first_line_as_written(ws: Workspace, root: Path) -> None:
    """A hand-written file may start with blank lines or comments; the line is still the
    editor's line number."""
    dirname, path = made(ws, root)
    text = "\n" + path.read_text().replace("status: active", "status: nope")
    lineno = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("status"))
    message = refused(ws, path, text)
    assert message.startswith(f"sessions/{dirname}/session.yaml:{lineno}: status: ")


def test_a_yaml_syntax_error_names_the_file(ws: Workspace, root: Path) -> None:
    dirname, path = made(ws, root)
    message = refused(ws, path, path.read_text().replace("tags: []", "tags: [unclosed"))
    assert message.startswith(f"sessions/{dirname}/session.yaml:")


def test_a_missing_key_has_no_line(ws: Workspace, root: Path) -> None:
    dirname, path = made(ws, root)
    text = path.read_text()
    no_created = "".join(
        line for line in text.splitlines(keepends=True) if not line.startswith("created_at:")
    )
    message = refused(ws, path, no_created)
    assert message == f"sessions/{dirname}/session.yaml: created_at: must be an RFC 3339 time"


def test_not_a_mapping_is_refused_at_line_one(ws: Workspace, root: Path) -> None:
    dirname, path = made(ws, root)
    message = refused(ws, path, "- a\n- list\n")
    assert message == (
        f"sessions/{dirname}/session.yaml:1: expected a mapping of fields ({', '.join(FIELDS)})"
    )


def test_an_unknown_field_is_named_with_the_known_ones(ws: Workspace, root: Path) -> None:
    dirname, path = made(ws, root)
    text = path.read_text()
    message = refused(ws, path, text + "colour: blue\n")
    lineno = len(text.splitlines()) + 1
    assert message == (
        f"sessions/{dirname}/session.yaml:{lineno}: colour: unknown field "
        f"(known: {', '.join(FIELDS)})"
    )


@pytest.mark.parametrize(
    "value",
    [
        SID.upper(),  # ids are lower-case hex, as the directory name shows them
        SID + "0",  # trailing characters
        "x" + SID,
        "0123abcd",
        "7",
        7,  # not a string at all
    ],
)
def test_the_id_must_be_the_whole_uuid(ws: Workspace, root: Path, value: str) -> None:
    dirname, path = made(ws, root)
    written = f"'{value}'" if isinstance(value, str) else str(value)
    text = re.sub(r"^id: .*$", f"id: {written}", path.read_text(), flags=re.M)
    message = refused(ws, path, text)
    assert message == f"sessions/{dirname}/session.yaml:2: id: must be the session's UUID"


def test_a_missing_id_is_refused(ws: Workspace, root: Path) -> None:
    dirname, path = made(ws, root)
    text = re.sub(r"^id: .*\n", "", path.read_text(), flags=re.M)
    message = refused(ws, path, text)
    assert message == f"sessions/{dirname}/session.yaml: id: must be the session's UUID"


def test_an_id_that_does_not_match_its_directory(ws: Workspace, root: Path) -> None:
    dirname, path = made(ws, root)
    text = re.sub(r"^id: .*$", f"id: {SID}", path.read_text(), flags=re.M)
    message = refused(ws, path, text)
    assert message == (
        f"sessions/{dirname}/session.yaml:2: id: does not match the directory {dirname} "
        "(the id cannot be changed)"
    )


def test_without_a_directory_the_id_is_not_compared() -> None:
    """Tools that read a manifest outside a workspace (an archive, fsck) pass no directory."""
    assert load_manifest(dump_manifest(BASE), "x.yaml")["id"] == SID


@pytest.mark.parametrize(
    "field, written, read",
    [
        ("name", "42", "42"),
        ("name", "1.5", "1.5"),
        ("name", "''", ""),
        ("name", "null", ""),
        ("name", "hand written", "hand written"),
        ("description", "7", "7"),
        ("description", "null", ""),
        ("tags", "[3, 2.5, word]", ["3", "2.5", "word"]),
        ("tags", "null", []),
        ("tags", "[]", []),
        ("metadata", "null", {}),
        ("metadata", "{k: [1, two]}", {"k": [1, "two"]}),
        ("status", "suspended", "suspended"),
        ("template", "''", None),
        ("template", "research", "research"),
    ],
)
def test_hand_written_values_are_read_as_the_user_means(
    ws: Workspace, root: Path, field: str, written: str, read
) -> None:
    _, path = made(ws, root)
    text = re.sub(rf"^{field}:.*(\n- .*)*$", f"{field}: {written}", path.read_text(), flags=re.M)
    key = {"tags": "tags", "metadata": "custom_metadata"}.get(field, field)
    got = edited(ws, path, text)[key]
    assert got == read and type(got) is type(read)


def test_missing_optional_fields_take_their_defaults(ws: Workspace, root: Path) -> None:
    dirname, path = made(ws, root)
    keep = ("id:", "created_at:", "updated_at:")
    text = "".join(line for line in path.read_text().splitlines(True) if line.startswith(keep))
    s = edited(ws, path, text)
    assert (s["name"], s["description"], s["status"]) == ("", "", "active")
    assert (s["tags"], s["custom_metadata"]) == ([], {})
    assert (s["parent_session_id"], s["template"]) == (None, None)


@pytest.mark.parametrize(
    "field, written, why",
    [
        ("name", "[a, b]", "must be a string"),
        ("name", "true", "must be a string"),
        ("description", "{a: 1}", "must be a string"),
        ("description", "false", "must be a string"),
        ("tags", "word", "must be a list of words"),
        ("tags", "{a: 1}", "must be a list of words"),
        ("tags", "[a, true]", "must be a list of words"),
        ("tags", "[a, [b]]", "must be a list of words"),
        ("tags", "[null]", "must be a list of words"),
        ("metadata", "[1, 2]", "must be a mapping"),
        ("metadata", "5", "must be a mapping"),
        ("parent", "5", "must be a string or empty"),
        ("template", "[t]", "must be a string or empty"),
        ("created_at", "''", "must be an RFC 3339 time"),
        ("created_at", "5", "must be an RFC 3339 time"),
        ("updated_at", "null", "must be an RFC 3339 time"),
        ("status", "null", "must be one of active, suspended, completed, failed (got None)"),
    ],
)
def test_wrong_types_are_refused_naming_the_field(
    ws: Workspace, root: Path, field: str, written: str, why: str
) -> None:
    dirname, path = made(ws, root)
    text = path.read_text()
    text = re.sub(rf"^{field}:.*(\n- .*)*$", f"{field}: {written}", text, flags=re.M)
    lineno = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(field))
    message = refused(ws, path, text)
    assert message == f"sessions/{dirname}/session.yaml:{lineno}: {field}: {why}"


def test_the_first_wrong_field_is_the_one_reported(ws: Workspace, root: Path) -> None:
    """Fields are checked in the file's order of importance: the user fixes one at a time."""
    _, path = made(ws, root)
    text = path.read_text().replace("status: active", "status: nope")
    text = text.replace("tags: []", "tags: 5").replace("metadata: {}", "metadata: 5")
    assert ": status: " in refused(ws, path, text)


def test_dump_writes_a_header_and_every_field_in_order() -> None:
    data = dump_manifest({**BASE, "extra": "dropped"})
    first, rest = data.split(b"\n", 1)
    assert first == (
        b"# spellfs session manifest: name, description, status, tags and metadata may be "
        b"edited by hand"
    )
    doc = load_yaml(rest, "x")
    assert list(doc) == list(FIELDS) and doc == BASE
    # a field the caller left out is written empty, and reads back as its default
    partial = {k: v for k, v in BASE.items() if k not in ("parent", "tags")}
    assert load_yaml(dump_manifest(partial), "x")["parent"] is None
    assert load_manifest(dump_manifest(partial), "x")["tags"] == []
    assert load_manifest(dump_manifest(BASE), "x") == BASE


# -- rewrites keep what a person wrote (red-team F19) ------------------------------------------

COMMENTED = """\
# spellfs session manifest: name, description, status, tags and metadata may be edited by hand
# our team's review session
id: 0123abcd-0000-4000-8000-00000000beef
name: n  # short on purpose
description: my desc  # reviewed by bob
status: active
tags: [x]
metadata:
  # who looks after it
  owner: bob   # until March
  n: 1
parent: null
template: null
created_at: '2026-01-01T00:00:00Z'
updated_at: '2026-01-01T00:00:00Z'
# team note: do not delete this session
"""


def test_an_update_keeps_every_comment_and_changes_only_the_changed_lines() -> None:
    from spellfs.model.manifest import update_manifest

    m = load_manifest(COMMENTED.encode(), "x")
    m = {**m, "status": "suspended", "updated_at": "2026-02-02T00:00:00Z"}
    out = update_manifest(COMMENTED.encode(), m, "x").decode()
    assert load_manifest(out.encode(), "x") == m
    want = COMMENTED.replace("status: active", "status: suspended").replace(
        "updated_at: '2026-01-01T00:00:00Z'", "updated_at: '2026-02-02T00:00:00Z'"
    )
    assert out == want


def test_an_update_inside_metadata_keeps_the_comments_in_it() -> None:
    from spellfs.model.manifest import update_manifest

    m = load_manifest(COMMENTED.encode(), "x")
    # (in another order than the file's: the file's order stays, new keys go last)
    m = {**m, "metadata": {"n": 2, "owner": "bob", "new": True}, "tags": ["x", "y"]}
    out = update_manifest(COMMENTED.encode(), m, "x").decode()
    assert load_manifest(out.encode(), "x") == m
    assert "  # who looks after it\n  owner: bob   # until March\n  n: 2\n  new: true\n" in out
    assert out.count("#") == COMMENTED.count("#")


@pytest.mark.parametrize("old, new", [(1, 1.0), (1, True), (0, False), ("1", 1), (None, "")])
def test_an_update_tells_values_equal_in_python_apart(old: object, new: object) -> None:
    """``1`` and ``true`` compare equal in Python; as YAML they are different values."""
    from spellfs.model.manifest import update_manifest

    before = dump_manifest({**BASE, "metadata": {"k": old}})
    m = {**BASE, "metadata": {"k": new}}
    assert load_manifest(update_manifest(before, m, "x"), "x") == m


def test_an_update_adds_a_missing_field_in_its_place_and_drops_a_key_that_is_no_field() -> None:
    from spellfs.model.manifest import update_manifest

    text = COMMENTED.replace("template: null\n", "").replace("status: active\n", "junk: 1\n")
    text = text.replace("id: 0123abcd-0000-4000-8000-00000000beef\n", "")  # the first field
    m = {**BASE, "tags": ["x"], "metadata": {"owner": "bob", "n": 1}, "name": "n"}
    m["description"] = "my desc"
    out = update_manifest(text.encode(), m, "x")
    doc = load_yaml(out, "x")
    assert list(doc) == list(FIELDS) and load_manifest(out, "x") == m
    assert b"# team note: do not delete this session\n" in out


@pytest.mark.parametrize("old", [b"- a list\n", b"key: [unclosed\n", b"", b"\xff\xfe"])
def test_an_update_of_what_is_no_mapping_writes_the_manifest_afresh(old: bytes) -> None:
    from spellfs.model.manifest import update_manifest

    assert update_manifest(old, BASE, "x") == dump_manifest(BASE)


def test_status_changes_tags_and_metadata_keep_a_persons_comments(
    ws: Workspace, root: Path
) -> None:
    dirname, path = made(ws, root)
    text = path.read_text()
    text = text.replace("description: ''", "description: mine  # reviewed by bob")
    path.write_text(text + "# team note: do not delete this session\n")
    sid = ws.sessions.get(dirname)["id"]
    ws.sessions.suspend(sid)
    ws.sessions.resume(sid)
    ws.sessions.update_metadata(sid, {"k": 1})
    ws.sessions.set_manifest_fields(sid, tags=["a"])
    after = path.read_text()
    assert "description: mine  # reviewed by bob\n" in after
    assert after.endswith("# team note: do not delete this session\n")
    got = ws.sessions.get(sid)
    assert (got["description"], got["status"], got["tags"]) == ("mine", "active", ["a"])
    assert got["custom_metadata"] == {"k": 1}
    with Workspace.open(root) as other:  # as another process reads it
        assert other.sessions.get(sid)["tags"] == ["a"]


def test_spell_keeps_comments_through_suspend_resume_and_names_a_broken_manifest(
    root: Path, spell
) -> None:
    """The red-team's F19 repro, through `spell`."""
    assert spell("new", "s", cwd=root).returncode == 0
    [path] = (root / "sessions").glob("*/session.yaml")
    text = path.read_text().replace("description: ''", "description: my desc  # reviewed by bob")
    path.write_text(text + "# team note: do not delete this session\n")
    for verb in ("suspend", "resume"):
        assert spell(verb, "s", cwd=root).returncode == 0
    after = path.read_text()
    assert after.count("#") == 3 and "my desc  # reviewed by bob\n" in after
    assert after.endswith("# team note: do not delete this session\n")
    path.write_text(after + "owner: bob\n")
    r = spell("suspend", "s", cwd=root)
    line = after.count("\n") + 1
    assert r.returncode == 1 and r.stderr.decode().startswith(
        f"Error: sessions/{path.parent.name}/session.yaml:{line}: owner: unknown field"
    )


def test_a_first_metadata_key_turns_an_empty_flow_mapping_into_a_block() -> None:
    """``metadata: {}`` as spellfs writes it: a key added is written as a block, like every
    other mapping spellfs writes, not as ``{k: 1}``."""
    from spellfs.model.manifest import update_manifest

    out = update_manifest(dump_manifest(BASE), {**BASE, "metadata": {"k": 1}}, "x")
    assert b"\nmetadata:\n  k: 1\n" in out


def test_hand_written_metadata_is_taken_as_json_data_or_refused_by_line(ws) -> None:
    """YAML lets a person write keys that are numbers beside keys that are words, and values
    JSON cannot hold. The keys are taken as JSON takes them (strings), so a checkpoint (which
    writes sorted JSON) works; a value JSON cannot hold is an error naming file and line."""
    sid = ws.sessions.create(name="s")
    path = ws.root / "sessions" / ws.sessions.resolve(sid) / "session.yaml"
    path.write_text(path.read_text().replace("metadata: {}", "metadata:\n  1: a\n  b: c"))
    assert ws.sessions.get(sid)["custom_metadata"] == {"1": "a", "b": "c"}
    assert ws.history.save(sid) == 1  # was: TypeError, '<' between 'str' and 'int'
    path.write_text(path.read_text().replace("  b: c", "  b: c\n  n: .nan"))
    with pytest.raises(ManifestError, match=r"session\.yaml:7: metadata: nan is not a number"):
        ws.sessions.get(sid)


@pytest.mark.parametrize(
    "written, taken",
    [
        ("  true: t\n  null: n\n  1.5: f", {"true": "t", "null": "n", "1.5": "f"}),
        ("  1: one\n  '1': two", "keys 1 and '1' are the same key as text"),
        ("  ? [1, 2]\n  : x", "refused: a mapping key must be text, a number or a date, not tuple"),
    ],
)
def test_metadata_keys_are_spelled_as_json_spells_them_and_never_merge(
    ws, written: str, taken
) -> None:
    """red-team 3, M1 M2: keys became Python's spelling ("True", "None", "(1, 2)") and a number
    key beside the same text dropped one value without a word."""
    sid = ws.sessions.create(name="s")
    path = ws.root / "sessions" / ws.sessions.resolve(sid) / "session.yaml"
    path.write_text(path.read_text().replace("metadata: {}", "metadata:\n" + written))
    if isinstance(taken, dict):
        assert ws.sessions.get(sid)["custom_metadata"] == taken
    else:
        where = "session.yaml: " if taken.startswith("refused") else "session.yaml:7: metadata: "
        with pytest.raises(ManifestError, match=re.escape(where + taken)):
            ws.sessions.get(sid)


SHARED = """\
metadata:
  x: &v  # one mapping, reached three ways
    k: 1
    j: 0
  y: *v
  z:
    <<: *v
    extra: 3
"""
# (an anchor named like the ones ruamel makes up is not kept on the mapping it loads)
SHARED_AS_ID = SHARED.replace("&v", "&id001").replace("*v", "*id001")
MERGED_ONLY = SHARED.replace("  y: *v\n", "")  # (x is reached once, and through z's merge)
ALIASED_ONLY = SHARED.replace("    <<: *v\n", "    k: 1\n    j: 0\n")


@pytest.mark.parametrize(
    "metadata",
    [
        {"x": {"k": 2, "j": 0}, "y": {"k": 1, "j": 0}, "z": {"k": 1, "j": 0, "extra": 3}},
        {"x": {"k": 1, "j": 0}, "y": {"k": 5, "j": 0}, "z": {"k": 1, "j": 0, "extra": 3}},
        {"x": {"k": 1, "j": 0}, "y": {"k": 1, "j": 0}, "z": {"k": 9, "extra": 3}},
    ],
    ids=["the-anchor", "an-alias", "a-merge-key"],
)
@pytest.mark.parametrize(
    "text",
    [SHARED, SHARED_AS_ID, MERGED_ONLY, ALIASED_ONLY],
    ids=["v", "id001", "merged-only", "aliased-only"],
)
def test_a_change_to_a_mapping_a_person_shared_by_anchor_or_merge_is_written_as_given(
    ws: Workspace, root: Path, metadata: dict, text: str
) -> None:
    """A hand-written ``&v`` / ``*v`` / ``<<: *v`` makes several keys one mapping: changing
    one of them key by key in place changed the others too (or left a merged key), so the
    value spellfs was asked to write was lost or another one changed with it."""
    dirname, path = made(ws, root)
    path.write_text(path.read_text().replace("metadata: {}\n", text))
    sid = ws.sessions.get(dirname)["id"]
    ws.sessions.set_manifest_fields(sid, metadata=metadata)
    assert load_manifest(path.read_bytes(), "x")["metadata"] == metadata
    assert "# one mapping, reached three ways" in path.read_text()  # kept where nothing moved
    with Workspace.open(root) as other:  # as another process reads it
        assert other.sessions.get(sid)["custom_metadata"] == metadata


def test_a_rewrite_keeps_a_nel_in_a_description_and_in_metadata(ws: Workspace, root: Path) -> None:
    """U+0085 written raw in single quotes reads back as a space: a suspend (any rewrite of the
    file) changed the description and metadata a person had set."""
    sid = ws.sessions.create(name="nel", description="a\x85b", metadata={"k": "x\x85"})
    ws.sessions.suspend(sid)
    ws.sessions.update_metadata(sid, {"j": "\x85\x85"})
    with Workspace.open(root) as other:  # as another process reads it
        got = other.sessions.get(sid)
    assert got["description"] == "a\x85b"
    assert got["custom_metadata"] == {"k": "x\x85", "j": "\x85\x85"}


def test_two_mappings_shared_one_from_inside_a_list_are_written_as_given(
    ws: Workspace, root: Path
) -> None:
    dirname, path = made(ws, root)
    shared = "metadata:\n  a:\n  - &v\n    k: 1\n  b: *v\n  c: &w\n    k: 1\n  d: *w\n"
    path.write_text(path.read_text().replace("metadata: {}\n", shared))
    sid = ws.sessions.get(dirname)["id"]
    ws.sessions.update_metadata(sid, {"b": {"k": 2}, "d": {"k": 3}})
    want = {"a": [{"k": 1}], "b": {"k": 2}, "c": {"k": 1}, "d": {"k": 3}}
    with Workspace.open(root) as other:  # as another process reads it
        assert other.sessions.get(sid)["custom_metadata"] == want
