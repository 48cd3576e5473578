"""Output conventions: results on stdout in the format asked for, progress and hints on
stderr, a closed pipe ends quietly, piped tables are plain text."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from spellfs import Workspace

from conftest import SPELL, run_spell

SPELL_CMD = " ".join(SPELL)


def _session_with(root: Path, names: list[str], big: int = 0) -> str:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="Literature review")
        for n in names:
            ws.artifacts.store(sid, "user_input", n, n.encode(), {"description": 'a\tb, "c"'})
        if big:
            ws.artifacts.store(sid, "user_input", "big.txt", os.urandom(big).hex().encode())
    return sid


@pytest.mark.parametrize("force_color", [None, "1"])  # FORCE_COLOR: common in CI and users' shells
def test_json_to_a_file_stays_json_when_stderr_is_a_terminal(
    root: Path, tmp_path: Path, force_color: str | None
) -> None:
    _session_with(root, [f"a{i}.txt" for i in range(300)])
    out = tmp_path / "o.json"
    master, slave = pty.openpty()
    try:
        with open(out, "wb") as f:
            proc = subprocess.run(
                [*SPELL, "fsck", "--json"],
                cwd=root,
                stdin=slave,
                stdout=f,
                stderr=slave,
                timeout=120,
                env={
                    **os.environ,
                    "TERM": "xterm",
                    "COLUMNS": "100",
                    **({"FORCE_COLOR": force_color} if force_color else {}),
                },
            )
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    raw = out.read_bytes()
    assert raw.startswith(b"{\n") and b"\x1b" not in raw  # nothing before or inside the document
    report = json.loads(raw)
    assert report["ok"] is True and report["objects"] >= 300


@pytest.mark.parametrize(
    "argv,reader",
    [
        (["cat", "{sid}", "big.txt"], "head -c10"),
        (["show", "{sid}"], "head -2"),
    ],
)
def test_a_closed_pipe_ends_quietly(root: Path, argv: list[str], reader: str) -> None:
    sid = _session_with(root, [f"{'long-name-' * 8}{i}.txt" for i in range(600)], big=2_000_000)
    cmd = " ".join([SPELL_CMD, *(a.format(sid=sid) for a in argv)])
    script = f'set -o pipefail; {cmd} 2>err.txt | {reader} > /dev/null; echo "${{PIPESTATUS[@]}}"'
    proc = subprocess.run(
        ["bash", "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.split() == ["0", "0"], (proc.stdout, (root / "err.txt").read_text())
    assert (root / "err.txt").read_text() == ""  # quietly: no traceback, no "Exception ignored"


def test_every_listing_takes_format(root: Path) -> None:
    sid = _session_with(root, ["up.txt", "notes, weird.md"])
    run_spell("save", sid, "-m", "first, with a comma", cwd=root)
    for argv, key in [
        (["ls"], "name"),
        (["log", sid], "message"),
        (["show", sid], "name"),
        (["remote", "list"], None),
    ]:
        as_json = json.loads(run_spell(*argv, "--format", "json", cwd=root).stdout)
        shorthand = json.loads(run_spell(*argv, "--json", cwd=root).stdout)
        assert as_json == shorthand
        rows = as_json["artifacts"] if argv[0] == "show" else as_json
        jsonl = [
            json.loads(line)
            for line in run_spell(*argv, "--format", "jsonl", cwd=root).stdout.splitlines()
        ]
        assert jsonl == rows
        csv_rows = list(
            csv.DictReader(
                io.StringIO(run_spell(*argv, "--format", "csv", cwd=root).stdout.decode())
            )
        )
        tsv_lines = run_spell(*argv, "--format", "tsv", cwd=root).stdout.decode().splitlines()
        if key is None:
            assert rows == [] and csv_rows == [] and tsv_lines == []
            continue
        assert [r[key] for r in csv_rows] == [str(r[key]) for r in rows]
        if argv[0] == "show":
            assert [r["description"] for r in csv_rows] == ['a\tb, "c"'] * 2
        header = tsv_lines[0].split("\t")
        assert len(tsv_lines) == len(rows) + 1 and all(
            len(t.split("\t")) == len(header) for t in tsv_lines
        )
        assert [t.split("\t")[header.index(key)] for t in tsv_lines[1:]] == [
            str(r[key]) for r in rows
        ]


def test_piped_table_is_plain_text_with_zoned_times(root: Path) -> None:
    sid = _session_with(root, ["up.txt"])
    text = run_spell("ls", cwd=root, env={"COLUMNS": "200"}).stdout.decode()
    lines = text.splitlines()
    assert lines[0].split() == ["id", "name", "status", "tags", "artifacts", "updated", "path"]
    assert all(not set(line) & set("│┃━─┏┓┗┛╇┡") for line in lines)
    assert all(line == line.rstrip() for line in lines) and max(map(len, lines)) < 120
    assert sid[:8] in lines[1] and lines[1].split()[-2].endswith("Z")
    log = run_spell("log", sid, cwd=root).stdout.decode()
    assert "no checkpoints" in log


def test_a_table_on_a_terminal_shows_markup_in_names_as_written(root: Path) -> None:
    """rich read "[bold]", "[link=…]" in a name as its markup (a name that lies on screen)."""
    with Workspace.open(root) as ws:
        ws.sessions.create(name="[link=mailto:evil@example.com]click [bold]x")
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [*SPELL, "ls"],
            cwd=root,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            timeout=120,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "200"},
        )
        os.set_blocking(master, False)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    assert b"[link=mailto:evil@example.com]click [bold]x" in shown
    assert b"\x1b]8;" not in shown  # no terminal hyperlink was made of it
