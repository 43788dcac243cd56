"""QMC normals → velocities through a conditional density model at a position; ensembles stacked for one vmap."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..density.base import DensityModel


def flow_velocities(flow: DensityModel, normals: Float[Array, "k 3"], x: Float[Array, "3"]) -> Float[Array, "k 3"]:
    """Velocities (km/s) of the conditional density model p(v|x) at `x` for base-space points `normals`.

    The model maps its standard-normal base space onto data space (`DensityModel.from_base`), so each
    QMC normal becomes a draw from p(v|x) and the set keeps its low discrepancy. Velocities are a smooth
    function of `x` (the same normals everywhere), so a(x) built from them can be differentiated.
    """
    if not flow.conditional:
        raise ValueError("`flow` must be a conditional model p(v|x); got an unconditional one.")
    return flow.from_base(normals, x)


def stack_flows(flows: Sequence[DensityModel]) -> DensityModel:
    """One DensityModel whose array leaves carry a leading member axis, for `eqx.filter_vmap` over members.

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
