"""Fields on the grid, member by member and block by block: one jitted function on fixed-size batches,
each member's model loaded once per worker."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path

import dask.array as da
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..baryons import BARYON_MODELS, BaryonModel
from ..constants import G_KPC_KM2_S2_PER_MSUN, MSUN_PER_KPC3_TO_MSUN_PER_PC3
from ..density.flows import DensityFlow, load_flow
from ..fields.forward import value_grad_laplacian
from ..fields.model import CBEFields, load_fields
from .grid import Grid

POTENTIAL_FIELDS: dict[str, tuple[str, str]] = {
    "potential": ("km2 s-2", "gravitational potential, zero at the reference point"),
    "accel_x": ("km2 s-2 kpc-1", "acceleration -dPhi/dx"),
    "accel_y": ("km2 s-2 kpc-1", "acceleration -dPhi/dy"),
    "accel_z": ("km2 s-2 kpc-1", "acceleration -dPhi/dz"),
    "density": ("solMass pc-3", "total mass density laplacian(Phi)/(4 pi G)"),
}
"""Variables every field method writes, in the order `evaluate_points` stacks them: (units, long_name)."""

TRACER_DENSITY = ("kpc-3", "true (selection-corrected) tracer number density")
EFFICIENCY = ("1", "learned selection/dust efficiency in (0, 1]")

METHOD_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "conditional": {**POTENTIAL_FIELDS, "tracer_density": TRACER_DENSITY},
    "selection": {**POTENTIAL_FIELDS, "efficiency": EFFICIENCY},
    "vanilla": POTENTIAL_FIELDS,
}
"""What `evaluate_points` stacks for a model of each method (n and ε are the networks' own)."""

FIELDS = METHOD_FIELDS["conditional"]

BARYON_FIELDS: dict[str, tuple[str, str]] = {
    "density_baryon": ("solMass pc-3", "baryonic mass density subtracted (model in attrs baryon_model, nominal parameters)"),
    "density_dm": ("solMass pc-3", "dark-matter density: density minus the baryon model of the member's parameter draw"),
}
"""Variables written when the recipe names a baryon model: (units, long_name)."""

BATCH = 1024
"""Points per call of the jitted kernel: small enough to stay in cache, large enough to hide dispatch."""


@eqx.filter_jit
def evaluate_points(
    model: CBEFields, reference: Float[Array, "3"], points: Float[Array, "n 3"]
) -> Float[Array, "f n"]:
    """Φ − Φ(reference), a = −∇Φ, ρ = ∇²Φ/(4πG) in M☉ pc⁻³, then n or ε, in `METHOD_FIELDS[model.method]` order.

    Φ, ∇Φ and ∇²Φ come from one forward-mode pass through the Φ network.
    """
    phi, grad, lap = jax.vmap(value_grad_laplacian, in_axes=(None, 0))(model.potential, points)
    phi = phi - model.potential(reference)
    rho = lap / (4 * jnp.pi * G_KPC_KM2_S2_PER_MSUN) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
    values = [phi, -grad[:, 0], -grad[:, 1], -grad[:, 2], rho]
    if model.method == "conditional":
        values.append(jax.vmap(model.tracer_density)(points))
    elif model.method == "selection":
        values.append(jax.vmap(model.efficiency)(points))
    return jnp.stack(values).astype(jnp.float32)


def evaluate_block(
    model: CBEFields, reference: Float[Array, "3"], points: Float[np.ndarray, "n 3"], batch: int = BATCH
) -> Float[np.ndarray, "f n"]:
    """`evaluate_points` on `points` of shape `(n, 3)`, in calls of exactly `batch` points (the last one
    padded), so that one compilation serves every block shape."""
    n = len(points)
    padded = np.concatenate([points, np.repeat(points[-1:], -n % batch, axis=0)]).astype(np.float32)
    parts = [evaluate_points(model, reference, padded[i : i + batch]) for i in range(0, len(padded), batch)]
    return np.concatenate([np.asarray(p) for p in parts], axis=1)[:, :n]


_load_lock = threading.Lock()


def _model_on_worker(path: str, mtime_ns: int) -> CBEFields:
    """The field model at `path`, loaded once per process: threads share it, each distributed worker loads it once."""
    with _load_lock:  # two threads missing the cache together would both load
        return _cached_model(path, mtime_ns)


@functools.lru_cache(maxsize=64)  # more than the members of any one cube: none is loaded twice
def _cached_model(path: str, mtime_ns: int) -> CBEFields:
    return load_fields(Path(path))


def field_blocks(
    model_paths: Sequence[Path], grid: Grid, reference: np.ndarray, method: str = "conditional"
) -> da.Array:
    """Lazy array `(member, len(METHOD_FIELDS[method]), nx, ny, nz)` float32 of the saved field models at
    `model_paths` (all of `method`).

    One task per member and grid chunk: chunks of one member, every field, one grid chunk.
    """
    if isinstance(model_paths, (str, Path)) or len(model_paths) == 0:
        raise ValueError(f"`model_paths` must be a non-empty sequence of model files; got {model_paths!r}.")
    members = [(str(Path(p).resolve()), Path(p).stat().st_mtime_ns) for p in model_paths]
    reference32 = np.asarray(reference, np.float32)

    def block(block_info=None) -> np.ndarray:
        info = block_info[None]
        member = info["chunk-location"][0]
        location = info["array-location"][2:]
        points = grid.points(location)
        values = evaluate_block(_model_on_worker(*members[member]), reference32, points)
        return values.reshape(info["chunk-shape"])

    chunks = ((1,) * len(members), (len(METHOD_FIELDS[method]),), *grid.chunks)
    return da.map_blocks(block, chunks=chunks, dtype=np.float32, meta=np.empty((0,) * 5, np.float32))


@eqx.filter_jit
def _flow_log_density(flow: DensityFlow, points: Float[Array, "n 3"]) -> Float[Array, "n"]:
    return jax.vmap(flow.log_prob)(points)


@functools.lru_cache(maxsize=64)
def _cached_flow(path: str, mtime_ns: int) -> DensityFlow:
    return load_flow(Path(path))


def flow_density_blocks(flow_paths: Sequence[Path], grid: Grid, total: float) -> da.Array:
    """Lazy n(x) = total × (mean of the members' n(x) flow densities) on the grid, `(nx, ny, nz)` float32, kpc⁻³.

    NaN outside the flows' support (ball-supported flows end at the volume's edge).
    """
    flows = [(str(Path(p).resolve()), Path(p).stat().st_mtime_ns) for p in flow_paths]

    def block(template: np.ndarray, block_info=None) -> np.ndarray:
        points = grid.points(tuple(block_info[None]["array-location"]))
        n = len(points)
        padded = jnp.asarray(np.concatenate([points, np.repeat(points[-1:], -n % BATCH, axis=0)]), jnp.float32)
        density = np.zeros(len(padded))
        for member in flows:
            with _load_lock:
                flow = _cached_flow(*member)
            log_p = [np.asarray(_flow_log_density(flow, padded[i : i + BATCH])) for i in range(0, len(padded), BATCH)]
            density += np.exp(np.concatenate(log_p))
        return (total * density[:n] / len(flows)).astype(np.float32).reshape(template.shape)

    template = da.empty(grid.shape, chunks=grid.chunks, dtype=np.float32)
    return da.map_blocks(block, template, dtype=np.float32)


def member_baryon_parameters(
    model: BaryonModel, n_members: int, relative_error: float, seed: int
) -> Float[np.ndarray, "m p"]:
    """The parameters member m subtracts: member 0 the nominal model, members 1.. independent draws."""
    return np.vstack([model.nominal, model.draw_parameters(n_members - 1, relative_error, seed)])


@functools.partial(jax.jit, static_argnums=0)
def _baryon_density(name: str, params: Float[Array, "p"], points: Float[Array, "n 3"]) -> Float[Array, "n"]:
    return BARYON_MODELS[name].density_baryon(points, params).astype(jnp.float32)


def baryon_blocks(name: str, parameters: Float[np.ndarray, "m p"], grid: Grid) -> da.Array:
    """Lazy ρ_baryon `(m, nx, ny, nz)` float32 (M☉ pc⁻³) of model `name`, row m of `parameters` for member m.

    One task per member and grid chunk; the model is looked up by name, so workers compile it once.
    """
    parameters = np.asarray(parameters, np.float32)

    def block(template: np.ndarray, block_info=None) -> np.ndarray:
        (m, _), *location = block_info[None]["array-location"]
        points = grid.points(tuple(location)).astype(np.float32)
        return np.asarray(_baryon_density(name, parameters[m], points)).reshape(template.shape)

    chunks = ((1,) * len(parameters), *grid.chunks)
    template = da.empty((len(parameters), *grid.shape), chunks=chunks, dtype=np.float32)
    return da.map_blocks(block, template, dtype=np.float32)
