"""Generalised least squares with a Gaussian smoothness prior, solved directly; the prior's scale by evidence.

Model: rhs = design @ q + noise, noise ~ N(0, C); prior q ~ N(0, diag(prior_var)). Whitened by C's Cholesky
factor, the posterior is N(m, H⁻¹) with H = Ãᵀ Ã + diag(1/prior_var), m = H⁻¹ Ãᵀ b̃, and the log evidence

    ln Z = −½ [b̃ᵀb̃ − gᵀ H⁻¹ g] − ½ [ln|H| + Σ ln prior_var] + const,   g = Ãᵀ b̃.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sl
from jaxtyping import Float


@dataclass(frozen=True)
class Whitened:
    """The system in the noise's whitened frame: F = ÃᵀÃ `(Q, Q)`, g = Ãᵀb̃ `(Q,)`, bb = b̃ᵀb̃, K rows."""

    F: Float[np.ndarray, "Q Q"]
    g: Float[np.ndarray, " Q"]
    bb: float
    n_rows: int
    # Cross-fitted systems (`cross_fitted_whiten`): the mean solves (M + prior precision) q = g with M `(Q, Q)` not
    # symmetric (F is its symmetric part); `meat` `(Q, Q)` is the rows' realised noise seen through the instruments;
    # `F_rows` `(Q, Q)`, `g_rows` `(Q,)` give χ² of the folds' own rows.
    M: Float[np.ndarray, "Q Q"] | None = None
    meat: Float[np.ndarray, "Q Q"] | None = None
    F_rows: Float[np.ndarray, "Q Q"] | None = None
    g_rows: Float[np.ndarray, " Q"] | None = None


@dataclass(frozen=True)
class Posterior:
    mean: Float[np.ndarray, " Q"]
    covariance: Float[np.ndarray, "Q Q"]
    log_evidence: float
    chi2: float  # of the whitened residual at the mean
    prior_var: Float[np.ndarray, " Q"]


def whiten(design: np.ndarray, rhs: np.ndarray, covariance: np.ndarray, jitter: float = 1e-10) -> Whitened:
    """Whiten by the Cholesky factor of `covariance` (+ `jitter` × its mean diagonal, for rank safety)."""
    c = covariance + jitter * np.mean(np.diag(covariance)) * np.eye(len(covariance))
    lower = np.linalg.cholesky(c)
    a = sl.solve_triangular(lower, design, lower=True)
    b = sl.solve_triangular(lower, rhs, lower=True)
    return Whitened(F=a.T @ a, g=a.T @ b, bb=float(b @ b), n_rows=len(rhs))


def cross_fitted_whiten(
    designs: list[np.ndarray], rhss: list[np.ndarray], covariances: list[np.ndarray], sizes: list[int],
    jitter: float = 1e-10,
) -> Whitened:
    """The cross-fitted system of folds of stars: fold g's moments (`designs[g]` `(K, Q)`, `rhss[g]` `(K,)`, sums
    over its `sizes[g]` stars) enter through the estimating equation Zᵍᵀ Wᵍ (bᵍ − Aᵍ q) = 0, whose weight Wᵍ (the
    inverse noise covariance, `covariances` `(K, K)` per fold) and instrument Zᵍ (the design) both come from the
    *other* folds' stars, rescaled to fold g's size. Neither is then correlated with fold g's moments, so the
    equations are unbiased; with weights from the moments' own stars a star with a large term raises the variance
    of the rows it enters and loses weight exactly where it pulls, which biases the fit where the per-star terms
    are heavy-tailed, and an instrument from the fold's own stars carries the design's own noise into it."""
    design_total, total, n = sum(designs), sum(covariances), sum(sizes)
    M = g = meat = F_rows = g_rows = 0.0
    bb = 0.0
    for design, rhs, cov, size in zip(designs, rhss, covariances, sizes, strict=True):
        scale = size / (n - size)
        weight = (total - cov) * scale
        lower = np.linalg.cholesky(weight + jitter * np.mean(np.diag(weight)) * np.eye(len(weight)))
        a = sl.solve_triangular(lower, design, lower=True)
        z = sl.solve_triangular(lower, (design_total - design) * scale, lower=True)
        b = sl.solve_triangular(lower, rhs, lower=True)
        own = sl.solve_triangular(lower, sl.solve_triangular(lower, cov, lower=True).T, lower=True)
        M, g, meat = M + z.T @ a, g + z.T @ b, meat + z.T @ own @ z
        F_rows, g_rows, bb = F_rows + a.T @ a, g_rows + a.T @ b, bb + float(b @ b)
    return Whitened(F=0.5 * (M + M.T), g=g, bb=bb, n_rows=len(covariances) * len(total), M=M,
                    meat=0.5 * (meat + meat.T), F_rows=F_rows, g_rows=g_rows)


def log_evidence(w: Whitened, prior_var: np.ndarray) -> float:
    """The log evidence alone (what the prior search needs; no covariance)."""
    factor = sl.cho_factor(w.F + np.diag(1.0 / prior_var), lower=True)
    mean = sl.cho_solve(factor, w.g)
    log_det = 2 * np.sum(np.log(np.diag(factor[0])))
    return float(-0.5 * (w.bb - w.g @ mean) - 0.5 * (log_det + np.sum(np.log(prior_var))))


def posterior(w: Whitened, prior_var: np.ndarray) -> Posterior:
    """Posterior mean and covariance, and the log evidence, for prior variances `prior_var` `(Q,)`."""
    h = w.F + np.diag(1.0 / prior_var)
    factor = sl.cho_factor(h, lower=True)
    mean = sl.cho_solve(factor, w.g)
    log_det = 2 * np.sum(np.log(np.diag(factor[0])))
    log_z = -0.5 * (w.bb - w.g @ mean) - 0.5 * (log_det + np.sum(np.log(prior_var)))
    cov = sl.cho_solve(factor, np.eye(len(h)))
    if w.M is not None:  # cross-fitted: solve the estimating equations; the sandwich H⁻¹ (meat + P⁻¹) H⁻ᵀ
        h_inv = np.linalg.inv(w.M + np.diag(1.0 / prior_var))
        mean = h_inv @ w.g
        cov = h_inv @ (w.meat + np.diag(1.0 / prior_var)) @ h_inv.T
    F, g = (w.F, w.g) if w.F_rows is None else (w.F_rows, w.g_rows)
    chi2 = float(w.bb - 2 * g @ mean + mean @ F @ mean)
    return Posterior(mean=mean, covariance=0.5 * (cov + cov.T), log_evidence=float(log_z), chi2=chi2, prior_var=prior_var)


def best_prior(
    w: Whitened, degrees: np.ndarray, fixed_var: np.ndarray, scales: np.ndarray, decays: np.ndarray, n_before: int = 0
) -> tuple[Posterior, dict]:
    """The posterior of highest evidence over the grid of priors τ² q^(2·degree) on Φ's Legendre coefficients
    (τ in `scales`, q in `decays`); the other unknowns have the fixed prior variances `fixed_var`, the first
    `n_before` of them ordered before the Legendre coefficients (the reference shapes), the rest after.
    Returns (posterior, {"tau": τ, "q": q})."""
    best, best_z = None, -np.inf
    for q in decays:
        for tau in scales:
            var = np.concatenate([fixed_var[:n_before], tau**2 * q ** (2.0 * degrees), fixed_var[n_before:]])
            z = log_evidence(w, var)
            if z > best_z:
                best, best_z = (var, {"tau": float(tau), "q": float(q)}), z
    assert best is not None
    return posterior(w, best[0]), best[1]
