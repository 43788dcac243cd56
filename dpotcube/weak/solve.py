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


def posterior(w: Whitened, prior_var: np.ndarray) -> Posterior:
    """Posterior mean and covariance, and the log evidence, for prior variances `prior_var` `(Q,)`."""
    h = w.F + np.diag(1.0 / prior_var)
    factor = sl.cho_factor(h, lower=True)
    mean = sl.cho_solve(factor, w.g)
    log_det = 2 * np.sum(np.log(np.diag(factor[0])))
    log_z = -0.5 * (w.bb - w.g @ mean) - 0.5 * (log_det + np.sum(np.log(prior_var)))
    chi2 = float(w.bb - 2 * w.g @ mean + mean @ w.F @ mean)
    cov = sl.cho_solve(factor, np.eye(len(h)))
    return Posterior(mean=mean, covariance=0.5 * (cov + cov.T), log_evidence=float(log_z), chi2=chi2, prior_var=prior_var)


def best_prior(
    w: Whitened, degrees: np.ndarray, extra_var: np.ndarray, scales: np.ndarray, decays: np.ndarray
) -> tuple[Posterior, float, float]:
    """The posterior under the prior var τ² q^(2·degree) (Φ's coefficients) of highest evidence over the grid
    `scales` × `decays`; `extra_var` `(E,)`: fixed prior variances of the other unknowns. Returns (posterior, τ, q)."""
    best = None
    for q in decays:
        for tau in scales:
            var = np.concatenate([tau**2 * q ** (2.0 * degrees), extra_var])
            post = posterior(w, var)
            if best is None or post.log_evidence > best[0].log_evidence:
                best = (post, float(tau), float(q))
    assert best is not None
    return best
