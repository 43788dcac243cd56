"""The published Gaia DR3 tracer cuts (Lim et al.), applied in order with a count of what each removed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float

from ..recipe import GaiaCutsSpec


@dataclass(frozen=True)
class CutReport:
    """One row of the selection report: a cut, the stars it removed and the stars left after it."""

    cut: str
    removed: int
    remaining: int

    def as_dict(self) -> dict:
        return {"cut": self.cut, "removed": self.removed, "remaining": self.remaining}


def absolute_magnitude_limit(cuts: GaiaCutsSpec, radius_kpc: float) -> float:
    """M_G limit below which every star would be brighter than `grvs_limit_mag` anywhere within R."""
    return cuts.grvs_limit_mag - (5 * np.log10(radius_kpc) + 10)


def absolute_magnitude(grvs_mag: Float[np.ndarray, " n"], parallax_mas: Float[np.ndarray, " n"]) -> np.ndarray:
    """M_G = G_RVS − 5 log10(d/kpc) − 10 with d = 1/parallax."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return grvs_mag + 5 * np.log10(parallax_mas) - 10


def lim_cuts(
    parallax: Float[np.ndarray, " n"],
    parallax_error: Float[np.ndarray, " n"],
    grvs_mag: Float[np.ndarray, " n"] | None,
    speed_kms: Float[np.ndarray, " n"],
    cuts: GaiaCutsSpec,
    volume_radius_kpc: float,
) -> tuple[Bool[np.ndarray, " n"], list[CutReport]]:
    """Masks of the quality, speed, completeness and distance cuts, combined in that order.

    `grvs_mag=None` skips the completeness cut (tables without photometry); it is then reported as skipped.
    Non-finite values fail the cut that uses them.
    """
    radius = cuts.completeness_radius_kpc or volume_radius_kpc
    m_limit = absolute_magnitude_limit(cuts, radius)
    with np.errstate(divide="ignore", invalid="ignore"):
        quality = parallax / parallax_error > cuts.parallax_over_error_min
        complete = None if grvs_mag is None else absolute_magnitude(grvs_mag, parallax) < m_limit
        near = (parallax > 0) & (1.0 / parallax < volume_radius_kpc)
    steps: list[tuple[str, np.ndarray | None]] = [
        (f"parallax_over_error > {cuts.parallax_over_error_min:g}", quality),
        (f"|v| < {cuts.max_speed_kms:g} km/s (Galactic rest frame)", speed_kms < cuts.max_speed_kms),
        (f"M_G < {m_limit:.4f} (complete to {radius:g} kpc)", complete),
        (f"d = 1/parallax < {volume_radius_kpc:g} kpc", near),
    ]
    keep = np.ones(len(parallax), bool)
    report = []
    for name, mask in steps:
        if mask is None:
            report.append(CutReport(f"{name}: skipped, no grvs_mag column", 0, int(keep.sum())))
            continue
        after = keep & mask
        report.append(CutReport(name, int(keep.sum() - after.sum()), int(after.sum())))
        keep = after
    return keep, report
