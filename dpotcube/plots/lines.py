"""a_r, a_θ, a_φ along the published north and south lines and arcs (the layout of Lim et al. 2025, Fig. 8)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..curves import NORTH_SOUTH_Z_KPC
from ._common import ACCEL_UNITS, summarise, title_prefix

ROWS = {"accel_r": "a_r", "accel_theta": "a_θ", "accel_phi": "a_φ"}
NORTH, SOUTH = "goldenrod", "purple"
DASHED = {"south"}  # dashed so that a north–south symmetric field still shows both curves


def north_south_figure(ds: xr.Dataset) -> Figure:
    """Rows a_r, a_θ, a_φ; columns: radial lines (against r), azimuthal arcs (against φ − φ⊙) at z = ±1.5 kpc,
    and the polar arc through the observer (against s). South a_θ is mirrored (−a_θ), so north–south
    symmetry shows as overlapping curves. Median line and 16–84% band over members."""
    z = NORTH_SOUTH_Z_KPC
    columns = [
        ("r [kpc]", "r", [(ds.dpot.radial_line(z), "north", NORTH), (ds.dpot.radial_line(-z), "south", SOUTH)]),
        ("φ − φ⊙ [rad]", "dphi",
         [(ds.dpot.azimuthal_arc(z), "north", NORTH), (ds.dpot.azimuthal_arc(-z), "south", SOUTH)]),
        ("s = r⊙ (π/2 − θ) [kpc]", "s", [(ds.dpot.polar_arc(), "polar arc", "C0")]),
    ]
    titles = [f"lines z = ±{z:g} kpc", f"arcs r = r⊙, z = ±{z:g} kpc", "polar arc r = r⊙"]
    fig = Figure(figsize=(13, 9))
    axes = fig.subplots(3, 3, sharex="col")
    for col, ((xlabel, coord, curves), title) in enumerate(zip(columns, titles)):
        covered = []
        for curve, label, colour in curves:
            components = _spherical(curve)
            x = curve[coord].values
            covered.extend(x[curve.in_volume.values])
            for row, (name, symbol) in enumerate(ROWS.items()):
                mirrored = name == "accel_theta" and label == "south"
                shown = f"−{symbol} (south)" if mirrored else label
                _band(axes[row, col], x, components, name, colour, shown, -1 if mirrored else 1, label in DASHED)
        if covered:
            axes[0, col].set_xlim(min(covered), max(covered))
        axes[0, col].set_title(title)
        axes[-1, col].set_xlabel(xlabel)
    for row, symbol in enumerate(ROWS.values()):
        axes[row, 0].set_ylabel(f"{symbol} [{ACCEL_UNITS}]")
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(f"{title_prefix(ds)} · spherical acceleration components along the published lines and arcs")
    fig.tight_layout()
    return fig


def _spherical(curve: xr.Dataset) -> xr.Dataset:
    sph = curve.dpot.spherical()
    return sph.assign(accel_phi=curve.dpot.cylindrical().accel_phi)


def _band(
    ax: Axes, x: np.ndarray, components: xr.Dataset, name: str, colour: str, label: str, sign: int, dashed: bool
) -> None:
    q = summarise(components, name)
    ax.fill_between(x, sign * q.p16.values, sign * q.p84.values, color=colour, alpha=0.25, linewidth=0)
    ax.plot(x, sign * q["median"].values, color=colour, label=label, linestyle="--" if dashed else "-")
