"""Crash safety: `spell run` killed with SIGKILL at random points, 50 times.

After every kill: fsck is clean, nothing temporary or half-written is in view
under sessions/, and every artifact stored before the last completed
checkpoint reads back intact.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from spellfs import Workspace
from spellfs.maintenance.checks import fsck

SCRIPT = r"""
local sid, start = arg[1], tonumber(arg[2])
local i = start
while true do
  Artifact.store(sid, "tool_result", "a" .. i .. ".txt", "content " .. i .. string.rep(".", i % 97))
  i = i + 1
  if i % 5 == 0 then
    local n = Session.save(sid, "through " .. i)
    io.write("saved ", n, " ", i, "\n")
    io.stdout:flush()
  end
end
"""


SAVED = re.compile(rb"^saved ([0-9]+) ([0-9]+)\n", re.M)


def expected(i: int) -> bytes:
    return f"content {i}".encode() + b"." * (i % 97)


def test_sigkill_at_random_points_loses_nothing_acknowledged(root: Path) -> None:
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 1000000\n")
    script = root / "crash.lua"
    script.write_text(SCRIPT)
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="crash")
    rng = random.Random(7)
    acknowledged: dict[int, bytes] = {}
    checkpoints_seen = 0
    for round_ in range(50):
        start = round_ * 100_000
        proc = subprocess.Popen(
            [sys.executable, "-m", "spellfs", "-w", str(root), "run", str(script), sid, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Kill at a random point once work is under way: timing from the first save, not from
        # process start, so a slow start-up (a loaded machine) cannot make every kill land early.
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        # Only whole lines count: the kill may cut the last one short ("saved 3 1" for
        # "saved 3 15"), and a cut line acknowledged nothing.
        saved = SAVED.findall(first + out)
        if saved:
            last = int(saved[-1][1])
            checkpoints_seen += len(saved)
            acknowledged.update((i, expected(i)) for i in range(start, last))
        visible = [
            p
            for p in (root / "sessions").rglob("*")
            if p.name.endswith(".tmp") or p.name.startswith(".")
        ]
        assert visible == [], f"round {round_}: left in view: {visible}"
        with Workspace.open(root) as ws:
            report = fsck(ws)
            assert report.ok, f"round {round_}: {[p.detail for p in report.problems]}"
            for i, content in list(acknowledged.items())[-60:]:
                assert ws.artifacts.get(sid, f"a{i}.txt")["content"] == content
    assert checkpoints_seen > 50  # the kills landed while work was under way, not before it started
    with Workspace.open(root) as ws:
        for i, content in acknowledged.items():
            assert ws.artifacts.get(sid, f"a{i}.txt")["content"] == content
        assert ws.history.checkpoints(sid)
