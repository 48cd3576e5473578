"""The artifact log after a merge: versions ordered by (created_at, seq, hash) on every clone,
deletes that hide a name only until a later store, lines that are no record skipped, and what
fsck says about sequences two clones both used.

A union merge of ``artifacts.yaml`` (what git does with the attribute spellfs sets) keeps both
sides' lines; these tests append the other side's lines to a real workspace's log, as the merge
leaves them, and read it through the public API a fresh process would use.
"""

from __future__ import annotations

import pytest

from spellfs import ArtifactNotFound, UsageError, Workspace
from spellfs.model import identity_problems, valid_name
from spellfs.store import encode_record, hash_bytes


def _session(ws: Workspace) -> tuple[str, str]:
    sid = ws.sessions.create(name="log")
    return sid, ws.sessions.resolve(sid)


def _merged_in(ws: Workspace, dir: str, *recs: dict) -> None:
    """Append other clones' lines (their objects came with the merge too)."""
    ws.storage.append(f"sessions/{dir}/artifacts.yaml", b"".join(encode_record(r) for r in recs))


def _version(seq: int, name: str, content: bytes, at: str, ws: Workspace, **more) -> dict:
    oid = ws.objects.put_bytes(content)
    return {
        "seq": seq,
        "name": name,
        "hash": oid,
        "size": len(content),
        "type": "tool_result",
        "created_at": at,
        "created_by": "bob",
        **more,
    }


def _stored_at(ws: Workspace, sid: str, ref: str) -> str:
    return ws.artifacts.get(sid, ref)["metadata"]["created_at"]


def test_a_merged_version_from_the_past_is_numbered_by_time(anyws: Workspace) -> None:
    ws = anyws
    sid, dir = _session(ws)
    ws.artifacts.store(sid, "tool_result", "a.txt", b"one")  # seq 1
    ws.artifacts.store(sid, "tool_result", "a.txt", b"two")  # seq 2
    first, second = _stored_at(ws, sid, "a.txt@1"), _stored_at(ws, sid, "a.txt@2")
    assert first < second
    # bob's clone stored its own seq 2 of a.txt in between: at the time of alice's seq 1, after
    # it by sequence, before her seq 2 by time (its line says version 2)
    _merged_in(ws, dir, _version(2, "a.txt", b"bob", first, ws, version=2))
    assert [ws.artifacts.get(sid, f"a.txt@{n}")["content"] for n in (1, 2, 3)] == [
        b"one",
        b"bob",
        b"two",
    ]
    [item] = ws.artifacts.list(sid)
    assert (item["version"], item["sequence"], item["content_hash"]) == (3, 2, hash_bytes(b"two"))
    assert ws.sessions.get(sid)["artifact_count"] == 1
    # a store after the merge takes the next sequence and the next version
    aid = ws.artifacts.store(sid, "tool_result", "a.txt", b"four")
    assert aid["sequence"] == 3
    assert ws.artifacts.get(sid, "a.txt")["metadata"]["version"] == 4


def test_versions_with_one_time_are_ordered_by_sequence_then_hash(ws: Workspace) -> None:
    sid, dir = _session(ws)
    at = "2026-01-01T00:00:00.000000Z"
    # contents whose hashes sort the other way round from their sequences: seq 3's two
    # versions (told apart by hash), then seq 4's and seq 5's with ever smaller hashes
    five, four, x, y = sorted([b"v1", b"v2", b"v3", b"v4"], key=hash_bytes)
    _merged_in(
        ws,
        dir,
        _version(5, "a.txt", five, at, ws),
        _version(3, "a.txt", y, at, ws),
        _version(3, "a.txt", x, at, ws),
        _version(4, "a.txt", four, at, ws),
    )
    got = [ws.artifacts.get(sid, f"a.txt@{n}")["content"] for n in (1, 2, 3, 4)]
    assert got == [x, y, four, five]
    assert ws.artifacts.get(sid, "a.txt")["content"] == five
    with pytest.raises(ArtifactNotFound):
        ws.artifacts.get(sid, "a.txt@5")
    with pytest.raises(ArtifactNotFound):
        ws.artifacts.get(sid, "a.txt@0")


def test_versions_are_ordered_by_time_whatever_the_way_their_time_is_written(
    ws: Workspace,
) -> None:
    """RFC 3339 allows any fraction and any offset (another tool, a hand edit): as text
    "10:00:00Z" sorts after "10:00:00.5Z" and "11:30+02:00" after both."""
    sid, dir = _session(ws)
    _merged_in(
        ws,
        dir,
        _version(1, "a.txt", b"latest", "2999-01-01T10:00:00.5Z", ws),
        _version(2, "a.txt", b"middle", "2999-01-01T10:00:00Z", ws),
        _version(3, "a.txt", b"first", "2999-01-01T11:30:00+02:00", ws),  # 09:30 UTC
        {"seq": 4, "op": "delete", "name": "b.txt", "created_at": "2999-01-01T12:00:00+03:00"},
        _version(5, "b.txt", b"b", "2999-01-01T11:45:00+02:00", ws),  # after the delete
    )
    got = [ws.artifacts.get(sid, f"a.txt@{n}")["content"] for n in (1, 2, 3)]
    assert got == [b"first", b"middle", b"latest"]
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"latest"
    assert ws.artifacts.get(sid, "b.txt")["content"] == b"b"
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["b.txt", "a.txt"]  # by time
    assert ws.sessions.get(sid)["updated_at"] == "2999-01-01T10:00:00.5Z"


def test_a_delete_hides_a_name_only_until_a_later_store(ws: Workspace) -> None:
    sid, dir = _session(ws)
    ws.artifacts.store(sid, "tool_result", "a.txt", b"one")
    ws.artifacts.store(sid, "tool_result", "b.txt", b"b")
    at = _stored_at(ws, sid, "a.txt")
    early = "2000-01-01T00:00:00Z"
    late = "2999-01-01T00:00:00Z"
    # another clone deleted a.txt before this clone's store: the store is later and wins
    _merged_in(ws, dir, {"seq": 9, "op": "delete", "name": "a.txt", "created_at": early})
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"one"
    assert ws.sessions.get(sid)["artifact_count"] == 2
    # ... and a delete after it hides it, whatever the order of the lines
    _merged_in(ws, dir, {"seq": 10, "op": "delete", "name": "a.txt", "created_at": late})
    _merged_in(ws, dir, {"seq": 11, "op": "delete", "name": "a.txt", "created_at": at})
    with pytest.raises(ArtifactNotFound):
        ws.artifacts.get(sid, "a.txt")
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["b.txt"]
    assert ws.sessions.get(sid)["artifact_count"] == 1
    assert ws.artifacts.get(sid, "a.txt@1")["content"] == b"one"  # history still reads
    with pytest.raises(ArtifactNotFound):
        ws.artifacts.get(sid, 1)  # its sequence no longer does
    # a version stored after the latest delete brings it back
    _merged_in(ws, dir, _version(12, "a.txt", b"back", "2999-06-01T00:00:00Z", ws))
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"back"
    assert ws.artifacts.get(sid, "a.txt")["metadata"]["version"] == 2
    assert ws.sessions.get(sid)["artifact_count"] == 2
    assert ws.sessions.get(sid)["updated_at"] == "2999-06-01T00:00:00Z"
    assert ws.artifacts.store(sid, "tool_result", "c.txt", b"c")["sequence"] == 13


def test_lines_that_are_no_artifact_record_are_skipped(ws: Workspace) -> None:
    sid, dir = _session(ws)
    ws.artifacts.store(sid, "tool_result", "a.txt", b"one")
    good = _version(2, "a.txt", b"two", "2999-01-01T00:00:00Z", ws)
    _merged_in(
        ws,
        dir,
        {**good, "hash": 7},  # no content id
        {**good, "name": "../escape"},  # no artifact name
        {**good, "seq": 99, "created_at": "yesterday"},
        {"seq": 98, "op": "delete", "name": "a.txt"},  # a delete without a time
    )
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"one"
    assert ws.sessions.get(sid)["updated_at"] < "2999"
    assert ws.artifacts.store(sid, "tool_result", "b.txt", b"b")["sequence"] == 2
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["a.txt", "b.txt"]


def test_an_id_table_or_sequence_names_one_record_even_when_two_share_its_sequence(
    ws: Workspace,
) -> None:
    sid, dir = _session(ws)
    mine = ws.artifacts.store(sid, "tool_result", "x.txt", b"from alice")
    theirs = _version(1, "y.txt", b"from bob", "2000-01-01T00:00:00Z", ws)
    _merged_in(ws, dir, theirs)
    assert ws.artifacts.get(sid, mine)["content"] == b"from alice"
    other = {"content_hash": theirs["hash"], "session_id": sid, "sequence": 1}
    assert ws.artifacts.get(sid, other)["content"] == b"from bob"
    with pytest.raises(UsageError) as e:
        ws.artifacts.get(sid, 1)
    at = ws.artifacts.get(sid, mine)["metadata"]["created_at"]
    assert str(e.value) == (
        f"ambiguous artifact reference #1 in session {sid[:8]}: two clones each stored a #1 and "
        f"were merged: x.txt@1 ({mine['content_hash'][:12]}, {at}); "
        f"y.txt@1 ({theirs['hash'][:12]}, 2000-01-01T00:00:00Z) (name one as name@version)"
    )
    for ref in ("#1", {"sequence": 1}, {"sequence": 1, "content_hash": ""}):
        with pytest.raises(UsageError, match=r"^ambiguous artifact reference #1 in session "):
            ws.artifacts.get(sid, ref)
    # once one of them is deleted, #1 is still ambiguous: a delete line names no content
    ws.artifacts.delete(sid, "y.txt")
    assert ws.artifacts.get(sid, mine)["content"] == b"from alice"
    with pytest.raises(ArtifactNotFound):
        ws.artifacts.get(sid, other)


def test_fsck_names_shared_and_ambiguous_sequences_and_renumbered_lines(ws: Workspace) -> None:
    sid, dir = _session(ws)
    rel = f"sessions/{dir}/artifacts.yaml"
    assert identity_problems(ws, dir) == []  # no log yet
    ws.artifacts.store(sid, "tool_result", "a.txt", b"one")  # seq 1
    ws.artifacts.store(sid, "tool_result", "a.txt", b"two")  # seq 2, version 2
    ws.artifacts.store(sid, "tool_result", "b.txt", b"same")  # seq 3
    assert identity_problems(ws, dir) == []
    first = _stored_at(ws, sid, "a.txt@1")
    _merged_in(
        ws,
        dir,
        # a line of an older writer, without a version field: nothing to compare, not the end
        _version(9, "old.txt", b"old", "2998-01-01T00:00:00Z", ws),
        # bob's seq 2: a.txt stored between alice's two versions (its line says version 2)
        _version(2, "a.txt", b"bob", first, ws, version=2),
        # bob's seq 3: other name, same content as alice's seq 3
        _version(3, "c.txt", b"same", "2999-01-01T00:00:00Z", ws, version=2),  # says 2, is 1
        {"seq": 3, "op": "delete", "name": "c.txt", "created_at": "2999-01-02T00:00:00Z"},
    )
    problems = identity_problems(ws, dir)
    assert problems == [
        (
            "shared-sequence",
            rel,
            f"{rel}: sequence 2 is used by 2 records after a merge: a.txt@3 and a.txt@2 "
            "(`#2` is ambiguous; name them as name@version)",
        ),
        (
            "ambiguous-record",
            rel,
            f"{rel}: sequence 3 is used by 3 records after a merge: b.txt@1 and c.txt@1 and "
            "c.txt (deleted) (`#3` is ambiguous; name them as name@version)",
        ),
        (
            "renumbered",
            f"{rel}:2",
            f"{rel}:2: a.txt is stored as version 2 but reads as version 3 (after a merge "
            "versions are numbered by record order, the same in every clone)",
        ),
        (
            "renumbered",
            f"{rel}:6",
            f"{rel}:6: c.txt is stored as version 2 but reads as version 1 (after a merge "
            "versions are numbered by record order, the same in every clone)",
        ),
    ]


def test_a_torn_last_line_changes_nothing_the_identity_check_reports(ws: Workspace) -> None:
    sid, dir = _session(ws)
    ws.artifacts.store(sid, "tool_result", "a.txt", b"one")
    ws.artifacts.store(sid, "tool_result", "a.txt", b"two")
    _merged_in(ws, dir, _version(1, "a.txt", b"bob", "2999-01-01T00:00:00Z", ws, version=1))
    before = identity_problems(ws, dir)
    assert [p[:2] for p in before] == [
        ("shared-sequence", f"sessions/{dir}/artifacts.yaml"),
        ("renumbered", f"sessions/{dir}/artifacts.yaml:3"),
    ]
    # a killed append leaves half a line: the records before it still read and still say the
    # same (the record check reports the half line)
    ws.storage.append(f"sessions/{dir}/artifacts.yaml", b'- {"seq": 4, "na')
    assert ws.artifacts.get(sid, "a.txt")["content"] == b"bob"
    assert identity_problems(ws, dir) == before


def test_valid_name_is_a_name_that_can_be_a_files_entry() -> None:
    assert valid_name("notes.md") and valid_name("日本語.txt")
    for bad in ("", ".hidden", "a/b", "a\nb", " lead", "x" * 256, None, 5, b"notes.md"):
        assert not valid_name(bad), bad


def test_list_shows_live_artifacts_in_the_order_they_were_made(ws: Workspace) -> None:
    sid, dir = _session(ws)
    ws.artifacts.store(sid, "tool_result", "mine.txt", b"mine")  # seq 1, now
    # merged: seq 2 and 3 from a clone, made before this one's store and in the other order
    _merged_in(
        ws,
        dir,
        _version(2, "late.txt", b"late", "2001-01-01T00:00:00Z", ws),
        _version(3, "early.txt", b"early", "2000-01-01T00:00:00Z", ws),
    )
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["early.txt", "late.txt", "mine.txt"]


def test_a_merged_record_without_optional_fields_reads_with_empty_ones(ws: Workspace) -> None:
    sid, dir = _session(ws)
    bare = _version(1, "bare.bin", b"bare", "2000-01-01T00:00:00Z", ws)
    del bare["type"], bare["created_by"]
    _merged_in(ws, dir, bare)
    meta = ws.artifacts.get(sid, "bare.bin")["metadata"]
    assert (meta["artifact_type"], meta["mime_type"], meta["created_by"]) == ("", "", "")
    assert (meta["description"], meta["tags"], meta["custom"]) == ("", [], {})
    assert (meta["version"], meta["is_compressed"], meta["size"]) == (1, False, 4)


def test_merged_deletes_and_other_names_sharing_a_sequence_are_not_ambiguous_content(
    ws: Workspace,
) -> None:
    sid, dir = _session(ws)
    ws.artifacts.store(sid, "tool_result", "keep.txt", b"k")  # seq 1
    ws.artifacts.store(sid, "tool_result", "x.txt", b"x")  # seq 2
    ws.artifacts.store(sid, "tool_result", "y.txt", b"y")  # seq 3
    ws.artifacts.delete(sid, "x.txt")  # seq 4 here
    # the other clone: its seq 4 deleted y.txt, its seq 5 stored new.txt, this one's seq 5...
    _merged_in(
        ws,
        dir,
        {"seq": 4, "op": "delete", "name": "y.txt", "created_at": "2999-01-01T00:00:00Z"},
        {"seq": 5, "op": "delete", "name": "keep.txt", "created_at": "2000-01-01T00:00:00Z"},
        _version(5, "new.txt", b"new", "2999-01-02T00:00:00Z", ws),
        _version(6, "p.txt", b"p", "2999-01-03T00:00:00Z", ws),
        _version(6, "q.txt", b"q", "2999-01-03T00:00:00Z", ws),
    )
    rel = f"sessions/{dir}/artifacts.yaml"
    assert [(kind, detail.split(":")[1]) for kind, _, detail in identity_problems(ws, dir)] == [
        ("shared-sequence", " sequence 4 is used by 2 records after a merge"),
        ("shared-sequence", " sequence 5 is used by 2 records after a merge"),
        ("shared-sequence", " sequence 6 is used by 2 records after a merge"),
    ]
    assert all(where == rel for _, where, _ in identity_problems(ws, dir))
    # `#5` names the one version with that sequence; a delete line is no version
    assert ws.artifacts.get(sid, 5)["content"] == b"new"
    assert ws.artifacts.get(sid, "#5")["content"] == b"new"
    with pytest.raises(ArtifactNotFound):
        ws.artifacts.get(sid, "never.txt@1")


def test_every_version_a_merge_brings_is_kept_by_gc(ws: Workspace) -> None:
    from spellfs.maintenance.garbage import gc

    sid, dir = _session(ws)
    ws.artifacts.store(sid, "tool_result", "a.txt", b"one")
    _merged_in(ws, dir, _version(1, "a.txt", b"bob's", "2000-01-01T00:00:00Z", ws))
    ws.artifacts.delete(sid, "a.txt")
    gc(ws, grace=0)
    assert [ws.artifacts.get(sid, f"a.txt@{n}")["content"] for n in (1, 2)] == [b"bob's", b"one"]


def test_an_earlier_delete_merged_after_a_later_one_does_not_bring_a_name_back(
    ws: Workspace,
) -> None:
    sid, dir = _session(ws)
    ws.artifacts.store(sid, "tool_result", "a.txt", b"one")  # now
    ws.artifacts.store(sid, "tool_result", "b.txt", b"b")
    # one clone deleted a.txt after this store, another before it; the union merge leaves the
    # later delete's line first: the latest delete still decides
    _merged_in(
        ws,
        dir,
        {"seq": 3, "op": "delete", "name": "a.txt", "created_at": "2999-01-01T00:00:00Z"},
        {"seq": 4, "op": "delete", "name": "a.txt", "created_at": "2000-01-01T00:00:00Z"},
    )
    with pytest.raises(ArtifactNotFound):
        ws.artifacts.get(sid, "a.txt")
    assert [a["name"] for a in ws.artifacts.list(sid)] == ["b.txt"]
    assert ws.sessions.get(sid)["artifact_count"] == 1


def test_a_version_and_a_delete_with_one_time_and_sequence_leave_the_version_live(
    ws: Workspace,
) -> None:
    sid, dir = _session(ws)
    at = "2999-01-01T00:00:00.000000Z"
    # (a content whose id starts with a digit: it must still sort after a delete's no-hash)
    content = next(c for c in (b"c%d" % i for i in range(100)) if hash_bytes(c)[0].isdigit())
    # two clones each made seq 1 at the same microsecond: one stored a.txt, one deleted it
    _merged_in(
        ws,
        dir,
        _version(1, "a.txt", content, at, ws),
        {"seq": 1, "op": "delete", "name": "a.txt", "created_at": at},
    )
    assert ws.artifacts.get(sid, "a.txt")["content"] == content
    assert ws.sessions.get(sid)["artifact_count"] == 1
