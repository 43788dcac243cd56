"""Azimuthal averages of a_R, a_φ, a_z over the volume, in the R–z plane."""

from __future__ import annotations

import numpy as np
import xarray as xr
from jaxtyping import Float
from matplotlib.figure import Figure

from ._common import ACCEL_UNITS, mark_observer, member_note, summarise, symmetric_limits, title_prefix

COMPONENTS = {"accel_R": "⟨a_R⟩_φ", "accel_phi": "⟨a_φ⟩_φ", "accel_z": "⟨a_z⟩_φ"}


def meridional_acceleration_figure(ds: xr.Dataset) -> Figure:
    """a_R, a_φ, a_z (median over members) averaged over the in-volume grid points in bins of R and z."""
    cyl = ds.dpot.cylindrical()
    inside = ds.in_volume.values
    R = np.broadcast_to(ds.dpot.R.values[:, :, None], inside.shape)[inside]
    z = np.broadcast_to(ds.z.values, inside.shape)[inside]
    R_edges, z_edges = _edges(R, _spacing(ds.x.values)), _edges(z, _spacing(ds.z.values))
    fig = Figure(figsize=(13, 4.2))
    axes = fig.subplots(1, 3)
    o = np.asarray(ds.attrs["observer_position_kpc"])
    for ax, (name, title) in zip(axes, COMPONENTS.items()):
        values = summarise(cyl, name)["median"].transpose("x", "y", "z").values[inside]
        mean = _binned_mean(R, z, values, R_edges, z_edges)
        limits = {} if name == "accel_R" else symmetric_limits(mean)
        image = ax.pcolormesh(R_edges, z_edges, mean.T, cmap="viridis" if name == "accel_R" else "RdBu_r", **limits)
        fig.colorbar(image, ax=ax, label=f"{title} [{ACCEL_UNITS}]")
        mark_observer(ax, float(np.hypot(o[0], o[1])), float(o[2]))
        ax.set(title=title, xlabel="R [kpc]", ylabel="z [kpc]", aspect="equal")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"{title_prefix(ds)} · acceleration averaged over azimuth within the volume · {member_note(ds)}")
    fig.tight_layout()
    return fig


def _binned_mean(
    R: Float[np.ndarray, " n"], z: Float[np.ndarray, " n"], values: Float[np.ndarray, " n"],
    R_edges: Float[np.ndarray, " a"], z_edges: Float[np.ndarray, " b"],
) -> Float[np.ndarray, "a-1 b-1"]:
    """Mean of `values` in each (R, z) bin; NaN where a bin holds no finite value."""
    finite = np.isfinite(values)
    bins = [R_edges, z_edges]
    total, _, _ = np.histogram2d(R[finite], z[finite], bins=bins, weights=values[finite])
    count, _, _ = np.histogram2d(R[finite], z[finite], bins=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _edges(values: Float[np.ndarray, " n"], width: float) -> Float[np.ndarray, " m"]:
    """Bin edges `width` apart, centred on values from min(values) on, covering every value."""
    n = int(np.ceil((values.max() - values.min()) / width + 1e-9)) + 1
    return values.min() - width / 2 + width * np.arange(n + 1)


def _spacing(axis: np.ndarray) -> float:
    return float(np.min(np.abs(np.diff(axis))))
