"""What `spell init` ships: the repository's templates/ and .spellignore, in the wheel too."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from spellfs import Workspace, init_workspace
from spellfs.store import load_yaml

from conftest import run_spell

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(p.name for p in (REPO / "templates").glob("*.yaml"))


def test_the_repository_ships_templates_and_a_spellignore() -> None:
    assert {"research.yaml", "code-review.yaml", "data-pipeline.yaml", "chat.yaml"} <= set(
        TEMPLATES
    )
    ignore = (REPO / ".spellignore").read_text()
    for pattern in ("*.swp", "*~", ".DS_Store", "__pycache__/"):
        assert pattern in ignore.splitlines()


def test_a_fresh_workspace_has_the_shipped_templates_and_spellignore(tmp_path: Path) -> None:
    r = run_spell("init", str(tmp_path / "w"))
    assert r.returncode == 0, r.stderr
    w = tmp_path / "w"
    assert (w / ".spellignore").read_bytes() == (REPO / ".spellignore").read_bytes()
    assert sorted(p.name for p in (w / "templates").iterdir()) == TEMPLATES
    for name in TEMPLATES:
        assert (w / "templates" / name).read_bytes() == (REPO / "templates" / name).read_bytes()


def test_init_keeps_what_the_user_changed_or_removed(tmp_path: Path) -> None:
    w = tmp_path / "w"
    init_workspace(w)
    (w / "templates" / "chat.yaml").unlink()
    (w / "templates" / "research.yaml").write_text("name: Mine\n")
    (w / ".spellignore").write_text("*.tmp\n")
    assert init_workspace(w) is False
    assert not (w / "templates" / "chat.yaml").exists()
    assert (w / "templates" / "research.yaml").read_text() == "name: Mine\n"
    assert (w / ".spellignore").read_text() == "*.tmp\n"


@pytest.mark.parametrize("name", [n.removesuffix(".yaml") for n in TEMPLATES])
def test_each_template_loads_and_creates_a_session(tmp_path: Path, name: str) -> None:
    w = tmp_path / "w"
    init_workspace(w)
    doc = load_yaml((w / "templates" / f"{name}.yaml").read_bytes(), name)
    r = run_spell("-w", str(w), "new", f"my {name}", "--template", name, "--tag", "extra")
    assert r.returncode == 0, r.stderr
    sid = r.stdout.decode().strip()
    with Workspace.open(w) as ws:
        got = ws.sessions.get(sid)
    assert got["name"] == f"my {name}"
    assert got["description"] == doc["description"]
    assert got["tags"] == [*doc["tags"], "extra"]
    assert got["custom_metadata"] == doc["metadata"]


def test_the_wheel_carries_the_defaults(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "spellfs/defaults/spellignore" in names
    assert {f"spellfs/defaults/templates/{n}" for n in TEMPLATES} <= names
