"""The solar acceleration: the cube's a averaged over the 100 pc ball around the Sun (Lim et al. 2025, Table I).

Reported per member and as the members' median and 16–84% range, in Galactocentric Cartesian
components (astropy's frame) and in the paper's axes, in km² s⁻² kpc⁻¹ and 10⁻¹⁰ m s⁻².
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from jaxtyping import Float

from ..constants import KM2_S2_PER_KPC_TO_M_S2
from ..curves import observer_kpc
from ..errors import DataError
from ..geometry import qmc_ball
from .sampling import BALL_RADIUS_KPC, sample_fields, summarise

TO_1E10_M_S2: float = KM2_S2_PER_KPC_TO_M_S2 * 1e10
"""km² s⁻² kpc⁻¹ → 10⁻¹⁰ m s⁻²."""

ACCEL_NAMES = ["accel_x", "accel_y", "accel_z"]


def lim_axes(observer: Float[np.ndarray, "3"]) -> Float[np.ndarray, "3 3"]:
    """Rows: the unit vectors of Lim et al.'s Cartesian axes in astropy's Galactocentric frame.

    Their x axis runs from the Galactic centre through the Sun, z points to the north Galactic pole,
    and the disk rotates towards −y at the Sun: the observer's cylindrical (R̂, φ̂, ẑ). For the
    default Sun (φ⊙ = π) this is (−x, −y, z).
    """
    phi = np.arctan2(observer[1], observer[0])
    return np.array([[np.cos(phi), np.sin(phi), 0.0], [-np.sin(phi), np.cos(phi), 0.0], [0.0, 0.0, 1.0]])


def ball_points(ds: xr.Dataset, radius: float = BALL_RADIUS_KPC, n_log2: int = 12, seed: int = 0) -> Float[np.ndarray, "n 3"]:
    """The QMC points (kpc) in the ball of `radius` around the cube's observer that the average uses."""
    return observer_kpc(ds) + qmc_ball(radius, n_log2, seed)


def solar_acceleration(
    ds: xr.Dataset, radius: float = BALL_RADIUS_KPC, n_log2: int = 12, seed: int = 0
) -> dict:
    """a⊙: the ball average of (accel_x, accel_y, accel_z) per member, and its member summaries.

    `members_kms2_per_kpc`: shape `(members, 3)`; `within_ball_std_kms2_per_kpc`: the members' median
    of the standard deviation inside the ball (Lim et al. add it to their error).
    """
    points = ball_points(ds, radius, n_log2, seed)
    fields, valid = sample_fields(ds, ACCEL_NAMES, points)
    if not valid.all():
        raise DataError(
            f"The {1000 * radius:g} pc ball around the observer is not inside the cube's volume ({(~valid).sum()} of "
            f"{len(valid)} points outside), so a⊙ cannot be averaged. Check `observer_position_kpc` and the grid."
        )
    a = np.stack([fields[n] for n in ACCEL_NAMES], axis=-1)  # (members, points, 3)
    per_member = a.mean(axis=1)
    axes = lim_axes(observer_kpc(ds))
    lim = per_member @ axes.T
    norm = np.linalg.norm(per_member, axis=1)

    def components(values: np.ndarray, names: str, scale: float = 1.0) -> dict:
        out = {c: _floats(summarise(scale * values[:, i])) for i, c in enumerate(names)}
        return out | {"norm": _floats(summarise(scale * norm))}

    return {
        "ball_radius_kpc": radius,
        "n_points": len(points),
        "n_members": len(per_member),
        "galactocentric_kms2_per_kpc": components(per_member, "xyz"),
        "galactocentric_1e-10_m_s2": components(per_member, "xyz", TO_1E10_M_S2),
        "lim2025_axes_1e-10_m_s2": components(lim, "xyz", TO_1E10_M_S2),
        "within_ball_std_kms2_per_kpc": np.median(a.std(axis=1), axis=0).tolist(),
        "members_kms2_per_kpc": per_member.tolist(),
    }


def _floats(summary: dict) -> dict[str, float]:
    return {k: float(v) for k, v in summary.items()}
