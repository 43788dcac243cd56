"""The diagnostics' figures (matplotlib Figures, no pyplot state), drawn from the JSON-ready results."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..constants import MSUN_PER_PC3_TO_GEV_PER_CM3
from ..plots._common import DENSITY_UNITS
from .gnfw import gnfw_density

CURVES = {
    "radial_lines": ("r_kpc", "r [kpc]", "lines z = ±{z:g} kpc"),
    "azimuthal_arcs": ("dphi_rad", "φ − φ⊙ [rad]", "arcs r = r⊙, z = ±{z:g} kpc"),
    "polar_arc": ("s_kpc", "|s| = r⊙ |π/2 − θ| [kpc]", "polar arc r = r⊙ (s vs −s)"),
}
ROWS = {
    "delta_r": ("(a_r,N − a_r,S)/|a|", "C0"),
    "delta_theta": ("(a_θ,N + a_θ,S)/|a|", "C1"),
    "a_phi_over_a_north": ("a_φ/|a| north", "goldenrod"),
    "a_phi_over_a_south": ("a_φ/|a| south", "purple"),
}


def north_south_figure(symmetry: dict, title: str) -> Figure:
    """Rows δ_r, δ_θ, a_φ/|a| (north and south); columns the radial lines, azimuthal arcs and the polar arc."""
    fig = Figure(figsize=(13, 8.5))
    axes = fig.subplots(3, 3, sharex="col")
    row_of = {"delta_r": 0, "delta_theta": 1, "a_phi_over_a_north": 2, "a_phi_over_a_south": 2}
    for col, (name, (coord, xlabel, heading)) in enumerate(CURVES.items()):
        curves = symmetry[name]["curves"]
        x = np.asarray(curves[coord], np.float64)
        for key, (label, colour) in ROWS.items():
            ax = axes[row_of[key], col]
            q = {k: np.asarray(v, np.float64) for k, v in curves[key].items()}
            if len(x):
                ax.fill_between(x, q["p16"], q["p84"], color=colour, alpha=0.25, linewidth=0)
                ax.plot(x, q["median"], color=colour, label=label, linestyle="--" if key.endswith("south") else "-")
        axes[0, col].set_title(heading.format(z=symmetry["z_kpc"]))
        axes[-1, col].set_xlabel(xlabel)
    for row, label in enumerate(("δ_r = Δa_r/|a|", "δ_θ = Σa_θ/|a|", "a_φ/|a|")):
        axes[row, 0].set_ylabel(label)
        for ax in axes[row]:
            ax.axhline(0, color="0.5", linewidth=0.8)
            ax.grid(alpha=0.3)
        if axes[row, 0].get_legend_handles_labels()[0]:
            axes[row, 0].legend(fontsize=7)  # the same curves in every column
    fig.suptitle(f"{title} · north–south symmetry and axisymmetry (median and 16–84% over members)")
    fig.tight_layout()
    return fig


def residual_figure(residual: dict, samples: dict[str, np.ndarray], title: str) -> Figure:
    """Histograms of ∂ ln f/∂t at the Sun under each acceleration (Lim et al. 2025, Fig. 9)."""
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    finite = np.concatenate([v[np.isfinite(v)] for v in samples.values()])
    lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (-1.0, 1.0)
    span = max(hi - lo, 1e-12)
    bins = np.linspace(lo - 0.05 * span, hi + 0.05 * span, 121)
    for name, values in samples.items():
        s = residual["by_acceleration"][name]
        ax.hist(values[np.isfinite(values)], bins=bins, histtype="step", density=True, linewidth=1.5,
                label=f"{name}: mean {s['mean']:.3g}, std {s['std']:.3g}")
    ax.axvline(0, color="0.4", linewidth=0.8)
    ax.set(xlabel="∂ ln f/∂t [km s⁻¹ kpc⁻¹]", ylabel="density of velocity draws")
    ax.legend(fontsize=8)
    ax.set_title(f"{title}\n∂ ln f/∂t at the Sun for {residual['n_velocities']:,} velocities from p(v|x⊙)")
    fig.tight_layout()
    return fig


def local_density_figure(density: dict, title: str) -> Figure:
    """Kernel-averaged ρ (and ρ_DM) at the independent points on r = r⊙ against s, with the weighted means."""
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    points = density["arc"]["points"]
    markers = {0.0: "o", 0.209: "^", -0.209: "s"}
    for name, colour in (("density", "C0"), ("density_dm", "C3"), ("density_baryon", "C2")):
        if not points or name not in points[0]:
            continue
        for dphi, marker in markers.items():
            chosen = [p for p in points if abs(p["dphi_rad"] - dphi) < 1e-9]
            if not chosen:
                continue
            s = np.array([p["s_kpc"] for p in chosen])
            q = {k: np.array([p[name][k] for p in chosen]) for k in ("median", "p16", "p84")}
            ax.errorbar(s, q["median"], yerr=[q["median"] - q["p16"], q["p84"] - q["median"]], fmt=marker,
                        color=colour, label=f"{name}, φ − φ⊙ = {dphi:+.3f}")
        mean = density["arc"]["weighted_mean"].get(name)
        if mean:
            ax.axhspan(mean["p16"], mean["p84"], color=colour, alpha=0.15)
            ax.axhline(mean["median"], color=colour, linewidth=0.8, linestyle="--")
    ax.set(xlabel="s = r⊙ (π/2 − θ) [kpc]", ylabel=f"ρ ∗ K [{DENSITY_UNITS}]")
    ax.secondary_yaxis(
        "right", functions=(lambda v: v * MSUN_PER_PC3_TO_GEV_PER_CM3, lambda v: v / MSUN_PER_PC3_TO_GEV_PER_CM3)
    ).set_ylabel("GeV cm⁻³")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.set_title(f"{title}\nkernel-averaged density at independent points on r = r⊙ (dashed: weighted means)")
    fig.tight_layout()
    return fig


def gnfw_figure(fit: dict, title: str) -> Figure:
    """ρ_DM data (or the total ρ where the cube has no ρ_DM: the label says which) (member median ± σ) against r, with the posterior's median profile, 16–84% band and best fit."""
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    r = np.array([p["r_kpc"] for p in fit["points"]])
    rho = np.array([p["rho"] for p in fit["points"]])
    sigma = np.array([p["sigma"] for p in fit["points"]])
    ax.errorbar(r, rho, yerr=sigma, fmt="o", color="k", label=f"{fit['field']} ∗ K, independent points")
    if "draws" in fit and len(r):
        grid = np.linspace(max(r.min() - 1, 0.1), r.max() + 1, 200)
        draws = np.asarray(fit["draws"])
        profiles = gnfw_density(grid[None], draws[:, :1], draws[:, 1:2], draws[:, 2:3])
        p16, p50, p84 = np.percentile(profiles, [16, 50, 84], axis=0)
        ax.fill_between(grid, p16, p84, color="C3", alpha=0.25, linewidth=0, label="posterior 16–84%")
        ax.plot(grid, p50, color="C3", label="posterior median profile")
        best = fit["max_posterior"]
        ax.plot(grid, gnfw_density(grid, best["rho0_msun_pc3"], best["rs_kpc"], best["beta"]), "C3--",
                label="maximum posterior")
    symbol = "ρ_DM" if fit.get("field") == "density_dm" else "total ρ (no ρ_baryon subtracted)"
    ax.set(xlabel="r [kpc]", ylabel=f"{symbol} [{DENSITY_UNITS}]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{title}\ngeneralized NFW fit to {symbol}{' (' + fit['skipped'] + ')' if 'skipped' in fit else ''}")
    fig.tight_layout()
    return fig
