"""The published lines and arcs through the volume, and sampling a cube along any curve.

The curves of Lim, Putney, Buckley & Shih (JCAP 2025, Fig. 1, 8 and 10), in astropy's
Galactocentric frame. With the observer at o, r⊙ = |o| (the Galactocentric distance), φ⊙ =
atan2(o_y, o_x) (= π for the Sun) and `dphi` = φ − φ⊙ (the paper's ϕ: Sun at 0, positive towards
−y, against Galactic rotation), every curve lies in the meridional plane at φ⊙ + `dphi` or on a
circle about the z axis:

- radial line: fixed z (±1.5 kpc: 1.5 kpc north/south of the disk at the Sun), cylindrical radius R
  varying; for `dphi` = 0 it runs along the x axis through (x⊙, 0, z);
- azimuthal arc: fixed z and r = r⊙ (so R = √(r⊙² − z²), through (−7.982, 0, ±1.5) kpc), φ varying;
- polar arc: fixed r (r⊙ by default: through the observer), θ varying, parameterised by the
  polar arc length s = r⊙ (π/2 − θ) (s = 0 in the midplane, s > 0 north).

Values are interpolated linearly between grid points; a point is NaN unless all eight grid points
around it are inside `in_volume` (and the grid).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr
from jaxtyping import Float

from .errors import DataError

NORTH_SOUTH_Z_KPC: float = 1.5
"""Height of the published north and south lines and arcs above and below the disk."""

_KPC = {"units": "kpc"}
_RAD = {"units": "rad"}


def observer_kpc(ds: xr.Dataset) -> Float[np.ndarray, "3"]:
    """The observer's Galactocentric position from `ds.attrs["observer_position_kpc"]`, shape `(3,)`."""
    if "observer_position_kpc" not in ds.attrs:
        raise DataError(
            "The cube has no `observer_position_kpc` attribute, so r⊙ and φ⊙ are unknown. Set it, e.g. "
            "`ds.attrs['observer_position_kpc'] = [-8.122, 0.0, 0.0208]`."
        )
    return np.asarray(ds.attrs["observer_position_kpc"], np.float64)


def radial_line(
    ds: xr.Dataset, z_kpc: float = NORTH_SOUTH_Z_KPC, dphi: float = 0.0, R: Float[np.ndarray, " n"] | None = None
) -> xr.Dataset:
    """Every field along the line at height `z_kpc` in the meridional plane φ⊙ + `dphi`, dim `R` (kpc).

    `R`: cylindrical radii to sample (default: every half grid spacing across the grid). Coordinates
    `x`, `y`, `z` and the spherical radius `r` come with it.
    """
    o = observer_kpc(ds)
    phi = np.arctan2(o[1], o[0]) + dphi

    def points(R: np.ndarray) -> np.ndarray:
        return np.stack([R * np.cos(phi), R * np.sin(phi), np.full_like(R, z_kpc)], axis=-1)

    if R is None:
        step = _half_spacing(ds)
        R = _span_in_grid(ds, points, np.hypot(o[0], o[1]), step, 0.0, _max_grid_radius(ds))
    R = np.asarray(R, np.float64)
    out = sample_along(ds, points(R), "R", R, _KPC | {"long_name": "cylindrical radius"})
    description = f"radial line z = {z_kpc:g} kpc, φ − φ⊙ = {dphi:g} rad"
    return out.assign_coords(r=("R", np.hypot(R, z_kpc), _KPC | {"long_name": "spherical radius"})).assign_attrs(
        curve=description
    )


def azimuthal_arc(
    ds: xr.Dataset, z_kpc: float = NORTH_SOUTH_Z_KPC, dphi: Float[np.ndarray, " n"] | None = None
) -> xr.Dataset:
    """Every field along the circle r = r⊙ at height `z_kpc` (R = √(r⊙² − z²)), dim `dphi` = φ − φ⊙ (rad).

    `dphi`: azimuths to sample (default: every half grid spacing of arc across the grid). Coordinate
    `arc_length` = R · dphi (kpc) and `x`, `y`, `z` come with it.
    """
    o = observer_kpc(ds)
    r_sun = float(np.linalg.norm(o))
    if abs(z_kpc) >= r_sun:
        raise ValueError(f"`z_kpc` (={z_kpc}) must be smaller in size than r⊙ (={r_sun:.3f} kpc).")
    R_arc = np.sqrt(r_sun**2 - z_kpc**2)
    phi_sun = np.arctan2(o[1], o[0])

    def points(dphi: np.ndarray) -> np.ndarray:
        phi = phi_sun + dphi
        return np.stack([R_arc * np.cos(phi), R_arc * np.sin(phi), np.full_like(dphi, z_kpc)], axis=-1)

    if dphi is None:
        dphi = _span_in_grid(ds, points, 0.0, _half_spacing(ds) / R_arc, -np.pi, np.pi)
    dphi = np.asarray(dphi, np.float64)
    out = sample_along(ds, points(dphi), "dphi", dphi, _RAD | {"long_name": "azimuth from the observer φ − φ⊙"})
    arc = ("dphi", R_arc * dphi, _KPC | {"long_name": "arc length from the observer's meridian"})
    return out.assign_coords(arc_length=arc).assign_attrs(curve=f"azimuthal arc r = {r_sun:.3f} kpc, z = {z_kpc:g} kpc")


def polar_arc(
    ds: xr.Dataset, dphi: float = 0.0, r_kpc: float | None = None, s: Float[np.ndarray, " n"] | None = None
) -> xr.Dataset:
    """Every field along the arc of radius `r_kpc` (default r⊙) in the meridional plane φ⊙ + `dphi`, dim `s` (kpc).

    s = r⊙ (π/2 − θ), the paper's definition for any `r_kpc` (the arc length only for r = r⊙);
    s = 0 in the midplane, s > 0 north. With the defaults the arc passes through the observer.
    `s`: values to sample (default: every half grid spacing across the grid). Coordinates `theta`
    (rad) and `x`, `y`, `z` come with it.
    """
    o = observer_kpc(ds)
    r_sun = float(np.linalg.norm(o))
    r_arc = r_sun if r_kpc is None else float(r_kpc)
    phi = np.arctan2(o[1], o[0]) + dphi

    def points(s: np.ndarray) -> np.ndarray:
        latitude = s / r_sun  # π/2 − θ
        R = r_arc * np.cos(latitude)
        return np.stack([R * np.cos(phi), R * np.sin(phi), r_arc * np.sin(latitude)], axis=-1)

    if s is None:
        half = r_sun * np.pi / 2
        s = _span_in_grid(ds, points, 0.0, _half_spacing(ds) * r_sun / r_arc, -half, half)
    s = np.asarray(s, np.float64)
    out = sample_along(ds, points(s), "s", s, _KPC | {"long_name": "polar arc length r⊙ (π/2 − θ)"})
    theta = ("s", np.pi / 2 - s / r_sun, _RAD | {"long_name": "polar angle from +z"})
    description = f"polar arc r = {r_arc:.3f} kpc, φ − φ⊙ = {dphi:g} rad"
    return out.assign_coords(theta=theta).assign_attrs(curve=description)


def sample_along(
    ds: xr.Dataset, points: Float[np.ndarray, "n 3"], dim: str, coord: Float[np.ndarray, " n"], coord_attrs: dict
) -> xr.Dataset:
    """Every float field of `ds` with dims x, y, z interpolated linearly at `points` (kpc), along new dim `dim`.

    Other dims (`member`) are kept. Values are NaN unless every grid point used is inside
    `in_volume`; the boolean `in_volume` along `dim` says which points are valid.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"Expected `points` of shape (n, 3); got {points.shape}.")
    names = [
        name for name, var in ds.data_vars.items()
        if {"x", "y", "z"} <= set(var.dims) and name != "in_volume" and np.issubdtype(var.dtype, np.floating)
    ]
    region = _around(ds, points)
    fields = region[names]
    mask = region["in_volume"] if "in_volume" in region else xr.ones_like(region.x * region.y * region.z, dtype=bool)
    fields = fields.where(mask)
    at = {c: xr.DataArray(points[:, i], dims=dim) for i, c in enumerate("xyz")}
    out = fields.interp(at, method="linear")
    inside = mask.astype(np.float64).interp(at, method="linear").fillna(0.0) > 1 - 1e-9
    out["in_volume"] = inside.assign_attrs(long_name="all grid points around it inside the volume")
    out = out.assign_coords({dim: (dim, np.asarray(coord), coord_attrs)})
    xyz = {c: (dim, points[:, i], _KPC | {"long_name": f"Galactocentric {c}"}) for i, c in enumerate("xyz")}
    out = out.assign_coords(xyz)
    for name in names:
        out[name] = out[name].astype(ds[name].dtype).assign_attrs(ds[name].attrs)
    return out.assign_attrs(ds.attrs)


def _around(ds: xr.Dataset, points: np.ndarray) -> xr.Dataset:
    """The part of `ds` spanning `points` plus one grid spacing on each side (less to read from disk)."""
    sel = {}
    for i, c in enumerate("xyz"):
        axis = ds[c].values
        pad = float(np.max(np.abs(np.diff(axis)))) if len(axis) > 1 else 0.0
        near = np.flatnonzero((axis >= points[:, i].min() - pad) & (axis <= points[:, i].max() + pad))
        sel[c] = slice(near.min(), near.max() + 1) if near.size else slice(None)  # all NaN: interp says so
    return ds.isel(sel)


def _span_in_grid(
    ds: xr.Dataset,
    points: Callable[[np.ndarray], np.ndarray],
    centre: float,
    step: float,
    lo: float,
    hi: float,
) -> Float[np.ndarray, " n"]:
    """Parameter values centre + k·step within [lo, hi] whose points lie in the grid's box, first to last."""
    k = np.arange(np.ceil((lo - centre) / step), np.floor((hi - centre) / step) + 1)
    values = centre + k * step
    pts = points(values)
    inside = np.ones(len(values), bool)
    for i, c in enumerate("xyz"):
        axis = ds[c].values
        inside &= (pts[:, i] >= axis.min()) & (pts[:, i] <= axis.max())
    if not inside.any():
        raise DataError("The curve does not cross the cube's grid; choose its parameters inside the grid.")
    first, last = np.flatnonzero(inside)[[0, -1]]
    return values[first : last + 1]


def _half_spacing(ds: xr.Dataset) -> float:
    return 0.5 * min(float(np.min(np.abs(np.diff(ds[c].values)))) for c in "xyz")


def _max_grid_radius(ds: xr.Dataset) -> float:
    return float(np.hypot(np.abs(ds.x.values).max(), np.abs(ds.y.values).max()))
