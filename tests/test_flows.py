"""Flows for p(v|x) and n(x): training, smooth gradients, the ball edge, ensembles, collocation, save/load."""

import typing

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from flowjax.bijections import Affine
from flowjax.distributions import Normal
from flowjax.flows import masked_autoregressive_flow

from dpotcube.density.ball import ball_to_space, space_to_ball
from dpotcube.density.base import grad_log_n, grad_log_p
from dpotcube.density.collocation import CollocationPoints, draw_collocation
from dpotcube.density.ensemble import FlowEnsemble, combine_members
from dpotcube.density.maf import fit_flow, flow_skeleton
from dpotcube.density.registry import load_density, save_density
from dpotcube.recipe import Activation, CollocationSpec

from .conftest import FLOW_POSITION as POSITION
from .conftest import FLOW_VELOCITY as VELOCITY


@pytest.fixture(scope="module")
def flow(velocity_flow_fit):
    return velocity_flow_fit


@pytest.fixture(scope="module")
def position_flow(position_flow_fit):
    return position_flow_fit


def test_flow_learns_and_stops(flow):
    _, history = flow
    assert len(history["val"]) <= VELOCITY.max_epochs
    assert min(history["val"]) < history["val"][0]


def test_flow_gradients_point_the_right_way(flow, stars, truth):
    """Even a small flow gets the direction of ∇ᵥ ln p (towards v = 0, magnitude from the DF)."""
    model, _ = flow
    x = jnp.asarray(stars.positions[:2000], jnp.float32)
    v = jnp.asarray(stars.velocities[:2000], jnp.float32)
    _, gv = grad_log_p(model, x, v)
    _, tv = truth.grad_log_p(x, v)
    assert np.median(cosine(gv, tv)) > 0.9


def test_position_flow_gradient_follows_the_density(position_flow, stars, truth):
    """∇ ln n of a small n(x) flow points up the Plummer density gradient (towards the centre)."""
    model, _ = position_flow
    x = jnp.asarray(stars.positions[:2000], jnp.float32)
    assert np.median(cosine(grad_log_n(model, x), truth.grad_log_tracer_density(x))) > 0.8


def test_ball_flow_is_normalised_inside_the_ball_and_zero_outside(position_flow, stars):
    model, _ = position_flow
    rng = np.random.default_rng(3)
    radius = stars.volume_radius_kpc
    u = rng.uniform(-1, 1, (200_000, 3))
    inside = u[np.linalg.norm(u, axis=1) < 1]
    volume = 4 / 3 * np.pi * radius**3
    total = np.mean(np.exp(jax.vmap(model.log_prob)(jnp.asarray(stars.observer + radius * inside, jnp.float32))))
    assert total * volume == pytest.approx(1.0, abs=0.03)
    draws = np.asarray(model.sample(jr.key(0), 5000))
    assert np.all(np.linalg.norm(draws - stars.observer, axis=1) < radius)


def test_ball_map_inverts_and_its_log_det_is_the_jacobian():
    centre, radius = jnp.array([-8.0, 0.0, 0.02]), jnp.array(3.0)
    for x in (jnp.array([-7.0, 1.5, -0.8]), jnp.array([-8.0, 0.0, 0.02 + 2.99]), jnp.array([-8.0 + 1e-4, 0.0, 0.02])):
        z, log_det = ball_to_space(x, centre, radius)
        np.testing.assert_allclose(space_to_ball(z, centre, radius), x, atol=2e-5)
        jacobian = jax.jacfwd(lambda p: ball_to_space(p, centre, radius)[0])(x)
        np.testing.assert_allclose(log_det, jnp.linalg.slogdet(jacobian)[1], atol=2e-3)


# --- smoothness: second differences along a line shrink like h² for C² gradients, like h at a kink ---------


def second_difference_order(g, t0: float, h: float) -> float:
    """log2 of max|Δ²g| at step h over step h/2, on a line of 40 points around t0: ≈ 2 smooth, ≈ 1 kinked."""
    g_line = jax.jit(jax.vmap(g))

    def worst(step):
        values = g_line(t0 + step * jnp.arange(-20, 21))
        return float(jnp.max(jnp.abs(values[2:] - 2 * values[1:-1] + values[:-2])))

    return float(np.log2(worst(h) / worst(h / 2)))


def to_float64(model):
    return jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, model)


def test_flow_gradients_are_smooth_along_lines(flow, position_flow):
    with jax.enable_x64(True):
        velocity, position = to_float64(flow[0]), to_float64(position_flow[0])
        x0, v0 = jnp.array([-8.0, 0.3, 0.1]), jnp.array([30.0, -50.0, 10.0])
        dx, dv = jnp.array([0.6, -0.3, 0.74]), jnp.array([0.5, 0.7, -0.5])
        grad_v = jax.grad(velocity.log_prob, argnums=(0, 1))
        along_x = lambda t: jnp.concatenate(grad_v(v0, x0 + t * dx))  # noqa: E731
        along_v = lambda t: jnp.concatenate(grad_v(v0 + 40 * t * dv, x0))  # noqa: E731
        along_n = lambda t: jax.grad(position.log_prob)(x0 + t * dx)  # noqa: E731
        for g in (along_x, along_v, along_n):
            assert second_difference_order(g, 0.0, 0.02) > 1.7


def test_smoothness_probe_catches_a_kinked_flow(stars):
    """The same probe on a ReLU-conditioner flow (kinked ∇ ln p) fails: the smoothness test can fail."""
    with jax.enable_x64(True):
        relu = masked_autoregressive_flow(
            jr.key(4), base_dist=Normal(jnp.zeros(3, jnp.float64)), transformer=Affine(), cond_dim=3,
            flow_layers=3, nn_width=32, nn_activation=jax.nn.relu,
        )
        relu = to_float64(relu)
        x0, v0, dx = jnp.array([0.1, 0.2, -0.3]), jnp.array([0.3, -0.5, 0.1]), jnp.array([0.6, -0.3, 0.74])
        along_x = lambda t: jax.grad(relu.log_prob, argnums=1)(v0, x0 + t * dx)  # noqa: E731
        assert second_difference_order(along_x, 0.0, 0.2) < 1.7


@pytest.mark.parametrize("activation", typing.get_args(Activation))
def test_every_recipe_activation_builds_a_flow_with_finite_gradients(activation):
    model = flow_skeleton(2, 8, 1, activation, conditioned=True, key=jr.key(1))
    gx, gv = grad_log_p(model, jnp.array([[0.2, -0.1, 0.3]]), jnp.array([[0.5, 0.1, -0.4]]))
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gv)) and np.any(gx != 0)


# --- ensembles -----------------------------------------------------------------------------------------------


def test_ensemble_median_is_the_per_component_median():
    values = jr.normal(jr.key(0), (5, 100, 3))
    np.testing.assert_allclose(combine_members(values, "median"), np.median(np.asarray(values), axis=0), rtol=1e-6)


def test_robust_mean_drops_the_outlier_member():
    rng = np.random.default_rng(1)
    good = 1.0 + 0.01 * rng.normal(size=(4, 50, 3))
    values = np.concatenate([good, np.full((1, 50, 3), 40.0)])
    combined = np.asarray(combine_members(jnp.asarray(values), "robust_mean"))
    assert np.abs(combined - good.mean(0)).max() < 0.02  # within the good members' spread
    assert np.abs(values.mean(0) - good.mean(0)).min() > 5  # where a plain mean is dragged away


def test_ensemble_of_flows_combines_their_gradients(flow, stars):
    model, _ = flow
    other, _ = fit_flow(stars.velocities[:5000], VELOCITY.model_copy(update={"max_epochs": 2}), seed=1,
                        conditions=stars.positions[:5000])
    third, _ = fit_flow(stars.velocities[:5000], VELOCITY.model_copy(update={"max_epochs": 2}), seed=2,
                        conditions=stars.positions[:5000])
    x = jnp.asarray(stars.positions[:300], jnp.float32)
    v = jnp.asarray(stars.velocities[:300], jnp.float32)
    members = [grad_log_p(m, x, v) for m in (model, other, third)]
    gx, gv = FlowEnsemble((model, other, third), "median").grad_log_p(x, v)
    np.testing.assert_allclose(gx, np.median([m[0] for m in members], axis=0), rtol=1e-6)
    np.testing.assert_allclose(gv, np.median([m[1] for m in members], axis=0), rtol=1e-6)
    draws = FlowEnsemble((model, other, third)).sample(jr.key(0), 300, x)
    assert draws.shape == (300, 3) and np.all(np.isfinite(draws))


# --- save / load, collocation --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["velocity", "position"])
def test_flow_save_load_round_trip(kind, flow, position_flow, tmp_path):
    model = (flow if kind == "velocity" else position_flow)[0]
    save_density(tmp_path / "flow.eqx", model, VELOCITY if kind == "velocity" else POSITION)
    loaded = load_density(tmp_path / "flow.eqx")
    x = jnp.array([[-8.0, 0.3, 0.1], [-6.5, -1.0, 0.9]])
    v = jnp.array([[30.0, -50.0, 10.0], [-120.0, 20.0, 55.0]])
    if kind == "velocity":
        np.testing.assert_array_equal(grad_log_p(loaded, x, v), grad_log_p(model, x, v))
    else:
        np.testing.assert_array_equal(grad_log_n(loaded, x), grad_log_n(model, x))
        assert loaded.support is not None and float(loaded.support.radius) == float(model.support.radius)


def test_collocation_shapes_and_round_trip(flow, position_flow, stars, tmp_path):
    spec = CollocationSpec(n_positions=300, velocities_per_position=3, chunk_size=256)
    points = draw_collocation(FlowEnsemble((flow[0],)), stars.positions, spec, seed=1)
    assert len(points) == 900 and points.grad_v_log_p.shape == (900, 3) and points.grad_log_n is None
    np.testing.assert_array_equal(points.x[0], points.x[2])  # repeated positions, different velocities
    assert not np.array_equal(points.v[0], points.v[1])
    points.save(tmp_path / "c.npz")
    np.testing.assert_array_equal(CollocationPoints.load(tmp_path / "c.npz").grad_x_log_p, points.grad_x_log_p)
    assert np.all(np.isfinite(points.grad_x_log_p))


def test_collocation_positions_from_the_density_flow(flow, position_flow, stars, tmp_path):
    spec = CollocationSpec(positions="flow", n_positions=200, velocities_per_position=2, chunk_size=128)
    points = draw_collocation(FlowEnsemble((flow[0],)), stars.positions, spec, 2, FlowEnsemble((position_flow[0],)))
    assert np.all(np.linalg.norm(points.x - stars.observer, axis=1) < stars.volume_radius_kpc)
    np.testing.assert_allclose(points.grad_log_n, grad_log_n(position_flow[0], jnp.asarray(points.x)), rtol=1e-5, atol=1e-6)
    points.save(tmp_path / "c.npz")
    np.testing.assert_array_equal(CollocationPoints.load(tmp_path / "c.npz").grad_log_n, points.grad_log_n)


@pytest.mark.parametrize("positions", ["stars", "flow"])
def test_collocation_keeps_off_the_density_flows_edge(flow, position_flow, stars, positions):
    """Near the ball's edge the n(x) flow's ∇ ln n follows the sample's cut, not the tracers: positions stay inside."""
    spec = CollocationSpec(positions=positions, n_positions=300, velocities_per_position=1, chunk_size=128)
    inner = stars.volume_radius_kpc - 0.5
    points = draw_collocation(FlowEnsemble((flow[0],)), stars.positions, spec, 3, FlowEnsemble((position_flow[0],)),
                              inner_ball=(stars.observer, inner))
    distance = np.linalg.norm(points.x - stars.observer, axis=1)
    assert len(points) == 300 and distance.max() < inner and distance.max() > inner - 0.2


def test_selection_weights_undo_a_known_selection(stars, truth):
    """Stars on the far side kept with S = 0.25: the 1/S-weighted n(x) flow recovers the true slope along x."""
    rng = np.random.default_rng(5)
    selection = np.where(stars.positions[:, 0] > stars.observer[0], 0.25, 1.0)
    kept = rng.uniform(size=len(selection)) < selection
    ball = (stars.observer, stars.volume_radius_kpc)
    spec = POSITION.model_copy(update={"max_epochs": 12})
    x, s = stars.positions[kept], selection[kept]
    weighted, _ = fit_flow(x, spec, seed=0, weights=1 / s, ball=ball)
    plain, _ = fit_flow(x, spec, seed=0, ball=ball)
    # mean n on the far half relative to the near half, true and fitted
    probe = stars.positions[:4000]
    far = probe[:, 0] > stars.observer[0]
    true_ratio = truth.tracer_density(probe)[far].mean() / truth.tracer_density(probe)[~far].mean()

    def ratio(model):
        n = np.exp(jax.vmap(model.log_prob)(jnp.asarray(probe, jnp.float32)))
        return n[far].mean() / n[~far].mean()

    assert abs(ratio(weighted) / true_ratio - 1) < 0.15
    assert ratio(plain) / true_ratio < 0.5


def cosine(a, b):
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
