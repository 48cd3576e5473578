"""The query index (model/index.py): a process listing sessions again answers as a new process
would, whatever another process changed meanwhile. Real workspaces, real `spell` processes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from spellfs import Workspace

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


@pytest.mark.parametrize("linked", ["before the listings", "after the listings"])
def test_an_edit_through_a_hard_link_shows_in_a_long_lived_listing(
    root: Path, spell, linked: str
) -> None:
    """From its second listing on, a process trusts the kernel's queue for each session
    directory; an edit made through a hard link in another directory (a `cp -al` snapshot,
    a tool given the other name) queues nothing on that directory's watch. The listing must
    still show it, as a new process does."""
    for name in ("s0", "s1"):
        assert spell("-w", str(root), "new", name).returncode == 0
    manifest = next(
        p / "session.yaml"
        for p in (root / "sessions").iterdir()
        if "name: s0" in (p / "session.yaml").read_text()
    )
    if linked == "before the listings":
        os.link(manifest, root / "alias.yaml")
    with Workspace.open(root) as ws:

        def names() -> list[str]:
            return sorted(s["name"] for s in ws.sessions.list({"status": "all"}))

        assert names() == names() == ["s0", "s1"]  # the second listing starts the watch
        assert names() == ["s0", "s1"]  # (and the third trusts it)
        if linked == "after the listings":
            os.link(manifest, root / "alias.yaml")
            names()
        text = manifest.read_bytes().replace(b"name: s0", b"name: Z0")
        with open(root / "alias.yaml", "r+b") as f:  # in place, through the other name
            f.write(text)
        fresh = spell("-w", str(root), "ls", "--all", "--json").stdout
        assert sorted(s["name"] for s in json.loads(fresh)) == ["Z0", "s1"]
        assert names() == ["Z0", "s1"]


def test_an_edit_through_a_hard_link_to_a_rewritten_manifest_shows(
    root: Path, tmp_path: Path
) -> None:
    """A manifest rewritten by another process is a new inode; the listing that reads it must
    watch that inode before it trusts the session again, or a later edit through a hard link
    to it (queued on no directory's watch) would never show."""
    with Workspace.open(root) as ws, Workspace.open(root) as other:

        def names() -> list[str]:
            return sorted(s["name"] for s in ws.sessions.list({"status": "all"}))

        sid = ws.sessions.create(name="s0")
        ws.sessions.create(name="s1")
        for _ in range(3):  # the second listing starts the watch, the third trusts it
            assert names() == ["s0", "s1"]
        other.sessions.update_metadata(sid, {"round": 1})  # a new session.yaml, renamed in place
        assert names() == ["s0", "s1"]
        manifest = root / "sessions" / ws.sessions.resolve(sid) / "session.yaml"
        os.link(manifest, tmp_path / "alias.yaml")
        text = manifest.read_bytes().replace(b"name: s0", b"name: Z0")
        with open(tmp_path / "alias.yaml", "r+b") as f:  # in place, through the other name
            f.write(text)
        assert names() == ["Z0", "s1"]


def _count_stats(ws: Workspace, monkeypatch) -> list[str]:
    """The files whose signature the workspace asks its storage for from now on."""
    signature, asked = ws.storage.signature, []
    monkeypatch.setattr(ws.storage, "signature", lambda rel: asked.append(rel) or signature(rel))
    return asked


def test_a_listing_looks_at_each_manifest_once(root: Path, monkeypatch) -> None:
    """A listing stats each session.yaml once, in its first pass over the rows; its second look
    at the rows it chose (their records) trusts that stat (`manifest=False`): a new process
    listing sessions it has cached asks for no manifest's signature a second time."""
    with Workspace.open(root) as ws:
        for name in ("a", "b", "c"):
            ws.artifacts.store(ws.sessions.create(name=name), "user_input", "x.txt", b"x")
    with Workspace.open(root) as ws:
        asked = _count_stats(ws, monkeypatch)
        assert [s["artifact_count"] for s in ws.sessions.list()] == [1, 1, 1]
        assert [a for a in asked if a.endswith("/session.yaml")] == []  # (stat-ed relative)
        assert len({a for a in asked if a.endswith("/artifacts.yaml")}) == 3  # (the records)


def test_an_artifact_query_stats_nothing_the_queue_vouches_for(root: Path, monkeypatch) -> None:
    """From its third full listing on, a process asks the kernel's queue what changed: an
    artifact query of sessions nobody touched stats neither file of any of them."""
    with Workspace.open(root) as ws:
        for name in ("a", "b", "c"):
            ws.artifacts.store(ws.sessions.create(name=name), "user_input", f"{name}.txt", b"x")
        for _ in range(3):  # the second starts the watch, the third trusts it
            assert len(ws.artifacts.query()) == 3
        asked = _count_stats(ws, monkeypatch)
        assert sorted(a["name"] for a in ws.artifacts.query()) == ["a.txt", "b.txt", "c.txt"]
        assert asked == []


def test_a_manifest_edit_that_keeps_size_and_mtime_is_seen_by_a_new_process(root: Path) -> None:
    """`cp -p`, `touch -r`, an editor that puts the mtime back: the size and mtime match what the
    index keeps, the ctime (which no one can set) does not, as in git's index (F12)."""
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="a", tags=["old"])
        assert [s["name"] for s in ws.sessions.list({"tags": ["old"]})] == ["a"]
        path = root / "sessions" / ws.sessions.resolve(sid) / "session.yaml"
    st = path.stat()
    path.write_text(path.read_text().replace("- old", "- new"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    with Workspace.open(root) as ws:
        assert [s["name"] for s in ws.sessions.list({"tags": ["new"]})] == ["a"]
        assert ws.sessions.list({"tags": ["old"]}) == []
        assert ws.sessions.get(sid)["tags"] == ["new"]


def test_an_artifact_log_edited_through_a_hard_link_shows_in_a_query_after_listings(
    root: Path, tmp_path: Path
) -> None:
    """Listings that leave a session out vouch for its manifest only; a later query of every
    artifact (``refresh_all`` with the records) must still stat that session's artifact log,
    whose inode no one watches: an edit to it through a hard link elsewhere queues nothing."""
    with Workspace.open(root) as other:
        for name in "abc":
            other.sessions.create(name=name, tags=["t"])
        z = other.sessions.create(name="z", tags=["v"])
        other.artifacts.store(z, "user_input", "x.txt", b"x")
        records = root / "sessions" / other.sessions.resolve(z) / "artifacts.yaml"
        one = records.read_bytes()
        other.artifacts.store(z, "user_input", "y.txt", b"y")
        two = records.read_bytes()
    records.write_bytes(one)  # (y's record comes back through the link, below)
    os.link(records, tmp_path / "alias.yaml")
    with Workspace.open(root) as ws:
        for _ in range(3):  # the second listing starts the watch, the third trusts it
            assert sorted(s["name"] for s in ws.sessions.list({"tags": ["t"]})) == ["a", "b", "c"]
        assert [a["name"] for a in ws.artifacts.query()] == ["x.txt"]
        with open(tmp_path / "alias.yaml", "r+b") as f:  # in place, through the other name
            f.write(two)
        assert sorted(a["name"] for a in ws.artifacts.query()) == ["x.txt", "y.txt"]


def test_a_session_a_listing_leaves_out_costs_no_look_at_its_artifact_log(
    root: Path, monkeypatch
) -> None:
    """A listing reads the artifact logs of the sessions it shows only (their counts): one it
    filters out, even one whose manifest changed, costs no stat of its artifacts.yaml."""
    with Workspace.open(root) as other:
        for name in "abc":
            other.sessions.create(name=name, tags=["t"])
        z = other.sessions.create(name="z", tags=["v"])
        other.artifacts.store(z, "user_input", "x.txt", b"x")
    with Workspace.open(root) as ws:
        assert [s["name"] for s in ws.sessions.list({"tags": ["t"]})] == ["a", "b", "c"]
        asked = _count_stats(ws, monkeypatch)
        for _ in range(2):  # the first starts the watch, the second trusts it
            assert [s["name"] for s in ws.sessions.list({"tags": ["t"]})] == ["a", "b", "c"]
        manifest = root / "sessions" / ws.sessions.resolve(z) / "session.yaml"
        manifest.write_text(manifest.read_text().replace("name: z", "name: zz"))
        assert [s["name"] for s in ws.sessions.list({"tags": ["t"]})] == ["a", "b", "c"]
        z_log = f"sessions/{ws.sessions.resolve(z)}/artifacts.yaml"
        assert z_log not in asked
        assert [s["name"] for s in ws.sessions.list({"tags": ["v"]})] == ["zz"]
        assert z_log in asked  # (the listing that shows it reads it)
