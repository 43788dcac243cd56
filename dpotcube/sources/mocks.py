"""Plummer-sphere mock: exact sampling from its distribution function, and analytic truth.

Φ(r) = −GM/√(r² + b²),  ρ(r) = (3M/4πb³)(1 + r²/b²)^(−5/2),  f(E) ∝ (−E)^(7/2).
Sampling follows Aarseth, Hénon & Wielen (1974): radii by inverting the cumulative mass,
speeds by von Neumann rejection on g(q) = q²(1 − q²)^(7/2), q = v/v_esc.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..constants import G_KPC_KM2_S2_PER_MSUN as G
from ..geometry import uniform_in_ball

_G_MAX = 0.1  # bound on g(q) = q²(1−q²)^{7/2}; its maximum is 0.0922 at q² = 2/9


@dataclass(frozen=True)
class PlummerTruth:
    """Analytic fields of a Plummer sphere centred on the origin (kpc, km/s, M☉).

    `n_stars` tracers are drawn inside the sphere of `volume_radius_kpc` around `observer`,
    so the tracer number density is n(x) = n_stars ρ(x) / M_V with M_V the mass in that sphere.
    """

    mass_msun: float
    scale_radius_kpc: float
    observer: tuple[float, float, float]
    volume_radius_kpc: float
    n_stars: int

    def potential(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """Φ in km² s⁻²."""
        return -G * self.mass_msun / jnp.sqrt(_r2(x) + self.scale_radius_kpc**2)

    def acceleration(self, x: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
        """a = −∇Φ in km² s⁻² kpc⁻¹ (points towards the centre)."""
        s3 = (_r2(x) + self.scale_radius_kpc**2) ** 1.5
        return -G * self.mass_msun * x / s3[..., None]

    def density(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """Mass density ρ in M☉ kpc⁻³."""
        b = self.scale_radius_kpc
        return 3 * self.mass_msun / (4 * jnp.pi * b**3) * (1 + _r2(x) / b**2) ** -2.5

    def tracer_density(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """Tracer number density n(x) in kpc⁻³, normalised to `n_stars` inside the volume."""
        return self.n_stars * self.density(x) / self._mass_in_volume  # computed once per truth

    @functools.cached_property
    def _mass_in_volume(self) -> float:
        return self.mass_in_volume()

    def mass_in_volume(self, n_points: int = 400_000) -> float:
        """Mass inside the observer's sphere (M☉), by a fixed-seed Monte Carlo integral (~0.1%)."""
        pts = uniform_in_ball(np.random.default_rng(12345), n_points, np.asarray(self.observer), self.volume_radius_kpc)
        volume = 4 / 3 * np.pi * self.volume_radius_kpc**3
        return float(np.mean(np.asarray(self.density(pts))) * volume)

    def relative_potential(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """Ψ = −Φ > 0."""
        return -self.potential(x)

    def log_df(self, x: Float[Array, "... 3"], v: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """ln f(x, v) up to a constant: (7/2) ln(Ψ − v²/2) for bound stars."""
        return 3.5 * jnp.log(self.relative_potential(x) - 0.5 * jnp.sum(v**2, axis=-1))

    def grad_log_p(
        self, x: Float[Array, "... 3"], v: Float[Array, "... 3"]
    ) -> tuple[Float[Array, "... 3"], Float[Array, "... 3"]]:
        """Exact (∇ₓ ln p(v|x), ∇ᵥ ln p(v|x)), units kpc⁻¹ and s/km."""
        binding = self.relative_potential(x) - 0.5 * jnp.sum(v**2, axis=-1)
        grad_phi = -self.acceleration(x)
        grad_x_log_f = -3.5 * grad_phi / binding[..., None]
        grad_v_log_p = -3.5 * v / binding[..., None]
        return grad_x_log_f - self.grad_log_tracer_density(x), grad_v_log_p

    def grad_log_tracer_density(self, x: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
        """∇ ln n in kpc⁻¹ (n ∝ ρ ∝ (1 + r²/b²)^{−5/2})."""
        return -5 * x / (_r2(x) + self.scale_radius_kpc**2)[..., None]


def sample_plummer(
    truth: PlummerTruth, seed: int
) -> tuple[Float[np.ndarray, "n 3"], Float[np.ndarray, "n 3"]]:
    """Draw `truth.n_stars` stars inside the observer's sphere, exactly from the Plummer DF."""
    rng = np.random.default_rng(seed)
    b, radius = truth.scale_radius_kpc, truth.volume_radius_kpc
    observer = np.asarray(truth.observer, np.float64)
    r_obs = float(np.linalg.norm(observer))
    m_lo, m_hi = _mass_fraction(max(r_obs - radius, 0.0), b), _mass_fraction(r_obs + radius, b)
    kept: list[np.ndarray] = []
    n_kept = 0
    while n_kept < truth.n_stars:
        n_draw = max(2 * (truth.n_stars - n_kept), 1024)
        m = rng.uniform(m_lo, m_hi, n_draw)
        r = b / np.sqrt(m ** (-2.0 / 3.0) - 1.0)
        pos = r[:, None] * _unit_vectors(rng, n_draw)
        pos = pos[np.linalg.norm(pos - observer, axis=1) < radius]
        kept.append(pos)
        n_kept += len(pos)
    positions = np.concatenate(kept)[: truth.n_stars]
    return positions, draw_velocities(truth, positions, rng)


def draw_velocities(
    truth: PlummerTruth, positions: Float[np.ndarray, "n 3"], rng: np.random.Generator
) -> Float[np.ndarray, "n 3"]:
    """One velocity per row of `positions`, exactly from the DF: p(v|x) ∝ (Ψ(x) − v²/2)^{7/2}, isotropic."""
    v_esc = np.sqrt(2.0 * np.asarray(truth.relative_potential(positions)))
    speeds = v_esc * _speed_fractions(rng, len(positions))
    return speeds[:, None] * _unit_vectors(rng, len(positions))


def _speed_fractions(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.empty(0)
    while len(out) < n:
        q = rng.uniform(0.0, 1.0, 2 * n)
        accept = rng.uniform(0.0, _G_MAX, 2 * n) < q**2 * (1 - q**2) ** 3.5
        out = np.concatenate([out, q[accept]])
    return out[:n]


def _mass_fraction(r: float, b: float) -> float:
    return r**3 / (r**2 + b**2) ** 1.5


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vec = rng.normal(size=(n, 3))
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)


def _r2(x: Float[Array, "... 3"]) -> Float[Array, "..."]:
    return jnp.sum(x**2, axis=-1)
