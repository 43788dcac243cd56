"""Small geometric samplers shared by the mocks, the field stage, the density models and the diagnostics."""

from __future__ import annotations

import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from scipy.stats import qmc


def uniform_in_ball(
    rng: np.random.Generator, n: int, centre: Float[np.ndarray, "3"], radius: float
) -> Float[np.ndarray, "n 3"]:
    """`n` points uniform in the ball of `radius` around `centre`, shape `(n, 3)`."""
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return np.asarray(centre) + radius * rng.uniform(0, 1, (n, 1)) ** (1 / 3) * direction


def uniform_in_ball_traced(key: PRNGKeyArray, n: int, centre: Float[Array, "3"], radius: float) -> Float[Array, "n 3"]:
    """`uniform_in_ball` in JAX (`n` static): usable inside jitted code."""
    k_direction, k_radius = jr.split(key)
    direction = jr.normal(k_direction, (n, 3))
    direction = direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    return centre + radius * jr.uniform(k_radius, (n, 1)) ** (1 / 3) * direction


def qmc_ball(radius: float, n_log2: int = 12, seed: int = 0) -> Float[np.ndarray, "n 3"]:
    """Scrambled-Sobol offsets uniform in the ball of `radius` (kpc): the 2^`n_log2` box points inside it."""
    box = 2 * qmc.Sobol(3, scramble=True, seed=seed).random_base2(n_log2) - 1
    return radius * box[np.sum(box**2, axis=1) < 1]
