"""The contract every registered density model keeps (as flowjax tests every bijection from one table of tiny
constructors): gradients against finite differences and the analytic Plummer truth, sampling, base-space draws,
save/load. `TINY` holds one small fit per registered `type`; a model registered without one fails here."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from dpotcube.density.base import grad_log_n, grad_log_p
from dpotcube.density.registry import DENSITY_MODELS, fit_density, load_density, save_density
from dpotcube.pointwise import qmc_normals
from dpotcube.recipe import CFMSpec, PositionCFMSpec, PositionLegendreSpec

from .conftest import FLOW_POSITION, FLOW_VELOCITY

_TINY_CFM = {"width": 64, "depth": 2, "time_frequencies": 2, "ode_steps": 6, "batch_size": 512, "max_epochs": 20,
             "patience": 20, "learning_rate": 3e-3}
TINY = {
    "maf": (FLOW_VELOCITY, FLOW_POSITION),
    "cfm": (CFMSpec(**_TINY_CFM), PositionCFMSpec(**_TINY_CFM)),
    "legendre": (None, PositionLegendreSpec(max_degree=4, quadrature_points=2**16)),
}
"""Per `type`: the (p(v|x), n(x)) specs of a fit that takes seconds (the MAF's are the session's own flows); a
model of n(x) only has no p(v|x) spec, and the p(v|x) checks are skipped for it."""
VARIANTS = {"maf+frame": (FLOW_VELOCITY.model_copy(update={"frame": "galactocentric", "frame_condition": "none"}),
                          FLOW_POSITION)}
"""Options of a registered type that change its model's structure (a velocity frame), held to the same contract."""


@pytest.fixture(scope="module", params=[*sorted(DENSITY_MODELS), *VARIANTS])
def models(request, stars, velocity_flow_fit, position_flow_fit):
    """(type, p(v|x) model, n(x) model with ball support, their specs)."""
    if request.param not in TINY and request.param not in VARIANTS:
        pytest.fail(f"Density model `{request.param}` is registered without a tiny fit in TINY.")
    velocity_spec, position_spec = {**TINY, **VARIANTS}[request.param]
    if velocity_spec is FLOW_VELOCITY:  # already fitted once per session
        return request.param, velocity_flow_fit[0], position_flow_fit[0], velocity_spec, position_spec
    if position_spec is FLOW_POSITION:
        velocity = fit_density(stars.velocities, velocity_spec, 0, conditions=stars.positions)[0]
        return request.param, velocity, position_flow_fit[0], velocity_spec, position_spec
    velocity = None if velocity_spec is None else fit_density(stars.velocities, velocity_spec, 0,
                                                               conditions=stars.positions)[0]
    position, _ = fit_density(stars.positions, position_spec, 0, ball=(stars.observer, stars.volume_radius_kpc))
    return request.param, velocity, position, velocity_spec, position_spec


def _test_points(stars, n=200):
    rng = np.random.default_rng(3)
    rows = rng.choice(len(stars), n, replace=False)
    return jnp.asarray(stars.positions[rows], jnp.float32), jnp.asarray(stars.velocities[rows], jnp.float32)


def test_gradients_match_finite_differences(models, stars):
    _, velocity, position, _, _ = models
    x, v = _test_points(stars, 64)
    gn = grad_log_n(position, x)
    gx, gv = (None, None) if velocity is None else grad_log_p(velocity, x, v)
    for axis in range(3):
        dx = jnp.zeros(3).at[axis].set(0.01)  # kpc
        dv = jnp.zeros(3).at[axis].set(0.5)  # km/s
        pairs = [((_log_p(position, x + dx) - _log_p(position, x - dx)) / 0.02, gn[:, axis])]
        if velocity is not None:
            pairs += [((_log_p(velocity, v, x + dx) - _log_p(velocity, v, x - dx)) / 0.02, gx[:, axis]),
                      ((_log_p(velocity, v + dv, x) - _log_p(velocity, v - dv, x)) / 1.0, gv[:, axis])]
        for fd, exact in pairs:
            scale = np.median(np.abs(exact)) + 1e-12
            assert np.median(np.abs(np.asarray(fd) - np.asarray(exact))) < 0.05 * scale


@eqx.filter_jit
def _log_p(model, y, c=None):
    """ln p(y | c) at each row (jitted: an ODE model traced eagerly takes minutes)."""
    return jax.vmap(model.log_prob)(y) if c is None else jax.vmap(model.log_prob)(y, c)


def test_gradients_follow_the_plummer_truth(models, stars, truth):
    """Tiny, briefly fitted models: the gradients point the truth's way (cosine), with the right signs."""
    _, velocity, position, _, _ = models
    x, v = _test_points(stars, 2000)

    def cosine(a, b):
        a, b = np.asarray(a), np.asarray(b)
        return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    assert np.median(cosine(grad_log_n(position, x), truth.grad_log_tracer_density(x))) > 0.8
    if velocity is None:
        return
    gx, gv = grad_log_p(velocity, x, v)
    true_x, true_v = truth.grad_log_p(x, v)
    assert np.median(cosine(gv, true_v)) > 0.9
    assert np.median(cosine(gx, true_x)) > 0.0  # ∇ₓ ln p is the hard one (docs/benchmarks.md): a sign check here


def test_sampling_and_base_space_draws_follow_the_model(models, stars):
    _, velocity, position, _, _ = models
    if velocity is not None:
        x = jnp.asarray(stars.observer + np.array([0.5, -0.5, 0.2]), jnp.float32)
        draws = np.asarray(velocity.sample(jr.key(1), 8000, jnp.tile(x, (8000, 1))))
        assert draws.shape == (8000, 3) and np.isfinite(draws).all()
        from_base = np.asarray(velocity.from_base(jnp.asarray(qmc_normals(4096, "sobol", seed=0), jnp.float32), x))
        sd = draws.std(0)
        assert np.all(np.abs(from_base.mean(0) - draws.mean(0)) < 5 * sd / np.sqrt(len(draws)) + 0.02 * sd)
        np.testing.assert_allclose(from_base.std(0), sd, rtol=0.05)
    positions = np.asarray(position.sample(jr.key(2), 4000))
    radius = np.linalg.norm(positions - stars.observer, axis=1)
    assert np.isfinite(positions).all() and radius.max() < stars.volume_radius_kpc  # the ball's edge is exact
    np.testing.assert_allclose(positions.mean(0), stars.positions.mean(0), atol=0.1)


def test_save_load_round_trip(models, stars, tmp_path):
    _, velocity, position, velocity_spec, position_spec = models
    save_density(tmp_path / "n.eqx", position, position_spec)
    x, v = _test_points(stars, 64)  # the finite-difference test's shape: its compiled gradients are reused
    if velocity is not None:
        save_density(tmp_path / "v.eqx", velocity, velocity_spec)
        np.testing.assert_array_equal(grad_log_p(load_density(tmp_path / "v.eqx"), x, v), grad_log_p(velocity, x, v))
    np.testing.assert_array_equal(grad_log_n(load_density(tmp_path / "n.eqx"), x), grad_log_n(position, x))


def test_every_registered_model_has_a_tiny_fit():
    assert set(TINY) == set(DENSITY_MODELS)
