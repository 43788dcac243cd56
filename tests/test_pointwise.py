"""The `pointwise` method: QMC velocities, least-squares a, kernel-smoothed ρ, cube blocks; against the Plummer truth."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import paramax
import pytest
import xarray as xr
from pydantic import ValidationError
from scipy.special import beta
from scipy.stats import chi2, ks_2samp

from dpotcube.cube.grid import make_grid
from dpotcube.cube.store import cube_dataset, write_cube
from dpotcube.density.maf import flow_skeleton
from dpotcube.density.registry import save_density
from dpotcube.pointwise import (
    PlummerMember,
    PointwiseFiles,
    accelerations,
    divergences,
    evaluate_block,
    flow_velocities,
    in_batches,
    kernel_offsets,
    least_squares_acceleration,
    member_setup,
    plummer_pointwise,
    pointwise_blocks,
    pointwise_fields,
    pointwise_flows,
    qmc_normals,
    smoothed_density,
)
from dpotcube.pointwise.kernel import in_volume
from dpotcube.pointwise.plummer import plummer_speed_fractions
from dpotcube.pointwise.qmc import qmc_uniform
from dpotcube.recipe import CubeSpec, PointwiseSpec
from dpotcube.sources.mocks import _speed_fractions
from dpotcube.truth import score_against_truth

from .conftest import FLOW_POSITION, FLOW_VELOCITY

SCALES = (0.5, 0.5, 0.2)


def rel_error(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1) / np.linalg.norm(np.asarray(b), axis=-1)


def positions_inside(stars, n, radius, seed=0):
    rng = np.random.default_rng(seed)
    pts = stars.positions[np.linalg.norm(stars.positions - stars.observer, axis=1) < radius]
    return pts[rng.choice(len(pts), n, replace=False)].astype(np.float32)


def test_least_squares_is_the_weighted_lstsq_solution():
    """The normal-equation solution equals numpy's lstsq on the kept rows; weight-0 rows (any values) change nothing."""
    rng = np.random.default_rng(0)
    v, gx, gv = rng.normal(size=(3, 50, 3))
    gx[40:], gv[40:] = 1e3 * rng.normal(size=(2, 10, 3))  # junk rows, dropped by weight 0
    w = np.r_[np.ones(40), np.zeros(10)]
    a = least_squares_acceleration(*(jnp.asarray(x, jnp.float32) for x in (v, gx, gv, w)))
    expected = np.linalg.lstsq(gv[:40], -np.sum(v[:40] * gx[:40], axis=1), rcond=None)[0]
    np.testing.assert_allclose(a, expected, rtol=1e-4, atol=1e-5)


def test_plummer_speed_quantiles_follow_the_df():
    """q = √(I⁻¹_{3/2,9/2}(u)): mean E[q] = B(2, 9/2)/B(3/2, 9/2) to 1e-4 with 4,096 Sobol points, and the same
    distribution as the mock's rejection sampler (KS p > 0.01); a wrong exponent (7/2 → 5/2) misses the mean."""
    q = plummer_speed_fractions(qmc_uniform(4096, 1, "sobol", 0)[:, 0])
    assert abs(q.mean() - beta(2, 4.5) / beta(1.5, 4.5)) < 1e-4
    assert abs(q.mean() - beta(2, 3.5) / beta(1.5, 3.5)) > 1e-2
    assert ks_2samp(q, _speed_fractions(np.random.default_rng(0), 20_000)).pvalue > 0.01


def test_exact_plummer_acceleration(truth, stars):
    """Exact p(v|x) and ∇ ln f: a(x) equals −∇Φ to 1e-4 (each CBE equation holds exactly); −a is off by 2."""
    model = plummer_pointwise(truth, 64, "halton", seed=3)
    pts = positions_inside(stars, 200, truth.volume_radius_kpc)
    a = in_batches(accelerations, model, pts, 64)
    err = rel_error(a, truth.acceleration(pts))
    assert err.max() < 1e-4
    assert np.median(rel_error(-a, truth.acceleration(pts))) > 1.9


def test_speed_cut_drops_draws(truth):
    """With every draw above `max_speed_kms` nothing is left to solve: a is NaN, not a silent value."""
    x = jnp.asarray(truth.observer, jnp.float32)
    assert np.isfinite(plummer_pointwise(truth, 32, max_speed_kms=600.0)(x)).all()
    assert np.isnan(plummer_pointwise(truth, 32, max_speed_kms=1.0)(x)).all()


@pytest.mark.parametrize("kind", ["sobol", "halton"])
def test_kernel_offsets_are_the_truncated_gaussian(kind):
    """Inside |δ/h| ≤ 2; mean 0; ⟨δᵢ²⟩ = hᵢ² · P(χ²₅ < 4)/P(χ²₃ < 4) (the truncated χ₃ second moment / 3), 1%;
    the share inside |δ/h| < 1 is P(χ²₃ < 1)/P(χ²₃ < 4), 0.5%."""
    offsets = kernel_offsets(4096, SCALES, 2.0, kind, seed=1)
    u = offsets / np.asarray(SCALES)
    radius = np.linalg.norm(u, axis=1)
    assert radius.max() <= 2.0 + 1e-9
    np.testing.assert_allclose(u.mean(0), 0, atol=0.01)
    np.testing.assert_allclose((offsets**2).mean(0), np.square(SCALES) * chi2.cdf(4, 5) / chi2.cdf(4, 3), rtol=0.01)
    assert abs(np.mean(radius < 1) - chi2.cdf(1, 3) / chi2.cdf(4, 3)) < 0.005


def test_smoothed_density_recovers_kernel_averaged_truth(truth):
    """−(∇·a)∗K / 4πG from the exact-p solver equals (ρ∗K) of the truth by the same quadrature, 1e-3 (in M☉ pc⁻³);
    near the edge both average over the in-volume kernel points only; outside the volume ρ is NaN.
    The kernel average itself agrees with a 200k-point plain Monte Carlo kernel average (0.2%)."""
    model = plummer_pointwise(truth, 32, seed=0)
    observer = np.asarray(truth.observer)
    offsets = kernel_offsets(256, SCALES, 2.0, "sobol", seed=1)
    centres = observer + np.array([[0, 0, 0], [1.0, -0.5, 0.3], [0, 0, 2.9], [0, 0, 3.5]], np.float32)
    rho = smoothed_density(model, centres, offsets, observer, truth.volume_radius_kpc, batch=128)

    points = centres[:, None] + offsets
    inside = in_volume(points, observer, truth.volume_radius_kpc)
    rho_truth = np.asarray(truth.density(points)) * 1e-9  # M☉ kpc⁻³ → M☉ pc⁻³
    expected = np.array([rho_truth[i][inside[i]].mean() for i in range(3)])
    assert inside[2].mean() < 0.8  # the edge case really is cut
    np.testing.assert_allclose(rho[:3], expected, rtol=1e-3)
    assert np.isnan(rho[3])

    rng = np.random.default_rng(0)
    u = rng.normal(size=(600_000, 3))
    u = u[np.linalg.norm(u, axis=1) <= 2][:200_000]
    mc = np.mean(np.asarray(truth.density(centres[1] + u * np.asarray(SCALES)))) * 1e-9
    assert abs(expected[1] / mc - 1) < 2e-3


@pytest.fixture(scope="module")
def fitted(velocity_flow_fit, position_flow_fit):
    """The session's small p(v|x) and n(x) flows fitted on the 20k-star Plummer mock (8 epochs, not converged)."""
    return velocity_flow_fit[0], position_flow_fit[0]


def test_qmc_velocities_follow_the_flow(fitted, stars):
    """QMC normals through the flow at x: the flow's inverse returns them (as base-distribution points), and mean and spread match
    `flow.sample` at x (20k draws: means within 4 standard errors, standard deviations within 3%)."""
    velocity, _ = fitted
    x = jnp.asarray(stars.observer + np.array([0.5, -0.5, 0.2]), jnp.float32)
    normals = qmc_normals(4096, "sobol", seed=0)
    v = np.asarray(flow_velocities(velocity, jnp.asarray(normals, jnp.float32), x))
    inner = paramax.unwrap(velocity.flow)
    back = inner.bijection.inverse((v[0] - velocity.loc) / velocity.scale, (x - velocity.cond_loc) / velocity.cond_scale)
    np.testing.assert_allclose(back, inner.base_dist.loc + inner.base_dist.scale * normals[0], atol=1e-3)
    draws = np.asarray(velocity.sample(jr.key(1), 20_000, jnp.tile(x, (20_000, 1))))
    sd = draws.std(0)
    assert np.all(np.abs(v.mean(0) - draws.mean(0)) < 4 * sd / np.sqrt(len(draws)))
    np.testing.assert_allclose(v.std(0), sd, rtol=0.03)


def test_fitted_flows_give_the_plummer_acceleration(fitted, truth, stars):
    """Integration: briefly fitted flows, 128 QMC velocities, 128 positions inside 2.5 kpc: median |Δa|/|a| < 0.35
    (measured 0.2-0.25), and a points the right way (median cosine with the truth > 0.9)."""
    model = pointwise_flows([fitted[0]], [fitted[1]], qmc_normals(128, "sobol", 0), 600.0)
    pts = positions_inside(stars, 128, 2.5)
    a, truth_a = in_batches(accelerations, model, pts, 32), np.asarray(truth.acceleration(pts))
    assert np.median(rel_error(a, truth_a)) < 0.35
    cosine = np.sum(a * truth_a, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(truth_a, axis=1)
    assert np.median(cosine) > 0.9


def test_cube_blocks_match_the_direct_function(truth, stars, tmp_path):
    """Dask blocks (exact-Plummer member) = `evaluate_block` on the same points; the cube has a (km² s⁻² kpc⁻¹) and
    ρ (M☉ pc⁻³) and no Φ; in the volume ρ is the kernel-averaged truth (1e-3), outside a and ρ are NaN; `density: false`
    leaves `density` out."""
    spec = PointwiseSpec(n_velocities=32, kernel_points=16, batch=128)
    grid = make_grid(CubeSpec(spacing_kpc=1.0, chunk=4), stars.observer, stars.volume_radius_kpc)
    blocks = pointwise_blocks([PlummerMember(truth)], grid, spec, seed=7)
    assert blocks.shape == (1, 4, *grid.shape) and blocks.numblocks[2:] == (2, 2, 2)

    ds = cube_dataset(blocks, grid, {"method": "pointwise"}, ["seed"], fields=pointwise_fields(spec))
    write_cube(ds, tmp_path / "cube.zarr")
    cube = xr.open_zarr(tmp_path / "cube.zarr")
    assert set(cube.data_vars) == {"accel_x", "accel_y", "accel_z", "density", "in_volume"}
    assert cube["density"].attrs["units"] == "solMass pc-3" and cube["accel_x"].attrs["units"] == "km2 s-2 kpc-1"

    model, offsets = member_setup(PlummerMember(truth), spec, seed=7)
    points = grid.points(((0, grid.shape[0]), (0, grid.shape[1]), (0, grid.shape[2])))
    direct = evaluate_block(model, points, spec, offsets, grid.observer, grid.volume_radius_kpc)
    written = np.stack([cube[name].values[0].ravel() for name in ("accel_x", "accel_y", "accel_z", "density")])
    np.testing.assert_allclose(written, direct, rtol=1e-5)  # batches are composed differently
    inside = cube["in_volume"].values.ravel()
    assert rel_error(written[:3, inside].T, truth.acceleration(points[inside])).max() < 1e-4
    assert np.isnan(written[:, ~inside]).all()  # a, like ρ, only where the volume has stars
    kernel = points[inside][:, None] + offsets
    in_kernel = in_volume(kernel, stars.observer, stars.volume_radius_kpc)
    rho_truth = np.sum(np.asarray(truth.density(kernel)) * in_kernel, axis=1) / in_kernel.sum(1) * 1e-9
    np.testing.assert_allclose(written[3][inside], rho_truth, rtol=1e-3)
    assert np.isnan(written[3][~inside]).all()
    scores = score_against_truth(tmp_path / "cube.zarr", truth)  # ρ here is kernel-smoothed: ratio near, not at, 1
    assert scores["median_rel_error_accel"] < 1e-4 and abs(scores["median_density_ratio"] - 1) < 0.05
    assert "median_abs_error_potential_kms2" not in scores

    no_density = PointwiseSpec(n_velocities=32, density=False, batch=128)
    assert list(pointwise_fields(no_density)) == ["accel_x", "accel_y", "accel_z"]
    assert pointwise_blocks([PlummerMember(truth)], grid, no_density, seed=7).shape[1] == 3


def test_saved_flows_make_the_same_member(fitted, stars, tmp_path):
    """A `PointwiseFiles` member (flows saved, loaded on the worker) gives the a of the in-memory flows."""
    paths = tmp_path / "v.eqx", tmp_path / "n.eqx"
    save_density(paths[0], fitted[0], FLOW_VELOCITY)
    save_density(paths[1], fitted[1], FLOW_POSITION)
    spec = PointwiseSpec(n_velocities=128, batch=32)
    loaded = PointwiseFiles((paths[0],), (paths[1],)).model(spec, seed=0)
    direct = pointwise_flows([fitted[0]], [fitted[1]], qmc_normals(128, "sobol", 0), 600.0)
    pts = positions_inside(stars, 32, 2.5)
    np.testing.assert_allclose(in_batches(accelerations, loaded, pts, 32), in_batches(accelerations, direct, pts, 32))


def test_cfm_flows_are_read_through_the_same_files(fitted, stars, tmp_path):
    """A `type: cfm` p(v|x) (a small CNF with the MAF's standardization) saved and loaded on the worker gives
    the a of the in-memory model: `pointwise` reads any registered density model."""
    import equinox as eqx

    from dpotcube.density.cfm import cfm_skeleton
    from dpotcube.recipe import CFMSpec

    velocity, position = fitted
    cnf = cfm_skeleton(16, 1, 1, ode_steps=4, conditioned=True, key=jr.key(0))
    cnf = eqx.tree_at(lambda m: (m.loc, m.scale, m.cond_loc, m.cond_scale), cnf,
                      (velocity.loc, velocity.scale, velocity.cond_loc, velocity.cond_scale))
    paths = tmp_path / "v.eqx", tmp_path / "n.eqx"
    save_density(paths[0], cnf, CFMSpec(width=16, depth=1, time_frequencies=1, ode_steps=4))
    save_density(paths[1], position, FLOW_POSITION)
    loaded = PointwiseFiles((paths[0],), (paths[1],)).model(PointwiseSpec(n_velocities=32, batch=8), seed=0)
    direct = pointwise_flows([cnf], [position], qmc_normals(32, "sobol", 0), 600.0)
    pts = positions_inside(stars, 8, 2.5)
    a = in_batches(accelerations, loaded, pts, 8)
    assert np.isfinite(a).all() and np.median(np.abs(a)) > 0
    np.testing.assert_allclose(a, in_batches(accelerations, direct, pts, 8), rtol=1e-5)


def test_ensemble_members_are_solved_separately_and_combined(fitted, stars):
    """Two p(v|x) members (the fitted flow, and a copy shifted by 40 km/s in v_y: a different model of p): the
    ensemble's a is the median of the members' own single-member a (for two, their mean).
    Members of different sizes cannot be stacked."""
    import equinox as eqx

    velocity, position = fitted
    shifted = eqx.tree_at(lambda f: f.loc, velocity, velocity.loc + jnp.array([0.0, 40.0, 0.0]))
    normals = qmc_normals(128, "sobol", 0)
    pts = positions_inside(stars, 32, 2.0)
    singles = [in_batches(accelerations, pointwise_flows([f], [position], normals, 600.0), pts, 32) for f in (velocity, shifted)]
    assert np.median(np.abs(singles[0] - singles[1])) > 10  # the two models really differ
    pair = pointwise_flows([velocity, shifted], [position], normals, 600.0, combine="median")
    np.testing.assert_allclose(in_batches(accelerations, pair, pts, 32), (singles[0] + singles[1]) / 2, rtol=1e-4, atol=0.1)
    small = flow_skeleton(FLOW_VELOCITY.flow_layers, 8, FLOW_VELOCITY.nn_depth, FLOW_VELOCITY.activation)
    with pytest.raises(ValueError, match="share hyperparameters"):
        pointwise_flows([velocity, small], [position], normals, 600.0)


@pytest.mark.slow
def test_flow_divergence_matches_finite_differences(fitted, stars):
    """Forward-mode ∇·a through the flows (velocities move with x) = central differences of a (h = 0.01 kpc), 2%."""
    model = pointwise_flows([fitted[0]], [fitted[1]], qmc_normals(128, "sobol", 0), 600.0)
    pts = positions_inside(stars, 8, 2.0).astype(np.float64)
    div = in_batches(divergences, model, pts, 8)
    h = 0.01
    fd = sum(
        (in_batches(accelerations, model, pts + h * e, 8)[:, i] - in_batches(accelerations, model, pts - h * e, 8)[:, i])
        / (2 * h)
        for i, e in enumerate(np.eye(3))
    )
    np.testing.assert_allclose(div, fd, rtol=0.02, atol=0.02 * np.abs(fd).max())


def test_pointwise_spec_rejects_bad_values():
    with pytest.raises(ValidationError, match="kernel_scales_kpc"):
        PointwiseSpec(kernel_scales_kpc=(0.5, 0.5, 0.0))
    with pytest.raises(ValidationError, match="n_velocities"):
        PointwiseSpec(n_velocities=2)
    with pytest.raises(ValidationError, match="extra"):
        PointwiseSpec(kernel_size=3)
