"""Listing sessions (model/listing.py), in-process: what a listing says of each session is what
``Sessions.get`` says of it."""

from __future__ import annotations

import time

from spellfs import Workspace


def test_a_listing_says_a_session_was_updated_when_an_artifact_was_stored(
    anyws: Workspace,
) -> None:
    """A store is an update (the session's artifact log, not its manifest, says when): a
    listing's ``updated_at`` and count are those ``get`` gives."""
    sid = anyws.sessions.create(name="c")
    [before] = anyws.sessions.list()
    time.sleep(0.002)
    anyws.artifacts.store(sid, "user_input", "a.txt", b"a")
    [after] = anyws.sessions.list()
    assert after["updated_at"] > before["updated_at"]
    got = anyws.sessions.get(sid)
    assert after == {k: v for k, v in got.items() if k != "modified_on_disk"}  # (get's own)
    assert after["artifact_count"] == 1
