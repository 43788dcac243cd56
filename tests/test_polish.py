"""The L-BFGS polish's sets and its held-out stop (the polish's accuracy: tests/test_fields.py)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dpotcube.fields.polish import (
    lbfgs_polish,
    polish_sets,
    position_groups,
    spread_probabilities,
)


def test_spread_probabilities_draw_evenly_through_the_volume():
    """Positions ten times denser in one half of the unit ball: drawn with the spread probabilities, both
    halves get about half the points (drawn plainly: ~91% in the dense half)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40_000, 3))
    x = x / np.linalg.norm(x, axis=1, keepdims=True) * rng.uniform(size=(len(x), 1)) ** (1 / 3)
    keep = (x[:, 0] > 0) | (rng.uniform(size=len(x)) < 0.1)
    x = np.repeat(x[keep], 2, axis=0)  # repeated positions (velocities per position) count once
    idx, _, _ = polish_sets(len(x), 4000, 10, np.zeros(3), 1.0, seed=1, probabilities=spread_probabilities(x))
    dense = np.mean(x[np.asarray(idx), 0] > 0)
    assert np.mean(x[:, 0] > 0) > 0.88
    assert 0.42 < dense < 0.58


def test_polish_sets_leave_out_the_held_out_points():
    idx, lap, _ = polish_sets(100, 1000, 50, np.zeros(3), 1.0, seed=0, exclude=np.arange(25))
    assert len(idx) == 75 and np.asarray(idx).min() >= 25 and np.asarray(lap).min() >= 25


def test_held_out_stop_keeps_the_unpolished_parameters_when_the_held_out_loss_only_rises():
    """Fitting a target the held-out loss disagrees with: the polish moves the parameters, the held-out loss
    rises from the first check, and the starting parameters come back; with an agreeing held-out loss the
    polished ones do."""
    start = {"w": jnp.zeros(3)}

    def loss(p):
        return jnp.sum((p["w"] - 1.0) ** 2)

    def disagrees(p):
        return jnp.sum((p["w"] + 1.0) ** 2)

    kept, history = lbfgs_polish(loss, start, 200, validation=disagrees, patience=2)
    np.testing.assert_array_equal(kept["w"], start["w"])
    assert history["polish_validation"][0] > history["polish_validation_start"][0]
    polished, history = lbfgs_polish(loss, start, 200, validation=lambda p: loss(p) + 0.1, patience=2)
    np.testing.assert_allclose(polished["w"], 1.0, atol=1e-4)
    assert len(history["polish_loss"]) < 200 // 25  # stopped once the held-out loss stopped falling


def test_position_groups_find_the_runs_of_velocities_per_position():
    x = np.repeat(np.arange(12.0).reshape(4, 3), 3, axis=0)
    np.testing.assert_array_equal(position_groups(x), np.arange(12).reshape(4, 3))
    assert position_groups(np.arange(12.0).reshape(4, 3)) is None  # one velocity per position: nothing to share
    assert position_groups(np.concatenate([x, x[:2]])) is None  # runs of unequal length


def test_residuals_by_position_equal_those_point_by_point():
    """The polish evaluates ∇Φ and ∇ ln n once per position: the residuals are those of every point on its own,
    for a method whose residual reads both (conditional) and one with a pattern speed."""
    from dpotcube.fields.model import fields_skeleton
    from dpotcube.fields.train import collocation_residuals
    from dpotcube.methods import get_method

    rng = np.random.default_rng(0)
    x = np.repeat(rng.normal(size=(6, 3)) + np.array([-8.0, 0, 0]), 4, axis=0)
    arrays = tuple(jnp.asarray(a, jnp.float32) for a in (x, *rng.normal(size=(4, 24, 3))))
    net = {"width": 16, "depth": 2, "activation": "silu", "loc": (-8.0, 0.0, 0.0), "length_scale": 3.0}
    for pattern in (False, True):
        model = fields_skeleton("conditional", {**net, "out_scale": 1e4}, {**net, "out_scale": 1.0},
                                pattern_speed=pattern, pattern_speed_init=30.0)
        groups = position_groups(x)
        by_position, positions = collocation_residuals(get_method("conditional"), model, arrays, jnp.asarray(groups))
        by_point, _ = collocation_residuals(get_method("conditional"), model, arrays, jnp.arange(24))
        np.testing.assert_allclose(by_position, by_point, rtol=1e-5, atol=1e-5 * float(jnp.abs(by_point).max()))
        np.testing.assert_array_equal(positions, arrays[0][::4])

