"""The cube stage on a field model with known accuracy: values, signs and units against the Plummer truth."""

import numpy as np
import pytest
import xarray as xr

from dpotcube.cube.evaluate import field_blocks
from dpotcube.cube.grid import make_grid
from dpotcube.cube.store import cube_dataset, write_cube
from dpotcube.fields.model import save_fields
from dpotcube.recipe import CubeSpec
from dpotcube.truth import score_against_truth


@pytest.fixture(scope="module")
def exact_cube(exact_fields, stars, tmp_path_factory):
    model, hyper, _ = exact_fields
    tmp = tmp_path_factory.mktemp("cube")
    save_fields(tmp / "fields.eqx", model, hyper)
    grid = make_grid(CubeSpec(spacing_kpc=0.3, chunk=8), stars.observer, stars.volume_radius_kpc)
    attrs = {"observer_position_kpc": list(stars.observer), "method": "conditional", "n_tracers": len(stars)}
    write_cube(cube_dataset(field_blocks(tmp / "fields.eqx", grid, stars.observer), grid, attrs), tmp / "cube.zarr")
    return tmp / "cube.zarr"


def test_cube_values_match_truth_inside_volume(exact_cube, truth):
    """Solver on exact gradients → cube, medians in the volume: |Δa|/|a| < 4%, |Δρ|/ρ < 35%, |Δn|/n < 3%, |ΔΦ| < 1% of its range.

    A wrong sign of a, or a unit slip in ρ (kpc⁻³ vs pc⁻³), fails these by orders of magnitude.
    """
    scores = score_against_truth(exact_cube, truth)
    assert scores["n_points"] > 1000
    assert scores["median_rel_error_accel"] < 0.04
    assert scores["median_rel_error_density"] < 0.35
    assert scores["median_rel_error_tracer_density"] < 0.03
    assert scores["median_abs_error_potential_kms2"] < 0.01 * scores["potential_range_kms2"]


def test_cube_is_written_in_chunks_and_matches_direct_evaluation(exact_cube, exact_fields):
    import jax

    model, _, _ = exact_fields
    ds = xr.open_zarr(exact_cube)
    assert ds.accel_x.data.numblocks == (1, 3, 3, 3)
    i, j, k = 5, 17, 9
    point = np.array([ds.x[i], ds.y[j], ds.z[k]], np.float32)
    expected = -jax.grad(model.potential)(point)
    np.testing.assert_allclose([float(ds[f"accel_{c}"][0, i, j, k]) for c in "xyz"], expected, rtol=1e-4)


def test_distributed_evaluation_equals_threads(exact_cube, exact_fields, stars, tmp_path):
    """The same cube from a dask.distributed LocalCluster (2 worker processes) is identical to local threads."""
    from dpotcube.cube.scheduler import SchedulerSpec

    model, hyper, _ = exact_fields
    save_fields(tmp_path / "fields.eqx", model, hyper)
    grid = make_grid(CubeSpec(spacing_kpc=0.3, chunk=8), stars.observer, stars.volume_radius_kpc)
    attrs = {"observer_position_kpc": list(stars.observer), "method": "conditional", "n_tracers": len(stars)}
    ds = cube_dataset(field_blocks(tmp_path / "fields.eqx", grid, stars.observer), grid, attrs)
    write_cube(ds, tmp_path / "cube.zarr", SchedulerSpec(workers=2))
    threaded, distributed = xr.open_zarr(exact_cube), xr.open_zarr(tmp_path / "cube.zarr")
    for name in threaded.data_vars:
        np.testing.assert_array_equal(threaded[name].values, distributed[name].values, err_msg=name)
