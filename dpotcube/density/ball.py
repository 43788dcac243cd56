"""A smooth bijection from the observer's ball onto R³, so that n(x) can have a hard edge.

Stars are kept inside |x − c| < R, so the true n(x) jumps to zero at the sphere. A flow on R³
smears that edge over its own smoothness scale and biases ∇ ln n near it. Fitting in
z = g(x) instead, with the radial "probit" map |z| = √2 erfinv(|x − c| / R), gives an exact edge;
near the sphere the density in z falls off like the flow's Gaussian base, e^{−|z|²/2}.
"""

from __future__ import annotations

import jax.numpy as jnp
from flowjax.bijections import AbstractBijection
from jax.scipy.special import erf, erfinv
from jaxtyping import Array, Float

_SMALL_R = 1e-3  # below it, the series s/r = √(π/2)(1 + π r²/12) replaces the exact ratio (0/0 at r = 0)
_MAX_R = 1 - 1e-6  # float32: erfinv(1) = ∞; points on the sphere itself are moved just inside


def ball_to_space(
    x: Float[Array, "3"], centre: Float[Array, "3"], radius: Float[Array, ""]
) -> tuple[Float[Array, "3"], Float[Array, ""]]:
    """z = g(x) for one point inside the ball, and ln |det ∂z/∂x|."""
    u = (x - centre) / radius
    r2 = jnp.sum(u**2)
    r = jnp.minimum(jnp.sqrt(jnp.where(r2 > _SMALL_R**2, r2, 1.0)), _MAX_R)
    small = r2 <= _SMALL_R**2
    s_over_r = jnp.where(small, jnp.sqrt(jnp.pi / 2) * (1 + jnp.pi * r2 / 12), jnp.sqrt(2.0) * erfinv(r) / r)
    s2 = s_over_r**2 * jnp.where(small, r2, r**2)
    log_ds_dr = 0.5 * jnp.log(jnp.pi / 2) + 0.5 * s2  # d/dr √2 erfinv(r) = √(π/2) e^{s²/2}
    log_det = log_ds_dr + 2 * jnp.log(s_over_r) - 3 * jnp.log(radius)
    return u * s_over_r, log_det


def space_to_ball(z: Float[Array, "... 3"], centre: Float[Array, "3"], radius: Float[Array, ""]) -> Float[Array, "... 3"]:
    """x = g⁻¹(z): |x − c| = R erf(|z| / √2), same direction as z; strictly inside the ball (float32 erf is 1
    beyond |z| ≈ 5.4, a point that a flow's tail can reach)."""
    away = jnp.sum(z * z, axis=-1, keepdims=True) > 1e-12  # |z| > 1e-6
    safe = jnp.linalg.norm(jnp.where(away, z, 1.0), axis=-1, keepdims=True)  # double `where`: finite derivative at 0
    r_over_s = jnp.where(away, jnp.minimum(erf(safe / jnp.sqrt(2.0)), _MAX_R) / safe, jnp.sqrt(2 / jnp.pi))
    return centre + radius * z * r_over_s


class BallToSpace(AbstractBijection):
    """The map above as a flowjax bijection: `transform` takes a point of the ball to R³ (z = g(x)), `inverse` back.

    A density model with ball support evaluates ln p(x) = ln p_flow(g(x)) + ln |det ∂g/∂x|.
    """

    centre: Float[Array, "3"]
    radius: Float[Array, ""]
    shape: tuple[int, ...] = (3,)
    cond_shape: None = None

    def transform_and_log_det(self, x: Float[Array, "3"], condition=None) -> tuple[Float[Array, "3"], Float[Array, ""]]:
        return ball_to_space(x, self.centre, self.radius)

    def inverse_and_log_det(self, y: Float[Array, "3"], condition=None) -> tuple[Float[Array, "3"], Float[Array, ""]]:
        x = space_to_ball(y, self.centre, self.radius)
        return x, -ball_to_space(x, self.centre, self.radius)[1]
