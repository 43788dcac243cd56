"""The truncated Gaussian smoothing kernel K of the density: QMC points distributed as K, and in-volume averages.

K(δ) ∝ exp(−|δ/h|²/2) for |δ/h| ≤ cut and 0 beyond, normalised over that ellipsoid. Points are
drawn as K itself (radius of δ/h from the χ₃ distribution truncated at `cut`, direction uniform),
so a kernel average is the plain mean of a function over the points.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float
from scipy.stats import chi2

from .qmc import QMC, qmc_uniform, unit_vectors


def kernel_offsets(
    n: int, scales_kpc: tuple[float, float, float], cut: float, kind: QMC, seed: int
) -> Float[np.ndarray, "n 3"]:
    """`n` QMC offsets δ (kpc) distributed as the truncated Gaussian kernel with scales h and cut |δ/h| ≤ `cut`."""
    if cut <= 0 or min(scales_kpc) <= 0:
        raise ValueError(f"`cut` (={cut}) and every scale (={scales_kpc}) must be positive.")
    u = qmc_uniform(n, 3, kind, seed)
    mass_inside = chi2.cdf(cut**2, df=3)
    radius = np.sqrt(chi2.ppf(u[:, 0] * mass_inside, df=3))  # inverse CDF of χ₃ truncated at `cut`
    return np.asarray(scales_kpc) * radius[:, None] * unit_vectors(u[:, 1:])


def in_volume(
    points: Float[np.ndarray, "... 3"], observer: Float[np.ndarray, "3"], radius_kpc: float
) -> Bool[np.ndarray, "..."]:
    """Inside the tracer volume: closer than `radius_kpc` to the observer (the cube's `in_volume` rule)."""
    return np.linalg.norm(np.asarray(points) - np.asarray(observer), axis=-1) < radius_kpc


def kernel_average(values: Float[np.ndarray, "m n"], inside: Bool[np.ndarray, "m n"]) -> Float[np.ndarray, " m"]:
    """Kernel average of `values` at m centres × n kernel points, renormalised over the in-volume points.

    Points outside the tracer volume carry no data and are left out, so near the edge the average is
    over the kernel's in-volume part; a centre with no in-volume point gets NaN.
    """
    count = np.sum(inside, axis=1)
    total = np.sum(np.where(inside, values, 0.0), axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
