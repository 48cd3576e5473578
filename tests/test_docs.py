"""Every command documents itself; the public API is what __all__ says it is."""

from __future__ import annotations

import importlib

import click
import pytest
from click.testing import CliRunner

import spellfs
from spellfs.cli import COMMANDS, LazyGroup, cli


def all_modules() -> list[str]:
    """Every module of the package, walked from the source tree (subpackages included)."""
    import pkgutil

    names = (
        m.name.removeprefix("spellfs.") for m in pkgutil.walk_packages(spellfs.__path__, "spellfs.")
    )
    return sorted(n for n in names if n != "__main__")  # running it is `python -m spellfs`


FOUNDATION = all_modules()


def loaded_commands() -> list[tuple[str, click.Command]]:
    group = LazyGroup()
    out = []
    for name in sorted(COMMANDS):
        cmd = group._load(name)
        if cmd is not None:
            out.append((name, cmd))
    return out


def all_paths() -> list[tuple[list[str], click.Command]]:
    """Every command and subcommand as the argv that reaches it."""
    out = []

    def walk(path: list[str], cmd: click.Command) -> None:
        out.append((path, cmd))
        if isinstance(cmd, click.Group):
            for sub in cmd.list_commands(click.Context(cmd)):
                walk(path + [sub], cmd.get_command(click.Context(cmd), sub))

    for name, cmd in loaded_commands():
        walk([name], cmd)
    return out


def test_foundation_commands_are_present() -> None:
    names = {n for n, _ in loaded_commands()}
    assert {
        "init",
        "new",
        "ls",
        "show",
        "cat",
        "add",
        "suspend",
        "resume",
        "complete",
        "fail",
        "rm",
        "fsck",
    } <= names


def test_command_names_match_the_table() -> None:
    for name, cmd in loaded_commands():
        assert cmd.name == name or cmd.name == name.rstrip("_"), (name, cmd.name)


@pytest.mark.parametrize("path", [p for p, _ in all_paths()], ids=lambda p: " ".join(p))
def test_help_exits_0_and_describes_the_command(path: list[str]) -> None:
    cmd = dict((tuple(p), c) for p, c in all_paths())[tuple(path)]
    assert (cmd.help or "").strip(), f"spell {' '.join(path)} has no description"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    first = cmd.help.strip().splitlines()[0]
    assert first[:40] in " ".join(result.output.split()), result.output
    for param in cmd.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"spell {' '.join(path)} {param.opts[0]} has no help"


def test_top_level_help_lists_every_loaded_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name, _ in loaded_commands():
        assert f"  {name} " in result.output or f"  {name}\n" in result.output, name
    assert (cli.help or "").strip()


def test_all_is_sorted_and_importable() -> None:
    assert spellfs.__all__ == sorted(spellfs.__all__)
    assert len(set(spellfs.__all__)) == len(spellfs.__all__)
    ns: dict = {}
    exec(f"from spellfs import {', '.join(spellfs.__all__)}", ns)
    for name in spellfs.__all__:
        assert ns[name] is getattr(spellfs, name)


def test_every_error_class_is_exported() -> None:
    from spellfs import errors

    for name in errors.__all__:
        assert name in spellfs.__all__, name
        assert issubclass(getattr(spellfs, name), spellfs.SpellError)
        assert getattr(spellfs, name).__name__ in errors.__doc__, (
            f"{name} missing from the tree in errors.py"
        )


@pytest.mark.parametrize("module", FOUNDATION)
def test_module_all_names_exist(module: str) -> None:
    mod = importlib.import_module(f"spellfs.{module}")
    assert mod.__doc__ and mod.__doc__.strip(), f"spellfs.{module} has no docstring"
    for name in getattr(mod, "__all__", []):
        assert hasattr(mod, name), f"spellfs.{module}.__all__ names {name}, which does not exist"


def readme_python_blocks() -> list[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_the_readme_python_examples_run(tmp_path) -> None:
    """The README's Python API section is executed as written, block after block."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    blocks = readme_python_blocks()
    assert len(blocks) >= 4
    script = "\n".join(f"# --- README block {i + 1}\n{b}" for i, b in enumerate(blocks))
    (tmp_path / "readme_examples.py").write_text(script)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    r = subprocess.run(
        [sys.executable, "readme_examples.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "research" / "spell.yaml").is_file()
