"""Stray temporary files: which ones fsck reports and gc or `fsck --repair` removes, and which
ones they never touch."""

from __future__ import annotations

import os
import time
from pathlib import Path

from spellfs import Workspace
from spellfs.maintenance.temps import remove_stray_temps, stray_temps

HOUR_AGO = time.time() - 3600


def _old(path: Path, content: bytes | None = b"half a write") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is not None:
        path.write_bytes(content)
    os.utime(path, (HOUR_AGO, HOUR_AGO), follow_symlinks=False)
    return path


def test_exactly_the_temps_of_unfinished_writes_are_found_and_removed(
    ws: Workspace, tmp_path: Path
) -> None:
    root = ws.root
    dirs = [ws.sessions.resolve(ws.sessions.create(name=f"s{i}")) for i in range(5)]
    strays = [
        ".spell/objects/ab/.tmp-1-2-deadbeef",
        ".spell/objects/tmp/.tmp-3-4-feedface",  # a large object streaming in
        ".spell/tmp/.state.yaml.1.2.tmp",
        *(f"sessions/{d}/files/.notes.md.1.2.tmp" for d in dirs),
    ]
    for rel in strays:
        _old(root / rel)
    import_dir = _old(root / ".spell/tmp/import-abc/objects/junk").parent.parent
    os.utime(import_dir, (HOUR_AGO, HOUR_AGO))
    kept = [
        ".spell/objects/ab/not-a-temp",
        ".spell/objects/abc/.tmp-5-6-cafe",  # not a fan-out folder
        f"sessions/{dirs[0]}/files/.hidden",
        f"sessions/{dirs[0]}/files/visible.tmp",
    ]
    for rel in kept:
        _old(root / rel)
    young = root / ".spell/tmp/.young.1.2.tmp"
    young.write_bytes(b"a write in progress")
    # a session whose files/ is a link to elsewhere is never followed
    outside = tmp_path / "outside"
    _old(outside / ".evil.md.1.2.tmp")
    linked = ws.sessions.resolve(ws.sessions.create(name="linked"))
    os.rename(root / "sessions" / linked / "files", tmp_path / "moved")
    os.symlink(outside, root / "sessions" / linked / "files")

    found = sorted(rel for rel, _ in stray_temps(ws))
    assert found == sorted([*strays, ".spell/tmp/import-abc"])
    assert all(age > 3000 for _, age in stray_temps(ws))
    assert sorted(remove_stray_temps(ws)) == found
    assert not any((root / rel).exists() for rel in found)
    assert all((root / rel).exists() for rel in kept) and young.exists()
    assert (outside / ".evil.md.1.2.tmp").exists()
    assert stray_temps(ws) == []


def test_the_grace_asked_for_is_the_one_used(ws: Workspace) -> None:
    minute_old = ws.root / ".spell/tmp/.a.1.2.tmp"
    minute_old.parent.mkdir(parents=True, exist_ok=True)
    minute_old.write_bytes(b"x")
    os.utime(minute_old, (time.time() - 60, time.time() - 60))
    assert remove_stray_temps(ws) == []  # the default grace: 15 minutes
    assert remove_stray_temps(ws, grace=10) == [".spell/tmp/.a.1.2.tmp"]
    assert not minute_old.exists()


def test_a_link_among_the_temps_is_removed_not_followed(ws: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious").write_bytes(b"not a temp")
    link = ws.root / ".spell/tmp/import-link"
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
    _old(link, None)
    assert remove_stray_temps(ws) == [".spell/tmp/import-link"]
    assert not os.path.lexists(link)
    assert (target / "precious").read_bytes() == b"not a temp"


def test_a_memory_workspace_has_no_temps() -> None:
    with Workspace.in_memory() as ws:
        assert stray_temps(ws, grace=-1) == [] and remove_stray_temps(ws, grace=-1) == []


def test_a_stale_pack_temp_is_removed_by_gc_and_the_packs_are_left(ws: Workspace) -> None:
    """A pack is written under ``.spell/objects/pack/.tmp-*`` then renamed: one left by a killed
    bulk store is a stray; the finished pack beside it and a pack being written now are not."""
    from spellfs.maintenance.garbage import gc
    from spellfs.store.objects import hash_bytes

    sid = ws.sessions.create(name="bulk")
    contents = {f"f{i:02}.txt": f"packed {i:02}\n".encode() for i in range(20)}
    ws.artifacts.store_many(sid, [("user_input", n, c, None) for n, c in contents.items()])
    packs = ws.root / ".spell" / "objects" / "pack"
    [pack] = packs.glob("*.pack")
    assert not any(ws.objects.path(hash_bytes(c)).exists() for c in contents.values())
    stale = _old(packs / ".tmp-4242-0-0123456789abcdef01234567.pack", b"SPELLPK1half a pack")
    writing = packs / ".tmp-4343-0-89abcdef0123456789abcdef.pack"
    writing.write_bytes(b"SPELLPK1a pack being written")

    assert [rel for rel, _ in stray_temps(ws)] == [f".spell/objects/pack/{stale.name}"]
    report = gc(ws)
    assert report.temps == [f".spell/objects/pack/{stale.name}"]
    assert not stale.exists() and writing.exists() and pack.exists()
    with Workspace.open(ws.root) as again:
        assert [again.objects.get(hash_bytes(c)) for c in contents.values()] == list(
            contents.values()
        )
