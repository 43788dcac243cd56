"""Network bodies beyond equinox's MLP."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray


class ResidualMLP(eqx.Module):
    """3 → scalar: h = W₀u + b₀, then h ← h + Wₖσ(h) + bₖ per further hidden layer, out = w·σ(h) + b.

    The same parameters as an `eqx.nn.MLP` of equal width and depth; the skips let deep bodies train.
    """

    layers: tuple[eqx.nn.Linear, ...]
    activation: Callable[[Array], Array]

    def __init__(self, width: int, depth: int, activation: Callable[[Array], Array], key: PRNGKeyArray):
        keys = jr.split(key, depth + 1)
        sizes = [(3, width)] + [(width, width)] * (depth - 1) + [(width, "scalar")]
        self.layers = tuple(eqx.nn.Linear(i, o, key=k) for (i, o), k in zip(sizes, keys))
        self.activation = activation

    def __call__(self, u: Float[Array, "3"]) -> Float[Array, ""]:
        first, *hidden, last = self.layers
        h = first(u)
        for layer in hidden:
            h = h + layer(self.activation(h))
        return last(self.activation(h))
