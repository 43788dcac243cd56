"""The cube stage on a field model with known accuracy: values, signs and units against the Plummer truth."""

import numpy as np
import pytest
import xarray as xr

from dpotcube.cube import blocks as cube_blocks
from dpotcube.cube.evaluate import field_blocks
from dpotcube.cube.grid import make_grid
from dpotcube.cube.store import cube_dataset, write_cube
from dpotcube.fields.model import save_fields
from dpotcube.methods import METHODS
from dpotcube.recipe import CubeSpec, FieldsSpec
from dpotcube.truth import score_against_truth

CONDITIONAL = METHODS["conditional"]
VARIABLES = CONDITIONAL.cube_variables(FieldsSpec())


def conditional_blocks(paths, grid, observer):
    """Blocks of saved `conditional` field models: Φ, a, ρ and n."""
    return field_blocks(paths, grid, observer, len(VARIABLES), CONDITIONAL.extra_values)


@pytest.fixture(scope="module")
def exact_cube(exact_fields, stars, tmp_path_factory):
    model, hyper, _ = exact_fields
    tmp = tmp_path_factory.mktemp("cube")
    save_fields(tmp / "fields.eqx", model, hyper)
    grid = make_grid(CubeSpec(spacing_kpc=0.3, chunk=8), stars.observer, stars.volume_radius_kpc)
    attrs = {"observer_position_kpc": list(stars.observer), "method": "conditional", "n_tracers": len(stars)}
    blocks = conditional_blocks([tmp / "fields.eqx"], grid, stars.observer)
    write_cube(cube_dataset(blocks, grid, attrs, ["seed"], VARIABLES), tmp / "cube.zarr")
    return tmp / "cube.zarr"


@pytest.fixture(scope="module")
def two_models(exact_fields, tmp_path_factory):
    """The exact fields and a second member whose Φ is doubled (network and reference), saved; with their member
    kinds."""
    import equinox as eqx

    model, hyper, _ = exact_fields
    tmp = tmp_path_factory.mktemp("members")
    last = lambda m: m.potential.body.layers[-1]  # noqa: E731
    doubled = eqx.tree_at(lambda m: (last(m).weight, last(m).bias), model, replace_fn=lambda a: 2 * a)
    if model.potential.reference is not None:  # Φ = Φ_ref + network: the reference's v₀² doubled too
        doubled = eqx.tree_at(lambda m: m.potential.reference.log_v0_sq, doubled, replace_fn=lambda a: a + np.log(2.0))
    save_fields(tmp / "m0.eqx", model, hyper)
    save_fields(tmp / "m1.eqx", doubled, hyper)
    return [tmp / "m0.eqx", tmp / "m1.eqx"], ["seed", "bootstrap"], [model, doubled]


def two_member_cube(two_models, stars, path, on=None):
    from dpotcube.cube.scheduler import SchedulerSpec

    paths, kinds, _ = two_models
    grid = make_grid(CubeSpec(spacing_kpc=0.3, chunk=8), stars.observer, stars.volume_radius_kpc)
    ds = cube_dataset(conditional_blocks(paths, grid, stars.observer), grid, {"method": "conditional"}, kinds, VARIABLES)
    write_cube(ds, path, on or SchedulerSpec())
    return path


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


def test_distributed_evaluation_equals_threads(two_models, stars, tmp_path):
    """The same two-member cube from a dask.distributed LocalCluster (2 worker processes) is identical to local threads."""
    from dpotcube.cube.scheduler import SchedulerSpec

    threaded = xr.open_zarr(two_member_cube(two_models, stars, tmp_path / "threads.zarr"))
    distributed = xr.open_zarr(two_member_cube(two_models, stars, tmp_path / "cluster.zarr", SchedulerSpec(workers=2)))
    for name in threaded.data_vars:
        np.testing.assert_array_equal(threaded[name].values, distributed[name].values, err_msg=name)


def test_members_are_evaluated_into_their_own_chunks(two_models, stars, tmp_path):
    """M models → dims (member, x, y, z), one member per chunk, each member's values from its own model."""
    import jax

    cube_blocks._cached.cache_clear()
    ds = xr.open_zarr(two_member_cube(two_models, stars, tmp_path / "cube.zarr"))
    assert cube_blocks._cached.cache_info().misses == 2, "each model is loaded once"
    assert ds.potential.dims == ("member", "x", "y", "z") and ds.potential.data.chunks[0] == (1, 1)
    assert list(ds.member.values) == [0, 1] and list(ds.member_kind.values) == ["seed", "bootstrap"]
    assert ds.in_volume.dims == ("x", "y", "z")
    i, j, k = 4, 11, 16
    point = np.array([ds.x[i], ds.y[j], ds.z[k]], np.float32)
    for member, model in enumerate(two_models[2]):
        expected = -jax.grad(model.potential)(point)
        np.testing.assert_allclose([float(ds[f"accel_{c}"][member, i, j, k]) for c in "xyz"], expected, rtol=1e-4)
    np.testing.assert_allclose(ds.density[1], 2 * ds.density[0], rtol=1e-4, atol=1e-6 * float(abs(ds.density[0]).max()))


def test_member_kinds_must_match_and_be_known(two_models, stars):
    paths, _, _ = two_models
    grid = make_grid(CubeSpec(spacing_kpc=1.0, chunk=8), stars.observer, stars.volume_radius_kpc)
    blocks = conditional_blocks(paths, grid, stars.observer)
    with pytest.raises(ValueError, match="one kind per member"):
        cube_dataset(blocks, grid, {}, ["seed"], VARIABLES)
    with pytest.raises(ValueError, match="must be among"):
        cube_dataset(blocks, grid, {}, ["seed", "jackknife"], VARIABLES)


def test_kernel_batches_by_backend_and_padding_keeps_values(monkeypatch):
    """A CPU calls kernels on 1,024 points; an accelerator on the power of two holding the block (at most 32,768);
    the padded calls give each point its own value whatever the batch."""
    assert cube_blocks.kernel_batch(5000) == cube_blocks.BATCH
    monkeypatch.setattr(cube_blocks, "default_platform", lambda: "gpu")
    assert [cube_blocks.kernel_batch(n) for n in (1, 1024, 1025, 4096, 5000, 40_000)] == [
        1024, 1024, 2048, 4096, 8192, 32_768]
    points = np.random.default_rng(0).normal(size=(5000, 3))
    calls = []

    def compute(part):
        calls.append(len(part))
        return np.stack([part[:, 0] * 2, part.sum(axis=1)])

    out = cube_blocks.in_padded_batches(compute, points)
    assert calls == [8192] and out.shape == (2, 5000)
    np.testing.assert_allclose(out, cube_blocks.in_padded_batches(compute, points, batch=1024), rtol=1e-6)
    np.testing.assert_allclose(out[1], points.sum(axis=1), atol=1e-5)
