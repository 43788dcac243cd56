"""CBE residuals: pure functions of field models and precomputed flow gradients.

All residuals are in km s⁻¹ kpc⁻¹ (1/time): r = v·∇ₓ ln f − ∇Φ·∇ᵥ ln f.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from .nets import ScalarField, gradient


def stationary_residual(
    v: Float[Array, "3"], grad_x_log_f: Float[Array, "3"], grad_v_log_f: Float[Array, "3"], grad_phi: Float[Array, "3"]
) -> Float[Array, ""]:
    """Eq. (1): v·∇ₓ ln f − ∇Φ·∇ᵥ ln f."""
    return jnp.dot(v, grad_x_log_f) - jnp.dot(grad_phi, grad_v_log_f)


def conditional_residual(
    potential: ScalarField,
    log_density: ScalarField,
    x: Float[Array, "3"],
    v: Float[Array, "3"],
    grad_x_log_p: Float[Array, "3"],
    grad_v_log_p: Float[Array, "3"],
) -> Float[Array, ""]:
    """Eq. (3): v·(∇ ln n_φ + ∇ₓ ln p) − ∇Φ·∇ᵥ ln p, with ln n and Φ learned."""
    grad_x_log_f = gradient(log_density, x) + grad_x_log_p
    return stationary_residual(v, grad_x_log_f, grad_v_log_p, gradient(potential, x))
