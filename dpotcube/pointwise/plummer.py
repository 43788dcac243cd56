"""The pointwise solver on the exact Plummer p(v|x): the reference without flow error (tests, benchmarks).

Speeds: q = v/v_esc has density ∝ q²(1 − q²)^{7/2}, i.e. t = q² ~ Beta(3/2, 9/2), so a uniform u
maps exactly to q = √(I⁻¹_{3/2, 9/2}(u)); directions come from two more uniforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from scipy.special import betaincinv

from ..recipe import PointwiseSpec
from ..sources.mocks import PlummerTruth
from .qmc import QMC, qmc_uniform, unit_vectors
from .solve import least_squares_acceleration


def plummer_speed_fractions(u: Float[np.ndarray, " k"]) -> Float[np.ndarray, " k"]:
    """q = v/v_esc of the Plummer DF at quantiles `u` (exact inverse CDF)."""
    return np.sqrt(betaincinv(1.5, 4.5, u))


class PlummerPointwise(eqx.Module):
    """a(x) by least squares over K QMC velocities from the exact Plummer p(v|x), with exact ∇ ln f."""

    truth: PlummerTruth = eqx.field(static=True)
    speed_fractions: Float[Array, " k"]
    directions: Float[Array, "k 3"]
    max_speed_kms: float = eqx.field(static=True)

    def velocities(self, x: Float[Array, "3"]) -> Float[Array, "k 3"]:
        """The K velocities (km/s) at `x`: the same quantiles at every position."""
        v_esc = jnp.sqrt(2 * self.truth.relative_potential(x))
        return (self.speed_fractions * v_esc)[:, None] * self.directions

    def __call__(self, x: Float[Array, "3"]) -> Float[Array, "3"]:
        v = self.velocities(x)
        grad_x, grad_v = self.truth.grad_log_p(x, v)
        keep = (jnp.linalg.norm(v, axis=1) < self.max_speed_kms).astype(v.dtype)
        return least_squares_acceleration(v, grad_x + self.truth.grad_log_tracer_density(x), grad_v, keep)


@dataclass(frozen=True)
class PlummerMember:
    """A cube member (`pointwise_blocks`) from the exact Plummer p(v|x): the flow-free reference cube."""

    truth: PlummerTruth

    def stamp(self) -> tuple:
        return ()

    def model(self, spec: PointwiseSpec, seed: int) -> PlummerPointwise:
        return plummer_pointwise(self.truth, spec.n_velocities, spec.qmc, seed, spec.max_speed_kms)


def plummer_pointwise(
    truth: PlummerTruth, n_velocities: int, kind: QMC = "sobol", seed: int = 0, max_speed_kms: float = 600.0
) -> PlummerPointwise:
    """`PlummerPointwise` with `n_velocities` QMC draws (speed quantile and two direction coordinates)."""
    u = np.clip(qmc_uniform(n_velocities, 3, kind, seed), 1e-7, 1 - 1e-7)
    q, directions = plummer_speed_fractions(u[:, 0]), unit_vectors(u[:, 1:])
    return PlummerPointwise(truth, jnp.asarray(q, jnp.float32), jnp.asarray(directions, jnp.float32), max_speed_kms)
