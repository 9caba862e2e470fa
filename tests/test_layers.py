"""The layer rule (spear/__init__.py, docs/DESIGN.md): a package imports only itself and the
floors below it, also in imports made inside functions, and importing the trainer loads
nothing of the experiment floor."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import spear

PACKAGE = Path(spear.__file__).parent
# floor of each top-level part of spear, lowest first; equal floors do not import each other
FLOORS = {
    "algo": 0,
    "tools": 1,
    "models": 1,
    "envs": 2,
    "rollout": 3,
    "trainer": 4,
    "experiments": 5,
    "integrations": 5,
    "cli": 6,
}


def spear_imports(path: Path) -> set[str]:
    """The top-level spear parts a module imports anywhere in its body (``spear.X...``)."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        parts |= {name.split(".")[1] for name in names if name.startswith("spear.")}
    return parts


def test_every_part_of_the_package_has_a_floor():
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    parts |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert parts == set(FLOORS)


@pytest.mark.parametrize("part", sorted(FLOORS))
def test_no_part_imports_a_higher_or_sibling_floor(part):
    root = PACKAGE / part
    files = sorted(root.rglob("*.py")) if root.is_dir() else [PACKAGE / f"{part}.py"]
    wrong = {
        f"{path.relative_to(PACKAGE.parent)} imports spear.{other}"
        for path in files
        for other in spear_imports(path)
        if other != part and FLOORS[other] >= FLOORS[part]
    }
    assert not wrong, sorted(wrong)


def test_importing_the_trainer_loads_no_experiment_module():
    """Every module of spear.trainer imported in a fresh interpreter: spear.experiments
    (sweeps, compare, results, statistics, the inspector, the starting-policy builder) stays
    unloaded."""
    code = (
        "import importlib, json, pkgutil, sys, spear.trainer\n"
        "for m in pkgutil.walk_packages(spear.trainer.__path__, 'spear.trainer.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.startswith('spear.'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert "spear.trainer.loop" in loaded and "spear.trainer.run" in loaded
    assert [name for name in loaded if name.startswith(("spear.experiments", "spear.integrations"))] == []
