"""`ds.dpot`: derived coordinates, cylindrical and spherical acceleration components, member summaries,
and every field along the published lines and arcs (`curves.py`).

Angles follow the usual right-handed convention in astropy's Galactocentric frame:
φ = atan2(y, x) (the Sun is at φ = π), θ is the polar angle from +z. Galactic rotation at the Sun
is towards +y, i.e. towards decreasing φ, so the disk's rotation velocity v_φ is negative.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr
from jaxtyping import Float

from . import curves, profiles


@xr.register_dataset_accessor("dpot")
class DpotAccessor:
    """Domain helpers on a dpotcube cube (CUBE_SPEC v1); everything stays lazy where the data are."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    @property
    def R(self) -> xr.DataArray:
        """Cylindrical radius √(x² + y²), kpc, dims (x, y)."""
        return _named(np.hypot(self._ds.x, self._ds.y), "R", "kpc", "cylindrical radius")

    @property
    def phi(self) -> xr.DataArray:
        """Azimuth atan2(y, x), rad, dims (x, y)."""
        return _named(np.arctan2(self._ds.y, self._ds.x), "phi", "rad", "azimuth atan2(y, x)")

    @property
    def r(self) -> xr.DataArray:
        """Spherical radius, kpc, dims (x, y, z)."""
        return _named(np.sqrt(self._ds.x**2 + self._ds.y**2 + self._ds.z**2), "r", "kpc", "spherical radius")

    @property
    def theta(self) -> xr.DataArray:
        """Polar angle from +z, rad, dims (x, y, z)."""
        return _named(np.arccos(self._ds.z / self.r), "theta", "rad", "polar angle from +z")

    def cylindrical(self) -> xr.Dataset:
        """a_R, a_φ, a_z (km² s⁻² kpc⁻¹): a_R = a·R̂ (negative towards the axis), a_φ = a·φ̂."""
        ax, ay = self._ds.accel_x, self._ds.accel_y
        R = self.R
        cos, sin = self._ds.x / R, self._ds.y / R
        return xr.Dataset({
            "accel_R": _named(ax * cos + ay * sin, "accel_R", _ACCEL, "cylindrical radial acceleration"),
            "accel_phi": _named(-ax * sin + ay * cos, "accel_phi", _ACCEL, "azimuthal acceleration"),
            "accel_z": self._ds.accel_z,
        })

    def spherical(self) -> xr.Dataset:
        """a_r = a·r̂ (negative towards the centre) and a_θ = a·θ̂ (positive towards −z), km² s⁻² kpc⁻¹."""
        ax, ay, az = self._ds.accel_x, self._ds.accel_y, self._ds.accel_z
        x, y, z, r, R = self._ds.x, self._ds.y, self._ds.z, self.r, self.R
        a_r = (ax * x + ay * y + az * z) / r
        a_theta = (ax * x * z / R + ay * y * z / R - az * R) / r
        return xr.Dataset({
            "accel_r": _named(a_r, "accel_r", _ACCEL, "spherical radial acceleration"),
            "accel_theta": _named(a_theta, "accel_theta", _ACCEL, "polar acceleration"),
        })

    def summary(self, name: str) -> xr.Dataset:
        """`p16`, `median`, `p84` of variable `name` over members (use `summary["median"]`: `.median` is a method)."""
        var = self._ds[name]
        if self._ds.sizes.get("member", 1) == 1:
            import warnings

            from .lookup import SingleMemberWarning

            warnings.warn("The cube has one member: p16 = median = p84, which is no uncertainty.", SingleMemberWarning,
                          stacklevel=2)
        labels = ("p16", "median", "p84")
        if "member" in var.dims and self._ds.sizes["member"] == 1:  # every quantile is the one value (NaN stays NaN);
            # xarray's NaN-aware quantile would call numpy once per grid point (tens of seconds for a cube)
            one = var.isel(member=0, drop=True).astype(np.result_type(var.dtype, np.float64)).assign_attrs(var.attrs)
            return xr.Dataset({label: one for label in labels})
        if var.chunks:
            var = var.chunk({"member": -1})  # quantiles need all members of a chunk together
        q = var.quantile([0.16, 0.5, 0.84], dim="member").drop_vars("quantile")
        parts = {label: q.isel(quantile=i).assign_attrs(var.attrs) for i, label in enumerate(labels)}
        return xr.Dataset(parts)

    def radial_line(
        self, z_kpc: float = curves.NORTH_SOUTH_Z_KPC, dphi: float = 0.0, R: Float[np.ndarray, " n"] | None = None
    ) -> xr.Dataset:
        """Fields along the line at height `z_kpc` in the meridional plane φ⊙ + `dphi`, dim `R` (kpc).

        NaN outside the volume; see `curves.radial_line`."""
        return curves.radial_line(self._ds, z_kpc, dphi, R)

    def azimuthal_arc(
        self, z_kpc: float = curves.NORTH_SOUTH_Z_KPC, dphi: Float[np.ndarray, " n"] | None = None
    ) -> xr.Dataset:
        """Fields along the circle r = r⊙ at height `z_kpc`, dim `dphi` = φ − φ⊙ (rad).

        NaN outside the volume; see `curves.azimuthal_arc`."""
        return curves.azimuthal_arc(self._ds, z_kpc, dphi)

    def polar_arc(
        self, dphi: float = 0.0, r_kpc: float | None = None, s: Float[np.ndarray, " n"] | None = None
    ) -> xr.Dataset:
        """Fields along the arc r = `r_kpc` (default r⊙, through the observer), dim s = r⊙(π/2 − θ) (kpc).

        NaN outside the volume; see `curves.polar_arc`."""
        return curves.polar_arc(self._ds, dphi, r_kpc, s)

    def query(self, coords, quantities=None, interval="16-84", output="dataset"):
        """The fields at `coords` (a SkyCoord, or Galactocentric x, y, z Quantities): see `dpotcube.query`."""
        from .lookup import query

        return query(self._ds, coords, quantities=quantities, interval=interval, output=output)

    def vcirc(self, R: Float[np.ndarray, " n"] | None = None, z_kpc: float = 0.0, dphi: float = 0.0) -> xr.Dataset:
        """Circular velocity √(−R a_R) with its 16–84% range over members: see `profiles.vcirc`."""
        return profiles.vcirc(self._ds, R, z_kpc, dphi)

    def kz(self, z: Float[np.ndarray, " n"] | None = None, R: float | None = None, dphi: float = 0.0) -> xr.Dataset:
        """Vertical force K_z(z) at radius `R` with its 16–84% range over members: see `profiles.kz`."""
        return profiles.kz(self._ds, z, R, dphi)

    def surface_density(self, z_max: float = 1.1, R: float | None = None, dphi: float = 0.0) -> xr.Dataset:
        """Σ(|z| < z_max) in M☉ pc⁻² with its 16–84% range over members: see `profiles.surface_density`."""
        return profiles.surface_density(self._ds, z_max, R, dphi)

    def quantity(self, name: str) -> u.Quantity:
        """Variable `name` loaded as an astropy Quantity in its `units` (this loads the data)."""
        return np.asarray(self._ds[name].values) * u.Unit(self._ds[name].attrs["units"])


_ACCEL = "km2 s-2 kpc-1"


def _named(arr: xr.DataArray, name: str, units: str, long_name: str) -> xr.DataArray:
    return arr.rename(name).assign_attrs(units=units, long_name=long_name)
