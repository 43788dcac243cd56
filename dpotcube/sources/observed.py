"""Observed stars: Gaia-style astrometry → cuts → Galactocentric positions, velocities and covariances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from ..errors import DataError
from ..recipe import DataSpec
from .astrometry import (
    CORRELATIONS,
    ERRORS,
    OBSERVABLES,
    galactocentric_covariance,
    observable_covariance,
    to_galactocentric,
)
from .cuts import CutReport, lim_cuts


@dataclass(frozen=True)
class ObservedStars:
    """Stars kept after the cuts, in the Galactocentric frame, with the selection report.

    `covariances` has shape `(n, 6, 6)` (kpc, km/s), or is `None` when the table lacks the parallax, proper-motion
    or radial-velocity errors.
    """

    positions: Float[np.ndarray, "n 3"]
    velocities: Float[np.ndarray, "n 3"]
    covariances: Float[np.ndarray, "n 6 6"] | None
    report: list[CutReport]


def observed_stars(columns: dict[str, np.ndarray], data: DataSpec, apply_cuts: bool) -> ObservedStars:
    """Convert Gaia-style `columns` (see `table.gaia_columns`) with the recipe's frame; cut; propagate errors.

    Rows with non-finite or non-positive parallaxes cannot be placed and are removed first. With
    `apply_cuts`, `data.gaia.cuts` follow in order; every step is counted in the report.
    """
    astrometry = np.column_stack([columns[name] for name in OBSERVABLES])
    n_rows = len(astrometry)
    placeable = np.all(np.isfinite(astrometry), axis=1) & (astrometry[:, 2] > 0)
    report = [CutReport("finite astrometry and parallax > 0", int(n_rows - placeable.sum()), int(placeable.sum()))]
    astrometry = astrometry[placeable]
    kept = {name: values[placeable] for name, values in columns.items()}
    positions, velocities = to_galactocentric(astrometry, data.frame) if len(astrometry) else (np.empty((0, 3)),) * 2
    if apply_cuts:
        if "parallax_error" not in kept:
            raise DataError(
                "The Gaia cuts need a `parallax_error` column (mas) for parallax_over_error; map it with "
                "`data.table.columns: {parallax_error: NAME}` or set `data.table.apply_gaia_cuts: false`."
            )
        speed = np.linalg.norm(velocities, axis=1)
        parallax, error, grvs = astrometry[:, 2], kept["parallax_error"], kept.get("grvs_mag")
        keep, steps = lim_cuts(parallax, error, grvs, speed, data.gaia.cuts, data.volume_radius_kpc)
        report += steps
        astrometry, positions, velocities = astrometry[keep], positions[keep], velocities[keep]
        kept = {name: values[keep] for name, values in kept.items()}
    covariances = None
    if all(name in kept for name in ERRORS[2:]) and len(astrometry):  # ra_error, dec_error may be absent: 0
        errors = np.column_stack([np.nan_to_num(kept.get(name, np.zeros(len(astrometry)))) for name in ERRORS])
        correlations = {ij: np.nan_to_num(kept[name]) for ij, name in CORRELATIONS.items() if name in kept}
        covariances = galactocentric_covariance(astrometry, observable_covariance(errors, correlations), data.frame)
    return ObservedStars(positions, velocities, covariances, report)
