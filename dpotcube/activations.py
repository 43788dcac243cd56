"""Smooth activations shared by the density models and the fields' networks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import erf
from jaxtyping import Array


def gint(x: Array) -> Array:
    """GINT(x) = (e^{−x²/2} − 1)/√(2π) + ½ x (1 + erf(x/√2)): smooth and monotone (ClearPotential)."""
    return (jnp.exp(-0.5 * x**2) - 1) / jnp.sqrt(2 * jnp.pi) + 0.5 * x * (1 + erf(x / jnp.sqrt(2.0)))


ACTIVATIONS = {"silu": jax.nn.silu, "gelu": jax.nn.gelu, "tanh": jnp.tanh, "gint": gint}
"""The recipe's `activation` values."""
