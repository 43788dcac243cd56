"""A cheap reference potential under the Φ network: Φ = Φ_ref + network, the network learning only the residual.

ρ = ∇²Φ/(4πG) is needed to a few percent where it is smallest (the far side of the volume, 20 times below the
near side in the Plummer mock), while a network's ∇²Φ errors are about even in absolute terms across the volume.
A two-parameter reference trained with the network takes up the bulk of Φ and its fall with radius, so that
the network's errors scale with the small residual instead (benchmarks/solver.py measures it).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class CoredLogReference(eqx.Module):
    """Φ_ref(x) = ½ v₀² ln(|x|² + r_c²) about the Galactic centre (the frame's origin): a flat circular speed v₀
    far out and a harmonic core inside r_c, the usual first model of a galaxy's potential. v₀² = `scale`·e^a and
    r_c² = `length`²·e^c, with a and c trained beside the network (from 0: v₀² = ⟨v²⟩, r_c = the volume radius)."""

    log_v0_sq: Float[Array, ""]
    log_core_sq: Float[Array, ""]
    scale: float = eqx.field(static=True)
    length: float = eqx.field(static=True)

    def __init__(self, scale: float, length: float):
        self.log_v0_sq = jnp.zeros(())
        self.log_core_sq = jnp.zeros(())
        self.scale = float(scale)
        self.length = float(length)

    def value_grad_laplacian(
        self, x: Float[Array, "3"]
    ) -> tuple[Float[Array, ""], Float[Array, "3"], Float[Array, ""]]:
        """Φ_ref, ∇Φ_ref = v₀² x/q and ∇²Φ_ref = v₀²(3r_c² + |x|²)/q² at `x` (q = |x|² + r_c²)."""
        v0_sq = self.scale * jnp.exp(self.log_v0_sq)
        core_sq = self.length**2 * jnp.exp(self.log_core_sq)
        q = jnp.dot(x, x) + core_sq
        return 0.5 * v0_sq * jnp.log(q), v0_sq * x / q, v0_sq * (3 * core_sq + jnp.dot(x, x)) / q**2

    def __call__(self, x: Float[Array, "3"]) -> Float[Array, ""]:
        return self.value_grad_laplacian(x)[0]


REFERENCES = {"cored-log": CoredLogReference}
"""`fields.potential_reference` → the reference under the Φ network (`none`: no reference)."""
