"""`-` means stdout for `spell export -o -` and stdin for `spell import -`; messages name
artifacts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from spellfs import Workspace, init_workspace

from conftest import SPELL, run_spell


def test_export_to_stdout_import_from_stdin_through_a_pipe(root: Path, tmp_path: Path) -> None:
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="shared")
        ws.artifacts.store(sid, "user_input", "up.txt", b"hello")
    other = tmp_path / "other"
    init_workspace(other)
    cmd = (
        f"set -o pipefail; {' '.join(SPELL)} -w {root} export shared -o - "
        f"| {' '.join(SPELL)} -w {other} import -"
    )
    proc = subprocess.run(
        ["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert f"exported {sid[:8]} to stdout" in proc.stderr and f"imported {sid[:8]}" in proc.stdout
    assert not (root / "-").exists() and not (tmp_path / "-").exists()
    with Workspace.open(other) as ws:
        assert ws.artifacts.get(sid, "up.txt")["content"] == b"hello"
    assert (
        list((root / ".spell" / "tmp").iterdir()) == []
        and list((other / ".spell" / "tmp").iterdir()) == []
    )


def test_add_names_the_artifact_not_the_path(root: Path, tmp_path: Path) -> None:
    with Workspace.open(root) as ws:
        ws.sessions.create(name="s")
    f = tmp_path / "deep" / "up.txt"
    f.parent.mkdir()
    f.write_text("x")
    out = run_spell("add", "s", str(f), cwd=root).stdout.decode()
    assert out.startswith("stored up.txt as #1 (") and str(tmp_path) not in out
