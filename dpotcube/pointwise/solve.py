"""The closed-form least-squares acceleration at one position, from the 3×3 normal equations."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def least_squares_acceleration(
    v: Float[Array, "k 3"],
    grad_x_log_f: Float[Array, "k 3"],
    grad_v_log_f: Float[Array, "k 3"],
    weights: Float[Array, " k"],
) -> Float[Array, "3"]:
    """a minimising Σ_k w_k (v_k·∇ₓ ln f_k + a·∇ᵥ ln f_k)², in km² s⁻² kpc⁻¹.

    `v`: velocities (km/s) at one position; `grad_x_log_f` = ∇ ln n + ∇ₓ ln p (kpc⁻¹);
    `grad_v_log_f` = ∇ᵥ ln p (s/km); `weights` ≥ 0 (0 drops a draw). Solves
    (Σ w gᵥ gᵥᵀ) a = −Σ w (v·gₓ) gᵥ. With velocities drawn from p(v|x), the ln-form is the Monte
    Carlo estimate of the residual's mean square under p; the published ∇f form weights each draw
    by f², i.e. towards the velocity peak.
    """
    gv = weights[:, None] * grad_v_log_f
    normal = gv.T @ grad_v_log_f  # (3, 3)
    rhs = -gv.T @ jnp.sum(v * grad_x_log_f, axis=1)
    return jnp.linalg.solve(normal, rhs)
