"""Legendre-polynomial bases on the observer's ball, with exact gradients and Laplacians.

Written once for `numpy` and `jax.numpy` (the `xp` argument), so the model evaluates in float64 with numpy
and the moments accumulate with jit on CPU or GPU.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np


@lru_cache(maxsize=None)
def multi_indices(degree: int, include_constant: bool) -> np.ndarray:
    """Exponents `(P, 3)` of the tensor Legendre products of total degree ≤ `degree`, ordered by degree."""
    out = [
        (a, b, d - a - b)
        for d in range(0 if include_constant else 1, degree + 1)
        for a in range(d, -1, -1)
        for b in range(d - a, -1, -1)
    ]
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


def legendre(u: Any, degree: int, xp: Any = np) -> tuple[Any, Any, Any]:
    """P_n(u), P_n'(u), P_n''(u) for n = 0 … `degree`; each of shape `u.shape + (degree + 1,)`."""
    one, zero = xp.ones_like(u), xp.zeros_like(u)
    p, dp, ddp = [one, u], [zero, one], [zero, zero]
    for n in range(1, degree):
        p.append(((2 * n + 1) * u * p[n] - n * p[n - 1]) / (n + 1))
        dp.append(dp[n - 1] + (2 * n + 1) * p[n])
        ddp.append(ddp[n - 1] + (2 * n + 1) * dp[n])
    return tuple(xp.stack(q[: degree + 1], axis=-1) for q in (p, dp, ddp))


def tensor_basis(
    x: Any, centre: Any, scale: float, degree: int, include_constant: bool, xp: Any = np
) -> tuple[Any, Any, Any]:
    """Values `(n, P)`, gradients `(n, 3, P)` (per kpc) and Laplacians `(n, P)` (per kpc²) of the products
    P_a(u_x) P_b(u_y) P_c(u_z), u = (x − centre)/scale, at positions `x` of shape `(n, 3)`."""
    idx = multi_indices(degree, include_constant)
    u = (x - centre) / scale
    p, dp, ddp = legendre(u, degree, xp)  # (n, 3, d+1)
    vx, vy, vz = (p[:, i, idx[:, i]] for i in range(3))
    gx, gy, gz = (dp[:, i, idx[:, i]] for i in range(3))
    hx, hy, hz = (ddp[:, i, idx[:, i]] for i in range(3))
    values = vx * vy * vz
    grads = xp.stack([gx * vy * vz, vx * gy * vz, vx * vy * gz], axis=1) / scale
    laplacians = (hx * vy * vz + vx * hy * vz + vx * vy * hz) / scale**2
    return values, grads, laplacians


def tensor_values(x: Any, centre: Any, scale: Any, degree: int, xp: Any = np) -> Any:
    """Values `(n, P)` of the products of total degree 1 … `degree` (no constant) at positions `x` `(n, 3)`: what
    `tensor_basis` gives first, without the derivatives."""
    idx = multi_indices(degree, False)
    p = legendre((x - centre) / scale, degree, xp)[0]  # (n, 3, d+1)
    return p[:, 0, idx[:, 0]] * p[:, 1, idx[:, 1]] * p[:, 2, idx[:, 2]]


def degrees(degree: int, include_constant: bool) -> np.ndarray:
    """Total degree of each basis function, shape `(P,)`."""
    return multi_indices(degree, include_constant).sum(axis=1)


def value_at_centre(degree: int, include_constant: bool) -> np.ndarray:
    """Each product's value at u = 0, shape `(P,)` (subtracted so that Φ(observer) = 0)."""
    p0, _, _ = legendre(np.zeros((1, 3)), degree)
    idx = multi_indices(degree, include_constant)
    return p0[0, 0, idx[:, 0]] * p0[0, 1, idx[:, 1]] * p0[0, 2, idx[:, 2]]
