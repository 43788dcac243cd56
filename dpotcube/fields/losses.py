"""Loss terms on CBE residuals and on the Laplacian of Φ."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def mean_squared(residual: Float[Array, "n"], scale: float) -> Float[Array, ""]:
    """⟨(r / scale)²⟩: the MSE form (ClearPotential)."""
    return jnp.mean((residual / scale) ** 2)


def negative_density_penalty(laplacian_phi: Float[Array, "n"], scale: float) -> Float[Array, ""]:
    """⟨max(0, −∇²Φ) / scale⟩: penalises negative mass density."""
    return jnp.mean(jnp.maximum(0.0, -laplacian_phi) / scale)
