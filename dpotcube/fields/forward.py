"""Φ, ∇Φ and ∇²Φ of a ScalarField in one forward pass (forward-mode Laplacian).

Through every layer travel the pre-activations z and their derivatives with respect to the
input position, stacked as `d` of shape `(4, width)`: rows 0–2 the gradient ∇z, row 3 the
Laplacian Δz. An affine layer z = W u + b maps both by W (∇z = W ∇u, Δz = W Δu); an
elementwise activation h = σ(z) maps

    ∇h = σ'(z) ∇z,    Δh = σ''(z) |∇z|² + σ'(z) Δz.

Per hidden layer that is one product with W for the value and one for the four derivative
rows, against the value, its reverse pass and three forward-over-reverse passes of
trace(jacfwd(grad)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .bodies import ResidualMLP

if TYPE_CHECKING:
    from .nets import ScalarField


def value_grad_laplacian(
    field: ScalarField, x: Float[Array, "3"]
) -> tuple[Float[Array, ""], Float[Array, "3"], Float[Array, ""]]:
    """s(x), ∇s(x) and ∇²s(x) of `field` at one point `x` of shape `(3,)`, in one forward pass."""
    body = field.body
    residual = isinstance(body, ResidualMLP)
    if not residual and (body.scan or body.in_size != 3 or body.out_size != "scalar"):
        raise ValueError(
            f"Expected an unscanned MLP from 3-D positions to a scalar; got scan={body.scan}, "
            f"in_size={body.in_size}, out_size={body.out_size}."
        )
    first, *hidden, last = body.layers
    u = (x - jax.lax.stop_gradient(field.loc)) / field.length_scale
    z = _linear(first, u)
    # The first layer's derivatives do not depend on x: ∇z = W / length_scale, Δz = 0.
    d = jnp.concatenate([first.weight.T / field.length_scale, jnp.zeros((1, first.weight.shape[0]), z.dtype)])
    for layer in hidden:
        h, dh = _activate(body.activation, z, d)
        z_new, d_new = _linear(layer, h), dh @ layer.weight.T
        z, d = (z + z_new, d + d_new) if residual else (z_new, d_new)
    h, dh = _activate(body.activation, z, d)
    z, d = _linear(last, h), dh @ last.weight.T
    if not residual:
        z, d = _activate(body.final_activation, z, d)
    out_scale = field.out_scale
    value, grad, lap = out_scale * z[0], out_scale * d[:3, 0], out_scale * d[3, 0]
    if field.reference is None:
        return value, grad, lap
    ref_value, ref_grad, ref_lap = field.reference.value_grad_laplacian(x)
    return value + ref_value, grad + ref_grad, lap + ref_lap


def _linear(layer, u: Float[Array, " n_in"]) -> Float[Array, " n_out"]:
    z = layer.weight @ u
    return z if layer.bias is None else z + layer.bias


def _activate(
    sigma: Callable[[Array], Array], z: Float[Array, " n"], d: Float[Array, "4 n"]
) -> tuple[Float[Array, " n"], Float[Array, "4 n"]]:
    """σ(z) and the derivative rows of σ(z) from those of z."""
    s, ds, d2s = jax.vmap(lambda t: _derivatives(sigma, t))(z)
    grad, lap = d[:3], d[3]
    return s, jnp.concatenate([ds * grad, (d2s * jnp.sum(grad**2, axis=0) + ds * lap)[None]])


def _derivatives(sigma: Callable[[Array], Array], z: Float[Array, ""]) -> tuple[Array, Array, Array]:
    """σ(z), σ'(z), σ''(z) of a scalar activation by nested forward-mode autodiff."""

    def first(t):
        return jax.jvp(sigma, (t,), (jnp.ones_like(t),))

    (s, ds), (_, d2s) = jax.jvp(first, (z,), (jnp.ones_like(z),))
    return s, ds, d2s
