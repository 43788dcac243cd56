"""Mass density along the polar arc through the observer, with the members' 16–84% band."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3, MSUN_PER_PC3_TO_GEV_PER_CM3
from ._common import DENSITY_UNITS, summarise, title_prefix

if TYPE_CHECKING:  # JAX-based: imported for annotations only, so plotting never imports JAX
    from ..sources.mocks import PlummerTruth

DENSITIES = {"density": ("ρ total", "C0"), "density_dm": ("ρ_DM", "C3")}


def polar_arc_density_figure(ds: xr.Dataset, truth: PlummerTruth | None = None) -> Figure:
    """ρ (and ρ_DM where the cube has it) against s = r⊙(π/2 − θ): median line and 16–84% band over members.

    Draws the baryonic model where `density_baryon` exists, and a mock's analytic ρ with `truth`.
    """
    arc = ds.dpot.polar_arc()
    valid = arc.in_volume.values
    s = arc.s.values
    fig = Figure(figsize=(8, 5.2))
    ax = fig.subplots()
    n = ds.sizes.get("member", 1)
    for name, (label, colour) in DENSITIES.items():
        if name not in arc:
            continue
        q = summarise(arc, name)
        if n > 1:
            band = f"{label}: 16–84% over {n} members"
            ax.fill_between(s, q.p16, q.p84, color=colour, alpha=0.3, linewidth=0, label=band)
        ax.plot(s, q["median"], color=colour, label=f"{label}: median" + ("" if n > 1 else " (one member: no range)"))
    if "density_baryon" in arc:
        model = str(ds.attrs.get("baryon_model", "model")).split(" (")[0]  # its name, without the long details
        ax.plot(s, arc.density_baryon.where(arc.in_volume), "C2--", label=f"ρ_baryon ({model}, nominal)")
    if truth is not None:
        pts = np.stack([arc[c].values for c in "xyz"], axis=-1)
        rho = np.asarray(truth.density(pts)) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
        ax.plot(s, np.where(valid, rho, np.nan), "k:", label="ρ truth (mock)")
    o = np.asarray(ds.attrs["observer_position_kpc"])
    r_sun = float(np.linalg.norm(o))
    ax.axvline(r_sun * np.arcsin(o[2] / r_sun), color="0.4", linewidth=0.8, linestyle="--", label="observer")
    if valid.any():
        ax.set_xlim(s[valid].min(), s[valid].max())
    ax.set(xlabel="s = r⊙ (π/2 − θ) [kpc]   (south ← 0 → north)", ylabel=f"ρ [{DENSITY_UNITS}]")
    ax.secondary_yaxis(
        "right", functions=(lambda v: v * MSUN_PER_PC3_TO_GEV_PER_CM3, lambda v: v / MSUN_PER_PC3_TO_GEV_PER_CM3)
    ).set_ylabel("ρ [GeV cm⁻³]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=3, frameon=False)
    ax.set_title(f"{title_prefix(ds)}\nmass density along the polar arc r = r⊙ = {r_sun:.3f} kpc through the observer")
    fig.tight_layout()
    return fig
