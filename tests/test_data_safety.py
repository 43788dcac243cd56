"""A failing or interrupted build never changes a good published cube or the catalog, and can be resumed.

Each test copies the session's finished, published tiny build (`tiny_build`), then re-runs it so that a
stage fails (a diverging training) or is interrupted by Ctrl-C (SIGINT to the build process).
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dpotcube.cli import app

from .conftest import REPO

TINY = REPO / "recipes" / "tiny.yaml"


@pytest.fixture
def published(tiny_build, tmp_path) -> tuple[Path, Path]:
    """A copy of the finished tiny build and its catalog folder: (build folder, catalog file)."""
    built, catalog, _ = tiny_build
    shutil.copytree(built / "build", tmp_path / "build")
    shutil.copytree(catalog.parent, tmp_path / "catalog")
    return tmp_path / "build", tmp_path / "catalog" / catalog.name


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def command(build: Path, catalog: Path, *extra: str) -> list[str]:
    return ["build", str(TINY), "--out", str(build), "--set", f"publish.catalog={catalog}",
            "--set", "diagnostics.enabled=false", *extra]


def test_diverging_training_leaves_the_published_cube_and_catalog_byte_identical(published):
    build, catalog = published
    before, cube_before = digest(catalog.parent), digest(build / "cube.zarr")
    manifest_cube = json.loads((build / "manifest.json").read_text())["cube"]
    result = CliRunner().invoke(app, command(build, catalog, "--set", "fields.learning_rate=1e30", "--replace"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "learning_rate" in result.output, result.output
    assert digest(catalog.parent) == before, "the catalog or the published cube changed"
    assert digest(build / "cube.zarr") == cube_before, "the build's good cube was overwritten"
    assert json.loads((build / "manifest.json").read_text())["cube"] == manifest_cube, "the cube stage was marked done"
    assert not [p for p in build.iterdir() if p.name.endswith(".partial")], "a partial store was left behind"


def interrupt(build: Path, catalog: Path, stage: str, delay: float, *extra: str) -> subprocess.CompletedProcess:
    """Run the build in a subprocess; send SIGINT `delay` s after `stage` starts. Returns the finished process."""
    cmd = [sys.executable, "-m", "dpotcube", *command(build, catalog, *extra)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"})
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(f"{stage} …"):
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=300)
    return subprocess.CompletedProcess(cmd, proc.returncode, "", "".join(lines) + rest)


@pytest.mark.parametrize(("stage", "extra"), [
    ("fields", ("--set", "fields.steps=4000")),  # a longer training, interrupted after 1.5 s
    ("cube", ("--set", "cube.spacing_kpc=0.2")),  # a finer grid (31³), interrupted after 0.5 s
])
def test_ctrl_c_keeps_the_published_cube_and_the_build_resumes(published, stage, extra):
    build, catalog = published
    before = digest(catalog.parent)
    done = interrupt(build, catalog, stage, 1.5 if stage == "fields" else 0.5, *extra)
    assert done.returncode == 130, done.stderr[-3000:]
    last = " ".join(done.stderr.strip().splitlines()[-3:])
    assert f"interrupted during stage `{stage}`" in last and "Resume with: dpotcube build" in last, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert digest(catalog.parent) == before, "the catalog or the published cube changed"
    assert not [p for p in build.iterdir() if p.name.endswith(".partial")], "a partial store was left behind"
    result = CliRunner().invoke(app, command(build, catalog, *extra))  # the resume: finished stages are kept
    assert result.exit_code == 0, result.output
    assert "stars: up to date" in result.output and "collocation: up to date" in result.output
