"""A generalized-NFW fit of ρ_DM(r) with the published priors (Lim et al. 2025, eq. 10 and Fig. 12–13).

    ρ_DM(r) = ρ₀ / [(r/r_s)^β (1 + r/r_s)^{3−β}]

Data: kernel-averaged ρ_DM (or ρ where the cube has no `density_dm`) at independent (non-overlapping
kernel) centres along the radial lines at z = ±1.5 kpc and φ − φ⊙ ∈ {0, ±0.209} rad; σ from the
members' spread with a floor (as in `local_density`). Gaussian likelihood in ρ. Priors (M☉ pc⁻³, kpc):
ρ₀ a Gaussian of mean 0.40 and width 0.80 truncated to [0, 2]; r_s flat on (0, 20]; β a Gaussian of
mean 2 and width 2 truncated to [0, 3] (the paper does not give β's range: we keep β < 3, where the
mass inside any radius is finite). Posterior by the stretch-move sampler of `mcmc.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from jaxtyping import Float
from scipy.optimize import minimize

from ..constants import MSUN_PER_PC3_TO_GEV_PER_CM3
from ..curves import NORTH_SOUTH_Z_KPC, observer_kpc, radial_line
from .kernel import Kernel, independent_centres, kernel_average
from .local_density import ERROR_FLOOR_ABSOLUTE, ERROR_FLOOR_RELATIVE, PUBLISHED_DPHI, density_errors
from .mcmc import sample_stretch
from .sampling import summarise

PARAMETERS = ("rho0_msun_pc3", "rs_kpc", "beta")


def gnfw_density(r: Float[np.ndarray, "..."], rho0: float, rs: float, beta: float) -> Float[np.ndarray, "..."]:
    """ρ_DM(r) in the units of `rho0`; broadcasts over arrays of parameters."""
    u = r / rs
    return rho0 / (u**beta * (1 + u) ** (3 - beta))


@dataclass(frozen=True)
class GNFWPriors:
    """Truncated-Gaussian priors on ρ₀ and β and a flat prior on r_s (defaults: Lim et al. 2025)."""

    rho0_mean: float = 0.40
    rho0_width: float = 0.80
    rho0_range: tuple[float, float] = (0.0, 2.0)
    rs_range: tuple[float, float] = (0.0, 20.0)
    beta_mean: float = 2.0
    beta_width: float = 2.0
    beta_range: tuple[float, float] = (0.0, 3.0)

    def log_prior(self, theta: Float[np.ndarray, "w 3"]) -> Float[np.ndarray, " w"]:
        rho0, rs, beta = theta.T
        inside = (
            (rho0 > self.rho0_range[0]) & (rho0 <= self.rho0_range[1]) & (rs > self.rs_range[0])
            & (rs <= self.rs_range[1]) & (beta >= self.beta_range[0]) & (beta < self.beta_range[1])
        )
        lp = -0.5 * ((rho0 - self.rho0_mean) / self.rho0_width) ** 2 - 0.5 * ((beta - self.beta_mean) / self.beta_width) ** 2
        return np.where(inside, lp, -np.inf)

    def describe(self) -> dict:
        return {
            "rho0_msun_pc3": f"Gaussian(mean {self.rho0_mean}, width {self.rho0_width}) on {list(self.rho0_range)}",
            "rs_kpc": f"flat on ({self.rs_range[0]}, {self.rs_range[1]}]",
            "beta": f"Gaussian(mean {self.beta_mean}, width {self.beta_width}) on {list(self.beta_range)}",
        }


PUBLISHED_PRIORS = GNFWPriors()


def log_posterior(
    theta: Float[np.ndarray, "w 3"], r: Float[np.ndarray, " n"], rho: Float[np.ndarray, " n"],
    sigma: Float[np.ndarray, " n"], priors: GNFWPriors = PUBLISHED_PRIORS,
) -> Float[np.ndarray, " w"]:
    theta = np.atleast_2d(theta)
    lp = priors.log_prior(theta)
    ok = np.isfinite(lp)
    out = np.full(len(theta), -np.inf)
    if ok.any():
        model = gnfw_density(r[None], *(theta[ok, i, None] for i in range(3)))
        out[ok] = lp[ok] - 0.5 * np.sum(((model - rho) / sigma) ** 2, axis=1)
    return out


def fit_gnfw(
    r: Float[np.ndarray, " n"], rho: Float[np.ndarray, " n"], sigma: Float[np.ndarray, " n"],
    priors: GNFWPriors = PUBLISHED_PRIORS, n_walkers: int = 32, n_steps: int = 8000, burn: int = 2000, seed: int = 0,
) -> dict:
    """Posterior of (ρ₀, r_s, β) given ρ(r) ± σ: medians, 16–84%, the maximum-posterior sample, and draws."""
    r, rho, sigma = (np.asarray(a, np.float64) for a in (r, rho, sigma))

    def negative(theta: np.ndarray) -> float:
        value = log_posterior(theta, r, rho, sigma, priors)[0]
        return -value if np.isfinite(value) else 1e300

    starts = [(rho0, rs, beta) for rho0 in (0.2, 0.8) for rs in (3.0, 10.0) for beta in (0.7, 2.0)]
    best = min((minimize(negative, s, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9}) for s in starts),
               key=lambda res: res.fun)
    rng = np.random.default_rng(seed)
    start = best.x * (1 + 1e-3 * rng.standard_normal((n_walkers, 3)))
    start = np.where(np.isfinite(log_posterior(start, r, rho, sigma, priors))[:, None], start, best.x)
    chain, lps, acceptance = sample_stretch(lambda t: log_posterior(t, r, rho, sigma, priors), start, n_steps, seed)
    samples, sample_lp = chain[burn:].reshape(-1, 3), lps[burn:].reshape(-1)
    q = np.percentile(samples, [16, 50, 84], axis=0)
    map_theta = samples[np.argmax(sample_lp)]
    chi2 = float(np.sum(((gnfw_density(r, *map_theta) - rho) / sigma) ** 2))
    return {
        "posterior": {name: {"median": float(q[1, i]), "p16": float(q[0, i]), "p84": float(q[2, i])}
                      for i, name in enumerate(PARAMETERS)},
        "max_posterior": dict(zip(PARAMETERS, map(float, map_theta))),
        "chi2_max_posterior": chi2,
        "n_data": len(r),
        "priors": priors.describe(),
        "sampler": {"walkers": n_walkers, "steps": n_steps, "burn_in": burn, "seed": seed, "acceptance": acceptance},
        "draws": samples[rng.choice(len(samples), min(400, len(samples)), replace=False)].tolist(),
    }


def gnfw_data(
    ds: xr.Dataset, kernel: Kernel = Kernel(), z_kpc: float = NORTH_SOUTH_Z_KPC, step_kpc: float = 0.05,
    floor_relative: float = ERROR_FLOOR_RELATIVE, floor_absolute: float = ERROR_FLOOR_ABSOLUTE,
) -> dict:
    """The fit's data: independent kernel centres on the published lines, their r, ρ_DM (member median) and σ."""
    field = "density_dm" if "density_dm" in ds else "density"
    o = observer_kpc(ds)
    R_sun = float(np.hypot(o[0], o[1]))
    R = R_sun + step_kpc * np.arange(-int(R_sun / step_kpc) + 1, int(R_sun / step_kpc))
    coords_only = ds[["in_volume"]] if "in_volume" in ds else ds
    lines = [(radial_line(coords_only, z, dphi, R), dphi) for z in (z_kpc, -z_kpc) for dphi in PUBLISHED_DPHI]
    candidates = np.concatenate([np.stack([line[c].values for c in "xyz"], axis=-1) for line, _ in lines])
    dphi = np.concatenate([np.full(len(R), d) for _, d in lines])
    nearness = np.tile(np.abs(R - R_sun), len(lines))
    order = np.lexsort((np.abs(dphi), nearness))
    chosen = order[independent_centres(ds, candidates[order], kernel)]
    values, ok = kernel_average(ds, [field], candidates[chosen], kernel)
    values, centres = values[field][:, ok], candidates[chosen][ok]
    sigma = density_errors(values, floor_relative, floor_absolute) if ok.any() else np.empty(0)
    return {
        "field": field,
        "xyz_kpc": centres, "r_kpc": np.linalg.norm(centres, axis=1),
        "rho": np.nanmedian(values, axis=0) if ok.any() else np.empty(0), "sigma": sigma, "members": values,
    }


def gnfw_diagnostic(ds: xr.Dataset, kernel: Kernel = Kernel(), seed: int = 0, n_steps: int = 8000) -> tuple[dict, dict]:
    """The fit on the cube (JSON-ready), and its data (for the figure). Skipped with a note below 4 points."""
    data = gnfw_data(ds, kernel)
    note = None if data["field"] == "density_dm" else "The cube has no density_dm: the fit is to the total ρ."
    points = [
        {"r_kpc": float(r), "xyz_kpc": xyz.tolist(), "rho": float(v), "sigma": float(s),
         "rho_GeV_cm3": float(v) * MSUN_PER_PC3_TO_GEV_PER_CM3, **{k: float(q) for k, q in summarise(m).items()}}
        for r, xyz, v, s, m in zip(data["r_kpc"], data["xyz_kpc"], data["rho"], data["sigma"], data["members"].T)
    ]
    out = {"field": data["field"], "note": note, "kernel": kernel.describe(), "points": points}
    if len(points) < 4:
        reason = f"only {len(points)} independent point(s) fit in the volume; the 3-parameter fit needs at least 4"
        return out | {"skipped": reason}, data
    return out | fit_gnfw(data["r_kpc"], data["rho"], data["sigma"], seed=seed, n_steps=n_steps, burn=n_steps // 4), data
