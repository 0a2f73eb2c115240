"""The house checked by a machine: the import-linter contracts of pyproject.toml hold on the tree,
and they do fail when a module imports from a floor above its own (so a green run means something)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """An installed copy of the tree (import-linter walks packages on disk)."""
    if not Path(LINT).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("lint-imports is not installed (test extra import-linter)")
        pytest.skip("lint-imports is not installed")
    target = tmp_path_factory.mktemp("tree")
    build = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(REPO)], check=True, capture_output=True, cwd=build,
                   env={**os.environ, "PIP_NO_INPUT": "1"})
    shutil.rmtree(REPO / "build", ignore_errors=True)
    return target


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT, "--config", str(REPO / "pyproject.toml"), "--no-cache"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=REPO)


def test_the_tree_keeps_every_contract(installed):
    out = lint(installed)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


@pytest.mark.parametrize("module, imports, contract", [
    ("dmsim/cards/probe_upward.py", "dmsim.sim.model.replica", "the protocol cores never import the simulation"),
    ("dmsim/sim/model/probe_real.py", "dmsim.sim.real.pcsc_link", "never imports a real driver"),
    ("dmsim/sim/agents/probe_up.py", "dmsim.sim.model.replica", "dmsim.sim.agents is not allowed to import dmsim.sim.model"),
])
def test_an_upward_import_breaks_a_contract(installed, tmp_path, module, imports, contract):
    tree = tmp_path / "tree"
    shutil.copytree(installed, tree)
    (tree / module).write_text(f"import {imports}\n")
    out = lint(tree)
    assert out.returncode != 0
    assert contract in out.stdout and module.replace("/", ".")[:-3] in out.stdout


def test_every_package_folder_is_installed(installed):
    """pyproject lists the packages one by one (the folders map onto dmsim.*): a folder left out
    would work in the editable checkout and be missing from every real install."""
    roots = {"sim/base": "dmsim/base", "sim": "dmsim/sim", "cards": "dmsim/cards", "devices": "dmsim/devices",
             "network": "dmsim/network"}
    missing = []
    for init in sorted(REPO.glob("*/**/__init__.py")):
        folder = init.parent.relative_to(REPO).as_posix()
        root = max((r for r in roots if folder == r or folder.startswith(r + "/")), key=len, default=None)
        if root is None or folder.startswith("tests"):
            continue
        target = installed / roots[root] / folder[len(root):].lstrip("/") / "__init__.py"
        if not target.exists():
            missing.append(folder)
    assert not missing, f"packages missing from pyproject.toml [tool.setuptools] packages: {missing}"
