"""QMC normals → velocities through a conditional DensityFlow at a position; ensembles stacked for one vmap."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import paramax
from flowjax.distributions import Normal
from jaxtyping import Array, Float

from ..density.ball import space_to_ball
from ..density.flows import DensityFlow


def flow_velocities(flow: DensityFlow, normals: Float[Array, "k 3"], x: Float[Array, "3"]) -> Float[Array, "k 3"]:
    """Velocities (km/s) of the conditional flow p(v|x) at `x` for base-space points `normals` (standard normal).

    The flow's forward bijection maps its base distribution onto data space, so each QMC normal
    becomes a draw from p(v|x) and the set keeps its low discrepancy. Velocities are a smooth
    function of `x` (the same normals everywhere), so a(x) built from them can be differentiated.
    """
    if not flow.conditional:
        raise ValueError("`flow` must be a conditional flow p(v|x); got an unconditional one.")
    inner = paramax.unwrap(flow.flow)
    if not isinstance(inner.base_dist, Normal):
        raise TypeError(f"Expected a flow with a Normal base distribution; got {type(inner.base_dist).__name__}.")
    z = inner.base_dist.loc + inner.base_dist.scale * normals
    c_std = (x - flow.cond_loc) / flow.cond_scale
    y_std = jax.vmap(inner.bijection.transform, in_axes=(0, None))(z, c_std)
    y = y_std * flow.scale + flow.loc
    return space_to_ball(y, flow.centre, flow.radius) if flow.ball else y


def stack_flows(flows: Sequence[DensityFlow]) -> DensityFlow:
    """One DensityFlow whose array leaves carry a leading member axis, for `eqx.filter_vmap` over members.

    All members must share hyperparameters (the same tree structure and array shapes).
    """
    if len(flows) == 0:
        raise ValueError("`flows` must hold at least one flow.")
    arrays = [eqx.filter(f, eqx.is_array) for f in flows]
    structures = {jax.tree.structure(a) for a in arrays}
    shapes = {tuple(jnp.shape(leaf) for leaf in jax.tree.leaves(a)) for a in arrays}
    if len(structures) != 1 or len(shapes) != 1:
        raise ValueError("All flows of an ensemble must share hyperparameters (layers, width, depth); these differ.")
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *arrays)
    return eqx.combine(stacked, eqx.filter(flows[0], eqx.is_array, inverse=True))
