"""Φ, a, ρ and n in the z-plane through the observer, with ratios to a mock's truth."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from ..constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3
from ._common import ACCEL_UNITS, DENSITY_UNITS, POTENTIAL_UNITS, mark_observer, member_note, summarise, title_prefix

if TYPE_CHECKING:  # JAX-based: imported for annotations only, so plotting never imports JAX
    from ..sources.mocks import PlummerTruth


def plane_figure(ds: xr.Dataset, truth: PlummerTruth | None = None) -> Figure:
    """Median Φ, |a_xy| with its direction, ρ and (where present) n in the grid plane nearest the observer's z.

    With a mock's `truth`, a second row shows the recovered/true ratios of |a_xy| and ρ.
    """
    z0 = float(ds.attrs["observer_position_kpc"][2])
    plane = ds.sel(z=z0, method="nearest")
    names = [n for n in ("potential", "accel_x", "accel_y", "density", "tracer_density") if n in ds]  # per method
    median = {name: summarise(plane, name)["median"].values for name in names}
    X, Y = np.meshgrid(plane.x.values, plane.y.values, indexing="ij")
    mask = np.where(plane.in_volume.values, 1.0, np.nan)
    a_mag = np.hypot(median["accel_x"], median["accel_y"])
    panels = [("Φ", median["potential"], f"Φ [{POTENTIAL_UNITS}]", "viridis")] if "potential" in median else []
    accel_panel = len(panels)
    panels.append(("|a_xy| and direction", a_mag, f"|a_xy| [{ACCEL_UNITS}]", "viridis"))
    if "density" in median:
        panels.append(("ρ", median["density"], f"ρ [{DENSITY_UNITS}]", "viridis"))
    if "tracer_density" in median:
        n = median["tracer_density"]  # zero outside the tracer volume for a model with the ball's hard edge
        panels.append(("tracer density n", np.log10(np.where(n > 0, n, np.nan)), "log₁₀ n [kpc⁻³]", "viridis"))
    rows = 2 if truth is not None else 1
    fig = Figure(figsize=(4.2 * len(panels), 3.8 * rows))
    axes = fig.subplots(rows, len(panels), squeeze=False)
    for ax, (title, values, label, cmap) in zip(axes[0], panels):
        image = ax.pcolormesh(X, Y, values * mask, shading="nearest", cmap=cmap)
        fig.colorbar(image, ax=ax, label=label)
        ax.set_title(title)
    step = max(len(plane.x) // 12, 1)
    axes[0][accel_panel].quiver(
        X[::step, ::step], Y[::step, ::step], (median["accel_x"] * mask)[::step, ::step],
        (median["accel_y"] * mask)[::step, ::step], color="white",
    )
    if truth is not None:
        pts = np.stack([X, Y, np.full_like(X, float(plane.z))], axis=-1)
        true_a = np.asarray(truth.acceleration(pts))
        true_rho = np.asarray(truth.density(pts)) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
        ratios = [(a_mag / np.hypot(true_a[..., 0], true_a[..., 1]), "|a_xy| / truth")]
        if "density" in median:
            ratios.append((median["density"] / true_rho, "ρ / truth"))
        for ax, (values, label) in zip(axes[1], ratios):
            shown = values * mask
            image = ax.pcolormesh(X, Y, shown, shading="nearest", cmap="RdBu_r", norm=ratio_norm(shown))
            fig.colorbar(image, ax=ax, label=label)
            finite = shown[np.isfinite(shown)]
            span = f"\n(range {finite.min():.2g} to {finite.max():.2g}, none clipped)" if finite.size else ""
            ax.set_title(label + span)
        for ax in axes[1][len(ratios):]:
            ax.axis("off")
    o = np.asarray(ds.attrs["observer_position_kpc"])
    for ax in axes.flat:
        if ax.axison:
            mark_observer(ax, float(o[0]), float(o[1]))
            ax.set_aspect("equal")
            ax.set_xlabel("x [kpc]")
            ax.set_ylabel("y [kpc]")
    fig.suptitle(f"{title_prefix(ds)} · plane z = {float(plane.z):.2f} kpc through the observer · {member_note(ds)}")
    fig.tight_layout()
    return fig


def ratio_norm(values: np.ndarray) -> TwoSlopeNorm:
    """A diverging scale centred on 1 that spans every finite value: nothing is clipped (the colour bar shows the
    real range; before, 0.5–1.5 was fixed while ratios spanned 0.1–3.5)."""
    finite = values[np.isfinite(values)]
    low = min(float(finite.min()), 0.9) if finite.size else 0.5
    high = max(float(finite.max()), 1.1) if finite.size else 1.5
    return TwoSlopeNorm(vcenter=1.0, vmin=low, vmax=high)
