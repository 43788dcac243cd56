"""Scalar neural fields of position: an MLP or residual body on standardized coordinates."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ..activations import ACTIVATIONS
from .bodies import ResidualMLP
from .forward import value_grad_laplacian
from .reference import REFERENCES, CoredLogReference


class ScalarField(eqx.Module):
    """s(x) = out_scale · body((x − loc) / length_scale) [+ a trained reference s_ref(x)]; `x` of shape `(3,)` in kpc.

    The body is an `eqx.nn.MLP` or a `ResidualMLP`; the reference (`fields/reference.py`, e.g. `cored-log`) is
    only ever put under Φ. `loc`, `length_scale` and `out_scale` are fixed at construction, not trained.
    """

    body: eqx.nn.MLP | ResidualMLP
    reference: CoredLogReference | None
    loc: Float[Array, "3"]
    length_scale: float = eqx.field(static=True)
    out_scale: float = eqx.field(static=True)

    def __init__(
        self,
        width: int,
        depth: int,
        activation: str,
        loc: tuple[float, float, float],
        length_scale: float,
        out_scale: float,
        body: str = "mlp",
        reference: str = "none",
        key: PRNGKeyArray | None = None,
    ):
        key = jr.key(0) if key is None else key
        if body == "resnet":
            self.body = ResidualMLP(width, depth, ACTIVATIONS[activation], key)
        else:
            self.body = eqx.nn.MLP(3, "scalar", width, depth, activation=ACTIVATIONS[activation], key=key)
        self.reference = None if reference == "none" else REFERENCES[reference](out_scale, length_scale)
        self.loc = jnp.asarray(loc, jnp.float32)
        self.length_scale = float(length_scale)
        self.out_scale = float(out_scale)

    def __call__(self, x: Float[Array, "3"]) -> Float[Array, ""]:
        u = (x - jax.lax.stop_gradient(self.loc)) / self.length_scale
        out = self.out_scale * self.body(u)
        return out if self.reference is None else out + self.reference(x)


def laplacian(field: ScalarField, x: Float[Array, "3"]) -> Float[Array, ""]:
    """∇² of a scalar field at one point, by the forward-mode pass of `value_grad_laplacian`."""
    return value_grad_laplacian(field, x)[2]


def laplacian_jacfwd(field: ScalarField, x: Float[Array, "3"]) -> Float[Array, ""]:
    """∇² at one point as the trace of the forward-over-reverse Hessian: the reference for `laplacian`."""
    return jnp.trace(jax.jacfwd(jax.grad(field))(x))
