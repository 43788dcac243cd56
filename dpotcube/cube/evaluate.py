"""Fields on the grid, block by block: one jitted function per block, the model loaded once per worker."""

from __future__ import annotations

import functools
from pathlib import Path

import dask.array as da
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..baryons import BARYON_MODELS, BaryonModel
from ..constants import G_KPC_KM2_S2_PER_MSUN, MSUN_PER_KPC3_TO_MSUN_PER_PC3
from ..fields.model import ConditionalFields, load_fields
from ..fields.nets import laplacian
from .grid import Grid

FIELDS: dict[str, tuple[str, str]] = {
    "potential": ("km2 s-2", "gravitational potential, zero at the reference point"),
    "accel_x": ("km2 s-2 kpc-1", "acceleration -dPhi/dx"),
    "accel_y": ("km2 s-2 kpc-1", "acceleration -dPhi/dy"),
    "accel_z": ("km2 s-2 kpc-1", "acceleration -dPhi/dz"),
    "density": ("solMass pc-3", "total mass density laplacian(Phi)/(4 pi G)"),
    "tracer_density": ("kpc-3", "true (selection-corrected) tracer number density"),
}
"""Variables of the `conditional` method, in the order `evaluate_points` stacks them: (units, long_name)."""

BARYON_FIELDS: dict[str, tuple[str, str]] = {
    "density_baryon": ("solMass pc-3", "baryonic mass density subtracted (model in attrs baryon_model, nominal parameters)"),
    "density_dm": ("solMass pc-3", "dark-matter density: density minus the baryon model of the member's parameter draw"),
}
"""Variables written when the recipe names a baryon model: (units, long_name)."""


@eqx.filter_jit
def evaluate_points(
    model: ConditionalFields, reference: Float[Array, "3"], points: Float[Array, "n 3"]
) -> Float[Array, "6 n"]:
    """Φ − Φ(reference), a = −∇Φ, ρ = ∇²Φ/(4πG) in M☉ pc⁻³ and n, stacked in `FIELDS` order."""
    phi = jax.vmap(model.potential)(points) - model.potential(reference)
    accel = -jax.vmap(jax.grad(model.potential))(points)
    lap = jax.vmap(laplacian, in_axes=(None, 0))(model.potential, points)
    rho = lap / (4 * jnp.pi * G_KPC_KM2_S2_PER_MSUN) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
    n = jax.vmap(model.tracer_density)(points)
    return jnp.stack([phi, accel[:, 0], accel[:, 1], accel[:, 2], rho, n]).astype(jnp.float32)


@functools.lru_cache(maxsize=4)
def _model_on_worker(path: str, mtime_ns: int) -> ConditionalFields:
    # Cached per process: threads share one copy, each distributed worker loads it once.
    return load_fields(Path(path))


def field_blocks(model_path: Path, grid: Grid, reference: np.ndarray) -> da.Array:
    """Lazy array `(len(FIELDS), nx, ny, nz)` float32, one task per grid chunk."""
    path = str(Path(model_path).resolve())
    mtime_ns = Path(path).stat().st_mtime_ns
    reference32 = np.asarray(reference, np.float32)

    def block(template: np.ndarray, block_info=None) -> np.ndarray:
        location = block_info[None]["array-location"][1:]
        points = grid.points(location).astype(np.float32)
        values = evaluate_points(_model_on_worker(path, mtime_ns), reference32, points)
        return np.asarray(values).reshape(template.shape)

    template = da.empty((len(FIELDS), *grid.shape), chunks=((len(FIELDS),), *grid.chunks), dtype=np.float32)
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
