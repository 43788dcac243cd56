"""Quicklook PNGs written beside every cube: the plane through the observer."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from .constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3  # noqa: E402
from .sources.mocks import PlummerTruth  # noqa: E402


def write_quicklook(cube_path: Path, png_path: Path, truth: PlummerTruth | None = None) -> None:
    """Φ, |a| with its direction, ρ and n in the z-plane through the observer (member 0).

    With a mock's `truth`, a second row shows the recovered/true ratios of |a| and ρ.
    """
    ds = xr.open_zarr(cube_path)
    z0 = float(ds.attrs["observer_position_kpc"][2])
    plane = ds.isel(member=0).sel(z=z0, method="nearest").load()
    X, Y = np.meshgrid(plane.x.values, plane.y.values, indexing="ij")
    mask = np.where(plane.in_volume.values, 1.0, np.nan)
    a_mag = np.hypot(plane.accel_x.values, plane.accel_y.values)
    panels = [
        ("potential", plane.potential.values, "Φ [km² s⁻²]"),
        ("accel", a_mag, "|a_xy| [km² s⁻² kpc⁻¹]"),
        ("density", plane.density.values, "ρ [M☉ pc⁻³]"),
    ]
    if "tracer_density" in plane:
        panels.append(("tracer_density", np.log10(plane.tracer_density.values), "log₁₀ n [kpc⁻³]"))
    rows = 2 if truth is not None else 1
    fig, axes = plt.subplots(rows, len(panels), figsize=(4 * len(panels), 3.6 * rows), squeeze=False)
    for ax, (name, values, label) in zip(axes[0], panels):
        image = ax.pcolormesh(X, Y, values * mask, shading="nearest")
        fig.colorbar(image, ax=ax, label=label)
        if name == "accel":
            step = max(len(plane.x) // 12, 1)
            ax.quiver(X[::step, ::step], Y[::step, ::step], plane.accel_x.values[::step, ::step], plane.accel_y.values[::step, ::step])
    if truth is not None:
        pts = np.stack([X, Y, np.full_like(X, float(plane.z))], axis=-1)
        true_a = np.asarray(truth.acceleration(pts))
        true_rho = np.asarray(truth.density(pts)) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
        ratios = [
            (a_mag / np.hypot(true_a[..., 0], true_a[..., 1]), "|a_xy| / truth"),
            (plane.density.values / true_rho, "ρ / truth"),
        ]
        for ax, (values, label) in zip(axes[1], ratios):
            image = ax.pcolormesh(X, Y, values * mask, shading="nearest", cmap="RdBu_r", vmin=0.5, vmax=1.5)
            fig.colorbar(image, ax=ax, label=label)
        for ax in axes[1][len(ratios):]:
            ax.axis("off")
    for ax in axes.flat:
        if ax.axison:
            ax.set_aspect("equal")
            ax.set_xlabel("x [kpc]")
            ax.set_ylabel("y [kpc]")
    fig.suptitle(f"{ds.attrs['method']} · z = {float(plane.z):.2f} kpc · {ds.attrs['n_tracers']} tracers")
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
