"""Why a live artifact's files/ copy is missing (model/absent.py), in-process."""

from __future__ import annotations

import time

from spellfs import Workspace
from spellfs.model.absent import (
    DELETED,
    NOT_LOCAL,
    UNWRITTEN,
    KeptOut,
    absence,
    ignore_line,
    write_back,
)
from spellfs.model.statcache import RACY_NS


def test_ignore_line_anchors_and_escapes_what_gitignore_reads_specially() -> None:
    assert ignore_line("sessions/s-1/files/a.txt") == "/sessions/s-1/files/a.txt"
    assert ignore_line("x/a*b?[c]\\d") == "/x/a\\*b\\?\\[c]\\\\d"
    assert ignore_line("x/trailing ") == "/x/trailing\\ "
    assert ignore_line("x/ inner space") == "/x/ inner space"


def test_kept_out_reads_the_gitignore_once(ws: Workspace) -> None:
    (ws.root / ".gitignore").write_text(ignore_line("sessions/d/files/big*.bin") + "\n")
    kept = KeptOut(ws)
    assert "sessions/d/files/big*.bin" in kept
    assert "sessions/d/files/bigX.bin" not in kept  # escaped: not a pattern
    (ws.root / ".gitignore").write_text("")
    assert "sessions/d/files/big*.bin" in kept  # (read on first use)
    (ws.root / ".gitignore").unlink()
    assert "sessions/d/files/big*.bin" not in KeptOut(ws)  # no .gitignore: nothing kept out


def _one(ws: Workspace) -> tuple[str, str, dict]:
    sid = ws.sessions.create(name="a")
    ws.artifacts.store(sid, "user_input", "big.bin", b"large content")
    dir = ws.sessions.resolve(sid)
    log = ws.log(dir)
    log.refresh()
    return sid, dir, log.latest("big.bin")


def test_a_missing_copy_is_not_local_unwritten_or_deleted(ws: Workspace) -> None:
    sid, dir, rec = _one(ws)
    (ws.root / ".gitignore").write_text(ignore_line(f"sessions/{dir}/files/big.bin") + "\n")
    kept = KeptOut(ws)
    assert absence(ws, dir, "big.bin", rec, False, kept) == UNWRITTEN
    assert absence(ws, dir, "big.bin", rec, True, kept) == DELETED  # this workspace had it
    (ws.root / ".gitignore").write_text("/sessions/other\n")
    assert absence(ws, dir, "big.bin", rec, False, KeptOut(ws)) == DELETED  # not kept out
    assert absence(ws, dir, "big.bin", {**rec, "hash": "0" * 64}, False, kept) == NOT_LOCAL
    assert absence(ws, dir, "big.bin", {"name": "big.bin"}, False, kept) == NOT_LOCAL


def test_write_back_writes_only_missing_copies_it_can_and_dates_them_settled(
    ws: Workspace,
) -> None:
    sid, dir, rec = _one(ws)
    ws.artifacts.store(sid, "user_input", "here.txt", b"present")
    files = ws.root / "sessions" / dir / "files"
    (files / "big.bin").unlink()
    before = time.time_ns()
    written = write_back(ws, dir, ["big.bin", "here.txt", "nope.txt"])
    assert [(n, h) for n, _, h in written] == [("big.bin", rec["hash"])]
    assert (files / "big.bin").read_bytes() == b"large content"
    st = written[0][1]
    assert st.st_mtime_ns <= before - RACY_NS  # the stat cache may vouch for it at once
    assert write_back(ws, dir, ["big.bin"]) == []  # there now: left alone
    (files / "big.bin").unlink()
    ws.objects.remove(rec["hash"])
    assert write_back(ws, dir, ["big.bin"]) == []  # no object: nothing to write
    (ws.root / "spell.yaml").write_text("watch:\n  materialize_max_bytes: 4\n")
    with Workspace.open(ws.root) as small:
        small.objects.put_bytes(b"large content")
        assert write_back(small, dir, ["big.bin"]) == []  # above the limit: never a copy
    assert not (files / "big.bin").exists()


def test_write_back_goes_on_past_names_it_skips_and_writes_a_copy_at_the_limit(
    ws: Workspace,
) -> None:
    sid, dir, rec = _one(ws)
    ws.artifacts.store(sid, "user_input", "gone.txt", b"its object goes")
    log = ws.log(dir)
    log.refresh()
    files = ws.root / "sessions" / dir / "files"
    (files / "big.bin").unlink()
    (files / "gone.txt").unlink()
    ws.objects.remove(log.latest("gone.txt")["hash"])
    (ws.root / "spell.yaml").write_text(
        f"watch:\n  materialize_max_bytes: {len(b'large content')}\n"
    )
    with Workspace.open(ws.root) as again:  # (exactly at the limit: still a copy)
        written = write_back(again, dir, ["nope.txt", "gone.txt", "big.bin"])
    assert [n for n, _, _ in written] == ["big.bin"]


def test_a_gitignore_that_is_not_utf8_is_still_read(ws: Workspace) -> None:
    (ws.root / ".gitignore").write_bytes(b"/caf\xe9\n" + ignore_line("sessions/d/f").encode())
    assert "sessions/d/f" in KeptOut(ws)
