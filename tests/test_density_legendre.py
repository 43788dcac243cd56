"""The Legendre exponential-family n(x): normalised, its degree chosen by BIC or held-out likelihood, ∇ ln n and
∇² ln n against the Plummer truth (the reference shapes carry the curvature), a saved model that reloads, and
the recipe errors that keep it to n(x) on the ball."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpotcube.density.base import grad_log_n, laplacian_log_n
from dpotcube.density.registry import fit_density, load_density, save_density
from dpotcube.errors import RecipeError
from dpotcube.geometry import uniform_in_ball
from dpotcube.recipe import PositionLegendreSpec, load_recipe
from dpotcube.sources.load import load_stars
from dpotcube.weak.basis import multi_indices

SPEC = PositionLegendreSpec(max_degree=5, quadrature_points=2**17)
PLAIN = SPEC.model_copy(update={"reference": "none", "degree_selection": "held_out"})
"""The Legendre expansion alone, its degree by held-out likelihood: the model before the reference."""


@pytest.fixture(scope="module")
def fitted(stars):
    return fit_density(stars.positions, SPEC, 0, ball=(stars.observer, stars.volume_radius_kpc))


@pytest.fixture(scope="module")
def fitted_plain(stars):
    return fit_density(stars.positions, PLAIN, 0, ball=(stars.observer, stars.volume_radius_kpc))


def test_fit_is_normalised_and_picks_the_degree_of_best_bic(fitted, stars):
    model, history = fitted
    scores = history["bic_per_star"]
    assert len(scores) == SPEC.max_degree and model.degree == int(np.argmax(scores)) + 1
    assert model.reference_scales == SPEC.reference_scales_kpc
    assert len(model.coefficients) == len(SPEC.reference_scales_kpc) + len(multi_indices(model.degree, False))
    points = uniform_in_ball(np.random.default_rng(1), 200_000, stars.observer, stars.volume_radius_kpc)
    log_p = np.asarray(_log_prob(model, points))
    volume = 4 / 3 * np.pi * stars.volume_radius_kpc**3
    assert volume * np.mean(np.exp(log_p)) == pytest.approx(1.0, abs=0.01)  # n/N integrates to 1 over the ball
    assert np.isneginf(float(model.log_prob(jnp.asarray(stars.observer + np.array([0.0, 0.0, 3.1]), jnp.float32))))


def test_held_out_selection_without_the_reference(fitted_plain):
    model, history = fitted_plain
    scores = history["val_log_likelihood"]
    assert len(scores) == PLAIN.max_degree and model.degree == int(np.argmax(scores)) + 1
    assert model.reference_scales == ()
    assert model.degree >= 2  # a Plummer sphere seen 8 kpc from its centre is not a linear ln n


def _errors(model, stars, truth) -> tuple[float, float]:
    """Median relative errors of ∇ ln n and ∇² ln n at 4,000 of the stars."""
    x = jnp.asarray(stars.positions[:4000], jnp.float32)
    estimate, true = np.asarray(grad_log_n(model, x)), np.asarray(truth.grad_log_tracer_density(x))
    laplacian = np.asarray(laplacian_log_n(model, x))
    true_laplacian = np.asarray(truth.laplacian_log_tracer_density(x))
    return (float(np.median(np.linalg.norm(estimate - true, axis=1) / np.linalg.norm(true, axis=1))),
            float(np.median(np.abs(laplacian - true_laplacian) / np.abs(true_laplacian))))


def test_gradient_and_curvature_follow_the_plummer_truth(fitted, fitted_plain, stars, truth):
    """20,000 stars (measured): with the reference ∇ ln n to 4.6% and ∇² ln n to 12%; the Legendre expansion
    alone 7.5% and 43%. A wrong sign or a unit of kpc vs pc fails either; the reference must carry the curvature."""
    grad, curvature = _errors(fitted[0], stars, truth)
    grad_plain, curvature_plain = _errors(fitted_plain[0], stars, truth)
    assert grad < 0.07 and curvature < 0.2
    assert grad_plain < 0.10
    assert curvature < 0.5 * curvature_plain


def test_truth_curvature_is_the_divergence_of_its_gradient(stars, truth):
    x = jnp.asarray(stars.positions[:100], jnp.float32)
    by_autodiff = jax.vmap(lambda y: jnp.trace(jax.jacfwd(truth.grad_log_tracer_density)(y)))(x)
    np.testing.assert_allclose(truth.laplacian_log_tracer_density(x), by_autodiff, rtol=1e-4, atol=1e-7)


def test_saved_model_reloads_with_its_reference(fitted, stars, tmp_path):
    model, _ = fitted
    save_density(tmp_path / "n.eqx", model, SPEC)
    again = load_density(tmp_path / "n.eqx")
    x = jnp.asarray(stars.positions[:50], jnp.float32)
    assert again.reference_scales == model.reference_scales and again.degree == model.degree
    np.testing.assert_array_equal(_log_prob(again, x), _log_prob(model, x))


def test_weights_reweight_the_density(stars):
    """1/S weights that halve one side's stars' weight tilt ∇ ln n towards the other side."""
    side = np.where(stars.positions[:, 0] > stars.observer[0], 0.5, 1.0)
    ball = (stars.observer, stars.volume_radius_kpc)
    plain, _ = fit_density(stars.positions, SPEC, 0, ball=ball)
    tilted, _ = fit_density(stars.positions, SPEC, 0, ball=ball, weights=side)
    x = jnp.asarray(stars.observer[None], jnp.float32)
    assert float(grad_log_n(tilted, x)[0, 0]) < float(grad_log_n(plain, x)[0, 0]) - 0.1


def test_default_clip_keeps_the_inverse_selection_weights_unbiased_where_s_is_small(data_spec, truth):
    """Stars seen with S = e^(−2(1+u)), u the x offset over the radius (S falls 55-fold across the ball): the
    default clip of the 1/S weights leaves ∇ ln n within 6% of the truth; a flow's clip of 20 leaves it 25% off."""
    stars = load_stars(data_spec.model_copy(update={"n_stars": 100_000}), seed=0)
    u = (stars.positions[:, 0] - stars.observer[0]) / stars.volume_radius_kpc
    selection = np.exp(-2 * (1 + u))
    seen = np.random.default_rng(1).uniform(size=len(u)) < selection
    ball, points = (stars.observer, stars.volume_radius_kpc), jnp.asarray(stars.positions[:4000], jnp.float32)
    true_grad = np.asarray(truth.grad_log_tracer_density(np.asarray(points)))

    def gradient_error(max_weight: float) -> float:
        model, _ = fit_density(stars.positions[seen], SPEC, 0, ball=ball,
                               weights=np.minimum(1 / selection[seen], max_weight))
        error = np.linalg.norm(np.asarray(grad_log_n(model, points)) - true_grad, axis=1)
        return float(np.median(error / np.linalg.norm(true_grad, axis=1)))

    assert SPEC.max_weight > 1 / selection.min()  # the default clips none of these weights
    assert gradient_error(SPEC.max_weight) < 0.06
    assert gradient_error(20.0) > 0.15


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


def test_recipe_refuses_a_reference_scale_that_is_not_positive(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\ndensity:\n  position: {type: legendre, reference_scales_kpc: [2.0, 0.0]}\n")
    with pytest.raises(RecipeError, match=r"reference_scales_kpc.*greater than 0"):
        load_recipe(recipe)
