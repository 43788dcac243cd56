"""Small cubes built by hand from an analytic potential, with the attributes the accessor and plots read."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

OBSERVER = (-8.121973, 0.0, 0.0208)  # the default Sun in astropy's Galactocentric frame (|o| = 8.122 kpc)
VOLUME_RADIUS = 3.0


def handmade_cube(
    potential: Callable[[np.ndarray], np.ndarray],
    acceleration: Callable[[np.ndarray], np.ndarray],
    density: Callable[[np.ndarray], np.ndarray] | None = None,
    n_members: int = 3,
    spacing: float = 0.25,
    half_width: float = 3.5,
    density_dm: Callable[[np.ndarray], np.ndarray] | None = None,
    volume_radius: float = VOLUME_RADIUS,
) -> xr.Dataset:
    """A CUBE_SPEC-like Dataset around `OBSERVER`; member k is the field times (1 + 0.01 k).

    `potential`, `acceleration`, `density`, `density_dm`: functions of points `(..., 3)` returning
    `(...)`, `(..., 3)`, `(...)` and `(...)` (densities in M☉ pc⁻³; `density_dm` only where given).
    """
    offsets = spacing * np.arange(-round(half_width / spacing), round(half_width / spacing) + 1)
    x, y, z = (c + offsets for c in OBSERVER)
    pts = np.stack(np.meshgrid(x, y, z, indexing="ij"), axis=-1)
    scale = (1 + 0.01 * np.arange(n_members))[:, None, None, None]
    dims = ("member", "x", "y", "z")
    a = acceleration(pts)
    data = {"potential": (dims, scale * potential(pts), {"units": "km2 s-2", "long_name": "potential"})}
    for i, c in enumerate("xyz"):
        data[f"accel_{c}"] = (dims, scale * a[..., i], {"units": "km2 s-2 kpc-1", "long_name": f"a_{c}"})
    rho = density(pts) if density is not None else np.full(pts.shape[:-1], 0.05)
    data["density"] = (dims, scale * rho, {"units": "solMass pc-3", "long_name": "mass density"})
    if density_dm is not None:
        data["density_dm"] = (dims, scale * density_dm(pts), {"units": "solMass pc-3", "long_name": "ρ − ρ_baryon"})
    data = {k: (d, v.astype(np.float32), attrs) for k, (d, v, attrs) in data.items()}
    inside = np.linalg.norm(pts - np.asarray(OBSERVER), axis=-1) < volume_radius
    data["in_volume"] = (("x", "y", "z"), inside, {"units": "1"})
    coords = {c: (c, v, {"units": "kpc"}) for c, v in zip("xyz", (x, y, z))}
    coords["member"] = np.arange(n_members)
    attrs = {
        "method": "handmade", "n_tracers": 0, "data_source": "handmade",
        "observer_position_kpc": list(OBSERVER), "volume_radius_kpc": volume_radius,
        "potential_reference_point": list(OBSERVER), "galcen_distance_kpc": 8.122, "z_sun_kpc": 0.0208,
        "galcen_v_sun_kms": [12.9, 245.6, 7.78],
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def multilinear(p: np.ndarray) -> np.ndarray:
    """Φ = 3x − 2y + 5z + ½xyz: linear interpolation reproduces it and its gradient exactly."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return 3 * x - 2 * y + 5 * z + 0.5 * x * y * z


def multilinear_accel(p: np.ndarray) -> np.ndarray:
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return -np.stack([3 + 0.5 * y * z, -2 + 0.5 * x * z, 5 + 0.5 * x * y], axis=-1)
