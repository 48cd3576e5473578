"""Property: any interleaving of stores, hand edits, saves and restores never loses content that
was acknowledged (a store returned) or on disk (a person wrote it and did not discard it)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from spellfs import UnrecordedChanges, Workspace, init_workspace
from spellfs.store import hash_bytes

NAMES = ("a.txt", "b.txt", "c.txt")
contents = st.binary(min_size=0, max_size=12)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("store"), st.sampled_from(NAMES), contents),
        st.tuples(st.just("write"), st.sampled_from(NAMES), contents),
        st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just(b"")),
        st.tuples(st.just("save"), st.just(""), st.just(b"")),
        st.tuples(st.just("restore"), st.integers(1, 4), st.booleans()),
    ),
    min_size=1,
    max_size=14,
)


def _recorded(ws: Workspace, dir: str) -> set[str]:
    log = ws.log(dir)
    log.refresh()
    return {r["hash"] for r in log.records if r.get("hash")}


def _on_disk(files: Path) -> dict[str, str]:
    return {p.name: hash_bytes(p.read_bytes()) for p in files.iterdir() if p.is_file()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_no_interleaving_loses_content(steps: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        init_workspace(Path(tmp))
        with Workspace.open(tmp) as ws:
            sid = ws.sessions.create(name="p")
            dir = ws.sessions.resolve(sid)
            files = Path(tmp) / "sessions" / dir / "files"
            files.mkdir(exist_ok=True)
            known: set[str] = set()  # content that must stay reachable (records or disk)
            for op, arg, extra in steps:
                if op == "store":
                    known.add(ws.artifacts.store(sid, "t", arg, extra)["content_hash"])
                elif op in ("write", "delete"):
                    path = files / arg
                    if path.exists():  # a person replacing their own unrecorded edit discards it
                        old = hash_bytes(path.read_bytes())
                        if old not in _recorded(ws, dir):
                            known.discard(old)
                    if op == "write":
                        path.write_bytes(extra)
                        os.utime(
                            path, ns=(1, 10**9 * len(steps) + len(known))
                        )  # an old mtime: stat-cache trust
                        known.add(hash_bytes(extra))
                    elif path.exists():
                        path.unlink()
                elif op == "save":
                    ws.history.save(sid)
                else:
                    if arg <= len(ws.history.checkpoints(sid)):
                        try:
                            ws.history.restore(sid, arg, force=extra)
                        except UnrecordedChanges:
                            assert not extra
                reachable = _recorded(ws, dir) | set(_on_disk(files).values())
                assert known <= reachable, (op, arg, extra)
