"""Flow-matching CNF for p(v|x) (and the MAF's position jitter, shared with it): normalised, gradients right (autodiff vs finite differences vs analytic), samples,
save/load. The target is a Gaussian p(v|x) whose mean and width depend on x, so ∇ₓ ln p has known signs."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from dpotcube.density.base import grad_log_p as cfm_grad_log_p
from dpotcube.density.cfm import cfm_skeleton, fit_cfm
from dpotcube.density.maf import fit_flow
from dpotcube.density.registry import load_density, save_density
from dpotcube.recipe import CFMSpec, FlowSpec

SPEC = CFMSpec(width=48, depth=2, time_frequencies=2, ode_steps=8, max_epochs=40, batch_size=1024,
               learning_rate=3e-3, patience=40, condition_noise_kpc=0.0)  # no smoothing: exact targets


def mean_sigma(x):
    """μ(x) = 20 x km/s (per component), σ(x) = 30 exp(0.3 x₀) km/s."""
    return 20.0 * x, 30.0 * np.exp(0.3 * x[..., :1])


def analytic_grads(x, v):
    mu, sigma = mean_sigma(x)
    r = (v - mu) / sigma
    grad_v = -r / sigma
    grad_x = 20.0 * r / sigma  # ∂/∂x_i of −½ r²: r_i/σ · ∂μ_i/∂x_i
    grad_x[:, 0] += 0.3 * (np.sum(r**2, axis=1) - 3.0)  # from σ(x₀): (r² − 3) ∂ ln σ/∂x₀
    return grad_x, grad_v


@pytest.fixture(scope="module")
def gaussian_fit():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16_000, 3)).astype(np.float32)
    mu, sigma = mean_sigma(x)
    v = (mu + sigma * rng.normal(size=x.shape)).astype(np.float32)
    return fit_cfm(v, SPEC, seed=0, conditions=x)


def test_an_untrained_cnf_is_normalised():
    """Any vector field gives a normalised density: ∫ p dv by importance sampling from a broad Gaussian."""
    model = cfm_skeleton(32, 2, 2, ode_steps=8, conditioned=True, key=jr.key(3))
    out = model.field.out
    model = eqx.tree_at(lambda m: m.field.out, model, eqx.tree_at(lambda o: o.weight, out, out.weight * 20))
    model = eqx.tree_at(lambda m: (m.loc, m.scale), model, (jnp.array([5.0, -3.0, 0.0]), jnp.array([30.0, 40.0, 20.0])))
    c = jnp.array([0.5, -1.0, 2.0])
    width = jnp.array([90.0, 120.0, 60.0])
    v = model.loc + width * jr.normal(jr.key(4), (6000, 3))
    log_q = jnp.sum(-0.5 * ((v - model.loc) / width) ** 2 - jnp.log(width * jnp.sqrt(2 * jnp.pi)), axis=1)
    log_p = log_prob_many(model, v, jnp.tile(c, (len(v), 1)))
    assert float(jnp.mean(jnp.exp(log_p - log_q))) == pytest.approx(1.0, abs=0.05)


def test_fit_learns_and_keeps_the_best(gaussian_fit):
    _, history = gaussian_fit
    assert history["val"][-1] < 0.8 * history["val"][0]


@eqx.filter_jit
def log_prob_many(model, y, c):
    return jax.vmap(model.log_prob)(y, c)


def test_gradients_match_finite_differences(gaussian_fit):
    """Autodiff through the ODE solve against central differences, every component of ∇ᵥ and ∇ₓ."""
    model, _ = gaussian_fit
    x = jnp.array([[0.3, -0.5, 0.8], [-1.0, 0.2, 0.1]])
    v = jnp.array([[10.0, -25.0, 30.0], [-40.0, 5.0, 0.0]])
    grad_x, grad_v = cfm_grad_log_p(model, x, v)
    h_v, h_x = 1.0, 0.02  # km/s against σ ≈ 30 km/s; kpc against the 1 kpc scale of μ(x), σ(x)
    shifts = jnp.concatenate([jnp.eye(3), -jnp.eye(3)])  # +e_j then −e_j
    for i in range(2):
        lp_v = log_prob_many(model, v[i] + h_v * shifts, jnp.tile(x[i], (6, 1)))
        lp_x = log_prob_many(model, jnp.tile(v[i], (6, 1)), x[i] + h_x * shifts)
        np.testing.assert_allclose(grad_v[i], (lp_v[:3] - lp_v[3:]) / (2 * h_v), rtol=0.03, atol=2e-4)
        np.testing.assert_allclose(grad_x[i], (lp_x[:3] - lp_x[3:]) / (2 * h_x), rtol=0.03, atol=5e-3)


def test_gradients_follow_the_analytic_conditional_gaussian(gaussian_fit):
    """∇ᵥ ln p and ∇ₓ ln p (mean and width both move with x) against the exact Gaussian, signs included."""
    model, _ = gaussian_fit
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 3)).astype(np.float32) * 0.7
    mu, sigma = mean_sigma(x)
    v = (mu + sigma * rng.normal(size=x.shape)).astype(np.float32)
    grad_x, grad_v = (np.asarray(g) for g in cfm_grad_log_p(model, jnp.asarray(x), jnp.asarray(v)))
    true_x, true_v = analytic_grads(x, v)

    def median_error(a, b):
        return np.median(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1))

    assert median_error(grad_v, true_v) < 0.15
    assert median_error(grad_x, true_x) < 0.35
    assert np.median(np.sum(grad_x * true_x, 1) / np.linalg.norm(grad_x, axis=1) / np.linalg.norm(true_x, axis=1)) > 0.9


def test_samples_have_the_target_moments_and_from_base_agrees(gaussian_fit):
    model, _ = gaussian_fit
    c = jnp.array([0.5, -0.5, 0.0])
    draws = np.asarray(model.sample(jr.key(7), 4000, jnp.tile(c, (4000, 1))))
    mu, sigma = mean_sigma(np.asarray(c))
    np.testing.assert_allclose(draws.mean(0), mu, atol=0.1 * sigma[0])
    np.testing.assert_allclose(draws.std(0), np.full(3, sigma[0]), rtol=0.1)
    z = jr.normal(jr.key(7), (4000, 3))
    np.testing.assert_allclose(np.asarray(model.from_base(z[:50], c)), draws[:50], rtol=1e-4, atol=1e-3)


def _mean_slopes(model, key: int) -> np.ndarray:
    """Least-squares slope of each velocity component on the same position component, one draw per condition."""
    c = np.random.default_rng(key).normal(size=(4000, 3)).astype(np.float32)
    v = np.asarray(model.sample(jr.key(key), len(c), jnp.asarray(c)))
    return np.array([np.polyfit(c[:, i], v[:, i], 1)[0] for i in range(3)])


MAF_SPEC = FlowSpec(flow_layers=2, nn_width=32, nn_depth=1, max_epochs=30, batch_size=512, patience=30)


@pytest.mark.parametrize("model", ["cfm", "maf"])
def test_position_jitter_learns_the_analytic_smoothed_conditional(model):
    """With positions jittered by s while training, the flow learns p(v | x + ε): for x ~ N(0, 1) and μ = 20 x,
    E[v | x'] = 20 x' / (1 + s²), a slope of 16 km/s per unit at s = 0.5 (20 without jitter). A jitter in the
    wrong units (not divided by the condition's scale) or not applied gives another slope. Both p(v|x) models
    take the same key (`condition_noise_kpc`)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16_000, 3)).astype(np.float32)
    mu, sigma = mean_sigma(x)
    v = (mu + sigma * rng.normal(size=x.shape)).astype(np.float32)
    spec = SPEC if model == "cfm" else MAF_SPEC
    fit = fit_cfm if model == "cfm" else fit_flow
    jittered, _ = fit(v, spec.model_copy(update={"condition_noise_kpc": 0.5}), seed=0, conditions=x)
    np.testing.assert_allclose(_mean_slopes(jittered, 11), 16.0, atol=1.6)
    if model == "maf":  # and without jitter, the true slope (the `cfm` fixture checks its own)
        plain, _ = fit_flow(v, spec, seed=0, conditions=x)
        np.testing.assert_allclose(_mean_slopes(plain, 11), 20.0, atol=1.6)


def test_without_jitter_the_slope_is_the_true_one(gaussian_fit):
    np.testing.assert_allclose(_mean_slopes(gaussian_fit[0], 11), 20.0, atol=1.6)


def test_save_load_round_trip(gaussian_fit, tmp_path):
    model, _ = gaussian_fit
    save_density(tmp_path / "p.eqx", model, SPEC)
    loaded = load_density(tmp_path / "p.eqx")
    y, c = jnp.array([10.0, 0.0, -5.0]), jnp.array([0.1, 0.2, 0.3])
    assert float(log_prob_many(loaded, y[None], c[None])[0]) == float(log_prob_many(model, y[None], c[None])[0])
    assert loaded.conditional and loaded.ode_steps == SPEC.ode_steps


def test_unconditional_ball_model_is_normalised_inside_the_ball_and_samples_stay_inside():
    """n(x)/N with `ball` support: ∫ n dx over the ball ≈ 1 (uniform Monte Carlo), draws inside the sphere."""
    model = cfm_skeleton(32, 2, 2, ode_steps=8, conditioned=False, ball=True, key=jr.key(8))
    out = model.field.out
    model = eqx.tree_at(lambda m: m.field.out, model, eqx.tree_at(lambda o: o.weight, out, out.weight * 10))
    centre, radius = jnp.array([1.0, -2.0, 0.5]), jnp.asarray(3.0)
    model = eqx.tree_at(lambda m: (m.centre, m.radius), model, (centre, radius))
    u = jr.normal(jr.key(9), (6000, 3))
    u = u / jnp.linalg.norm(u, axis=1, keepdims=True) * jr.uniform(jr.key(10), (6000, 1)) ** (1 / 3)
    log_n = eqx.filter_jit(jax.vmap(lambda y: model.log_prob(y)))(centre + radius * u)
    volume = 4 / 3 * jnp.pi * radius**3
    assert float(jnp.mean(jnp.exp(log_n)) * volume) == pytest.approx(1.0, abs=0.05)
    draws = model.sample(jr.key(11), 500)
    assert float(jnp.max(jnp.linalg.norm(draws - centre, axis=1))) < 3.0


def test_tiny_build_with_cfm_flows_for_p_and_n(tmp_path):
    """`type: cfm` end to end for both flows: fitted, saved, reloaded for collocation from n(x), cube written;
    the flow files name their model, and the recipe's `type: cfm` reaches the stage fingerprint."""
    import json

    import xarray as xr
    import yaml

    from .conftest import REPO
    from .helpers import run_build

    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    tiny_cfm = {"type": "cfm", "width": 16, "depth": 1, "time_frequencies": 1, "ode_steps": 4, "max_epochs": 2,
                "batch_size": 512}
    raw["name"] = "tiny_cfm"
    raw["density"]["velocity"] = tiny_cfm
    raw["density"]["position"] = tiny_cfm
    raw["density"]["collocation"]["positions"] = "flow"
    raw["cube"]["spacing_kpc"] = 1.0
    raw["diagnostics"] = {"enabled": False}
    recipe = tmp_path / "tiny_cfm.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    catalog, _ = run_build(tmp_path, recipe)
    for name in ("velocity_flow_0.eqx", "position_flow_0.eqx"):
        with open(tmp_path / "build" / "flows" / name, "rb") as f:
            assert json.loads(f.readline())["kind"] == "cfm_density"
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny_cfm.zarr")
    assert np.isfinite(ds["potential"].values).all() and np.isfinite(ds["accel_x"].values).all()
