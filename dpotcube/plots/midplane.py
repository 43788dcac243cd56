"""Contours of Φ in the midplane, optionally against a reference potential (e.g. galpy's MWPotential2014)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr
from jaxtyping import Float
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ._common import POTENTIAL_UNITS, mark_observer, member_note, summarise, title_prefix

ReferencePotential = Callable[[Float[np.ndarray, "... 3"]], Float[np.ndarray, "..."]]
"""Φ in km² s⁻² at Galactocentric points in kpc, shape `(..., 3)` → `(...)`."""


def midplane_potential_figure(
    ds: xr.Dataset,
    reference_potential: ReferencePotential | None = None,
    reference_label: str = "reference",
    z_kpc: float = 0.0,
) -> Figure:
    """Filled contours of the median Φ at z = `z_kpc` inside the volume; `reference_potential` dashed, same levels.

    The reference is shifted to vanish at `attrs["potential_reference_point"]`, as the cube's Φ does,
    so the two differ only where the fields do.
    """
    masked = ds[["potential"]].where(ds.in_volume).interp(z=z_kpc)
    phi = summarise(masked, "potential")["median"].transpose("x", "y").values
    X, Y = np.meshgrid(ds.x.values, ds.y.values, indexing="ij")
    finite = np.isfinite(phi)
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    if not finite.any():
        ax.text(0.5, 0.5, f"the volume does not reach z = {z_kpc:g} kpc", ha="center", transform=ax.transAxes)
        return fig
    ref = None
    if reference_potential is not None:
        pts = np.stack([X, Y, np.full_like(X, z_kpc)], axis=-1)
        zero = np.asarray(ds.attrs["potential_reference_point"], np.float64)
        ref = np.asarray(reference_potential(pts), np.float64) - float(np.asarray(reference_potential(zero)))
        ref = np.where(finite, ref, np.nan)
    both = phi[finite] if ref is None else np.concatenate([phi[finite], ref[finite]])
    levels = MaxNLocator(12).tick_values(both.min(), both.max())  # shared levels: a mismatch shows as spacing
    filled = ax.contourf(X, Y, np.ma.masked_invalid(phi), levels=levels, cmap="viridis")
    # solid: a one-colour contour would otherwise dash negative levels, like the reference
    lines = ax.contour(X, Y, np.ma.masked_invalid(phi), levels=levels, colors="black", linewidths=0.8,
                       linestyles="solid")
    ax.clabel(lines, fontsize=7, fmt="%.0f")
    fig.colorbar(filled, ax=ax, label=f"Φ [{POTENTIAL_UNITS}]")
    handles = [Line2D([], [], color="black", linewidth=0.8, label=f"cube ({member_note(ds)})")]
    if ref is not None:
        ax.contour(X, Y, np.ma.masked_invalid(ref), levels=levels, colors="C3", linewidths=1.2, linestyles="--")
        handles.append(Line2D([], [], color="C3", linewidth=1.2, linestyle="--", label=reference_label))
    o = np.asarray(ds.attrs["observer_position_kpc"])
    mark_observer(ax, float(o[0]), float(o[1]))
    handles.append(ax.lines[-1])
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    ax.set(xlabel="x [kpc]", ylabel="y [kpc]", aspect="equal")
    title = f"{title_prefix(ds)}\nΦ at z = {z_kpc:g} kpc inside the volume (Φ = 0 at the reference point)"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
