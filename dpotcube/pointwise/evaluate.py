"""The pointwise method on the cube grid: a and ρ block by block, each member's model built once per worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import dask.array as da
import numpy as np
from jaxtyping import Float

from ..cube.blocks import member_blocks, on_worker
from ..cube.grid import Grid
from ..density.ensemble import Combine
from ..density.registry import load_density
from ..recipe import PointwiseSpec
from .batch import AccelerationModel, accelerations, in_batches
from .density import smoothed_density
from .kernel import kernel_offsets
from .model import PointwiseFlows, pointwise_flows
from .qmc import qmc_normals

POINTWISE_FIELDS: dict[str, tuple[str, str]] = {
    "accel_x": ("km2 s-2 kpc-1", "acceleration a_x, least squares over QMC velocities from p(v|x)"),
    "accel_y": ("km2 s-2 kpc-1", "acceleration a_y, least squares over QMC velocities from p(v|x)"),
    "accel_z": ("km2 s-2 kpc-1", "acceleration a_z, least squares over QMC velocities from p(v|x)"),
    "density": ("solMass pc-3", "total mass density -div(a)/(4 pi G), smoothed by the truncated Gaussian kernel"),
}
"""Variables of the `pointwise` method, in the order `evaluate_block` stacks them: (units, long_name). No Φ."""


def pointwise_fields(spec: PointwiseSpec) -> dict[str, tuple[str, str]]:
    """The variables a cube of `spec` holds (no `density` when `spec.density` is false)."""
    return {k: v for k, v in POINTWISE_FIELDS.items() if spec.density or k != "density"}


class PointwiseMember(Protocol):
    """One cube member: hashable, and builds its acceleration model (on each worker, once)."""

    def stamp(self) -> tuple:
        """What invalidates a cached model (e.g. file modification times)."""

    def model(self, spec: PointwiseSpec, seed: int) -> AccelerationModel:
        """The member's a(x), with QMC sets from `seed`."""


@dataclass(frozen=True)
class PointwiseFiles:
    """A member from saved flows: p(v|x) and n(x) ensembles (one or more files each), joined by `combine`."""

    velocity: tuple[Path, ...]
    position: tuple[Path, ...]
    combine: Combine = "median"

    def __post_init__(self) -> None:  # hashable (the worker cache's key), whatever sequences were given
        object.__setattr__(self, "velocity", tuple(Path(p).resolve() for p in self.velocity))
        object.__setattr__(self, "position", tuple(Path(p).resolve() for p in self.position))
        if not self.velocity or not self.position:
            raise ValueError("`PointwiseFiles` needs at least one p(v|x) flow file and one n(x) flow file.")

    def stamp(self) -> tuple:
        return tuple(p.stat().st_mtime_ns for p in (*self.velocity, *self.position))

    def model(self, spec: PointwiseSpec, seed: int) -> PointwiseFlows:
        normals = qmc_normals(spec.n_velocities, spec.qmc, seed)
        velocity, position = [load_density(p) for p in self.velocity], [load_density(p) for p in self.position]
        return pointwise_flows(velocity, position, normals, spec.max_speed_kms, self.combine)


def evaluate_block(
    model: AccelerationModel,
    points: Float[np.ndarray, "n 3"],
    spec: PointwiseSpec,
    offsets: Float[np.ndarray, "k 3"] | None,
    observer: Float[np.ndarray, "3"],
    volume_radius_kpc: float,
) -> Float[np.ndarray, "f n"]:
    """a (and ρ when `offsets` is given) at `points`, stacked in `POINTWISE_FIELDS` order, float32.

    NaN outside the volume: there the flows extrapolate (an n(x) flow on the ball has no density at all),
    and skipping those points halves the cost of a cube.
    """
    inside = np.linalg.norm(points - observer, axis=1) < volume_radius_kpc
    accel = np.full((3, len(points)), np.nan)
    if inside.any():
        accel[:, inside] = in_batches(accelerations, model, points[inside], spec.batch).T
    if offsets is None:
        return accel.astype(np.float32)
    rho = smoothed_density(model, points, offsets, observer, volume_radius_kpc, spec.batch)
    return np.vstack([accel, rho[None]]).astype(np.float32)


def member_setup(
    member: PointwiseMember, spec: PointwiseSpec, seed: int, stamp: tuple = ()
) -> tuple[AccelerationModel, Float[np.ndarray, "k 3"] | None]:
    """The member's model (QMC velocities from `seed`) and kernel offsets (from `seed + 1`; None without density).

    `stamp` (what invalidates a cached setup, e.g. file times) only keys the worker cache."""
    offsets = None
    if spec.density:
        offsets = kernel_offsets(spec.kernel_points, spec.kernel_scales_kpc, spec.kernel_cut, spec.qmc, seed + 1)
    return member.model(spec, seed), offsets


def pointwise_blocks(members: Sequence[PointwiseMember], grid: Grid, spec: PointwiseSpec, seed: int) -> da.Array:
    """Lazy array `(member, len(pointwise_fields(spec)), nx, ny, nz)` float32; one task per member and grid chunk
    (the cube's one block evaluator, `cube.blocks`), each member's model built once per worker.

    Every member uses the same QMC sets (from `seed`).
    """
    if len(members) == 0:
        raise ValueError("`members` must name at least one member (e.g. `PointwiseFiles`).")
    observer = np.asarray(grid.observer, np.float64)

    def evaluate(member: tuple[PointwiseMember, tuple], points: np.ndarray) -> np.ndarray:
        model, offsets = on_worker(member_setup, member[0], spec, seed, member[1])
        return evaluate_block(model, points, spec, offsets, observer, grid.volume_radius_kpc)

    return member_blocks([(m, m.stamp()) for m in members], grid, len(pointwise_fields(spec)), evaluate)
