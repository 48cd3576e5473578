"""A batch's chunks (spellfs/model/chunk_writes.py): the cycle collector pauses for a batch and
is left as it was found, whatever the batch's end."""

from __future__ import annotations

import gc

import pytest

from spellfs import LimitExceeded, Workspace


@pytest.mark.parametrize("collecting", [True, False])
def test_a_store_leaves_the_cycle_collector_as_it_found_it(ws: Workspace, collecting: bool) -> None:
    sid = ws.sessions.create(name="gc")
    seen = []
    publish = ws.publish

    def during(kind: str, payload: dict) -> None:  # (an event a store announces: mid-batch)
        seen.append(gc.isenabled())
        publish(kind, payload)

    ws.publish = during  # type: ignore[method-assign]
    was = gc.isenabled()
    try:
        (gc.enable if collecting else gc.disable)()
        ws.artifacts.store_many(sid, [("t", f"a{i}.txt", b"%d" % i, None) for i in range(40)])
        assert gc.isenabled() is collecting
        with pytest.raises(LimitExceeded):  # a batch that fails: the same
            ws.artifacts.store_many(sid, [("t", f"b{i}.txt", b"x", None) for i in range(2000)])
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()
    assert seen and not any(seen)  # paused while the batch ran
