"""ρ and ρ_DM at the Sun and averaged over independent points on the sphere r = r⊙ (Lim et al. 2025, Table II).

- At the Sun: the kernel average ρ ∗ K centred on the observer (the published definition), and the
  cube's value interpolated at the observer.
- On r = r⊙: kernel averages at independent (non-overlapping) centres along the polar arcs through
  the observer's meridian and φ − φ⊙ = ±0.209 rad (their Fig. 10), combined by an inverse-variance
  weighted mean per member. Each point's σ is the members' half 16–84% range, floored at
  `floor_relative` × |value| and `floor_absolute` (a handful of members underestimates a spread).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from jaxtyping import Float

from ..constants import MSUN_PER_PC3_TO_GEV_PER_CM3
from ..curves import observer_kpc, polar_arc
from .kernel import Kernel, independent_centres, kernel_average
from .sampling import sample_fields, spread, summarise

PUBLISHED_DPHI: tuple[float, ...] = (0.0, 0.209, -0.209)
"""Azimuths φ − φ⊙ (rad) of the published polar arcs and lines (Lim et al. 2025, Fig. 10)."""

ERROR_FLOOR_RELATIVE: float = 0.05
ERROR_FLOOR_ABSOLUTE: float = 1e-4
"""σ of a kernel-averaged density is at least 5% of it and at least 10⁻⁴ M☉ pc⁻³."""

DENSITIES = ("density", "density_dm", "density_baryon")


def arc_candidates(
    ds: xr.Dataset, dphis: tuple[float, ...] = PUBLISHED_DPHI, step_kpc: float = 0.05
) -> tuple[Float[np.ndarray, "c 3"], Float[np.ndarray, " c"], Float[np.ndarray, " c"]]:
    """Candidate centres (kpc) on the polar arcs r = r⊙, with their `dphi` and `s`, nearest the observer first."""
    o = observer_kpc(ds)
    r_sun = float(np.linalg.norm(o))
    s_sun = r_sun * np.arcsin(o[2] / r_sun)
    s = s_sun + step_kpc * np.arange(-int(r_sun * 1.5 / step_kpc), int(r_sun * 1.5 / step_kpc) + 1)
    s = s[np.abs(s) < r_sun * np.pi / 2]
    coords_only = ds[["in_volume"]] if "in_volume" in ds else ds  # only the curve's coordinates are needed
    parts = [polar_arc(coords_only, dphi, None, s) for dphi in dphis]
    points = np.concatenate([np.stack([p[c].values for c in "xyz"], axis=-1) for p in parts])
    dphi = np.repeat(np.asarray(dphis, np.float64), len(s))
    s_all = np.tile(s, len(dphis))
    order = np.lexsort((np.abs(dphi), np.abs(s_all - s_sun)))
    return points[order], dphi[order], s_all[order]


def density_errors(
    values: Float[np.ndarray, "m c"], floor_relative: float = ERROR_FLOOR_RELATIVE,
    floor_absolute: float = ERROR_FLOOR_ABSOLUTE,
) -> Float[np.ndarray, " c"]:
    """σ per point: the members' half 16–84% range, floored (see the module docstring)."""
    median = np.nanmedian(values, axis=0)
    return np.maximum.reduce([spread(values), floor_relative * np.abs(median), np.full_like(median, floor_absolute)])


def weighted_mean(values: Float[np.ndarray, "m c"], sigma: Float[np.ndarray, " c"]) -> dict:
    """Inverse-variance weighted mean over points per member; its summaries, statistical error and χ²_ν."""
    w = 1 / sigma**2
    per_member = values @ w / w.sum()
    median = np.nanmedian(values, axis=0)
    centre = float(median @ w / w.sum())
    chi2_nu = float(np.sum((median - centre) ** 2 * w) / max(len(w) - 1, 1))
    return {
        **_with_gev(summarise(per_member)),
        "statistical_error": float(1 / np.sqrt(w.sum())),
        "chi2_nu": chi2_nu,
        "members": per_member.tolist(),
    }


def local_density(
    ds: xr.Dataset, kernel: Kernel = Kernel(), floor_relative: float = ERROR_FLOOR_RELATIVE,
    floor_absolute: float = ERROR_FLOOR_ABSOLUTE,
) -> dict:
    """ρ, ρ_DM (and ρ_baryon where the cube has them) at the Sun and averaged on r = r⊙, in M☉ pc⁻³ and GeV cm⁻³."""
    names = [n for n in DENSITIES if n in ds]
    o = observer_kpc(ds)
    sun_kernel, complete = kernel_average(ds, names, o[None], kernel)
    sun_point, _ = sample_fields(ds, names, o[None])
    sun = {
        name: {"kernel": _with_gev(summarise(sun_kernel[name][:, 0])), "point": _with_gev(summarise(sun_point[name][:, 0]))}
        for name in names
    }
    candidates, dphi, s = arc_candidates(ds)
    chosen = independent_centres(ds, candidates, kernel)
    centres = candidates[chosen]
    values, ok = kernel_average(ds, names, centres, kernel)
    keep = np.flatnonzero(ok)
    points = [
        {"dphi_rad": float(dphi[chosen][i]), "s_kpc": float(s[chosen][i]), "xyz_kpc": centres[i].tolist(),
         **{name: _with_gev(summarise(values[name][:, i])) for name in names}}
        for i in keep
    ]
    means = {}
    for name in names:
        if keep.size:
            sigma = density_errors(values[name][:, keep], floor_relative, floor_absolute)
            means[name] = weighted_mean(values[name][:, keep], sigma)
    dm = "density_dm" if "density_dm" in ds else "density"
    return {
        "kernel": kernel.describe(),
        "dark_matter_field": dm,
        "note": None if dm == "density_dm" else "The cube has no density_dm: the ρ_DM rows and the gNFW fit use the total ρ.",
        "sun": sun,
        "sun_kernel_complete": bool(complete[0]),
        "arc": {"r_kpc": float(np.linalg.norm(o)), "dphi_rad": list(PUBLISHED_DPHI), "points": points,
                "n_points": len(points), "error_floor": {"relative": floor_relative, "absolute": floor_absolute},
                "weighted_mean": means},
    }


def _with_gev(summary: dict) -> dict:
    """A member summary in M☉ pc⁻³ with the same numbers in GeV cm⁻³ beside it."""
    out = {k: float(v) for k, v in summary.items()}
    return out | {f"{k}_GeV_cm3": float(v) * MSUN_PER_PC3_TO_GEV_PER_CM3 for k, v in summary.items()}
