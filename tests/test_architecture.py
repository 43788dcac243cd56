"""The plug-in design holds and the code passes the project's lint rules."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dpotcube.methods import METHODS, FieldMethod, Method

from .conftest import REPO

ARCH_CHECK = REPO.parent / "shared" / "tools" / "arch_check.py"


def test_ruff_passes_with_the_project_rules():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "dpotcube", "tests", "benchmarks"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not ARCH_CHECK.is_file(), reason="shared/tools/arch_check.py is not beside this checkout")
def test_plug_in_figures_meet_their_bars():
    """No method-name dispatch outside methods/, no import cycle between sub-packages, short pipeline functions."""
    result = subprocess.run([sys.executable, str(ARCH_CHECK), "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_no_module_outside_methods_compares_method_names():
    """The same rule read here, so it holds where the shared tool is absent."""
    offenders = []
    for path in (REPO / "dpotcube").rglob("*.py"):
        if "methods" in path.relative_to(REPO / "dpotcube").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                constants = [n for n in [node.left, *node.comparators] if isinstance(n, ast.Constant)]
                for n in [node.left, *node.comparators]:
                    if isinstance(n, (ast.Tuple, ast.Set, ast.List)):
                        constants += [e for e in n.elts if isinstance(e, ast.Constant)]
                offenders += [f"{path.name}:{c.lineno}" for c in constants if c.value in METHODS]
    assert not offenders


def test_every_method_is_abstract_or_final_and_declares_itself():
    for name, method in METHODS.items():
        assert isinstance(method, Method) and method.name == name
        assert len(method.exact_tolerance) == 2
        assert method.uses_collocation == isinstance(method, FieldMethod)
        assert not method.uses_collocation or (method.fits_flows and method.fits_fields)
