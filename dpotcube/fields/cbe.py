"""CBE residual terms: pure functions of precomputed flow gradients (each method assembles them: `methods/`).

All residuals are in km s⁻¹ kpc⁻¹ (1/time):

    r = v·∇ₓ ln f − ∇Φ·∇ᵥ ln f − Ω [(x ∂_y − y ∂_x) + (v_x ∂_{v_y} − v_y ∂_{v_x})] ln f,

the last term only with a pattern speed: f stationary in a frame rotating at Ω about z (astropy's
sign, counter-clockwise seen from +z; Galactic rotation is Ω < 0, so Ω = −Ω_p).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def stationary_residual(
    v: Float[Array, "3"], grad_x_log_f: Float[Array, "3"], grad_v_log_f: Float[Array, "3"], grad_phi: Float[Array, "3"]
) -> Float[Array, ""]:
    """Eq. (1): v·∇ₓ ln f − ∇Φ·∇ᵥ ln f."""
    return jnp.dot(v, grad_x_log_f) - jnp.dot(grad_phi, grad_v_log_f)


def rotation_term(
    x: Float[Array, "3"], v: Float[Array, "3"], grad_x_log_f: Float[Array, "3"], grad_v_log_f: Float[Array, "3"]
) -> Float[Array, ""]:
    """[(x ∂_y − y ∂_x) + (v_x ∂_{v_y} − v_y ∂_{v_x})] ln f: the rate of change of ln f under a rotation about z."""
    return (x[0] * grad_x_log_f[1] - x[1] * grad_x_log_f[0]) + (v[0] * grad_v_log_f[1] - v[1] * grad_v_log_f[0])
