"""The curves most often compared with the literature, with their 16–84% range over members:
circular velocity v_c(R), vertical force K_z(z) and surface density Σ(|z| < z_max).

All are read from the grid by linear interpolation (`curves.sample_along`) in the meridional plane
through the observer (φ = φ⊙ + `dphi`): NaN where the grid points around a sample leave the volume.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from jaxtyping import Float

from .curves import observer_kpc, sample_along

_KMS = "km s-1"


def _plane(ds: xr.Dataset, dphi: float) -> tuple[float, float]:
    o = observer_kpc(ds)
    return float(np.arctan2(o[1], o[0]) + dphi), float(np.hypot(o[0], o[1]))


def _bands(values: xr.DataArray, name: str, units: str, long_name: str) -> xr.Dataset:
    """`<name>` (median over members), `<name>_p16`, `<name>_p84`."""
    attrs = {"units": units, "long_name": long_name}
    if "member" not in values.dims:
        return xr.Dataset({name: values.assign_attrs(attrs)})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        q = values.quantile([0.16, 0.5, 0.84], dim="member").drop_vars("quantile")
    parts = {name: q.isel(quantile=1), f"{name}_p16": q.isel(quantile=0), f"{name}_p84": q.isel(quantile=2)}
    out = xr.Dataset({k: v.assign_attrs(attrs) for k, v in parts.items()})
    return out.drop_vars([c for c in ("member", "member_kind") if c in out.coords])


def vcirc(ds: xr.Dataset, R: Float[np.ndarray, " n"] | None = None, z_kpc: float = 0.0, dphi: float = 0.0) -> xr.Dataset:
    """Circular velocity v_c = √(−R a_R) (km/s) at radii `R` (kpc; default across the volume) and height
    `z_kpc` in the observer's meridional plane; dim `R`. NaN where a_R points outwards."""
    phi, r_sun = _plane(ds, dphi)
    if R is None:
        radius = float(ds.attrs.get("volume_radius_kpc", 3.0))
        R = np.linspace(max(r_sun - radius, 0.05), r_sun + radius, 61)
    R = np.asarray(R, np.float64)
    points = np.stack([R * np.cos(phi), R * np.sin(phi), np.full_like(R, z_kpc)], axis=-1)
    s = sample_along(ds[["accel_x", "accel_y", "in_volume"]], points, "R", R, {"units": "kpc", "long_name": "cylindrical radius"})
    a_R = s.accel_x * np.cos(phi) + s.accel_y * np.sin(phi)
    v2 = -R * a_R
    v = np.sqrt(v2.where(v2 >= 0))
    out = _bands(v, "vcirc", _KMS, f"circular velocity sqrt(-R a_R) at z = {z_kpc:g} kpc")
    return out.assign_coords(R=("R", R, {"units": "kpc", "long_name": "cylindrical radius"}))


def kz(ds: xr.Dataset, z: Float[np.ndarray, " n"] | None = None, R: float | None = None, dphi: float = 0.0) -> xr.Dataset:
    """Vertical force K_z = a_z (km² s⁻² kpc⁻¹; negative above the plane) at heights `z` (kpc; default
    ±volume radius) and cylindrical radius `R` (default the observer's); dim `z`. Also `kz_2piG`:
    |K_z| / (2πG) in M☉ pc⁻² (the unit in which K_z(1.1 kpc) is usually quoted)."""
    from .constants import G_KPC_KM2_S2_PER_MSUN

    phi, r_sun = _plane(ds, dphi)
    R = r_sun if R is None else float(R)
    if z is None:
        radius = float(ds.attrs.get("volume_radius_kpc", 3.0))
        z = np.linspace(-radius, radius, 61)
    z = np.asarray(z, np.float64)
    points = np.stack([np.full_like(z, R * np.cos(phi)), np.full_like(z, R * np.sin(phi)), z], axis=-1)
    s = sample_along(ds[["accel_z", "in_volume"]], points, "z", z, {"units": "kpc", "long_name": "height"})
    out = _bands(s.accel_z, "kz", "km2 s-2 kpc-1", f"vertical force a_z at R = {R:.3f} kpc")
    per_pc2 = np.abs(s.accel_z) / (2 * np.pi * G_KPC_KM2_S2_PER_MSUN) * 1e-6  # M☉ kpc⁻² → M☉ pc⁻²
    out = out.merge(_bands(per_pc2, "kz_2piG", "solMass pc-2", "|K_z| / (2 pi G)"))
    return out.assign_coords(z=("z", z, {"units": "kpc", "long_name": "height"})).assign_attrs(R_kpc=R)


def surface_density(ds: xr.Dataset, z_max: float = 1.1, R: float | None = None, dphi: float = 0.0,
                    n_z: int = 221) -> xr.Dataset:
    """Σ(|z| < `z_max`) = ∫ ρ dz (M☉ pc⁻²) at cylindrical radius `R` (default the observer's), by the
    trapezoid rule on `n_z` heights; also of ρ_DM where the cube has `density_dm`. NaN when part of
    the column leaves the volume."""
    phi, r_sun = _plane(ds, dphi)
    R = r_sun if R is None else float(R)
    z = np.linspace(-z_max, z_max, n_z)
    points = np.stack([np.full_like(z, R * np.cos(phi)), np.full_like(z, R * np.sin(phi)), z], axis=-1)
    names = [n for n in ("density", "density_dm") if n in ds]
    s = sample_along(ds[[*names, "in_volume"]], points, "z", z, {"units": "kpc"})
    out = xr.Dataset(attrs={"R_kpc": R, "z_max_kpc": z_max})
    for name in names:
        column = s[name].integrate("z") * 1000.0  # M☉ pc⁻³ × kpc → M☉ pc⁻²
        column = column.where(s.in_volume.all())
        label = "surface_density" if name == "density" else "surface_density_dm"
        out = out.merge(_bands(column, label, "solMass pc-2", f"integral of {name} over |z| < {z_max:g} kpc"))
    return out.assign_attrs(R_kpc=R, z_max_kpc=z_max)
