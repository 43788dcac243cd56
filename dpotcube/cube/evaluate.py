"""Fields on the grid through the one block evaluator (`blocks.py`): Φ networks, n(x) flows, baryon models."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import dask.array as da
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..baryons import BARYON_MODELS, BaryonModel
from ..constants import G_KPC_KM2_S2_PER_MSUN, MSUN_PER_KPC3_TO_MSUN_PER_PC3
from ..density.base import DensityModel
from ..density.registry import load_density
from ..fields.forward import value_grad_laplacian
from ..fields.model import CBEFields, load_fields
from .blocks import in_padded_batches, member_blocks, on_worker
from .grid import Grid

ExtraValues = Callable[[CBEFields, Float[Array, "n 3"]], list[Float[Array, " n"]]]
"""A method's values after Φ, a and ρ (e.g. n or ε of its second network)."""


@eqx.filter_jit
def evaluate_points(
    model: CBEFields, reference: Float[Array, "3"], points: Float[Array, "n 3"], extra: ExtraValues | None = None
) -> Float[Array, "f n"]:
    """Φ − Φ(reference), a = −∇Φ, ρ = ∇²Φ/(4πG) in M☉ pc⁻³, then `extra(model, points)` (the method's own).

    Φ, ∇Φ and ∇²Φ come from one forward-mode pass through the Φ network.
    """
    phi, grad, lap = jax.vmap(value_grad_laplacian, in_axes=(None, 0))(model.potential, points)
    phi = phi - model.potential(reference)
    rho = lap / (4 * jnp.pi * G_KPC_KM2_S2_PER_MSUN) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
    values = [phi, -grad[:, 0], -grad[:, 1], -grad[:, 2], rho]
    if extra is not None:
        values.extend(extra(model, points))
    return jnp.stack(values).astype(jnp.float32)


def evaluate_block(
    model: CBEFields,
    reference: Float[Array, "3"],
    points: Float[np.ndarray, "n 3"],
    extra: ExtraValues | None = None,
    batch: int | None = None,
) -> Float[np.ndarray, "f n"]:
    """`evaluate_points` on `points` of shape `(n, 3)` in padded batches of `batch` points (default: by backend)."""
    return in_padded_batches(lambda part: evaluate_points(model, reference, part, extra), points, batch)


def _model_on_worker(path: str, mtime_ns: int) -> CBEFields:
    """The field model at `path`, loaded once per process."""
    return on_worker(_load_model, path, mtime_ns)


def _load_model(path: str, mtime_ns: int) -> CBEFields:
    return load_fields(Path(path))


def _stamped(paths: Sequence[Path]) -> tuple[tuple[str, int], ...]:
    return tuple((str(Path(p).resolve()), Path(p).stat().st_mtime_ns) for p in paths)


def field_blocks(
    model_paths: Sequence[Path], grid: Grid, reference: np.ndarray, n_fields: int = 5, extra: ExtraValues | None = None
) -> da.Array:
    """Lazy `(member, n_fields, nx, ny, nz)` float32 of the saved field models at `model_paths` (one per member):
    Φ, a, ρ and `extra`'s values."""
    if isinstance(model_paths, (str, Path)) or len(model_paths) == 0:
        raise ValueError(f"`model_paths` must be a non-empty sequence of model files; got {model_paths!r}.")
    reference32 = np.asarray(reference, np.float32)

    def evaluate(member: tuple[str, int], points: np.ndarray) -> np.ndarray:
        return evaluate_block(_model_on_worker(*member), reference32, points, extra)

    return member_blocks(_stamped(model_paths), grid, n_fields, evaluate)


@eqx.filter_jit
def _flow_log_density(flow: DensityModel, points: Float[Array, "n 3"]) -> Float[Array, " n"]:
    return jax.vmap(flow.log_prob)(points)


def _load_flows(*members: tuple[str, int]) -> tuple[DensityModel, ...]:
    return tuple(load_density(Path(path)) for path, _ in members)


def flow_density_blocks(flow_paths: Sequence[Path], grid: Grid, total: float) -> da.Array:
    """Lazy n(x) = total × (mean of the members' n(x) flow densities) on the grid, `(nx, ny, nz)` float32, kpc⁻³.

    NaN outside the flows' support (ball-supported flows end at the volume's edge).
    """

    def evaluate(member: tuple[tuple[str, int], ...], points: np.ndarray) -> np.ndarray:
        flows = on_worker(_load_flows, *member)
        density = np.zeros(len(points))
        for flow in flows:
            density += np.exp(in_padded_batches(lambda part: _flow_log_density(flow, jnp.asarray(part)), points))
        return (total * density / len(flows)).astype(np.float32)[None]

    return member_blocks([_stamped(flow_paths)], grid, 1, evaluate)[0, 0]


def member_baryon_parameters(
    model: BaryonModel, n_members: int, relative_error: float, seed: int
) -> Float[np.ndarray, "m p"]:
    """The parameters member m subtracts: member 0 the nominal model, members 1.. independent draws."""
    return np.vstack([model.nominal, model.draw_parameters(n_members - 1, relative_error, seed)])


@functools.partial(jax.jit, static_argnums=0)
def _baryon_density(name: str, params: Float[Array, " p"], points: Float[Array, "n 3"]) -> Float[Array, " n"]:
    return BARYON_MODELS[name].density_baryon(points, params).astype(jnp.float32)


def baryon_blocks(name: str, parameters: Float[np.ndarray, "m p"], grid: Grid) -> da.Array:
    """Lazy ρ_baryon `(m, nx, ny, nz)` float32 (M☉ pc⁻³) of model `name`, row m of `parameters` for member m.

    One task per member and grid chunk; the model is looked up by name, so workers compile it once.
    """
    rows = [tuple(float(p) for p in row) for row in np.asarray(parameters, np.float32)]

    def evaluate(row: tuple[float, ...], points: np.ndarray) -> np.ndarray:
        params = np.asarray(row, np.float32)
        return np.asarray(_baryon_density(name, params, points.astype(np.float32)))[None]

    return member_blocks(rows, grid, 1, evaluate)[:, 0]
