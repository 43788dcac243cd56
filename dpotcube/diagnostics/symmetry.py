"""North–south symmetry and axisymmetry along the published lines and arcs (Lim et al. 2025, Fig. 8 subpanels).

For each pair of curves mirrored in the disk (radial lines and azimuthal arcs at z = ±1.5 kpc; the
polar arc at s and −s) and each member:

    δ_r = (a_r,N − a_r,S) / |a|,   δ_θ = (a_θ,N + a_θ,S) / |a|,   |a| = (|a_N| + |a_S|) / 2,

zero for a field symmetric under z → −z (a_θ flips sign with the mirror, hence the sum), and
a_φ / |a| on every curve, zero for an axisymmetric field. Summaries are over members.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from jaxtyping import Float

from ..curves import NORTH_SOUTH_Z_KPC, azimuthal_arc, observer_kpc, polar_arc, radial_line
from .sampling import summarise

ACCEL = ["accel_x", "accel_y", "accel_z"]


def spherical_components(curve: xr.Dataset) -> dict[str, Float[np.ndarray, "m n"]]:
    """a_r, a_θ, a_φ and |a| along a curve, shape `(members, n)` (km² s⁻² kpc⁻¹)."""
    sph = curve.dpot.spherical()
    out = {
        "a_r": sph.accel_r, "a_theta": sph.accel_theta, "a_phi": curve.dpot.cylindrical().accel_phi,
        "norm": np.sqrt(sum(curve[n] ** 2 for n in ACCEL)),
    }
    return {k: np.atleast_2d(v.transpose(..., curve.accel_x.dims[-1]).values.astype(np.float64)) for k, v in out.items()}


def mirrored_pairs(ds: xr.Dataset, z_kpc: float = NORTH_SOUTH_Z_KPC) -> dict[str, tuple[str, np.ndarray, xr.Dataset, xr.Dataset]]:
    """Curve name → (coordinate name, coordinate values, north curve, south curve), sampled at the same coordinates."""
    fields = ds[[n for n in ACCEL + ["in_volume"] if n in ds]]
    north_line = radial_line(fields, z_kpc)
    north_arc = azimuthal_arc(fields, z_kpc)
    o = observer_kpc(ds)
    s_sun = np.linalg.norm(o) * np.arcsin(o[2] / np.linalg.norm(o))
    half = polar_arc(fields).s.values
    s = half[half > max(s_sun, 0)]  # the north half; its mirror −s is the south
    r_line = north_line.r.values
    return {
        "radial_lines": ("r_kpc", r_line, north_line, radial_line(fields, -z_kpc, R=north_line.R.values)),
        "azimuthal_arcs": ("dphi_rad", north_arc.dphi.values, north_arc, azimuthal_arc(fields, -z_kpc, north_arc.dphi.values)),
        "polar_arc": ("s_kpc", s, polar_arc(fields, s=s), polar_arc(fields, s=-s)),
    }


def north_south(ds: xr.Dataset, z_kpc: float = NORTH_SOUTH_Z_KPC) -> dict:
    """δ_r, δ_θ and a_φ/|a| (north and south) along each mirrored pair of curves, with their largest medians."""
    out = {}
    for name, (coord, values, north, south) in mirrored_pairs(ds, z_kpc).items():
        n, s = spherical_components(north), spherical_components(south)
        valid = north.in_volume.values & south.in_volume.values
        norm = 0.5 * (n["norm"] + s["norm"])
        ratios = {
            "delta_r": (n["a_r"] - s["a_r"]) / norm,
            "delta_theta": (n["a_theta"] + s["a_theta"]) / norm,
            "a_phi_over_a_north": n["a_phi"] / n["norm"],
            "a_phi_over_a_south": s["a_phi"] / s["norm"],
        }
        curves = {coord: values[valid].tolist()}
        largest = {}
        for key, value in ratios.items():
            q = summarise(value[:, valid])
            curves[key] = {k: v.tolist() for k, v in q.items()}
            largest[key] = float(np.max(np.abs(q["median"]))) if valid.any() else None
        out[name] = {"n_points": int(valid.sum()), "max_abs_median": largest, "curves": curves}
    return {"z_kpc": z_kpc, **out}
