"""The conditional velocity flow: training, smooth gradients, collocation and save/load."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpotcube.density.collocation import CollocationPoints, draw_collocation
from dpotcube.density.flows import fit_velocity_flow, grad_log_p, load_flow, save_flow
from dpotcube.recipe import CollocationSpec, DensitySpec

SPEC = DensitySpec(flow_layers=3, nn_width=32, max_epochs=8, batch_size=256)


@pytest.fixture(scope="module")
def flow(stars):
    flow, history = fit_velocity_flow(stars.positions, stars.velocities, SPEC, seed=0)
    return flow, history


def test_flow_learns_and_stops(flow):
    _, history = flow
    assert len(history["val"]) <= SPEC.max_epochs
    assert min(history["val"]) < history["val"][0]


def test_flow_gradients_point_the_right_way(flow, stars, truth):
    """Even a small flow gets the direction of ∇ᵥ ln p (towards v = 0, magnitude from the DF)."""
    model, _ = flow
    x = jnp.asarray(stars.positions[:2000], jnp.float32)
    v = jnp.asarray(stars.velocities[:2000], jnp.float32)
    _, gv = grad_log_p(model, x, v)
    _, tv = truth.grad_log_p(x, v)
    cosine = np.sum(gv * tv, axis=1) / np.linalg.norm(gv, axis=1) / np.linalg.norm(tv, axis=1)
    assert np.median(cosine) > 0.9


def test_flow_gradients_match_finite_differences(flow):
    model, _ = flow
    x = jnp.array([-8.0, 0.3, 0.1])
    v = jnp.array([30.0, -50.0, 10.0])
    gx, gv = grad_log_p(model, x[None], v[None])
    h = 1e-2
    fd_v = jnp.array([(model.log_prob(v + h * e, x) - model.log_prob(v - h * e, x)) / (2 * h) for e in jnp.eye(3)])
    np.testing.assert_allclose(gv[0], fd_v, rtol=0.05, atol=1e-4)


def test_flow_save_load_round_trip(flow, tmp_path):
    model, _ = flow
    save_flow(tmp_path / "flow.eqx", model, SPEC)
    loaded = load_flow(tmp_path / "flow.eqx")
    x, v = jnp.array([-8.0, 0.3, 0.1]), jnp.array([30.0, -50.0, 10.0])
    assert loaded.log_prob(v, x) == model.log_prob(v, x)


def test_collocation_shapes_and_round_trip(flow, stars, tmp_path):
    model, _ = flow
    spec = CollocationSpec(n_positions=300, velocities_per_position=3, chunk_size=256)
    points = draw_collocation(model, stars.positions, spec, seed=1)
    assert len(points) == 900 and points.grad_v_log_p.shape == (900, 3)
    np.testing.assert_array_equal(points.x[0], points.x[2])  # repeated positions, different velocities
    assert not np.array_equal(points.v[0], points.v[1])
    points.save(tmp_path / "c.npz")
    np.testing.assert_array_equal(CollocationPoints.load(tmp_path / "c.npz").grad_x_log_p, points.grad_x_log_p)
    assert np.all(np.isfinite(points.grad_x_log_p))
    assert jax.numpy.asarray(points.v).dtype == jnp.float32
