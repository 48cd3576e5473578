"""What `pip install .` gives a new machine: LICENSE, py.typed, metadata, both command names."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path


import spellfs

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_license_and_py_typed(wheel: Path) -> None:
    z = zipfile.ZipFile(wheel)
    names = set(z.namelist())
    dist = f"spellfs-{spellfs.__version__}.dist-info"
    assert "spellfs/py.typed" in names
    assert f"{dist}/licenses/LICENSE" in names
    assert z.read(f"{dist}/licenses/LICENSE") == (REPO / "LICENSE").read_bytes()
    meta = z.read(f"{dist}/METADATA").decode()
    assert (
        f"\nVersion: {spellfs.__version__}\n" in meta
    )  # one version, read from spellfs.__version__
    assert "\nLicense-Expression: MIT\n" in meta and "\nLicense-File: LICENSE\n" in meta
    assert (
        "Classifier: Operating System :: POSIX\n" in meta
        and "Classifier: Typing :: Typed\n" in meta
    )
    assert "\nKeywords: " in meta
    scripts = z.read(f"{dist}/entry_points.txt").decode()
    assert "spell = spellfs.cli:entry" in scripts and "spellfs = spellfs.cli:entry" in scripts


def test_pip_install_into_a_fresh_venv_gives_both_commands(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for cmd in ("spell", "spellfs"):
        r = subprocess.run(
            [str(venv / "bin" / cmd), "--help"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert r.returncode == 0 and "Usage: " + cmd in r.stdout, r.stderr
    r = subprocess.run(
        [str(venv / "bin" / "spellfs"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.stdout.strip() == f"spell, version {spellfs.__version__}"


def test_importing_on_a_non_posix_system_says_so() -> None:
    code = "import os; os.name = 'nt'; import spellfs"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "ImportError: spellfs needs a POSIX system" in r.stderr
