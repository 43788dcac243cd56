"""Kernel-averaged densities (Lim et al. 2025: ρ ∗ K with a truncated Gaussian K) at independent points.

Two kernels centred at c₁, c₂ with the same widths h and cut κ overlap unless |(c₁ − c₂)/h| ≥ 2κ;
points whose kernels do not overlap are taken as independent measurements (Lim et al., footnote 2).
A centre is used only if its whole kernel lies inside the volume (the published curves likewise stop
a kernel's size short of the edge).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from jaxtyping import Float

from ..curves import observer_kpc
from .sampling import KERNEL_CUT, KERNEL_H_KPC, kernel_offsets, sample_fields


@dataclass(frozen=True)
class Kernel:
    """The truncated Gaussian kernel: widths `h` (kpc), cut at |x/h| = `cut`, 2^`n_log2` QMC box points."""

    h: tuple[float, float, float] = KERNEL_H_KPC
    cut: float = KERNEL_CUT
    n_log2: int = 13
    seed: int = 0

    def offsets(self) -> tuple[Float[np.ndarray, "k 3"], Float[np.ndarray, " k"]]:
        return kernel_offsets(self.h, self.cut, self.n_log2, self.seed)

    def describe(self) -> dict:
        return {"h_kpc": list(self.h), "cut": self.cut, "n_points": len(self.offsets()[0])}


def kernel_average(
    ds: xr.Dataset, names: list[str], centres: Float[np.ndarray, "c 3"], kernel: Kernel = Kernel()
) -> tuple[dict[str, Float[np.ndarray, "m c"]], Float[np.ndarray, " c"]]:
    """(ρ ∗ K)(c) of every variable in `names` at each centre, shape `(members, c)`, and whether each
    centre's kernel lay wholly inside the volume (where it did not, the value is NaN)."""
    offsets, weights = kernel.offsets()
    centres = np.asarray(centres, np.float64).reshape(-1, 3)
    points = (centres[:, None, :] + offsets[None]).reshape(-1, 3)
    fields, valid = sample_fields(ds, names, points)
    complete = valid.reshape(len(centres), len(offsets)).all(axis=1)
    out = {}
    for name, values in fields.items():
        averaged = np.einsum("mck,k->mc", values.reshape(len(values), len(centres), len(offsets)), weights)
        out[name] = np.where(complete, averaged, np.nan)
    return out, complete


def fits_in_volume(ds: xr.Dataset, centres: Float[np.ndarray, "c 3"], kernel: Kernel = Kernel()) -> Float[np.ndarray, " c"]:
    """Whether each centre's kernel (with the interpolation stencil) lies inside the volume sphere and the grid.

    Checked on 1,000 points of the kernel's boundary ellipsoid (where the largest distances lie), only
    for centres inside the volume.
    """
    centres = np.asarray(centres, np.float64)
    spacing = max(float(np.max(np.abs(np.diff(ds[c].values)))) for c in "xyz")
    radius = ds.attrs.get("volume_radius_kpc")
    limit = np.inf if radius is None else float(radius) - np.sqrt(3) * spacing
    o = observer_kpc(ds)
    inside = np.linalg.norm(centres - o, axis=1) < limit
    surface = _fibonacci_sphere(1000) * kernel.cut * np.asarray(kernel.h)
    idx = np.flatnonzero(inside)
    points = centres[idx, None, :] + surface[None]  # (c, k, 3)
    ok = np.linalg.norm(points - o, axis=-1).max(axis=1) < limit
    for i, c in enumerate("xyz"):
        axis = ds[c].values
        ok &= (points[..., i].min(axis=1) >= axis.min()) & (points[..., i].max(axis=1) <= axis.max())
    inside[idx] = ok
    return inside


def _fibonacci_sphere(n: int) -> Float[np.ndarray, "n 3"]:
    """`n` nearly evenly spread unit vectors."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (3 - np.sqrt(5)) * k
    rho = np.sqrt(1 - z**2)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=-1)


def independent(centres: Float[np.ndarray, "c 3"], kernel: Kernel = Kernel()) -> list[int]:
    """Indices of centres, taken greedily in the given order, whose kernels overlap none taken before."""
    scaled = np.asarray(centres, np.float64) / np.asarray(kernel.h)
    taken: list[int] = []
    for i, c in enumerate(scaled):
        if all(np.linalg.norm(c - scaled[j]) >= 2 * kernel.cut for j in taken):
            taken.append(i)
    return taken


def independent_centres(
    ds: xr.Dataset, candidates: Float[np.ndarray, "c 3"], kernel: Kernel = Kernel()
) -> list[int]:
    """Indices of the candidates (in priority order) whose kernels fit in the volume and overlap no earlier one."""
    fits = np.flatnonzero(fits_in_volume(ds, candidates, kernel))
    return [int(fits[i]) for i in independent(candidates[fits], kernel)]
