"""The package's layers: imports only go down, and the order is written here, once.

Each entry of :data:`LAYERS` may import from the entries before it and from itself,
never from one after it. Imports under ``if TYPE_CHECKING:`` are for type checkers
only and do not count. ``workspace`` is the composition root: the layers below take
a ``Workspace`` as an argument (a type-only import) and the workspace builds their
services lazily, so it sits above every layer whose services it builds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import spellfs

LAYERS: list[set[str]] = [
    {"errors", "names", "events", "hooks", "lazy", "defaults"},  # the vocabulary every layer speaks
    {"store"},  # objects, storage, records, YAML: knows nothing of sessions
    {"agent"},  # model providers and call records (store-level records only)
    {"config"},  # spell.yaml; validates providers through agent
    {"model"},  # sessions, manifests, artifacts, state, the query index
    {"history"},  # checkpoint trees, diff, runs, replay, reachability
    {"remote"},  # remote object stores, their configuration, push/pull
    {"maintenance"},  # fsck, repair, gc
    {"git"},  # repository set-up, commit/status, archives
    {"watch"},  # the watcher and its daemon
    {"tools"},  # the built-in tools scripts call
    {"workflow"},  # workflows of tool, agent and workflow steps, and their records
    {"workspace"},  # the composition root: builds every service above on first use
    {"lua"},  # the Lua globals over the library
    {"ui"},  # `spell ui`: the read-only web view over the library
    {"cli"},  # the command line over the library and the Lua runtime
    {"__init__", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
PACKAGE = Path(spellfs.__file__).parent


def unit_of(module: list[str]) -> str:
    """The layer unit a dotted module path (inside spellfs) belongs to."""
    return module[0] if module else "__init__"


def imports(path: Path, source: str | None = None) -> list[tuple[int, list[str]]]:
    """(line, target module path inside spellfs) for every import outside TYPE_CHECKING."""
    here = list(path.relative_to(PACKAGE).with_suffix("").parts)
    package = here[:-1]
    tree = ast.parse(source if source is not None else path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "spellfs":
                target = node.module.split(".")[1:]
            else:
                continue
            if not node.module:  # from . import a, b: each name is a module
                found += [(node.lineno, target + [a.name]) for a in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "spellfs":
                    found.append((node.lineno, a.name.split(".")[1:]))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    units = {unit_of(list(p.relative_to(PACKAGE).with_suffix("").parts)) for p in MODULES}
    assert units <= set(RANK), f"modules outside LAYERS: {sorted(units - set(RANK))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path: Path) -> None:
    mine = unit_of(list(path.relative_to(PACKAGE).with_suffix("").parts))
    bad = [
        f"{path.relative_to(PACKAGE)}:{line} imports spellfs.{'.'.join(t)}"
        for line, t in imports(path)
        if RANK[unit_of(t)] > RANK[mine]
    ]
    assert not bad, "an import goes up a layer: " + "; ".join(bad)


def test_the_checker_sees_an_upward_import() -> None:
    """The walk itself works: a lazy, relative import of the model from the store is caught,
    and the same import under TYPE_CHECKING is not."""
    path = PACKAGE / "store" / "objects.py"
    lazy = "def f():\n    from ..model import Sessions\n"
    typed = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..model import Sessions\n"
    )
    assert [unit_of(t) for _, t in imports(path, lazy)] == ["model"]
    assert imports(path, typed) == []
