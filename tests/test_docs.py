"""Documentation that is generated or quoted from the code stays in step with it."""

import re
import subprocess
import sys

from dpotcube.recipe_reference import recipe_reference

from .conftest import REPO


def test_recipe_reference_is_current():
    assert (REPO / "docs" / "recipes.md").read_text() == recipe_reference(), (
        "docs/recipes.md is stale: run `python -m dpotcube.recipe_reference > docs/recipes.md`"
    )


def test_readme_first_screen_has_the_two_setup_commands():
    first_screen = "\n".join((REPO / "README.md").read_text().splitlines()[:25])
    commands = re.findall(r"^python3 -m venv .*$", first_screen, flags=re.M)
    assert len(commands) == 2
    assert "dpotcube build recipes/quickstart.yaml" in commands[0]
    assert ".[test]" in commands[1] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    readme_test = re.findall(r"^python3 -m venv .*pytest.*$", (REPO / "README.md").read_text(), flags=re.M)[0]
    assert readme_test in (REPO / ".ci" / "run").read_text()


def test_cli_help_lists_commands():
    done = subprocess.run([sys.executable, "-m", "dpotcube", "--help"], capture_output=True, text=True, cwd=REPO)
    for command in ("build", "validate", "catalog", "plot", "diagnose"):
        assert command in done.stdout
