"""Ensembles of K flows: gradients combined point by point, samples from the members' mixture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .base import DensityModel, grad_log_n, grad_log_p

Combine = Literal["median", "robust_mean"]

OUTLIER_DISTANCE = 3.0
"""`robust_mean` drops, per point, the members farther from the median than this many times their median distance."""


def combine_members(values: Float[Array, "k n 3"], how: Combine) -> Float[Array, "n 3"]:
    """Combine K members' vectors at each of n points: per-component median, or a mean without outliers.

    An outlier is a member whose distance to the per-component median exceeds `OUTLIER_DISTANCE` times
    the median of the members' distances at that point.
    """
    median = jnp.median(values, axis=0)
    if how == "median":
        return median
    distance = jnp.linalg.norm(values - median, axis=-1)  # (k, n)
    scale = jnp.median(distance, axis=0)
    keep = distance <= OUTLIER_DISTANCE * scale  # at least the closer half of the members
    weights = keep[..., None].astype(values.dtype)
    return jnp.sum(values * weights, axis=0) / jnp.sum(weights, axis=0)


@eqx.filter_jit
def _sample(model: DensityModel, key: PRNGKeyArray, n: int, c: Float[Array, "n 3"] | None) -> Float[Array, "n 3"]:
    """A model's draws as one compiled program: run eagerly, a flow's inverse (a scan over its dimensions)
    compiles again at every call (16 times for the quickstart's collocation chunks)."""
    return model.sample(key, n, c)


@dataclass(frozen=True)
class FlowEnsemble:
    """K flows of one kind (all conditional, or all unconditional)."""

    members: tuple[DensityModel, ...]
    combine: Combine = "median"

    def __len__(self) -> int:
        return len(self.members)

    def sample(self, key: PRNGKeyArray, n: int, c: Float[Array, "n 3"] | None = None) -> Float[np.ndarray, "n 3"]:
        """`n` draws from the equal-weight mixture of the members (one member per draw, at random)."""
        key_pick, *member_keys = jr.split(key, len(self) + 1)
        pick = np.asarray(jr.randint(key_pick, (n,), 0, len(self)))
        draws = np.empty((n, 3), np.float32)
        for k, (flow, member_key) in enumerate(zip(self.members, member_keys)):
            rows = np.flatnonzero(pick == k)  # each member draws only its own share
            if rows.size:
                draws[rows] = _sample(flow, member_key, rows.size, None if c is None else jnp.asarray(c)[rows])
        return draws

    def grad_log_p(
        self, x: Float[Array, "n 3"], v: Float[Array, "n 3"]
    ) -> tuple[Float[Array, "n 3"], Float[Array, "n 3"]]:
        """Combined (∇ₓ ln p, ∇ᵥ ln p) of conditional members."""
        grads = [grad_log_p(flow, x, v) for flow in self.members]
        gx = combine_members(jnp.stack([g[0] for g in grads]), self.combine)
        gv = combine_members(jnp.stack([g[1] for g in grads]), self.combine)
        return gx, gv

    def grad_log_n(self, x: Float[Array, "n 3"]) -> Float[Array, "n 3"]:
        """Combined ∇ ln n of unconditional members."""
        return combine_members(jnp.stack([grad_log_n(flow, x) for flow in self.members]), self.combine)
