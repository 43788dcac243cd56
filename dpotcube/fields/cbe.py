"""CBE residuals: pure functions of the field model and precomputed flow gradients.

All residuals are in km s⁻¹ kpc⁻¹ (1/time):

    r = v·∇ₓ ln f − ∇Φ·∇ᵥ ln f − Ω [(x ∂_y − y ∂_x) + (v_x ∂_{v_y} − v_y ∂_{v_x})] ln f,

the last term only with a pattern speed: f stationary in a frame rotating at Ω about z (astropy's
sign, counter-clockwise seen from +z; Galactic rotation is Ω < 0, so Ω = −Ω_p).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .model import CBEFields


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


def cbe_residual(
    model: CBEFields,
    x: Float[Array, "3"],
    v: Float[Array, "3"],
    grad_x_log_p: Float[Array, "3"],
    grad_v_log_p: Float[Array, "3"],
    grad_log_n_flow: Float[Array, "3"],
) -> Float[Array, ""]:
    """The residual of the model's method at one collocation point (eqs. 1–3, plus the rotating frame).

    `grad_log_n_flow`: ∇ ln n of the n(x) flow (`vanilla`, `selection`); ignored by `conditional`.
    """
    grad_x_log_f = model.grad_log_n(x, grad_log_n_flow) + grad_x_log_p
    residual = stationary_residual(v, grad_x_log_f, grad_v_log_p, jax.grad(model.potential)(x))
    if model.pattern_speed is not None:
        residual = residual + model.pattern_speed * rotation_term(x, v, grad_x_log_f, grad_v_log_p)
    return residual
