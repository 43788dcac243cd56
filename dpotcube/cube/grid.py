"""The evaluation grid around the observer and its in-volume mask."""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np
from jaxtyping import Float

from ..errors import RecipeError
from ..recipe import CubeSpec


@dataclass(frozen=True)
class Grid:
    """Axis-aligned grid: 1-D coordinates `x`, `y`, `z` in kpc, chunked `chunk` points per axis."""

    x: Float[np.ndarray, " nx"]
    y: Float[np.ndarray, " ny"]
    z: Float[np.ndarray, " nz"]
    observer: Float[np.ndarray, "3"]
    volume_radius_kpc: float
    chunk: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.x), len(self.y), len(self.z)

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        return tuple(da.core.normalize_chunks(self.chunk, self.shape))

    def points(self, location: tuple[tuple[int, int], ...]) -> Float[np.ndarray, "n 3"]:
        """Positions of the grid block at `((x0, x1), (y0, y1), (z0, z1))`, C order, shape `(n, 3)`."""
        axes = [c[lo:hi] for c, (lo, hi) in zip((self.x, self.y, self.z), location)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def in_volume(self) -> da.Array:
        """Lazy boolean mask `(nx, ny, nz)`: within `volume_radius_kpc` of the observer."""

        def block(template: np.ndarray, block_info=None) -> np.ndarray:
            location = block_info[None]["array-location"]
            pts = self.points(location)
            inside = np.linalg.norm(pts - self.observer, axis=1) < self.volume_radius_kpc
            return inside.reshape(template.shape)

        template = da.empty(self.shape, chunks=self.chunks, dtype=bool)
        return da.map_blocks(block, template, dtype=bool)


def make_grid(spec: CubeSpec, observer: np.ndarray, volume_radius_kpc: float) -> Grid:
    """Grid around `spec.centre_kpc` (default: the observer), half-width `spec.half_width_kpc` (default: the volume radius)."""
    half = spec.half_width_kpc or volume_radius_kpc
    centre = np.asarray(spec.centre_kpc if spec.centre_kpc is not None else observer, np.float64)
    if spec.spacing_kpc > half:
        raise RecipeError(
            f"[recipe -> cube -> spacing_kpc] {spec.spacing_kpc} kpc is larger than the grid half-width {half} kpc; "
            "choose a spacing several times smaller than the half-width."
        )
    nearest = np.clip(observer, centre - half, centre + half)  # point of the grid box closest to the observer
    if np.linalg.norm(nearest - observer) >= volume_radius_kpc:
        raise RecipeError(
            f"[recipe -> cube -> centre_kpc] the grid around {centre.round(3).tolist()} kpc (half-width {half} kpc) does "
            f"not reach the tracer volume ({volume_radius_kpc} kpc around the observer at {np.round(observer, 3).tolist()} "
            "kpc): every value would be an extrapolation. Move `cube.centre_kpc` or leave it out to centre on the observer."
        )
    n_half = int(np.floor(half / spec.spacing_kpc + 1e-9))
    offsets = spec.spacing_kpc * np.arange(-n_half, n_half + 1)
    x, y, z = (np.round(c + offsets, 6) for c in centre)
    return Grid(x=x, y=y, z=z, observer=np.asarray(observer, np.float64), volume_radius_kpc=volume_radius_kpc, chunk=spec.chunk)
