"""Shared pieces of the quicklook figures: member medians without NaN warnings, labels, the observer marker."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from matplotlib.axes import Axes

from .. import accessor  # noqa: F401  (registers ds.dpot)

ACCEL_UNITS = "km² s⁻² kpc⁻¹"
DENSITY_UNITS = "M☉ pc⁻³"
POTENTIAL_UNITS = "km² s⁻²"


def summarise(ds: xr.Dataset, name: str) -> xr.Dataset:
    """`p16`, `median`, `p84` over members of `ds[name]`, computed (points outside the volume stay NaN, quietly)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "The cube has one member")  # figures say "median over 1 member"
        return ds.dpot.summary(name).compute()


def member_note(ds: xr.Dataset) -> str:
    n = ds.sizes.get("member", 1)
    return f"median over {n} member{'s' if n != 1 else ''}"


def title_prefix(ds: xr.Dataset) -> str:
    """`method · n tracers` from the cube's attributes (blank parts left out)."""
    parts = [str(ds.attrs.get("method", "")), f"{ds.attrs['n_tracers']:,} tracers" if "n_tracers" in ds.attrs else ""]
    return " · ".join(p for p in parts if p)


def symmetric_limits(values: np.ndarray) -> dict[str, float]:
    """`vmin`/`vmax` symmetric about zero, for a diverging colour map."""
    top = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    return {"vmin": -top, "vmax": top}


def mark_observer(ax: Axes, h: float, v: float) -> None:
    ax.plot([h], [v], marker="*", color="white", markeredgecolor="black", markersize=11, linestyle="none",
            label="observer")
