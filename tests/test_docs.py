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


def test_quickstart_page_gives_the_readme_command():
    readme_build = re.findall(r"^python3 -m venv .*dpotcube build.*$", (REPO / "README.md").read_text(), flags=re.M)[0]
    assert readme_build in (REPO / "docs" / "quickstart.md").read_text()
    assert readme_build in (REPO / "docs" / "tutorial.md").read_text()


def test_cube_format_opens_a_cube_in_one_line_three_ways():
    text = (REPO / "docs" / "cube-format.md").read_text()
    for one_liner in ('intake.open_catalog("catalog/catalog.yaml").quickstart.read()',
                      'xr.open_zarr("catalog/cubes/quickstart.zarr")', 'dpotcube.open_cube("quickstart")'):
        assert f"ds = {one_liner}" in text


def test_every_page_is_in_the_site_nav():
    import yaml

    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    pages = {page for entry in nav for page in entry.values()}
    assert pages == {p.name for p in (REPO / "docs").glob("*.md")}


def test_docs_site_builds_strict(tmp_path):
    """`mkdocs build --strict`: every nav entry exists, no broken link or anchor, every snippet found."""
    import importlib.util
    import os

    import pytest

    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip('mkdocs and mkdocs-material are not installed (they are in the `test` extra: pip install -e ".[test]")')
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tutorial = (tmp_path / "site" / "tutorial" / "index.html").read_text()
    assert "open_catalog" in tutorial and "savefig" in tutorial and "--8&lt;--" not in tutorial


def test_tutorial_page_shows_every_section_of_its_script():
    script = (REPO / "docs" / "tutorial.py").read_text()
    included = re.findall(r'^--8<-- "docs/tutorial.py:(\w+)"$', (REPO / "docs" / "tutorial.md").read_text(), flags=re.M)
    defined = re.findall(r"^# --8<-- \[start:(\w+)\]$", script, flags=re.M)
    assert included == defined == ["open", "inspect", "slice", "plot", "query", "curves", "orbits"]
    assert all(f"# --8<-- [end:{name}]" in script for name in defined)


def test_tutorial_runs_on_a_tiny_cube(tiny_build, tmp_path, monkeypatch, capsys):
    """docs/tutorial.py end to end on the session's tiny cube: opens it three ways, slices it, writes the plot."""
    import runpy

    _, catalog, _ = tiny_build
    plot = tmp_path / "tutorial.png"
    monkeypatch.setattr(sys, "argv", ["tutorial.py", str(catalog), "tiny", str(plot)])
    runpy.run_path(str(REPO / "docs" / "tutorial.py"), run_name="__main__")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000
    printed = capsys.readouterr().out
    assert "conditional 4000 tracers" in printed and "a_x at the Sun" in printed and "m / s2" in printed
    assert "Polaris" in printed and "Σ(|z| < 1.1 kpc)" in printed and "Sun's orbit, 1 Gyr: energy conserved" in printed
    assert plot.with_name("tutorial-curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
