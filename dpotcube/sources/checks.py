"""Plausibility checks on input stars: catch unit slips before they become a wrong map."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from ..errors import DataError

_MAX_MEDIAN_DISTANCE_KPC = 100.0  # no tracer sample has its median star beyond 100 kpc of the Galactic centre
_MAX_MEDIAN_SPEED_KMS = 3000.0  # nor a median Galactocentric speed above 3,000 km/s


def check_units(positions: Float[np.ndarray, "n 3"], velocities: Float[np.ndarray, "n 3"], origin: str) -> None:
    """Refuse positions that look like pc (not kpc) and velocities that look like m/s (not km/s)."""
    with np.errstate(over="ignore"):  # values near the float limit: their norm is inf, and refused below
        distance = float(np.median(np.linalg.norm(positions, axis=1)))
        speed = float(np.median(np.linalg.norm(velocities, axis=1)))
    if distance > _MAX_MEDIAN_DISTANCE_KPC:
        raise DataError(
            f"The median star of {origin} lies {distance:.4g} kpc from the Galactic centre: the positions look like pc, "
            "not kpc. Convert x, y, z to kpc (divide by 1000) or give the columns astropy units (ECSV/FITS)."
        )
    if speed > _MAX_MEDIAN_SPEED_KMS:
        raise DataError(
            f"The median speed in {origin} is {speed:.4g} km/s: the velocities look like m/s, not km/s. "
            "Convert vx, vy, vz to km/s (divide by 1000) or give the columns astropy units (ECSV/FITS)."
        )


def drop_nonfinite(values: Float[np.ndarray, "n k"], origin: str, max_fraction: float) -> tuple[np.ndarray, int]:
    """Drop rows with NaN or inf; refuse if more than `max_fraction` of them are bad."""
    finite = np.all(np.isfinite(values), axis=1)
    n_bad = int((~finite).sum())
    if len(values) and n_bad / len(values) > max_fraction:
        raise DataError(
            f"{n_bad} of {len(values)} rows of {origin} ({n_bad / len(values):.1%}) have NaN or inf values, more than "
            f"`data.table.max_nonfinite_fraction` = {max_fraction}. Clean the table, or raise that limit to drop them."
        )
    return values[finite], n_bad


def check_spread(values: Float[np.ndarray, "n k"], names: list[str], origin: str) -> None:
    """Refuse a star set with (almost) no spread in a coordinate: the flows standardise by it and would divide by 0."""
    with np.errstate(over="ignore", invalid="ignore"):  # values near the float limit: an inf spread is a spread
        spread = np.std(values, axis=0)
        scale = np.maximum(np.abs(np.mean(values, axis=0)), 1.0)
    flat = [name for name, s, m in zip(names, spread, scale) if not s > 1e-9 * m]
    if flat:
        raise DataError(
            f"Column(s) {', '.join(f'`{n}`' for n in flat)} of {origin} hold the same value for every star (no spread): "
            "the stars are degenerate and no density can be fitted. Check the columns and their mapping in "
            "`data.table.columns`."
        )
