"""Quasi-Monte Carlo point sets: scrambled Sobol or Halton points in [0, 1)^d, and standard normals from them."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from jaxtyping import Float
from scipy.special import ndtri
from scipy.stats import qmc

QMC = Literal["sobol", "halton"]

_EDGE = 1e-7
"""Uniforms are kept in [_EDGE, 1 − _EDGE] so that no normal is infinite."""


def qmc_uniform(n: int, dim: int, kind: QMC, seed: int) -> Float[np.ndarray, "n dim"]:
    """`n` scrambled (seeded) low-discrepancy points in [0, 1)^`dim`.

    Sobol sets keep their balance properties only for powers of two; other sizes (the published
    10,000 and 3,200) are the first `n` points of the sequence, which is still low-discrepancy.
    """
    if n < 1:
        raise ValueError(f"`n` (={n}) must be positive.")
    if kind == "sobol":
        engine = qmc.Sobol(dim, scramble=True, seed=seed)
    elif kind == "halton":
        engine = qmc.Halton(dim, scramble=True, seed=seed)
    else:
        raise ValueError(f"`kind` must be 'sobol' or 'halton'; got {kind!r}.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The balance properties of Sobol", category=UserWarning)
        return engine.random(n)


def qmc_normals(n: int, kind: QMC, seed: int, dim: int = 3) -> Float[np.ndarray, "n dim"]:
    """`n` low-discrepancy standard-normal points: `qmc_uniform` through the normal quantile (ndtri)."""
    return ndtri(np.clip(qmc_uniform(n, dim, kind, seed), _EDGE, 1 - _EDGE))


def unit_vectors(u: Float[np.ndarray, "n 2"]) -> Float[np.ndarray, "n 3"]:
    """Directions uniform on the sphere from two uniforms per point (cos θ = 1 − 2u₀, φ = 2π u₁)."""
    cos_t = 1 - 2 * u[:, 0]
    sin_t = np.sqrt(np.clip(1 - cos_t**2, 0, None))
    phi = 2 * np.pi * u[:, 1]
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)
