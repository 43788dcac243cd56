"""The CBE methods `vanilla`, `selection`, `conditional` and the fitted pattern speed, on exact gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from dpotcube.density.collocation import CollocationPoints
from dpotcube.errors import RecipeError
from dpotcube.fields.cbe import rotation_term, stationary_residual
from dpotcube.fields.losses import mean_asinh, negative_density_penalty
from dpotcube.fields.train import train_fields
from dpotcube.geometry import uniform_in_ball
from dpotcube.methods import get_method
from dpotcube.recipe import FieldsSpec, recipe_from_dict

from .conftest import REPO
from .helpers import run_build

# A barred (non-axisymmetric) logarithmic potential rotating at Ω_p = 28.2 km/s/kpc in the sense of Galactic
# rotation, which in astropy's frame is clockwise seen from +z: Ω = −Ω_p about +z.
V0, CORE, AXIS_Y, AXIS_Z, SIGMA = 220.0, 1.0, 0.8, 0.9, 60.0
PATTERN_SPEED = 28.2
OBSERVER = np.array([-8.122, 0.0, 0.0208])


def barred_potential(x):
    return 0.5 * V0**2 * jnp.log(CORE**2 + x[..., 0] ** 2 + (x[..., 1] / AXIS_Y) ** 2 + (x[..., 2] / AXIS_Z) ** 2)


def jacobi_collocation(n_positions: int, velocities_per_position: int, seed: int) -> CollocationPoints:
    """f ∝ exp(−E_J/σ²), E_J = ½|v|² + Φ − Ω L_z: exact gradients, velocities drawn exactly.

    At fixed x, E_J = ½|v − u|² + const with u = Ω ẑ × x, so p(v|x) is a Gaussian around u.
    """
    omega = -PATTERN_SPEED
    rng = np.random.default_rng(seed)
    x = np.repeat(uniform_in_ball(rng, n_positions, OBSERVER, 3.0), velocities_per_position, axis=0)
    u = omega * np.stack([-x[:, 1], x[:, 0], np.zeros(len(x))], axis=1)
    v = u + SIGMA * rng.normal(size=x.shape)
    grad_phi = np.asarray(jax.vmap(jax.grad(barred_potential))(jnp.asarray(x)))
    grad_x_lz = np.stack([v[:, 1], -v[:, 0], np.zeros(len(x))], axis=1)
    grad_v_lz = np.stack([-x[:, 1], x[:, 0], np.zeros(len(x))], axis=1)
    grad_x = -(grad_phi - omega * grad_x_lz) / SIGMA**2
    grad_v = -(v - omega * grad_v_lz) / SIGMA**2
    arrays = (x, v, grad_x, grad_v, np.zeros_like(x))  # ∇ₓ ln f given whole as ∇ₓ ln p; ∇ ln n = 0
    return CollocationPoints(*(np.asarray(a, np.float32) for a in arrays))


def test_rotating_frame_residual_vanishes_only_for_the_right_pattern_speed():
    """The sign convention: Ω_p > 0 in the sense of Galactic rotation makes the exact f(E_J) stationary."""
    points = jacobi_collocation(512, 2, seed=0)
    x, v, gx, gv = (jnp.asarray(a) for a in (points.x, points.v, points.grad_x_log_p, points.grad_v_log_p))
    grad_phi = jax.vmap(jax.grad(barred_potential))(x)
    still = jax.vmap(stationary_residual)(v, gx, gv, grad_phi)
    turn = jax.vmap(rotation_term)(x, v, gx, gv)
    rms = lambda r: float(jnp.sqrt(jnp.mean(r**2)))  # noqa: E731
    assert rms(still + PATTERN_SPEED * turn) < 1e-4 * rms(still)
    assert rms(still - PATTERN_SPEED * turn) > rms(still)


def test_pattern_speed_recovered_within_two_percent():
    """Φ and Ω_p learned together from exact gradients of f(E_J) in the rotating barred potential.

    Measured: Ω_p = 28.18 (0.07%) and median |Δa|/|a| = 0.7% after 2000 steps on 32 k points; this
    smaller run keeps the test short.
    """
    points = jacobi_collocation(4096, 4, seed=1)
    spec = FieldsSpec(method="vanilla", potential={"width": 48, "depth": 3}, steps=1500, pattern_speed=True,
                      positivity_weight=0.0, batch_size=1024, learning_rate=4e-3)
    model, hyper, history = train_fields(points, OBSERVER, 3.0, 4096, spec, seed=2, method=get_method(spec.method))
    assert hyper["pattern_speed"] is True and len(history["pattern_speed"]) == 30
    assert abs(float(model.pattern_speed) / PATTERN_SPEED - 1) < 0.02
    x = jnp.asarray(points.x[:2000])
    accel, true_accel = -jax.vmap(jax.grad(model.potential))(x), -jax.vmap(jax.grad(barred_potential))(x)
    assert np.median(np.linalg.norm(accel - true_accel, axis=1) / np.linalg.norm(true_accel, axis=1)) < 0.03


def test_asinh_loss_is_quadratic_then_logarithmic():
    r = jnp.array([1e-3, 1e3])
    np.testing.assert_allclose(mean_asinh(r[:1], 1.0), 1e-3, rtol=1e-6)
    np.testing.assert_allclose(mean_asinh(r[1:], 1.0), np.log(2e3), rtol=1e-6)
    lap = jnp.array([-2.0, 5.0])  # only the negative Laplacian is penalised
    np.testing.assert_allclose(negative_density_penalty(lap, 1.0, "asinh"), np.arcsinh(2.0) / 2, rtol=1e-6)
    np.testing.assert_allclose(negative_density_penalty(lap, 1.0, "mse"), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fields": {"method": "vanilla"}}, "needs the n(x) flow: add a `density.position:`"),
        ({"fields": {"method": "selection"}}, "needs the n(x) flow"),
        ({"fields": {"method": "selection"}, "density": {"position": {"selection_weights": True}},
          "data": {"source": "table", "table": {"path": "t.parquet", "selection_column": "S"}}},
         "set `density.position.selection_weights: false`"),
        ({"fields": {"method": "pointless"}}, "fields -> method"),
    ],
)
def test_method_needs_its_flows(changes, message):
    """The recipe schema refuses unknown names; each method refuses recipes it cannot run (as `validate` and `build` ask)."""
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        recipe = recipe_from_dict({"name": "m", **changes})
        get_method(recipe.fields.method).check(recipe)


def test_method_choices_validate():
    for method in ("vanilla", "selection"):
        recipe = recipe_from_dict({"name": "m", "fields": {"method": method, "loss": "asinh",
                                                          "potential": {"body": "resnet"}},
                                   "density": {"position": {}}})
        assert recipe.fields.method == method and recipe.fields.potential.body == "resnet"


@pytest.fixture(scope="module")
def selection_build(tmp_path_factory):
    """The tiny recipe run with `selection`, an n(x) flow and a fitted pattern speed."""
    tmp_path = tmp_path_factory.mktemp("selection")
    catalog, _ = run_build(
        tmp_path, REPO / "recipes" / "tiny.yaml", "--set", "fields.method=selection",
        "--set", "density.position.flow_layers=2", "--set", "density.position.nn_width=16",
        "--set", "density.position.max_epochs=3", "--set", "fields.pattern_speed=true",
        "--set", "fields.efficiency.width=16", "--set", "fields.efficiency.depth=2",
        "--set", "fields.density_tie_weight=0",
    )
    return tmp_path, catalog


def test_selection_cube_has_efficiency_and_corrected_density(selection_build):
    """CUBE_SPEC: `efficiency` in (0, 1] and `tracer_density` = n_obs/ε for `selection`; Ω_p in the attributes."""
    import intake

    _, catalog = selection_build
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny.zarr")
    assert ds.attrs["method"] == "selection"
    assert ds["efficiency"].dims == ("member", "x", "y", "z") and ds["efficiency"].attrs["units"] == "1"
    eps = ds["efficiency"].where(ds["in_volume"]).values
    assert np.nanmin(eps) > 0 and np.nanmax(eps) <= 1
    n = ds["tracer_density"].where(ds["in_volume"]).values
    assert ds["tracer_density"].attrs["units"] == "kpc-3" and np.all(np.isfinite(n[:, ds["in_volume"].values]))
    # n_obs/ε ≥ n_obs, and ∫ n_obs dV over the volume is the star count: the corrected total is larger
    assert np.nansum(n) * 0.5**3 > 0.5 * ds.attrs["n_tracers"]
    assert isinstance(ds.attrs["pattern_speed_kms_per_kpc"], float)
    meta = intake.open_catalog(str(catalog)).entries["tiny"].metadata
    assert meta["method"] == "selection" and "efficiency" in meta["fields"] and "tracer_density" in meta["fields"]
    assert meta["units"]["efficiency"] == "1" and "pattern_speed_kms_per_kpc" in meta


def test_vanilla_cube_has_no_efficiency_and_the_complete_mocks_density(selection_build):
    """`vanilla` learns no ε (absent, not zero-filled); on the built-in mock without `data.observation` every star
    in the volume is in the sample, so its n(x) model × N is the tracer density: ∫ n dV over the volume ≈ N."""
    tmp_path, catalog = selection_build
    run_build(
        tmp_path, REPO / "recipes" / "tiny.yaml", "--set", "fields.method=vanilla",
        "--set", "density.position.flow_layers=2", "--set", "density.position.nn_width=16",
        "--set", "density.position.max_epochs=3", "--set", "fields.density_tie_weight=0",
    )
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny.zarr")
    assert ds.attrs["method"] == "vanilla" and "pattern_speed_kms_per_kpc" not in ds.attrs
    assert "efficiency" not in ds and "density" in ds
    n = ds["tracer_density"].where(ds["in_volume"]).values
    spacing = float(ds["x"][1] - ds["x"][0])
    assert 0.7 < np.nansum(n[0]) * spacing**3 / ds.attrs["n_tracers"] < 1.3


def test_pointwise_build_writes_accelerations_without_a_potential(selection_build):
    """`pointwise` reuses the flows, skips collocation and fields, and writes a and the smoothed ρ, no Φ."""
    import intake

    tmp_path, catalog = selection_build
    _, result = run_build(
        tmp_path, REPO / "recipes" / "tiny.yaml", "--set", "fields.method=pointwise",
        "--set", "density.position.flow_layers=2", "--set", "density.position.nn_width=16",
        "--set", "density.position.max_epochs=3", "--set", "fields.density_tie_weight=0",
        "--set", "fields.pointwise.n_velocities=32", "--set", "fields.pointwise.kernel_points=4",
        "--set", "cube.spacing_kpc=1.0", "--set", "cube.baryon_model=none", "--set", "diagnostics.enabled=false",
    )
    assert "collocation" not in result.output.split("cube")[0].replace("collocation: up to date", "")
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny.zarr")
    assert ds.attrs["method"] == "pointwise" and "potential" not in ds and "density" in ds
    inside = ds["in_volume"].values
    accel = np.stack([ds[f"accel_{c}"].isel(member=0).values[inside] for c in "xyz"], axis=1)
    observer = np.asarray(ds.attrs["observer_position_kpc"])
    pts = np.stack(np.meshgrid(ds.x, ds.y, ds.z, indexing="ij"), axis=-1)[inside]
    assert np.all(np.isfinite(accel)) and np.median(np.sum(accel * pts, axis=1) < 0) > 0  # a points inwards
    assert np.mean(np.sum(accel * pts, axis=1) < 0) > 0.9 and observer.shape == (3,)
    meta = intake.open_catalog(str(catalog)).entries["tiny"].metadata
    assert meta["method"] == "pointwise" and "potential" not in meta["fields"]


def test_weak_build_fits_no_flow_and_writes_posterior_members(tmp_path):
    """`weak` from the recipe: no flow, collocation or network; Φ, a, ρ from the linear fit and its posterior draws
    as members of kind `posterior`; a bootstrap member refits on resampled stars; every member's Φ is published
    (`dpotcube.potential` equals the cube in the volume); seed members are refused."""
    extra = ("--set", "fields.method=weak", "--set", "data.n_stars=60000", "--set", "fields.weak.potential_degree=4",
             "--set", "fields.weak.test_degree=4", "--set", "fields.weak.n_members=3", "--set", "ensemble.bootstrap=1",
             "--set", "cube.spacing_kpc=1.0", "--set", "cube.baryon_model=none", "--set", "diagnostics.enabled=false")
    catalog, result = run_build(tmp_path, REPO / "recipes" / "tiny.yaml", *extra)
    assert "flow" not in result.output.split("cube …")[0] and "collocation" not in result.output
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny.zarr")
    assert ds.attrs["method"] == "weak" and list(ds.member_kind.values) == ["seed", "bootstrap", *["posterior"] * 3]
    inside = ds["in_volume"].values
    accel = np.stack([ds[f"accel_{c}"].isel(member=0).values[inside] for c in "xyz"], axis=1)
    pts = np.stack(np.meshgrid(ds.x, ds.y, ds.z, indexing="ij"), axis=-1)[inside]
    assert np.mean(np.sum(accel * pts, axis=1) < 0) > 0.9  # a points inwards, to the Plummer centre
    spread = float(np.nanmedian(ds["density"].where(ds["in_volume"]).isel(member=slice(2, None)).std("member").values))
    assert spread > 0  # posterior draws differ
    import dpotcube

    for member in (0, 3):  # the fitted model and a posterior draw: published beside the cube, exact in the volume
        pot = dpotcube.potential(ds, member=member)
        cube_phi = ds["potential"].isel(member=member).values[inside]
        np.testing.assert_allclose(pot.potential(pts), cube_phi, rtol=1e-4, atol=1e-2 * np.abs(cube_phi).max())
        cube_a = np.stack([ds[f"accel_{c}"].isel(member=member).values[inside] for c in "xyz"], axis=1)
        np.testing.assert_allclose(pot.acceleration(pts), cube_a, rtol=1e-4, atol=1e-3 * np.abs(cube_a).max())
    from typer.testing import CliRunner

    from dpotcube.cli import app

    refused = CliRunner().invoke(app, ["validate", str(REPO / "recipes" / "tiny.yaml"), "--set", "fields.method=weak",
                                       "--set", "ensemble.seed=2"])
    assert refused.exit_code == 2 and "deterministic" in refused.output
