"""Plummer-sphere mock: exact sampling from its distribution function, and analytic truth.

Φ(r) = −GM/√(r² + b²),  ρ(r) = (3M/4πb³)(1 + r²/b²)^(−5/2),  f(E) ∝ (−E)^(7/2).
Sampling follows Aarseth, Hénon & Wielen (1974): radii by inverting the cumulative mass,
speeds by von Neumann rejection on g(q) = q²(1 − q²)^(7/2), q = v/v_esc.

With an Osipkov–Merritt anisotropy radius r_a the density and potential are the same, and
f = f(Q) with Q = Ψ − v²/2 − L²/(2r_a²), Ψ = −Φ, L = |x × v|. The augmented density
ρ_Q = (1 + r²/r_a²) ρ is, with ψ = Ψ b/GM = (1 + r²/b²)^(−1/2) and α = b²/r_a²,
ρ_Q = ρ₀ [(1 − α) ψ⁵ + α ψ³], ρ₀ = 3M/4πb³. Eddington's inversion of a term A Ψⁿ gives
(A/√8π²) √π Γ(n+1)/Γ(n−½) Q^(n−3/2), so
    f(Q) = ρ₀ / (√8 π^(3/2) Ψ₀^(3/2)) [(1 − α) Γ(6)/Γ(9/2) q^(7/2) + α Γ(4)/Γ(5/2) q^(3/2)],
q = Q/Ψ₀, Ψ₀ = GM/b; f ≥ 0 everywhere iff α ≤ 16/9, i.e. r_a ≥ 3b/4. Velocity anisotropy
β(r) = r²/(r² + r_a²). At fixed x, w = (v_r, v_t √(1 + r²/r_a²)) turns Q into Ψ − |w|²/2, so the
velocities are drawn isotropically in w (|w| by rejection on w² f(Ψ − w²/2)) and mapped back.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..constants import G_KPC_KM2_S2_PER_MSUN as G
from ..constants import PLUMMER_MIN_ANISOTROPY_RADIUS
from ..geometry import uniform_in_ball
from .selection import SelectionTruth, selection_of

_G_MAX = 0.1  # bound on g(q) = q²(1−q²)^{7/2}; its maximum is 0.0922 at q² = 2/9
_G7_MAX = (2 / 9) * (7 / 9) ** 3.5  # max of q²(1−q²)^{7/2}, at q² = 2/9
_G3_MAX = (2 / 5) * (3 / 5) ** 1.5  # max of q²(1−q²)^{3/2}, at q² = 2/5
_C7 = math.gamma(6) / math.gamma(4.5)  # Eddington's factor Γ(n+1)/Γ(n−½) for the ψ⁵ term
_C3 = math.gamma(4) / math.gamma(2.5)  # … and for the ψ³ term


@dataclass(frozen=True)
class PlummerTruth:
    """Analytic fields of a Plummer sphere centred on the origin (kpc, km/s, M☉).

    `n_stars` tracers are drawn inside the sphere of `volume_radius_kpc` around `observer`,
    so the tracer number density is n(x) = n_stars ρ(x) / M_V with M_V the mass in that sphere.
    With a `selection` S(x), `n_stars` counts the observed stars: n(x) is the true density, normalised to the
    expected number of true stars n_stars / ⟨S⟩ (`expected_true_stars`), and n_obs(x) = S(x) n(x).
    `anisotropy_radius_kpc` r_a makes the velocities Osipkov–Merritt anisotropic (None: isotropic);
    Φ, a, ρ, n and S do not depend on it.
    """

    mass_msun: float
    scale_radius_kpc: float
    observer: tuple[float, float, float]
    volume_radius_kpc: float
    n_stars: int
    selection: SelectionTruth | None = None
    anisotropy_radius_kpc: float | None = None

    def __post_init__(self):
        r_a = self.anisotropy_radius_kpc
        if r_a is not None and r_a < PLUMMER_MIN_ANISOTROPY_RADIUS * self.scale_radius_kpc:
            raise ValueError(
                f"`anisotropy_radius_kpc` (={r_a}) must be at least {PLUMMER_MIN_ANISOTROPY_RADIUS} × `scale_radius_kpc` "
                f"(={PLUMMER_MIN_ANISOTROPY_RADIUS * self.scale_radius_kpc:g}); below it the Osipkov–Merritt f(Q) is negative."
            )

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
        """True tracer number density n(x) in kpc⁻³, normalised to `expected_true_stars` inside the volume."""
        return self.expected_true_stars * self.density(x) / self._mass_in_volume  # computed once per truth

    def observed_density(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """Observed tracer density S(x) n(x) in kpc⁻³ (integrates to `n_stars`); n(x) without a selection."""
        if self.selection is None:
            return self.tracer_density(x)
        return self.tracer_density(x) * self.selection.selection(x)

    @property
    def expected_true_stars(self) -> float:
        """Expected number of true stars in the volume behind the `n_stars` observed: n_stars / ⟨S⟩."""
        return self.n_stars / self.selected_fraction

    @functools.cached_property
    def selected_fraction(self) -> float:
        """⟨S⟩ = ∫ n S dV / ∫ n dV over the volume (1 without a selection): the mean S of 65,536 true stars
        drawn with a fixed seed (a Monte Carlo integral weighted by n, ~0.4%)."""
        if self.selection is None:
            return 1.0
        rng = np.random.default_rng(54321)
        pts = np.empty((0, 3))
        while len(pts) < 2**16:
            pts = np.concatenate([pts, _positions_in_volume(rng, self, 2**18)])
        pts = pts[: 2**16]
        return float(np.mean(selection_of(self.selection, pts)))

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

    def anisotropy(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """β(r) = 1 − σ_t²/(2σ_r²): r²/(r² + r_a²) (Osipkov–Merritt), 0 when isotropic."""
        if self.anisotropy_radius_kpc is None:
            return jnp.zeros_like(_r2(x))
        return _r2(x) / (_r2(x) + self.anisotropy_radius_kpc**2)

    def binding(self, x: Float[Array, "... 3"], v: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """Q = Ψ − v²/2 − |x × v|²/(2r_a²) in km² s⁻² (Ψ − v²/2 when isotropic); f = 0 where Q ≤ 0."""
        q = self.relative_potential(x) - 0.5 * jnp.sum(v**2, axis=-1)
        if self.anisotropy_radius_kpc is None:
            return q
        return q - 0.5 * jnp.sum(jnp.cross(x, v) ** 2, axis=-1) / self.anisotropy_radius_kpc**2

    def df(self, x: Float[Array, "... 3"], v: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """The mass distribution function f(x, v) in M☉ kpc⁻³ (km/s)⁻³: ∫ f d³v = ρ(x)."""
        psi0 = G * self.mass_msun / self.scale_radius_kpc
        rho0 = 3 * self.mass_msun / (4 * jnp.pi * self.scale_radius_kpc**3)
        c7, c3 = self._df_coefficients
        q = jnp.maximum(self.binding(x, v), 0.0) / psi0
        return rho0 / (jnp.sqrt(8.0) * jnp.pi**1.5 * psi0**1.5) * (c7 * q**3.5 + c3 * q**1.5)

    def log_df(self, x: Float[Array, "... 3"], v: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """ln f(x, v) up to a constant, for bound stars: (7/2) ln(Ψ − v²/2) when isotropic, ln f(Q) otherwise."""
        if self.anisotropy_radius_kpc is None:
            return 3.5 * jnp.log(self.relative_potential(x) - 0.5 * jnp.sum(v**2, axis=-1))
        c7, c3 = self._df_coefficients
        q = self.binding(x, v) * self.scale_radius_kpc / (G * self.mass_msun)
        return 1.5 * jnp.log(q) + jnp.log(c7 * q**2 + c3)

    def grad_log_p(
        self, x: Float[Array, "... 3"], v: Float[Array, "... 3"]
    ) -> tuple[Float[Array, "... 3"], Float[Array, "... 3"]]:
        """Exact (∇ₓ ln p(v|x), ∇ᵥ ln p(v|x)), units kpc⁻¹ and s/km: d ln f/dQ times ∇Q, less ∇ ln n."""
        binding = self.binding(x, v)
        grad_phi = -self.acceleration(x)
        if self.anisotropy_radius_kpc is None:
            dlogf_dq = 3.5 / binding
            grad_x_q, grad_v_q = -grad_phi, -v
        else:
            c7, c3 = self._df_coefficients
            q2 = (binding * self.scale_radius_kpc / (G * self.mass_msun)) ** 2
            dlogf_dq = (3.5 * c7 * q2 + 1.5 * c3) / ((c7 * q2 + c3) * binding)
            x_dot_v = jnp.sum(x * v, axis=-1, keepdims=True)
            r_a2 = self.anisotropy_radius_kpc**2  # ∇ of |x × v|² = x²v² − (x·v)², over 2r_a²
            grad_x_q = -grad_phi - (x * jnp.sum(v**2, axis=-1, keepdims=True) - x_dot_v * v) / r_a2
            grad_v_q = -v - (v * _r2(x)[..., None] - x_dot_v * x) / r_a2
        grad_x_log_f = dlogf_dq[..., None] * grad_x_q
        grad_v_log_p = dlogf_dq[..., None] * grad_v_q
        return grad_x_log_f - self.grad_log_tracer_density(x), grad_v_log_p

    @functools.cached_property
    def _df_coefficients(self) -> tuple[float, float]:
        """(c₇, c₃) of f ∝ c₇ q^{7/2} + c₃ q^{3/2}: ((1 − α) Γ(6)/Γ(9/2), α Γ(4)/Γ(5/2)), α = b²/r_a²."""
        r_a = self.anisotropy_radius_kpc
        alpha = 0.0 if r_a is None else (self.scale_radius_kpc / r_a) ** 2
        return (1 - alpha) * _C7, alpha * _C3

    def grad_log_tracer_density(self, x: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
        """∇ ln n in kpc⁻¹ (n ∝ ρ ∝ (1 + r²/b²)^{−5/2})."""
        return -5 * x / (_r2(x) + self.scale_radius_kpc**2)[..., None]

    def laplacian_log_tracer_density(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """∇² ln n in kpc⁻² (the curvature ρ reads through `vanilla`'s v·∇ ln n): −5 (3 / u − 2r² / u²), u = r² + b²."""
        r2 = _r2(x)
        u = r2 + self.scale_radius_kpc**2
        return -5 * (3 / u - 2 * r2 / u**2)


def sample_plummer(
    truth: PlummerTruth, seed: int
) -> tuple[Float[np.ndarray, "n 3"], Float[np.ndarray, "n 3"]]:
    """Draw `truth.n_stars` stars inside the observer's sphere, exactly from the Plummer DF.

    With `truth.selection`, see `sample_observed_plummer`; this function ignores it.
    """
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    n_kept = 0
    while n_kept < truth.n_stars:
        pos = _positions_in_volume(rng, truth, max(2 * (truth.n_stars - n_kept), 1024))
        kept.append(pos)
        n_kept += len(pos)
    positions = np.concatenate(kept)[: truth.n_stars]
    return positions, draw_velocities(truth, positions, rng)


MAX_RADII_PER_DRAW = 1 << 22
"""Radii drawn per round of `sample_observed_plummer` (~0.5 GB of temporaries): few land in the volume and fewer are
seen, so one round sized for 4 × 10⁶ observed stars drew ~8 × 10⁸ radii and held 43 GB (an H200 run, 2026-12-04)."""


def sample_observed_plummer(
    truth: PlummerTruth, seed: int
) -> tuple[Float[np.ndarray, "n 3"], Float[np.ndarray, "n 3"], Float[np.ndarray, " n"], int]:
    """Draw true stars in the volume and keep each with probability S(x) until `truth.n_stars` are kept.

    Returns positions, velocities, S at each kept star, and the number of true stars drawn (up to and including
    the last kept one), whose expectation is `truth.expected_true_stars`.
    """
    assert truth.selection is not None, "sample_observed_plummer needs a PlummerTruth with a selection"
    rng = np.random.default_rng(seed)
    positions, selection = [], []
    n_kept = n_true = 0
    kept_per_draw = 0.1  # first guess of the share of radii drawn that end up kept; updated from the draws
    while n_kept < truth.n_stars:
        need = truth.n_stars - n_kept
        n_draw = min(max(int(1.05 * need / kept_per_draw), 4096), MAX_RADII_PER_DRAW)  # S is the cost: overshoot little
        pos = _positions_in_volume(rng, truth, n_draw)
        s = selection_of(truth.selection, pos)
        seen = rng.uniform(size=len(pos)) < s
        kept_per_draw = max(seen.sum() / n_draw, 1e-4)
        if seen.sum() > need:  # count true stars only up to the last one kept
            last = np.flatnonzero(seen)[need - 1]
            pos, s, seen = pos[: last + 1], s[: last + 1], seen[: last + 1]
        positions.append(pos[seen])
        selection.append(s[seen])
        n_kept += int(seen.sum())
        n_true += len(pos)
    kept = np.concatenate(positions)
    return kept, draw_velocities(truth, kept, rng), np.concatenate(selection), n_true


def _positions_in_volume(rng: np.random.Generator, truth: PlummerTruth, n_draw: int) -> Float[np.ndarray, "k 3"]:
    """Of `n_draw` radii drawn from the mass between the volume's nearest and farthest radius, those inside it."""
    b, radius = truth.scale_radius_kpc, truth.volume_radius_kpc
    observer = np.asarray(truth.observer, np.float64)
    r_obs = float(np.linalg.norm(observer))
    m_lo, m_hi = _mass_fraction(max(r_obs - radius, 0.0), b), _mass_fraction(r_obs + radius, b)
    m = rng.uniform(m_lo, m_hi, n_draw)
    r = b / np.sqrt(m ** (-2.0 / 3.0) - 1.0)
    pos = r[:, None] * _unit_vectors(rng, n_draw)
    return pos[np.linalg.norm(pos - observer, axis=1) < radius]


def draw_velocities(
    truth: PlummerTruth, positions: Float[np.ndarray, "n 3"], rng: np.random.Generator
) -> Float[np.ndarray, "n 3"]:
    """One velocity per row of `positions`, exactly from the DF: isotropic from f(E) ∝ (−E)^{7/2}, or Osipkov–Merritt from f(Q)."""
    if truth.anisotropy_radius_kpc is not None:
        return _osipkov_merritt_velocities(rng, truth, positions)
    v_esc = np.sqrt(2.0 * np.asarray(truth.relative_potential(positions)))
    speeds = v_esc * _speed_fractions(rng, len(positions))
    return speeds[:, None] * _unit_vectors(rng, len(positions))


def _osipkov_merritt_velocities(
    rng: np.random.Generator, truth: PlummerTruth, positions: Float[np.ndarray, "n 3"]
) -> Float[np.ndarray, "n 3"]:
    """Velocities from f(Q) at each position: w isotropic with |w| = s √(2Ψ), s by rejection, then v_t = w_t / √(1 + r²/r_a²).

    The density of s is h(s) ∝ s² [c₇ ψ² (1 − s²)^{7/2} + c₃ (1 − s²)^{3/2}] (ψ = Ψ/Ψ₀, a common ψ^{3/2} dropped);
    the envelope c₇⁺ ψ² max(q²(1−q²)^{7/2}) + c₃ max(q²(1−q²)^{3/2}) bounds it even where c₇ < 0 (r_a < b).
    """
    n = len(positions)
    psi = np.asarray(truth.relative_potential(positions), np.float64)
    c7, c3 = truth._df_coefficients
    a7 = c7 * (psi * truth.scale_radius_kpc / (G * truth.mass_msun)) ** 2
    envelope = np.maximum(a7, 0.0) * _G7_MAX + c3 * _G3_MAX
    s = np.empty(n)
    pending = np.arange(n)
    while len(pending):
        trial = rng.uniform(0.0, 1.0, len(pending))
        bound = 1 - trial**2
        h = trial**2 * (a7[pending] * bound**3.5 + c3 * bound**1.5)
        accept = rng.uniform(0.0, 1.0, len(pending)) * envelope[pending] < h
        s[pending[accept]] = trial[accept]
        pending = pending[~accept]
    w = (s * np.sqrt(2.0 * psi))[:, None] * _unit_vectors(rng, n)
    r_hat = positions / np.linalg.norm(positions, axis=1, keepdims=True)
    w_r = np.sum(w * r_hat, axis=1, keepdims=True)
    stretch = np.sqrt(1 + np.sum(positions**2, axis=1, keepdims=True) / truth.anisotropy_radius_kpc**2)
    return w_r * r_hat + (w - w_r * r_hat) / stretch



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
