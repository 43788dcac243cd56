"""The pointwise acceleration a(x) of flow ensembles: QMC velocities from p(v|x), gradients, least squares."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..density.base import DensityModel
from ..density.ensemble import Combine, combine_members
from .flows import flow_velocities, stack_flows
from .solve import least_squares_acceleration


class PointwiseFlows(eqx.Module):
    """a(x) from M conditional flows p(v|x) and the n(x) flows, at one position per call.

    Each velocity member maps the same QMC normals through its own bijection and solves its own
    least-squares problem with its own ∇ₓ ln p, ∇ᵥ ln p (a self-consistent model of f gives a
    CBE-consistent a_m); the members' a_m are then combined like gradients are elsewhere
    (`combine_members`). Mixing one member's velocities with another's gradients in one equation
    would pair draws and gradients of different distributions. ∇ ln n is the combined gradient of
    the position members, shared by every velocity member. Draws with |v| ≥ `max_speed_kms` are dropped.
    """

    velocity: DensityModel  # members stacked on a leading axis (`stack_flows`)
    position: DensityModel
    normals: Float[Array, "k 3"]
    max_speed_kms: float = eqx.field(static=True)
    combine: Combine = eqx.field(static=True)

    def grad_log_n(self, x: Float[Array, "3"]) -> Float[Array, "3"]:
        """Combined ∇ ln n(x) of the position members, kpc⁻¹."""
        grads = eqx.filter_vmap(lambda flow: jax.grad(flow.log_prob)(x))(self.position)
        return combine_members(grads[:, None], self.combine)[0]

    def member_accelerations(self, x: Float[Array, "3"]) -> Float[Array, "m 3"]:
        """Each velocity member's least-squares a at `x`, km² s⁻² kpc⁻¹."""
        grad_n = self.grad_log_n(x)

        def one(flow: DensityModel) -> Float[Array, "3"]:
            v = flow_velocities(flow, self.normals, x)
            grad_v, grad_x = jax.vmap(jax.grad(flow.log_prob, argnums=(0, 1)), in_axes=(0, None))(v, x)
            keep = (jnp.linalg.norm(v, axis=1) < self.max_speed_kms).astype(v.dtype)
            return least_squares_acceleration(v, grad_x + grad_n, grad_v, keep)

        return eqx.filter_vmap(one)(self.velocity)

    def __call__(self, x: Float[Array, "3"]) -> Float[Array, "3"]:
        """Combined a at one position `x` of shape `(3,)`."""
        return combine_members(self.member_accelerations(x)[:, None], self.combine)[0]


def pointwise_flows(
    velocity: Sequence[DensityModel],
    position: Sequence[DensityModel],
    normals: Float[Array, "k 3"],
    max_speed_kms: float,
    combine: Combine = "median",
) -> PointwiseFlows:
    """`PointwiseFlows` from lists of conditional p(v|x) and unconditional n(x) members."""
    if any(not f.conditional for f in velocity) or any(f.conditional for f in position):
        raise ValueError("`velocity` must hold conditional flows p(v|x) and `position` unconditional flows n(x).")
    return PointwiseFlows(
        stack_flows(velocity), stack_flows(position), jnp.asarray(normals, jnp.float32), float(max_speed_kms), combine
    )
