"""`diagnostics.md`: the diagnostics as tables a person reads, beside the published values (SCIENCE.md)."""

from __future__ import annotations

PUBLISHED_SOLAR_LIM = {"x": "−1.94 ± 0.22", "y": "0.08 ± 0.08", "z": "−0.06 ± 0.08", "norm": "1.94 ± 0.22"}
"""a⊙ of Lim et al. (2025, Table I, 10⁻¹⁰ m s⁻², their axes); Gaia EDR3 quasars: (−2.32, 0.04, −0.14) ± (0.16, 0.16, 0.19)."""

PUBLISHED_DENSITY = {
    "density": "0.0617 ± 0.0020 M☉ pc⁻³ (Lim et al.)",
    "density_baryon": "0.0534 ± 0.0042 M☉ pc⁻³ (Lim et al., McKee et al. 2015 model)",
    "density_dm": "0.32 ± 0.18 GeV cm⁻³ (Lim et al.)",
}
PUBLISHED_DM_ARC = "0.47 ± 0.05 GeV cm⁻³, χ²_ν 1.38 (Lim et al., 15 points); 0.32 ± 0.03 GeV cm⁻³ (ClearPotential)"
PUBLISHED_GNFW = {"rho0_msun_pc3": "0.301 +0.644 −0.251", "rs_kpc": "3.5 +5.4 −1.4", "beta": "1.0 +1.2 −0.7"}


def _q(s: dict, suffix: str = "", scale: float = 1.0) -> str:
    """`median [p16, p84]`."""
    m, lo, hi = (s.get(f"{k}{suffix}") for k in ("median", "p16", "p84"))
    if m is None:
        return "–"
    return f"{scale * m:.4g} [{scale * lo:.4g}, {scale * hi:.4g}]"


def _g(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def markdown(result: dict) -> str:
    """The whole report; every table states its units, and ranges are 16–84% over members."""
    lines = [f"# Diagnostics of {result['cube']}", "", f"{result['summary_line']}", ""]
    source = (result.get("attrs") or {}).get("data_source")
    if source not in (None, "gaia", "table"):
        lines += [f"**This cube is a mock (`data_source: {source}`).** The `published` columns are Milky Way "
                  "measurements from Gaia DR3 stars; a mock has its own potential, so they are shown for their units "
                  "and definitions only, not as a comparison. Compare a mock with its analytic truth "
                  "(`scores.json`, the quicklooks).", ""]
    lines += _solar(result["solar_acceleration"]) + _density(result["local_density"])
    lines += _symmetry(result["north_south"]) + _residual(result["dlnf_dt"]) + _gnfw(result["gnfw"])
    notes = [n for n in result.get("notes", []) if n]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def _solar(s: dict) -> list[str]:
    if "skipped" in s:
        return ["## Solar acceleration a⊙", "", f"Skipped: {s['skipped']}", ""]
    out = [
        f"## Solar acceleration a⊙ (mean over the {1000 * s['ball_radius_kpc']:g} pc ball, {s['n_points']} QMC points)",
        "",
        "Median [16%, 84%] over members. Galactocentric: astropy's frame (Sun at −x). Lim et al. axes: "
        "x from the Galactic centre through the Sun, z north, disk rotating towards −y.",
        "",
        "| component | Galactocentric (km² s⁻² kpc⁻¹) | Galactocentric (10⁻¹⁰ m s⁻²) | Lim et al. axes (10⁻¹⁰ m s⁻²) "
        "| published (Lim et al., their axes) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in ("x", "y", "z", "norm"):
        label = "|a|" if c == "norm" else f"a_{c}"
        out.append(
            f"| {label} | {_q(s['galactocentric_kms2_per_kpc'][c])} | {_q(s['galactocentric_1e-10_m_s2'][c])} | "
            f"{_q(s['lim2025_axes_1e-10_m_s2'][c])} | {PUBLISHED_SOLAR_LIM[c]} |"
        )
    std = ", ".join(f"{v:.3g}" for v in s["within_ball_std_kms2_per_kpc"])
    return out + ["", f"Standard deviation inside the ball (x, y, z; km² s⁻² kpc⁻¹): {std}.", ""]


def _density(d: dict) -> list[str]:
    if "skipped" in d:
        return ["## Local density", "", f"Skipped: {d['skipped']}.", ""]
    k = d["kernel"]
    out = [
        "## Local density",
        "",
        f"Kernel averages ρ ∗ K: truncated Gaussian, h = {tuple(k['h_kpc'])} kpc, cut at |x/h| = {k['cut']:g}, "
        f"{k['n_points']} QMC points. Median [16%, 84%] over members.",
        "",
        "| quantity | M☉ pc⁻³ | GeV cm⁻³ | published |",
        "| --- | --- | --- | --- |",
    ]
    for name, values in d["sun"].items():
        published = PUBLISHED_DENSITY.get(name, "–")
        out.append(f"| {name} at the Sun (kernel) | {_q(values['kernel'])} | {_q(values['kernel'], '_GeV_cm3')} | {published} |")
        out.append(f"| {name} at the Sun (point) | {_q(values['point'])} | {_q(values['point'], '_GeV_cm3')} | – |")
    arc = d["arc"]
    for name, mean in arc["weighted_mean"].items():
        published = PUBLISHED_DM_ARC if name == d["dark_matter_field"] else "–"
        out.append(
            f"| {name} on r = {arc['r_kpc']:.3f} kpc, weighted mean of {arc['n_points']} independent points "
            f"(± {mean['statistical_error']:.2g} stat., χ²_ν {mean['chi2_nu']:.2g}) | {_q(mean)} | "
            f"{_q(mean, '_GeV_cm3')} | {published} |"
        )
    floor = arc["error_floor"]
    out += ["", f"Point errors: the members' half 16–84% range, at least {100 * floor['relative']:g}% and "
            f"{floor['absolute']:g} M☉ pc⁻³."]
    if not d["sun_kernel_complete"]:
        out.append("The kernel at the Sun reaches outside the volume: its average is NaN.")
    return out + [""]


def _symmetry(s: dict) -> list[str]:
    out = [
        f"## North–south symmetry and axisymmetry (z = ±{s['z_kpc']:g} kpc)",
        "",
        "Largest |member median| along each curve pair of δ_r = (a_r,N − a_r,S)/|a|, δ_θ = (a_θ,N + a_θ,S)/|a| "
        "and a_φ/|a|. Published (Lim et al.): at most ~0.10.",
        "",
        "| curves | points | max |δ_r| | max |δ_θ| | max |a_φ/|a|| north | max |a_φ/|a|| south |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("radial_lines", "azimuthal_arcs", "polar_arc"):
        m = s[name]["max_abs_median"]
        out.append(
            f"| {name.replace('_', ' ')} | {s[name]['n_points']} | {_g(m['delta_r'])} | {_g(m['delta_theta'])} | "
            f"{_g(m['a_phi_over_a_north'])} | {_g(m['a_phi_over_a_south'])} |"
        )
    return out + [""]


def _residual(r: dict) -> list[str]:
    out = ["## ∂ ln f/∂t at the Sun", ""]
    if "skipped" in r:
        return out + [f"Skipped: {r['skipped']}", ""]
    out += [
        f"∂ ln f/∂t = −v·∇ₓ ln f − a·∇ᵥ ln f for {r['n_velocities']:,} velocities from p(v|x⊙) "
        f"(km s⁻¹ kpc⁻¹; ×{r['to_per_Gyr']:.4f} for Gyr⁻¹). Density model: {r['source']}. "
        f"Scale: rms(v·∇ₓ ln f) = {r['streaming_rms']:.3g}.",
        "",
        "| acceleration | a (km² s⁻² kpc⁻¹) | mean | std | 16% | 84% | rms / rms(v·∇ₓ ln f) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in r["by_acceleration"].items():
        a = ", ".join(f"{v:.4g}" for v in s["acceleration_kms2_per_kpc"])
        p = s["percentiles"]
        out.append(f"| {name} | ({a}) | {s['mean']:.3g} | {s['std']:.3g} | {p['p16']:.3g} | {p['p84']:.3g} | "
                   f"{_g(s['relative_rms'])} |")
    return out + [""]


def _gnfw(g: dict) -> list[str]:
    out = ["## Generalized NFW fit of ρ_DM(r)", ""]
    if g.get("note"):
        out += [g["note"], ""]
    if "skipped" in g:
        return out + [f"Skipped: {g['skipped']}.", ""]
    sampler = g["sampler"]
    out += [
        f"ρ(r) = ρ₀ / [(r/r_s)^β (1 + r/r_s)^(3−β)] fitted to {g['n_data']} independent kernel averages along the "
        f"z = ±1.5 kpc lines; stretch-move MCMC ({sampler['walkers']} walkers × {sampler['steps']} steps, "
        f"burn-in {sampler['burn_in']}, acceptance {sampler['acceptance']:.2f}); χ² at the maximum "
        f"posterior {g['chi2_max_posterior']:.3g} for {g['n_data']} points.",
        "",
        "| parameter | posterior median [16%, 84%] | maximum posterior | prior | published (Lim et al.) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, post in g["posterior"].items():
        out.append(f"| {name} | {_q(post)} | {g['max_posterior'][name]:.4g} | {g['priors'][name]} | "
                   f"{PUBLISHED_GNFW[name]} |")
    return out + [""]
