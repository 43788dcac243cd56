"""The density-model interface: ln p, sampling, base-space draws, and ∇ₓ, ∇ᵥ ln p and ∇ ln n for any model.

A density model is an equinox module in physical units: p(v|x) in (km/s)⁻³ (conditional on x), or n(x)/N in
kpc⁻³ (unconditional). Every implementation registers in `registry.py`; the contract suite
(tests/test_density_models.py) runs on each.
"""

from __future__ import annotations

from abc import abstractmethod

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class DensityModel(eqx.Module):
    """ln p(y | c) of 3-D `y`, conditional on 3-D `c` when `conditional`."""

    conditional: eqx.AbstractVar[bool]

    @abstractmethod
    def log_prob(self, y: Float[Array, "3"], c: Float[Array, "3"] | None = None) -> Float[Array, ""]:
        """ln p at one point, in physical units."""

    @abstractmethod
    def sample(self, key: PRNGKeyArray, n: int, c: Float[Array, "n 3"] | None = None) -> Float[Array, "n 3"]:
        """`n` draws (one per row of `c` for a conditional model)."""

    @abstractmethod
    def from_base(self, z: Float[Array, "k 3"], c: Float[Array, "3"] | None = None) -> Float[Array, "k 3"]:
        """Points `z` of the standard-normal base space mapped to data space (at one condition `c`): turns a
        low-discrepancy set of normals into draws that keep its low discrepancy and vary smoothly with `c`."""


@eqx.filter_jit
def grad_log_p(
    model: DensityModel, x: Float[Array, "n 3"], v: Float[Array, "n 3"]
) -> tuple[Float[Array, "n 3"], Float[Array, "n 3"]]:
    """(∇ₓ ln p(v|x), ∇ᵥ ln p(v|x)) of a conditional model at `n` points, in kpc⁻¹ and s/km."""
    grad_v, grad_x = jax.vmap(jax.grad(model.log_prob, argnums=(0, 1)))(v, x)
    return grad_x, grad_v


@eqx.filter_jit
def grad_log_n(model: DensityModel, x: Float[Array, "n 3"]) -> Float[Array, "n 3"]:
    """∇ ln n(x) of an unconditional model at `n` points, in kpc⁻¹."""
    return jax.vmap(jax.grad(model.log_prob))(x)


@eqx.filter_jit
def laplacian_log_n(model: DensityModel, x: Float[Array, "n 3"]) -> Float[Array, " n"]:
    """∇² ln n(x) of an unconditional model at `n` points, in kpc⁻²: the curvature ρ reads through `vanilla`'s
    v·∇ ln n (docs/density.md)."""
    return jax.vmap(lambda y: jnp.trace(jax.hessian(model.log_prob)(y)))(x)
