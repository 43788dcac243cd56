"""A mock's true selection: extinction A, S(x) and the observed tracer density in the plane through the observer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from ._common import mark_observer

if TYPE_CHECKING:  # JAX-based: imported for annotations only, so plotting never imports JAX
    from ..sources.mocks import PlummerTruth


def selection_plane_figure(truth: PlummerTruth, n_grid: int = 101) -> Figure | None:
    """A(x) (with dust), S(x) and log₁₀ S n in the plane z = z_observer, on an `n_grid`² grid; None without S."""
    if truth.selection is None:
        return None
    o, radius = np.asarray(truth.observer), truth.volume_radius_kpc
    h = np.linspace(-radius, radius, n_grid)
    X, Y = np.meshgrid(o[0] + h, o[1] + h, indexing="ij")
    pts = np.stack([X, Y, np.full_like(X, o[2])], axis=-1).reshape(-1, 3)
    mask = np.where(np.linalg.norm(pts - o, axis=1) < radius, 1.0, np.nan).reshape(X.shape)
    from ..sources.selection import selection_of

    s = selection_of(truth.selection, pts).reshape(X.shape)
    n_obs = np.asarray(truth.tracer_density(pts)).reshape(X.shape) * s
    panels = []
    if truth.selection.dust is not None:
        extinction = selection_of(truth.selection, pts, kind="extinction").reshape(X.shape)
        top = float(np.nanpercentile(extinction * mask, 99))  # one dense cloud should not wash out the rest
        panels.append(("extinction A from the observer", extinction, "A [mag]", "cividis_r", (0.0, top)))
    log_n = np.log10(n_obs)
    panels += [
        ("selection function S", s, "S", "magma", (0.0, 1.0)),
        ("observed tracer density S n", log_n, "log₁₀ S n [kpc⁻³]", "viridis",
         (float(np.nanpercentile(log_n * mask, 1)), None)),
    ]
    fig = Figure(figsize=(4.4 * len(panels), 3.9))
    for ax, (title, values, label, cmap, (vmin, vmax)) in zip(fig.subplots(1, len(panels)), panels):
        image = ax.pcolormesh(X, Y, values * mask, shading="nearest", cmap=cmap, vmin=vmin, vmax=vmax)
        fig.colorbar(image, ax=ax, label=label)
        mark_observer(ax, float(o[0]), float(o[1]))
        ax.set_title(title)
        ax.set_aspect("equal")
        ax.set_xlabel("x [kpc]")
        ax.set_ylabel("y [kpc]")
    kind = "dusty" if truth.selection.dust is not None else "dust-free"
    fig.suptitle(
        f"Plummer mock, {kind} · true selection, plane z = {o[2]:.3f} kpc · mean S over the tracers "
        f"{truth.selected_fraction:.2f}"
    )
    fig.tight_layout()
    return fig
