"""A 3-D dust field from random Fourier modes, and extinction along the line of sight from an observer.

The log extinction density δ(x) is a stationary Gaussian random field with power spectrum P(k) ∝ k^(−index)
between k_min = 2π/max_scale and k_max = 2π/min_scale:

    δ(x) = σ √(2/N) Σ_j cos(k_j·(x − o) + φ_j),

with N wave vectors whose lengths follow P(k) k² (the number of modes in a shell; stratified draws), uniform
directions and phases, all from the seed. Each realisation has spatial variance σ² exactly. The extinction
density is α(x) = α₀ exp(δ − σ²/2) (mag/kpc, mean α₀), and the extinction of a star at x seen from o is
A(x) = |x − o| Σ_i w_i α(o + t_i (x − o)), Gauss–Legendre nodes t_i on [0, 1]. Everything is jax.numpy, so
A is smooth and differentiable in x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..backend import default_platform

DISTANCE_SOFTENING_KPC = 1e-4
"""|x − o| is softened to √(|x − o|² + ε²) so that A, S and their gradients stay finite at the observer."""


@dataclass(frozen=True, eq=False)  # holds arrays: identity comparison and hash
class DustField:
    """A dust realisation seen from `observer` (kpc).

    `wave_vectors` has shape `(n_modes, 3)` (kpc⁻¹), `phases` shape `(n_modes,)`; `nodes` and `weights` are the
    Gauss–Legendre rule on [0, 1], shape `(quadrature_nodes,)`.
    """

    observer: tuple[float, float, float]
    mean_extinction_mag_per_kpc: float
    log_sigma: float
    wave_vectors: Float[np.ndarray, "m 3"]
    phases: Float[np.ndarray, " m"]
    nodes: Float[np.ndarray, " q"]
    weights: Float[np.ndarray, " q"]

    @classmethod
    def from_seed(
        cls,
        seed: int,
        observer: tuple[float, float, float],
        mean_extinction_mag_per_kpc: float,
        log_sigma: float,
        spectral_index: float,
        min_scale_kpc: float,
        max_scale_kpc: float,
        n_modes: int,
        quadrature_nodes: int,
    ) -> DustField:
        """Draw the modes from `seed`; the same arguments always give the same field."""
        rng = np.random.default_rng(seed)
        u = (np.arange(n_modes) + rng.uniform(size=n_modes)) / n_modes  # stratified in the CDF of |k|
        k = _power_law_quantiles(u, 2 * np.pi / max_scale_kpc, 2 * np.pi / min_scale_kpc, 2.0 - spectral_index)
        direction = rng.normal(size=(n_modes, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        phases = rng.uniform(0, 2 * np.pi, n_modes)
        t, w = np.polynomial.legendre.leggauss(quadrature_nodes)
        return cls(
            observer=tuple(float(c) for c in observer),
            mean_extinction_mag_per_kpc=float(mean_extinction_mag_per_kpc),
            log_sigma=float(log_sigma),
            wave_vectors=k[:, None] * direction,
            phases=phases,
            nodes=(t + 1) / 2,
            weights=w / 2,
        )

    def log_density_contrast(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """δ(x), the Gaussian random field (zero mean, variance `log_sigma`²)."""
        phase = (jnp.asarray(x) - jnp.asarray(self.observer)) @ jnp.asarray(self.wave_vectors).T + self.phases
        return self._amplitude * jnp.sum(fast_cos(phase), axis=-1)

    def extinction_density(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """α(x) in mag/kpc, log-normal with mean `mean_extinction_mag_per_kpc`."""
        return self._alpha(self.log_density_contrast(x))

    def extinction(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """A(x) in mag: α integrated along the straight line from the observer to x."""
        offset = jnp.asarray(x) - jnp.asarray(self.observer)
        projected = offset @ jnp.asarray(self.wave_vectors).T  # k_j·(x − o), shape (..., m)
        phase = projected[..., None, :] * jnp.asarray(self.nodes)[:, None] + self.phases  # (..., q, m)
        alpha = self._alpha(self._amplitude * jnp.sum(fast_cos(phase), axis=-1))  # (..., q)
        return softened_distance(offset) * (alpha @ jnp.asarray(self.weights))

    @property
    def _amplitude(self) -> float:
        return self.log_sigma * float(np.sqrt(2.0 / len(self.phases)))

    def _alpha(self, delta: Float[Array, "..."]) -> Float[Array, "..."]:
        return self.mean_extinction_mag_per_kpc * jnp.exp(delta - 0.5 * self.log_sigma**2)


def softened_distance(offset: Float[Array, "... 3"]) -> Float[Array, "..."]:
    """√(|offset|² + ε²) in kpc: smooth at zero, equal to |offset| to 5e-9 kpc beyond 1 kpc."""
    return jnp.sqrt(jnp.sum(offset**2, axis=-1) + DISTANCE_SOFTENING_KPC**2)


def fast_cos(angle: Float[Array, "..."]) -> Float[Array, "..."]:
    """cos by reduction to [−π, π] and its Taylor series to r¹⁸ (error < 1e-8; float32 rounding ~1e-6) on a CPU,
    XLA's own cosine elsewhere.

    XLA's CPU cosine is about 4 times slower, and the (points × nodes × modes) cosines dominate A(x). On a GPU
    the series inside the modes' reduction made XLA's compilation of the stars stage stall (an H200 run, 2026-12-04).
    """
    if default_platform() != "cpu":
        return jnp.cos(angle)
    r = angle - 2 * np.pi * jnp.round(angle / (2 * np.pi))
    r2 = r * r
    out = jnp.full_like(r, _COS_TAYLOR[-1])
    for c in _COS_TAYLOR[-2::-1]:
        out = out * r2 + c
    return out


_COS_TAYLOR = tuple((-1) ** n / math.factorial(2 * n) for n in range(10))


def correlation(field: DustField, separation_kpc: Float[np.ndarray, " r"]) -> Float[np.ndarray, " r"]:
    """Direction-averaged correlation ⟨δ(x) δ(x + r)⟩ / σ² of this realisation: (1/N) Σ_j sin(k_j r)/(k_j r)."""
    k = np.linalg.norm(field.wave_vectors, axis=1)
    return np.mean(np.sinc(np.outer(separation_kpc, k) / np.pi), axis=1)


def _power_law_quantiles(u: np.ndarray, k_min: float, k_max: float, exponent: float) -> np.ndarray:
    """Inverse CDF of p(k) ∝ k^exponent on [k_min, k_max]."""
    e = exponent + 1.0
    if abs(e) < 1e-12:
        return k_min * (k_max / k_min) ** u
    return (k_min**e + u * (k_max**e - k_min**e)) ** (1.0 / e)
