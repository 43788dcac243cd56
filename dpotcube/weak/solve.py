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
    meat: Float[np.ndarray, "Q Q"] | None = None  # Ãᵀ C̃ Ã with the rows' own noise C̃ where it differs from 1


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
    """The folds' rows stacked, each fold g's moments (`designs[g]` `(K, Q)`, `rhss[g]` `(K,)`, sums over its
    `sizes[g]` stars) whitened by the noise covariance of the *other* folds' stars (`covariances` `(K, K)` per fold,
    summed over the others and rescaled to fold g's size).

    A covariance estimated from the same stars as the moments is correlated with them (a star with a large term
    raises the variance of the rows it enters, so it loses weight exactly where it pulls), which biases a
    generalised least-squares fit and narrows its posterior where the per-star terms are heavy-tailed; estimated
    from disjoint stars it is not correlated with them."""
    total, n = sum(covariances), sum(sizes)
    white, meat = [], 0.0
    for design, rhs, cov, size in zip(designs, rhss, covariances, sizes, strict=True):
        weight = (total - cov) * size / (n - size)
        lower = np.linalg.cholesky(weight + jitter * np.mean(np.diag(weight)) * np.eye(len(weight)))
        a = sl.solve_triangular(lower, design, lower=True)
        b = sl.solve_triangular(lower, rhs, lower=True)
        own = sl.solve_triangular(lower, sl.solve_triangular(lower, cov, lower=True).T, lower=True)
        white.append((a.T @ a, a.T @ b, float(b @ b)))
        meat = meat + a.T @ own @ a
    return Whitened(F=sum(w[0] for w in white), g=sum(w[1] for w in white), bb=sum(w[2] for w in white),
                    n_rows=len(covariances) * len(total), meat=0.5 * (meat + meat.T))


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
    chi2 = float(w.bb - 2 * w.g @ mean + mean @ w.F @ mean)
    cov = sl.cho_solve(factor, np.eye(len(h)))
    if w.meat is not None:  # the sandwich H⁻¹ (Ãᵀ C̃ Ã + prior precision) H⁻¹: the rows' realised noise
        cov = cov @ (w.meat + np.diag(1.0 / prior_var)) @ cov
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
