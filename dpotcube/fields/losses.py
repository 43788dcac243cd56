"""Loss terms on CBE residuals and on the Laplacian of Φ."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def mean_squared(residual: Float[Array, " n"], scale: float) -> Float[Array, ""]:
    """⟨(r / scale)²⟩: the MSE form (ClearPotential)."""
    return jnp.mean((residual / scale) ** 2)


def mean_asinh(residual: Float[Array, " n"], scale: float) -> Float[Array, ""]:
    """⟨asinh(|r| / scale)⟩: the Deep Potential form, quadratic for small and logarithmic for large residuals."""
    return jnp.mean(jnp.arcsinh(jnp.abs(residual) / scale))


def negative_density_penalty(laplacian_phi: Float[Array, " n"], scale: float, form: str = "mse") -> Float[Array, ""]:
    """⟨max(0, −∇²Φ) / scale⟩ (or its asinh with `form="asinh"`): penalises negative mass density."""
    negative = jnp.maximum(0.0, -laplacian_phi) / scale
    return jnp.mean(jnp.arcsinh(negative) if form == "asinh" else negative)


RESIDUAL_LOSSES = {"mse": mean_squared, "asinh": mean_asinh}
"""`fields.loss` → the loss on the CBE residuals."""


def position_log_likelihood(
    log_n_at_stars: Float[Array, " n"], log_n_uniform: Float[Array, " m"]
) -> Float[Array, ""]:
    """Unbinned negative log-likelihood of star positions under n ∝ exp(ln n) in the volume.

    −⟨ln n(x_star)⟩ + ln ⟨n(x_uniform)⟩, the volume integral estimated from uniform points in it;
    the additive constant of ln n drops out.
    """
    log_mean = jax.scipy.special.logsumexp(log_n_uniform) - jnp.log(log_n_uniform.shape[0])
    return log_mean - jnp.mean(log_n_at_stars)
