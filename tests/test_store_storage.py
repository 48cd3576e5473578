"""Disk storage: writes are atomic, so a concurrent reader never sees a torn or empty file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from spellfs import Workspace
from spellfs.store.yamlio import load_yaml

READER = textwrap.dedent(r"""
    import os, re, sys
    whole = re.compile(rb"# spellfs session manifest.*\nupdated_at: [^\n]+\n\Z", re.S)
    path, stop = sys.argv[1], sys.argv[2]
    reads = bad = 0
    print("ready", flush=True)
    while not os.path.exists(stop) or reads < 500:
        with open(path, "rb") as f:
            data = f.read()
        reads += 1
        # every version starts with the header and ends with updated_at; a torn read does not
        if not whole.match(data):
            bad += 1
    print(reads, bad, flush=True)
""")


def test_concurrent_reader_never_sees_a_torn_session_yaml(ws: Workspace, tmp_path: Path) -> None:
    """A separate process reads session.yaml in a loop while this one rewrites it 400 times.

    With writes in place (open, truncate, write) the reader sees an empty or half file in
    most reads; with temp + rename it sees only whole versions.
    """
    sid = ws.sessions.create(name="atomic", metadata={"pad": "x" * 20_000})
    rel = ws.sessions.get(sid)["path"] + "/session.yaml"
    path = ws.root / rel
    assert path.read_bytes().startswith(b"# spellfs session manifest")
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline() == "ready\n"
        for i in range(400):
            ws.sessions.update_metadata(sid, {"pad": f"{i:05d}" * 4_000})
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=120)
    reads, bad = map(int, out.split())
    assert reads >= 500
    assert bad == 0, f"{bad} of {reads} reads saw a torn or empty session.yaml"
    assert load_yaml(path.read_bytes(), rel)["metadata"]["pad"] == "00399" * 4_000
