"""Jitted per-point evaluators of an acceleration model, run on fixed-size batches (one compilation for all)."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

AccelerationModel = Callable[[Float[Array, "3"]], Float[Array, "3"]]
"""An equinox module mapping one position (kpc) to a (km² s⁻² kpc⁻¹), differentiable in the position."""


@eqx.filter_jit
def accelerations(model: AccelerationModel, points: Float[Array, "p 3"]) -> Float[Array, "p 3"]:
    """a at each of `points`."""
    return jax.vmap(model)(points)


@eqx.filter_jit
def divergences(model: AccelerationModel, points: Float[Array, "p 3"]) -> Float[Array, " p"]:
    """∇·a at each of `points` (km² s⁻² kpc⁻²), by forward-mode autodiff of the whole estimator.

    The velocities move with x (the same QMC quantiles at every x), so this is the derivative of the
    pointwise a(x) itself; the |v| cut is a step in x whose derivative is left out.
    """
    return jax.vmap(lambda x: jnp.trace(jax.jacfwd(model)(x)))(points)


def in_batches(
    fn: Callable[[AccelerationModel, Float[Array, "p 3"]], Array],
    model: AccelerationModel,
    points: Float[np.ndarray, "n 3"],
    batch: int,
) -> np.ndarray:
    """`fn(model, ·)` on `points` in calls of exactly `batch` points (the last padded), concatenated, first axis n."""
    n = len(points)
    if n == 0:  # e.g. a block outside the volume: nothing to evaluate, only the output's shape
        shape = eqx.filter_eval_shape(fn, model, jnp.zeros((batch, 3), jnp.float32))
        return np.zeros((0, *shape.shape[1:]), shape.dtype)
    padded = np.concatenate([points, np.repeat(points[-1:], -n % batch, axis=0)]).astype(np.float32)
    parts = [np.asarray(fn(model, padded[i : i + batch])) for i in range(0, len(padded), batch)]
    return np.concatenate(parts)[:n]
