"""The import contracts of pyproject.toml ([tool.importlinter]) hold: a module that imports from a layer above its own
(or mmdet below the command line) fails here, and the message names the import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the checkout at ``root`` (its pyproject.toml, its bnnas: lint_imports puts the cwd first)."""
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=120)


def test_layers_are_kept():
    r = lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_an_import_from_a_higher_layer_is_caught(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "bnnas", tmp_path / "bnnas", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "bnnas" / "core" / "space.py", "a") as f:
        f.write("\nfrom bnnas.cli.common import set_threads  # noqa: E402\n")
    r = lint_imports(tmp_path)
    assert r.returncode == 1
    assert "bnnas.core is not allowed to import bnnas.cli" in r.stdout
    assert "bnnas.core.space -> bnnas.cli.common" in r.stdout
