"""v_c(R), K_z(z) and Σ(|z| < z_max) in the observer's meridional plane: median and 16–84% band over members."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..constants import G_KPC_KM2_S2_PER_MSUN, MSUN_PER_KPC3_TO_MSUN_PER_PC3
from ..profiles import kz, surface_density, vcirc
from ._common import title_prefix

if TYPE_CHECKING:  # JAX-based: imported for annotations only
    from ..sources.mocks import PlummerTruth


def _band(ax: Axes, x: np.ndarray, out: xr.Dataset, name: str, n_members: int, colour: str = "C0") -> None:
    label = f"16–84% over {n_members} members" if n_members > 1 else "one member: no range"
    if n_members > 1:
        ax.fill_between(x, out[f"{name}_p16"], out[f"{name}_p84"], color=colour, alpha=0.3, linewidth=0, label=label)
    ax.plot(x, out[name], color=colour, label="median" + ("" if n_members > 1 else f" ({label})"))


def vcirc_figure(ds: xr.Dataset, truth: PlummerTruth | None = None) -> Figure | None:
    """v_c(R) = √(−R a_R) in the plane z = 0 through the observer's meridian; a mock's truth dotted."""
    if "accel_x" not in ds:
        return None
    out = vcirc(ds)
    R = out.R.values
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    _band(ax, R, out, "vcirc", ds.sizes.get("member", 1))
    if truth is not None:
        phi = np.arctan2(ds.attrs["observer_position_kpc"][1], ds.attrs["observer_position_kpc"][0])
        pts = np.stack([R * np.cos(phi), R * np.sin(phi), np.zeros_like(R)], axis=-1)
        a = np.asarray(truth.acceleration(pts))
        ax.plot(R, np.sqrt(-(a[:, 0] * np.cos(phi) + a[:, 1] * np.sin(phi)) * R), "k:", label="truth (mock)")
    ax.axvline(float(np.hypot(*ds.attrs["observer_position_kpc"][:2])), color="0.5", ls="--", lw=0.8, label="observer")
    ax.set(xlabel="R [kpc]", ylabel="v_c [km s⁻¹]")
    return _finished(fig, ax, f"{title_prefix(ds)}\ncircular velocity √(−R a_R) at z = 0 in the observer's meridian "
                     "(NaN outside)")


def kz_figure(ds: xr.Dataset, truth: PlummerTruth | None = None) -> Figure | None:
    """K_z(z) at the observer's R (in 2πG M☉ pc⁻² on the right axis); a mock's truth dotted."""
    if "accel_z" not in ds:
        return None
    out = kz(ds)
    z = out.z.values
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    _band(ax, z, out, "kz", ds.sizes.get("member", 1))
    if truth is not None:
        o = np.asarray(ds.attrs["observer_position_kpc"])
        pts = np.stack([np.full_like(z, o[0]), np.full_like(z, o[1]), z], axis=-1)
        ax.plot(z, np.asarray(truth.acceleration(pts))[:, 2], "k:", label="truth (mock)")
    ax.secondary_yaxis("right", functions=(lambda v: v / (2e6 * np.pi * G_KPC_KM2_S2_PER_MSUN),
                                           lambda v: v * 2e6 * np.pi * G_KPC_KM2_S2_PER_MSUN)
                       ).set_ylabel("K_z / 2πG [M☉ pc⁻²]")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set(xlabel="z [kpc]", ylabel="K_z = a_z [km² s⁻² kpc⁻¹]")
    return _finished(fig, ax, f"{title_prefix(ds)}\nvertical force at R = {out.attrs['R_kpc']:.2f} kpc "
                     "(negative above the plane)")


def surface_density_figure(ds: xr.Dataset, truth: PlummerTruth | None = None) -> Figure | None:
    """Σ(|z| < z_max) against z_max at the observer's R, of ρ (and ρ_DM where present); a mock's truth dotted."""
    if "density" not in ds:
        return None
    radius = float(ds.attrs.get("volume_radius_kpc", 3.0))
    z_max = np.linspace(0.1, 0.95 * radius, 16)
    columns = [surface_density(ds, float(h)) for h in z_max]
    out = xr.concat(columns, dim="z_max").assign_coords(z_max=("z_max", z_max))
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    n = ds.sizes.get("member", 1)
    _band(ax, z_max, out, "surface_density", n)
    if "surface_density_dm" in out:
        _band(ax, z_max, out.rename({k: k.replace("surface_density_dm", "dm") for k in out.data_vars if "dm" in k}),
              "dm", n, colour="C3")
        ax.lines[-1].set_label("ρ_DM: median")
    if truth is not None:
        o = np.asarray(ds.attrs["observer_position_kpc"])
        zz = np.linspace(-z_max.max(), z_max.max(), 2001)
        rho = np.asarray(truth.density(np.stack([np.full_like(zz, o[0]), np.full_like(zz, o[1]), zz], -1)))
        rho = rho * MSUN_PER_KPC3_TO_MSUN_PER_PC3 * 1000  # M☉ pc⁻³ × (pc per kpc)
        sigma = [np.trapezoid(np.where(np.abs(zz) <= h, rho, 0.0), zz) for h in z_max]
        ax.plot(z_max, sigma, "k:", label="truth (mock)")
    ax.set(xlabel="z_max [kpc]", ylabel="Σ(|z| < z_max) [M☉ pc⁻²]")
    return _finished(fig, ax, f"{title_prefix(ds)}\nsurface density at R = {out.attrs.get('R_kpc', float('nan')):.2f} kpc "
                     "(NaN once the column leaves the volume)")


def _finished(fig: Figure, ax, title: str) -> Figure:
    """Grid, legend, title and layout of every profile figure."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig
