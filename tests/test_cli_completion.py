"""Shell completion of sessions, artifacts and checkpoints; the global -q and -v options."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from spellfs import Workspace

from conftest import SPELL, run_spell


def complete(root: Path, line: str, shell: str = "bash") -> list[str]:
    line = line.replace("spell ", f"spell -w {root} ", 1)
    words = line.split(" ")
    env = {
        **os.environ,
        "_SPELL_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
    }
    proc = subprocess.run(SPELL, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return [ln.split(",", 1)[1] for ln in proc.stdout.splitlines() if ln]


def test_completes_sessions_artifacts_and_checkpoints(root: Path) -> None:
    with Workspace.open(root) as ws:
        a = ws.sessions.create(name="Literature review")
        b = ws.sessions.create(name="code")
        for n in ("notes.md", "numbers.csv", "other.txt"):
            ws.artifacts.store(a, "user_input", n, b"x")
        ws.history.save(a, "one")
        ws.artifacts.store(
            a, "user_input", "later.txt", b"y"
        )  # a save with no change makes no checkpoint
        ws.history.save(a, "two")
    assert sorted(complete(root, "spell show ")) == sorted([a[:8], b[:8]])
    assert complete(root, "spell show Lit") == ["Literature review"]
    assert complete(root, f"spell cat {a[:8]} n") == ["notes.md", "numbers.csv"]
    assert complete(root, f"spell restore {a[:8]} ") == ["1", "2"]
    assert complete(root, f"spell diff {a[:8]} 2") == ["2"]
    assert complete(root, "spell cat nosuchsession ") == []  # nothing, and no traceback


def test_bash_source_script_for_both_command_names() -> None:
    for prog in ("spell", "spellfs"):
        env = {**os.environ, f"_{prog.upper()}_COMPLETE": "bash_source"}
        code = f"import sys; sys.argv[0] = {prog!r}; from spellfs.cli import entry; entry()"
        out = subprocess.run(
            [SPELL[0], "-c", code], env=env, capture_output=True, text=True, timeout=60
        ).stdout
        assert (
            f"_{prog.upper()}_COMPLETE=bash_complete" in out
            and f"complete -o nosort -F _{prog}_completion {prog}" in out
        )


def test_quiet_silences_hints_verbose_shows_traceback(root: Path) -> None:
    (root / ".spellignore").write_text("*.log\n")
    (root / "a.log").write_text("x")
    (root / "b.txt").write_text("y")
    with Workspace.open(root) as ws:
        ws.sessions.create(name="s")
    loud = run_spell("add", "s", "a.log", "b.txt", cwd=root)
    assert "skipped (in .spellignore): a.log" in loud.stderr.decode()
    quiet = run_spell("-q", "add", "s", "a.log", "b.txt", cwd=root)
    assert quiet.returncode == 0 and quiet.stderr == b""
    err = run_spell("-v", "show", "nope", cwd=root).stderr.decode()
    assert "Traceback" in err and err.rstrip().endswith(
        "Error: session not found: nope (try `spell ls --all`)"
    )
    assert "Traceback" not in run_spell("show", "nope", cwd=root).stderr.decode()
