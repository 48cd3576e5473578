"""`spell show` of a large session prints a plain table: every artifact, one line each."""

from __future__ import annotations

from pathlib import Path

from conftest import run_spell

from spellfs import Workspace


def test_show_of_a_large_session_lists_every_artifact_with_its_columns(root: Path) -> None:
    (root / "spell.yaml").write_text("sessions:\n  max_artifacts_per_session: 10000\n")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="big")
        ws.artifacts.store_many(
            sid,
            [("tool_result", f"a{i:04d}.txt", "x" * i, {"tags": ["t", "u"]}) for i in range(700)],
        )
    out = run_spell("-w", str(root), "show", sid)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("name "))
    assert lines[header].split() == ["name", "version", "type", "size", "mime", "created", "tags"]
    rows = lines[header + 1 :]  # plain text: the header, then one row a line (no rule, for awk)
    assert len(rows) == 700
    for i, row in enumerate(rows):
        cells = row.split()
        assert cells[0] == f"a{i:04d}.txt" and cells[1] == "1" and cells[2] == "tool_result"
        assert cells[3] == str(i) and cells[4] == "text/plain" and row.endswith("t, u")
