"""The Legendre exponential-family n(x): normalised, its degree chosen by held-out likelihood, ∇ ln n against the
Plummer truth, and the recipe errors that keep it to n(x) on the ball."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from dpotcube.density.base import grad_log_n
from dpotcube.density.registry import fit_density
from dpotcube.errors import RecipeError
from dpotcube.geometry import uniform_in_ball
from dpotcube.recipe import PositionLegendreSpec, load_recipe

SPEC = PositionLegendreSpec(max_degree=5, quadrature_points=2**17)


@pytest.fixture(scope="module")
def fitted(stars):
    return fit_density(stars.positions, SPEC, 0, ball=(stars.observer, stars.volume_radius_kpc))


def test_fit_is_normalised_and_picks_a_degree_by_held_out_likelihood(fitted, stars):
    model, history = fitted
    scores = history["val_log_likelihood"]
    assert len(scores) == SPEC.max_degree and model.degree == int(np.argmax(scores)) + 1
    assert model.degree >= 2  # a Plummer sphere seen 8 kpc from its centre is not a linear ln n
    points = uniform_in_ball(np.random.default_rng(1), 200_000, stars.observer, stars.volume_radius_kpc)
    log_p = np.asarray(_log_prob(model, points))
    volume = 4 / 3 * np.pi * stars.volume_radius_kpc**3
    assert volume * np.mean(np.exp(log_p)) == pytest.approx(1.0, abs=0.01)  # n/N integrates to 1 over the ball
    assert np.isneginf(float(model.log_prob(jnp.asarray(stars.observer + np.array([0.0, 0.0, 3.1]), jnp.float32))))


def test_gradient_follows_the_plummer_truth(fitted, stars, truth):
    """20,000 stars: ∇ ln n to 7.5% (measured; a wrong sign or a unit of kpc vs pc fails)."""
    model, _ = fitted
    x = jnp.asarray(stars.positions[:4000], jnp.float32)
    estimate, true = np.asarray(grad_log_n(model, x)), np.asarray(truth.grad_log_tracer_density(x))
    error = np.linalg.norm(estimate - true, axis=1) / np.linalg.norm(true, axis=1)
    assert np.median(error) < 0.10


def test_weights_reweight_the_density(stars):
    """1/S weights that halve one side's stars' weight tilt ∇ ln n towards the other side."""
    side = np.where(stars.positions[:, 0] > stars.observer[0], 0.5, 1.0)
    ball = (stars.observer, stars.volume_radius_kpc)
    plain, _ = fit_density(stars.positions, SPEC, 0, ball=ball)
    tilted, _ = fit_density(stars.positions, SPEC, 0, ball=ball, weights=side)
    x = jnp.asarray(stars.observer[None], jnp.float32)
    assert float(grad_log_n(tilted, x)[0, 0]) < float(grad_log_n(plain, x)[0, 0]) - 0.1


def test_recipe_keeps_legendre_to_n_of_x_on_the_ball(stars, tmp_path):
    with pytest.raises(ValueError, match="support: ball"):
        PositionLegendreSpec(support="free")
    with pytest.raises(ValueError, match="power of two"):
        PositionLegendreSpec(quadrature_points=100_000)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\ndensity:\n  velocity: {type: legendre}\n")
    with pytest.raises(RecipeError, match=r"density -> velocity -> type.*n\(x\) only: use it under `density.position`"):
        load_recipe(recipe)
    with pytest.raises(RecipeError, match="density.velocity"):
        fit_density(stars.velocities, SPEC, 0, conditions=stars.positions)


def _log_prob(model, points):
    import jax

    return jax.jit(jax.vmap(model.log_prob))(jnp.asarray(points, jnp.float32))


def test_tiny_vanilla_build_with_a_legendre_n_of_x(tmp_path):
    """`density.position: {type: legendre}` end to end: fitted and saved as a stage, reloaded by its header,
    sampled (inside a jitted ensemble) for the collocation positions, which stay in the ball; a finite cube."""
    import json

    import xarray as xr
    import yaml

    from dpotcube.density.collocation import CollocationPoints
    from dpotcube.frames import solar_position_kpc
    from dpotcube.recipe import FrameSpec

    from .conftest import REPO
    from .helpers import run_build

    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    assert "frame" not in raw["data"]  # the default frame: its Sun is the ball's centre
    raw["name"] = "tiny_legendre"
    raw["density"]["position"] = {"type": "legendre", "max_degree": 3, "quadrature_points": 2**14}
    raw["density"]["collocation"]["positions"] = "flow"
    raw["fields"]["method"] = "vanilla"
    raw["diagnostics"] = {"enabled": False}
    recipe = tmp_path / "tiny_legendre.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    catalog, _ = run_build(tmp_path, recipe)
    with open(tmp_path / "build" / "flows" / "position_flow_0.eqx", "rb") as f:
        assert json.loads(f.readline())["kind"] == "legendre_density"
    points = CollocationPoints.load(tmp_path / "build" / "collocation.npz")
    centre, radius = solar_position_kpc(FrameSpec()), raw["data"]["volume_radius_kpc"]
    assert np.linalg.norm(points.x - centre, axis=1).max() < radius and np.isfinite(points.grad_log_n).all()
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny_legendre.zarr")
    assert np.isfinite(ds["accel_x"].values).all() and np.isfinite(ds["density"].values).all()
