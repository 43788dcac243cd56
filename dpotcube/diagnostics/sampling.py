"""Where the diagnostics look: quasi-Monte Carlo points in a ball and in the published density kernel,
the cube interpolated there, and member summaries.

The cube's grid (0.25 kpc by default) is coarser than the 100 pc ball of the solar acceleration, so
every average is over trilinear interpolations of the cube (`curves.sample_along`: NaN unless all eight
grid points around a point are inside the volume) at scrambled-Sobol points.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from jaxtyping import Float
from scipy.stats import qmc

from ..curves import sample_along

BALL_RADIUS_KPC: float = 0.1
"""Radius of the ball around the Sun that the solar acceleration is averaged over (Lim et al. 2025, Table I)."""

KERNEL_H_KPC: tuple[float, float, float] = (0.5, 0.5, 0.2)
"""Widths of the Gaussian density kernel along x, y, z (Lim et al. 2025, Sec. III D)."""

KERNEL_CUT: float = 2.0
"""The kernel is truncated at |x/h| = 2."""


def kernel_offsets(
    h: tuple[float, float, float] = KERNEL_H_KPC, cut: float = KERNEL_CUT, n_log2: int = 13, seed: int = 0
) -> tuple[Float[np.ndarray, "n 3"], Float[np.ndarray, " n"]]:
    """Offsets (kpc) and normalised weights of the truncated Gaussian kernel K ∝ exp(−|x/h|²/2), |x/h| < `cut`.

    Scrambled-Sobol points uniform in the box |x/h|∞ < `cut`, kept inside the ellipsoid (about 52%
    of 2^`n_log2`: 4,300 points for the default 2^13, against the 3,200 of Lim et al.), weighted by K.
    """
    u = cut * (2 * qmc.Sobol(3, scramble=True, seed=seed).random_base2(n_log2) - 1)
    u2 = np.sum(u**2, axis=1)
    u, u2 = u[u2 < cut**2], u2[u2 < cut**2]
    weights = np.exp(-0.5 * u2)
    return u * np.asarray(h), weights / weights.sum()


def sample_fields(
    ds: xr.Dataset, names: list[str], points: Float[np.ndarray, "n 3"]
) -> tuple[dict[str, Float[np.ndarray, "m n"]], Float[np.ndarray, " n"]]:
    """Variables `names` interpolated trilinearly at `points` (kpc), each of shape `(members, n)` in float64.

    Fields without a member dim are repeated over members. Also returns the boolean validity of each
    point (all grid points around it inside the volume); invalid points are NaN.
    """
    keep = [n for n in names if n in ds] + (["in_volume"] if "in_volume" in ds else [])
    n_points = len(points)
    members = ds.sizes.get("member", 1)
    if n_points == 0:  # e.g. no independent kernel centre fits a coarse grid
        return {n: np.empty((members, 0)) for n in names if n in ds}, np.empty(0, bool)
    along = sample_along(ds[keep], points, "point", np.arange(n_points), {"long_name": "sample index"})
    out = {}
    for name in names:
        if name not in along:
            continue
        var = along[name]
        values = var.transpose(..., "point").values.astype(np.float64)
        out[name] = np.broadcast_to(values.reshape(-1, n_points), (members, n_points)).copy()
    return out, np.asarray(along["in_volume"].values, bool)


def summarise(values: Float[np.ndarray, "m ..."], axis: int = 0) -> dict[str, Float[np.ndarray, "..."]]:
    """`median`, `p16`, `p84` over members (axis `axis`), NaN-aware and quiet about all-NaN slices."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        p16, median, p84 = np.nanpercentile(values, [16, 50, 84], axis=axis)
    return {"median": median, "p16": p16, "p84": p84}


def spread(values: Float[np.ndarray, "m ..."], axis: int = 0) -> Float[np.ndarray, "..."]:
    """Half the 16–84% range over members: the members' 1σ-equivalent spread."""
    q = summarise(values, axis)
    return 0.5 * (q["p84"] - q["p16"])
