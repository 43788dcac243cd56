"""The weak CBE's linear system, accumulated over the stars in fixed-size chunks (jit, CPU or GPU).

For test functions w_k = φ_a(x) h_m(v) (k = a·M + m) and stars s with weights ω_s (1/S or 1):

    Σ_s ω_s [∇Φ·∇ᵥw_k + Ω L w_k − w_k v·∇ ln ε] = Σ_s ω_s [v·∇ₓw_k + w_k v·∇ ln S],

L = (x ∂_y − y ∂_x) + (v_x ∂_{v_y} − v_y ∂_{v_x}) (astropy's sense), linear in Φ's coefficients θ, in Ω and in
ln ε's coefficients c: `design @ [θ, Ω, c] = rhs`. A known S enters either as weights ω = 1/S (with ∇ ln S = 0)
or, when ∇ ln S is known at the stars, through test functions S·w: unit weights and the ∇ ln S term. The noise of the sums is estimated from the per-star terms
e_s = ω_s [v·∇ₓw − ∇Φ₀·∇ᵥw − Ω₀ L w + w v·∇ ln ε₀] at a first solution: covariance Σ_s e_s e_sᵀ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from .basis import tensor_basis
from .reference import potential_basis
from .testfunctions import TestFunctions, position_parts, velocity_parts


@dataclass(frozen=True)
class Unknowns:
    """The linear unknowns: Φ's Legendre degree, whether Ω is fitted, ln ε's degree (0: none), Φ's reference
    shapes (kind and scales, kpc; their coefficients come first)."""

    potential_degree: int
    pattern_speed: bool
    selection_degree: int
    reference: str = "none"
    reference_scales: tuple[float, ...] = ()


@dataclass
class WeakSystem:
    """Accumulated sums: `design` `(K, Q)`, `rhs` `(K,)`, `covariance` `(K, K)` of `rhs − design @ q`."""

    design: Float[np.ndarray, "K Q"]
    rhs: Float[np.ndarray, " K"]
    covariance: Float[np.ndarray, "K K"]
    n_stars: int


def _per_star(tf: TestFunctions, unknowns: Unknowns, radius: float, x, v, w, gls):
    """Per-star pieces, all `(n, A, M)` or with a trailing unknowns axis. `gls`: known ∇ ln S `(n, 3)` (zeros
    when the selection is absent or weighted by 1/S); its term w v·∇ ln S joins the right-hand side."""
    phi, dphi = position_parts(tf, x, jnp)
    h, dh = velocity_parts(tf, v, jnp)
    wphi = w[:, None] * phi
    drift = jnp.einsum("nj,nja->na", v, dphi) + phi * jnp.einsum("nj,nj->n", v, gls)[:, None]
    rhs = drift[:, :, None] * h[:, None, :] * w[:, None, None]
    pieces = {"wphi": wphi, "phi": phi, "dphi": dphi, "h": h, "dh": dh, "rhs": rhs}
    if unknowns.pattern_speed:
        rot_v = v[:, 0, None] * dh[:, 1] - v[:, 1, None] * dh[:, 0]  # (n, M)
        rot_x = x[:, 0, None] * dphi[:, 1] - x[:, 1, None] * dphi[:, 0]  # (n, A)
        pieces["lw"] = w[:, None, None] * (phi[:, :, None] * rot_v[:, None, :] + rot_x[:, :, None] * h[:, None, :])
    if unknowns.selection_degree:
        _, de, _ = tensor_basis(x, tf.observer, radius, unknowns.selection_degree, False, jnp)
        pieces["ve"] = jnp.einsum("nj,njl->nl", v, de)  # v·∇E_l, (n, L)
    return pieces


def design_kernel(tf: TestFunctions, unknowns: Unknowns, radius: float) -> Callable:
    """jit function (x, v, w, ∇ ln S) → (design `(A, M, Q)`, rhs `(A, M)`, Σ rhs rhsᵀ `(K, K)`) for one chunk."""

    @jax.jit
    def kernel(x, v, w, gls):
        p = _per_star(tf, unknowns, radius, x, v, w, gls)
        _, db, _ = potential_basis(x, tf.observer, radius, unknowns.potential_degree, unknowns.reference,
                                   unknowns.reference_scales, jnp)
        g = jnp.einsum("njm,njp->nmp", p["dh"], db)
        cols = [jnp.einsum("na,nmp->amp", p["wphi"], g)]
        if unknowns.pattern_speed:
            cols.append(jnp.sum(p["lw"], axis=0)[:, :, None])
        if unknowns.selection_degree:
            cols.append(-jnp.einsum("na,nm,nl->aml", p["wphi"], p["h"], p["ve"]))
        e = p["rhs"].reshape(x.shape[0], -1)
        return jnp.concatenate(cols, axis=2), jnp.sum(p["rhs"], axis=0), e.T @ e

    return kernel


def residual_kernel(tf: TestFunctions, unknowns: Unknowns, radius: float) -> Callable:
    """jit function (x, v, w, ∇ ln S, ∇Φ₀ `(n, 3)`, Ω₀, ∇ ln ε₀ `(n, 3)`) → Σ_s e_s e_sᵀ `(K, K)` for one chunk."""

    @jax.jit
    def kernel(x, v, w, gls, grad_phi, omega, grad_log_eps):
        p = _per_star(tf, unknowns, radius, x, v, w, gls)
        force = jnp.einsum("njm,nj->nm", p["dh"], grad_phi)
        e = p["rhs"] - p["wphi"][:, :, None] * force[:, None, :]
        if unknowns.pattern_speed:
            e = e - omega * p["lw"]
        if unknowns.selection_degree:
            ve = jnp.einsum("nj,nj->n", v, grad_log_eps)
            e = e + (p["wphi"] * ve[:, None])[:, :, None] * p["h"][:, None, :]
        e = e.reshape(x.shape[0], -1)
        return e.T @ e

    return kernel


def chunks(n: int, size: int):
    """(start, stop) of consecutive chunks of at most `size` stars."""
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _padded(a: np.ndarray, size: int) -> np.ndarray:
    """`a` padded with zeros to `size` rows (so every chunk has one shape and compiles once)."""
    if len(a) == size:
        return a
    pad = np.zeros((size - len(a),) + a.shape[1:], a.dtype)
    return np.concatenate([a, pad])


def accumulate_design(
    tf: TestFunctions, unknowns: Unknowns, radius: float, x: np.ndarray, v: np.ndarray, w: np.ndarray, chunk: int,
    grad_log_selection: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """design `(K, Q)`, rhs `(K,)` and Σ rhs_s rhs_sᵀ `(K, K)` over all stars, chunk by chunk (float64 sums).

    `grad_log_selection` `(n, 3)`: a known ∇ ln S at the stars (test functions S·w, unit weights); None: zeros."""
    kernel = design_kernel(tf, unknowns, radius)
    gls = np.zeros_like(x) if grad_log_selection is None else grad_log_selection
    size = min(chunk, len(x))
    design = rhs = outer = None
    for lo, hi in chunks(len(x), size):
        args = (_padded(x[lo:hi], size), _padded(v[lo:hi], size), _padded(w[lo:hi], size), _padded(gls[lo:hi], size))
        d, r, o = (np.asarray(a, np.float64) for a in kernel(*(jnp.asarray(a, jnp.float32) for a in args)))
        design, rhs, outer = (d, r, o) if design is None else (design + d, rhs + r, outer + o)
    assert design is not None
    return design.reshape(-1, design.shape[-1]), rhs.reshape(-1), outer


def accumulate_covariance(
    tf: TestFunctions, unknowns: Unknowns, radius: float, x: np.ndarray, v: np.ndarray, w: np.ndarray, chunk: int,
    grad_phi: np.ndarray, omega: float, grad_log_eps: np.ndarray, grad_log_selection: np.ndarray | None = None,
) -> np.ndarray:
    """Σ_s e_s e_sᵀ `(K, K)` of the per-star residuals at a first solution, chunk by chunk."""
    kernel = residual_kernel(tf, unknowns, radius)
    gls = np.zeros_like(x) if grad_log_selection is None else grad_log_selection
    size = min(chunk, len(x))
    total = None
    for lo, hi in chunks(len(x), size):
        args = [_padded(a[lo:hi], size) for a in (x, v, w, gls, grad_phi)]
        args.append(np.float32(omega))
        args.append(_padded(grad_log_eps[lo:hi], size))
        out = np.asarray(kernel(*(jnp.asarray(a, jnp.float32) for a in args)), np.float64)
        total = out if total is None else total + out
    assert total is not None
    return total
