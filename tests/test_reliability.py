"""Reproducible builds, kill-and-resume at every stage, and concurrent publishing to one catalog."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import intake
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from dpotcube.cli import app

from .conftest import REPO

TINY = REPO / "recipes" / "tiny.yaml"
FIELDS = ["potential", "accel_x", "accel_y", "accel_z", "density", "tracer_density", "in_volume"]


def build_command(out: Path, catalog: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dpotcube", "build", str(TINY), "--out", str(out), "--set", f"publish.catalog={catalog}", *extra]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def assert_same_values(a: Path, b: Path) -> None:
    ds_a, ds_b = xr.open_zarr(a), xr.open_zarr(b)
    for name in FIELDS:
        np.testing.assert_array_equal(ds_a[name].values, ds_b[name].values, err_msg=name)


@pytest.fixture(scope="module")
def reference(tiny_build):
    """The session's tiny build (in the test process): the cube every other build of the recipe must equal."""
    built, _, _ = tiny_build
    return built / "build" / "cube.zarr"


def run_in_process(out: Path, catalog: Path, *extra: str) -> str:
    result = CliRunner().invoke(app, build_command(out, catalog, *extra)[3:])
    assert result.exit_code == 0, result.output
    return result.output


def test_other_seed_gives_another_cube(reference, tmp_path):
    run_in_process(tmp_path / "build", tmp_path / "catalog.yaml", "--set", "seed=1", "--set", "diagnostics.enabled=false")
    other = xr.open_zarr(tmp_path / "build" / "cube.zarr")
    assert not np.array_equal(other.potential.values, xr.open_zarr(reference).potential.values)


STAGES = ["stars", "velocity_flow_0", "collocation", "fields", "cube", "publish"]


def test_killed_build_resumes_to_the_same_cube(reference, tmp_path):
    """SIGKILL as each stage starts, one stage per attempt; every re-run resumes, the last one finishes.

    The published cube then equals the uninterrupted build's, made in another process (so the same recipe
    and seed give the same values across processes, stage by stage), and no half-written store is in the
    catalog.
    """
    catalog = tmp_path / "catalog" / "catalog.yaml"
    cmd = build_command(tmp_path / "build", catalog)
    published = catalog.parent / "cubes" / "tiny.zarr"
    for attempt, stage in enumerate(STAGES):
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        skipped = []
        for line in proc.stderr:
            if "up to date, skipped" in line:
                skipped.append(line.split(":")[0])
            if line.startswith(f"{stage} …"):
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=600)
        assert proc.returncode == -signal.SIGKILL, f"the build ended before `{stage}` started"
        finished_before = STAGES[: max(attempt - 1, 0)]  # the stage killed last time is redone
        assert skipped == finished_before, f"attempt {attempt} skipped {skipped}"
        assert not published.exists() or (published / "zarr.json").exists()
    run(cmd)
    assert_same_values(reference, tmp_path / "build" / "cube.zarr")
    assert_same_values(reference, published)


def test_corrupted_artefact_is_rebuilt(reference, tmp_path):
    """A stage output whose checksum no longer matches the manifest is redone, not reused."""
    shutil.copytree(reference.parent, tmp_path / "build")
    flow = tmp_path / "build" / "flows" / "velocity_flow_0.eqx"
    flow.write_bytes(flow.read_bytes()[:-100])
    output = run_in_process(tmp_path / "build", tmp_path / "catalog.yaml", "--set", "diagnostics.enabled=false")
    assert "velocity_flow_0: up to date" not in output and "stars: up to date" in output
    assert_same_values(reference, tmp_path / "build" / "cube.zarr")


def test_eight_concurrent_publishers_keep_all_entries(reference, tmp_path):
    catalog = tmp_path / "shared" / "catalog.yaml"
    start = time.time() + 4
    script = (
        "import sys, time; from pathlib import Path; from dpotcube.catalog import publish_cube\n"
        "name, cube, catalog, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "publish_cube(Path(catalog), name, Path(cube), {'recipe_name': name, 'method': 'conditional'})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, f"entry{i}", str(reference), str(catalog), str(start)])
        for i in range(8)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    cat = intake.open_catalog(str(catalog))
    assert sorted(cat.entries) == [f"entry{i}" for i in range(8)]
    for i in (0, 7):
        assert "potential" in cat[f"entry{i}"].read()
