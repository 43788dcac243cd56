"""`fit_weak`: stars → `WeakPotential`, in two passes over the stars (system; noise at a first solution)."""

from __future__ import annotations

import time

import numpy as np

from ..sources.base import PhaseSpaceTable
from .basis import degrees, multi_indices, tensor_basis
from .model import WeakPotential
from .moments import Unknowns, accumulate_covariance, accumulate_design
from .reference import n_reference, potential_basis
from .solve import Posterior, Whitened, best_prior, cross_fitted_whiten, posterior, whiten
from .spec import WeakSpec
from .testfunctions import make_test_functions

SCALES = np.logspace(1, 7, 25)
"""Prior scales τ (km² s⁻²) tried by `prior: evidence`."""
DECAYS = np.linspace(0.1, 0.9, 17)
"""Per-degree decays q tried by `prior: evidence`."""
PATTERN_PRIOR_STD = 1e3
"""Prior standard deviation of Ω (km s⁻¹ kpc⁻¹): effectively flat."""


def star_weights(stars: PhaseSpaceTable, spec: WeakSpec, gradient_known: bool = False) -> np.ndarray:
    """1/S per star when the selection is known (and neither fitted nor given by its gradient), else ones; `(n,)`."""
    if stars.selection is None or spec.unknown_selection_degree or gradient_known:
        return np.ones(len(stars))
    return 1.0 / np.maximum(np.asarray(stars.selection, np.float64), spec.min_selection)


def folds(n: int, k: int) -> list[slice]:
    """`k` folds of `n` stars (at most `n`), every k-th star from the g-th: disjoint, deterministic, and fair samples
    of a table in any order (a table sorted by position still gives each fold stars from everywhere)."""
    k = max(1, min(k, n))
    return [slice(g, None, k) for g in range(k)]


def fold_chunk_size(n: int, k: int, chunk: int) -> int:
    """One chunk size for every fold (one compilation) that splits the largest fold into equal chunks of at most
    `chunk` stars, so that padding wastes at most one star per chunk."""
    largest = -(-n // max(1, min(k, n)))
    return -(-largest // -(-largest // chunk))


def fit_weak(
    stars: PhaseSpaceTable, spec: WeakSpec, seed: int = 0, grad_log_selection: np.ndarray | None = None
) -> WeakPotential:
    """Φ (and Ω_p, ln ε when asked) from the weak CBE; see `fit_weak_report` for the fit's diagnostics.

    A known selection enters as 1/S weights (`stars.selection`), or, better where S spans decades, through
    `grad_log_selection` `(n, 3)`: ∇ ln S at the stars in kpc⁻¹ (test functions S·w; unit weights, no heavy tail).
    `seed` is unused by the fit itself (it is deterministic); it is kept for the methods' common signature.
    """
    return fit_weak_report(stars, spec, seed, grad_log_selection)[0]


def fit_weak_report(
    stars: PhaseSpaceTable, spec: WeakSpec, seed: int = 0, grad_log_selection: np.ndarray | None = None
) -> tuple[WeakPotential, dict]:
    """`fit_weak` and a dict of diagnostics: sizes, prior (τ, q), χ²/K, evidence, seconds per pass."""
    del seed
    started = time.perf_counter()
    x, v = np.asarray(stars.positions, np.float64), np.asarray(stars.velocities, np.float64)
    radius, observer = float(stars.volume_radius_kpc), np.asarray(stars.observer, np.float64)
    gls = None if grad_log_selection is None else np.asarray(grad_log_selection, np.float64).reshape(x.shape)
    if gls is not None and spec.unknown_selection_degree:
        raise ValueError(
            "`grad_log_selection` gives a known selection, `unknown_selection_degree` > 0 fits one: set it to 0 or "
            "leave the gradient out"
        )
    w = star_weights(stars, spec, gradient_known=gls is not None)
    tf = make_test_functions(spec, observer, radius, v)
    scales = tuple(float(s) for s in spec.reference_scales_kpc) if spec.reference != "none" else ()
    unknowns = Unknowns(spec.potential_degree, spec.pattern_speed, spec.unknown_selection_degree, spec.reference, scales)
    parts, chunk = folds(len(x), spec.cross_fit_folds), fold_chunk_size(len(x), spec.cross_fit_folds, spec.chunk_size)
    sums = [accumulate_design(tf, unknowns, radius, x[f], v[f], w[f], chunk, None if gls is None else gls[f])
            for f in parts]
    design, rhs, outer = (sum(s[i] for s in sums) for i in range(3))
    first_pass = time.perf_counter() - started

    deg = degrees(spec.potential_degree, False)
    n_ref = n_reference(spec.reference, scales)
    n_phi = n_ref + len(deg)
    extra_var = []
    if spec.pattern_speed:
        extra_var.append(PATTERN_PRIOR_STD**2)
    if spec.unknown_selection_degree:
        sel_deg = degrees(spec.unknown_selection_degree, False)
        extra_var.extend((spec.selection_prior_std * spec.prior_decay ** (sel_deg - 1.0)) ** 2)
    extra_var = np.asarray(extra_var, np.float64)
    ref_var = np.full(n_ref, spec.reference_prior_scale_kms2**2)  # broad: the reference is fitted, not shrunk

    def solve(white: Whitened) -> tuple[Posterior, dict]:
        if spec.prior == "fixed":
            var = np.concatenate([ref_var, spec.prior_scale_kms2**2 * spec.prior_decay ** (2.0 * deg), extra_var])
            return posterior(white, var), {"tau": spec.prior_scale_kms2, "q": spec.prior_decay}
        return best_prior(white, deg, np.concatenate([ref_var, extra_var]), SCALES, DECAYS, n_ref)

    first, _ = solve(whiten(design, rhs, outer))  # noise of the right-hand side alone: a first solution
    omega, sel = _extras(first.mean, n_phi, spec)
    grad_phi = _grad_phi(first.mean[:n_phi], x, observer, radius, unknowns)
    grad_log_eps = (
        tensor_basis(x, observer, radius, spec.unknown_selection_degree, False)[1] @ sel
        if spec.unknown_selection_degree else np.zeros_like(x)
    )
    covs = [accumulate_covariance(tf, unknowns, radius, x[f], v[f], w[f], chunk, grad_phi[f], omega, grad_log_eps[f],
                                  None if gls is None else gls[f]) for f in parts]
    if len(parts) == 1:  # the covariance from the moments' own stars
        white = whiten(design, rhs, covs[0])
    else:
        white = cross_fitted_whiten([s[0] for s in sums], [s[1] for s in sums], covs, [len(x[f]) for f in parts])
    post, prior = solve(white)
    omega, sel = _extras(post.mean, n_phi, spec)
    cov_phi = post.covariance[:n_phi, :n_phi]
    factor = np.linalg.cholesky(cov_phi + 1e-12 * np.max(np.diag(cov_phi)) * np.eye(n_phi))
    pattern = np.full(2, np.nan)
    if spec.pattern_speed:  # Ω_p = −Ω: positive in the sense of Galactic rotation
        pattern = np.array([-omega, np.sqrt(post.covariance[n_phi, n_phi])])
    model = WeakPotential(
        coefficients=post.mean[:n_phi], covariance_factor=factor, observer=observer, pattern_speed=pattern,
        selection_coefficients=sel, radius_kpc=radius, degree=spec.potential_degree,
        selection_degree=spec.unknown_selection_degree, reference=spec.reference, reference_scales=scales,
    )
    report = {
        "n_stars": len(x), "n_test_functions": int(len(rhs)), "n_unknowns": int(design.shape[1]),
        "n_potential_coefficients": n_phi, "prior_scale_kms2": prior["tau"], "prior_decay": prior["q"],
        "chi2_per_test_function": post.chi2 / white.n_rows,
        "cross_fit_folds": len(parts), "log_evidence": post.log_evidence,
        "first_pass_s": round(first_pass, 2), "total_s": round(time.perf_counter() - started, 2),
    }
    return model, report


def _extras(q: np.ndarray, n_phi: int, spec: WeakSpec) -> tuple[float, np.ndarray]:
    """Ω (astropy sense) and ln ε's coefficients from the unknowns vector."""
    i = n_phi
    omega = 0.0
    if spec.pattern_speed:
        omega, i = float(q[i]), i + 1
    n_sel = len(multi_indices(spec.unknown_selection_degree, False)) if spec.unknown_selection_degree else 0
    return omega, np.asarray(q[i : i + n_sel], np.float64)


def _grad_phi(theta: np.ndarray, x: np.ndarray, observer: np.ndarray, radius: float, unknowns: Unknowns) -> np.ndarray:
    """∇Φ at the stars `(n, 3)`, in chunks."""
    out = np.empty_like(x)
    args = (observer, radius, unknowns.potential_degree, unknowns.reference, unknowns.reference_scales, np)
    for lo in range(0, len(x), 65_536):
        out[lo : lo + 65_536] = potential_basis(x[lo : lo + 65_536], *args)[1] @ theta
    return out
