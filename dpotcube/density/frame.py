"""A velocity frame that follows position, for p(v|x): u = (R(x) v − μ(x)) / σ(x), fitted before the flow.

R(x) turns v into Galactocentric spherical components (v_r, v_θ, v_φ). Each component's mean μ and log-dispersion
ln σ are smooth global functions of position: a constant, the radial reference shapes ln(1 + r/s) of n(x)'s
Legendre family, and Legendre products of total degree ≤ `degree` in the volume's coordinates. μ is a weighted
least-squares fit; ln σ a Gaussian maximum-likelihood fit by Newton (convex in its coefficients). A flow then models
u, conditioned on position, on the frame's ln σ, or on nothing (docs/density.md, "A velocity frame for p(v|x)").

Why: a MAF conditioned on x carries p(v|x)'s whole x-dependence in its networks, and ∇ₓ ln p, which `vanilla`
reads, inherits their sampling noise. A frame puts the bulk of that dependence (how the velocity ellipsoid's size
and centre change across the volume) on a few dozen well-measured numbers.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .legendre import log_basis

_NEWTON_STEPS = 50
_NEWTON_TOLERANCE = 1e-10  # on the Newton decrement per star
_CHUNK = 200_000
_AXIS_CORE = 1e-12  # |ẑ × r̂|² is softened by this: φ̂ stays finite (if not unit) on the Galactic axis


def spherical_axes(x: Float[Array, "3"]) -> Float[Array, "3 3"]:
    """Rows r̂, θ̂, φ̂ at Galactocentric `x` (kpc): an orthonormal frame (right-handed, θ̂ = φ̂ × r̂)."""
    r_hat = x / jnp.sqrt(jnp.sum(x * x) + 1e-12)
    phi = jnp.array([-r_hat[1], r_hat[0], 0.0])
    phi_hat = phi / jnp.sqrt(jnp.sum(phi * phi) + _AXIS_CORE)
    return jnp.stack([r_hat, jnp.cross(phi_hat, r_hat), phi_hat])


class VelocityFrame(eqx.Module):
    """μ(x) = B(x)·`mean_coefficients`, ln σ(x) = B(x)·`log_scale_coefficients`, per spherical component."""

    mean_coefficients: Float[Array, "K 3"]  # km/s
    log_scale_coefficients: Float[Array, "K 3"]  # ln(km/s)
    centre: Float[Array, "3"]  # kpc: the Legendre part's centre and radius
    radius: Float[Array, ""]
    degree: int = eqx.field(static=True)
    reference_scales: tuple[float, ...] = eqx.field(static=True)  # kpc

    def basis_rows(self, x: Float[Array, "n 3"]) -> Float[Array, "n K"]:
        """1, the reference shapes, then the Legendre products of degree 1 … `degree`, at each row of `x`."""
        rest = log_basis(x, self.centre, self.radius, self.degree, self.reference_scales, jnp)
        return jnp.concatenate([jnp.ones((len(x), 1), rest.dtype), rest], axis=1)

    def basis(self, x: Float[Array, "3"]) -> Float[Array, " K"]:
        return self.basis_rows(x[None])[0]

    def log_dispersions(self, x: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
        """ln σ (ln km/s) of the three components at positions `x`."""
        return (self.basis_rows(jnp.asarray(x).reshape(-1, 3)) @ self.log_scale_coefficients).reshape(jnp.shape(x))

    def to_frame(self, v: Float[Array, "3"], x: Float[Array, "3"]) -> tuple[Float[Array, "3"], Float[Array, ""]]:
        """(u, ln |∂u/∂v|) for one star: p(v|x) = q(u|x) |∂u/∂v|."""
        b = self.basis(x)
        log_scale = b @ self.log_scale_coefficients
        return (spherical_axes(x) @ v - b @ self.mean_coefficients) * jnp.exp(-log_scale), -jnp.sum(log_scale)

    def from_frame(self, u: Float[Array, "3"], x: Float[Array, "3"]) -> Float[Array, "3"]:
        """v (km/s) of frame coordinates `u` at `x`."""
        b = self.basis(x)
        return spherical_axes(x).T @ (b @ self.mean_coefficients + jnp.exp(b @ self.log_scale_coefficients) * u)


def frame_skeleton(degree: int, reference_scales: tuple[float, ...]) -> VelocityFrame:
    """A frame of the right shapes (the loading skeleton): zero mean, unit dispersion."""
    k = 1 + len(reference_scales) + _legendre_columns(degree)
    return VelocityFrame(jnp.zeros((k, 3)), jnp.zeros((k, 3)), jnp.zeros(3), jnp.ones(()), degree,
                         tuple(reference_scales))


def fit_frame(
    velocities: Float[np.ndarray, "n 3"],
    positions: Float[np.ndarray, "n 3"],
    max_degree: int,
    reference_scales: tuple[float, ...],
    weights: Float[np.ndarray, " n"] | None = None,
) -> VelocityFrame:
    """The frame of these stars (km/s, Galactocentric kpc), the columns of μ and of ln σ chosen by stepwise BIC.

    μ's columns first (weighted least squares, each component's dispersion constant), then ln σ's given μ (Newton):
    from the constant, each step adds whichever raises BIC most of the reference shapes ln(1 + r/s) not yet kept
    and the Legendre products of the next degree (up to `max_degree`), and stops when none does. BIC: the Gaussian
    log-likelihood less ½ ln N per coefficient (3 per column; N: Kish's effective number under `weights`). The
    frame's basis is the union; each part's other coefficients are zero. Trying each shape on its own, and ln σ
    apart from μ, matters: which scale bends ln σ right is what ∇ₓ ln p and ρ read, and the likelihood tells the
    scales apart though it rarely pays for two (isotropic Plummer mock, b = 4 kpc, 10⁶ stars: s = 6 alone gives
    ∇ₓ ln p 1.2% with the exact velocity shape, s = 2 alone 3.7%; every shape at once is noisier, the shapes
    nearly collinear). About 7 s at 10⁶ stars.
    """
    positions = np.asarray(positions, np.float64)
    centre = positions.mean(0)
    radius = float(np.sqrt(np.max(np.sum((positions - centre) ** 2, axis=1))))
    full = frame_skeleton(max_degree, reference_scales)
    full = eqx.tree_at(lambda f: (f.centre, f.radius), full, (jnp.asarray(centre), jnp.asarray(radius)))
    basis, components = _basis_and_components(full, velocities, positions)
    w = np.ones(len(positions)) if weights is None else np.asarray(weights, np.float64) / np.mean(weights)
    penalty = 1.5 * np.log(w.sum() ** 2 / np.sum(w**2))  # per column: ½ ln N for each of its 3 coefficients

    def columns(kept: tuple[tuple[int, ...], int]) -> np.ndarray:
        scales, degree = kept
        first_legendre = 1 + len(reference_scales)  # columns: 1, the reference shapes, Legendre by degree
        legendre = range(first_legendre, first_legendre + _legendre_columns(degree))
        return np.array([0, *(1 + i for i in sorted(scales)), *legendre])

    def stepwise(log_likelihood) -> tuple[tuple[int, ...], int]:
        def bic(step: tuple[tuple[int, ...], int]) -> float:
            c = columns(step)
            return log_likelihood(c) - penalty * len(c)

        kept: tuple[tuple[int, ...], int] = ((), 0)
        best = bic(kept)
        while True:
            scales, degree = kept
            steps = [((*scales, i), degree) for i in range(len(reference_scales)) if i not in scales]
            steps += [(scales, degree + 1)] if degree < max_degree else []
            scored = [(bic(step), step) for step in steps]
            if not scored or max(scored)[0] <= best:
                return kept
            best, kept = max(scored)

    mean_kept = stepwise(lambda c: _mean_log_likelihood(basis[:, c], components, w))
    mean_columns = columns(mean_kept)
    mean_coefficients = _fit_mean(basis[:, mean_columns], components, w)
    squared = (components - basis[:, mean_columns] @ mean_coefficients) ** 2
    scale_kept = stepwise(lambda c: _fit_log_scale(basis[:, c], squared, w)[1])
    scale_columns = columns(scale_kept)
    scales = tuple(sorted(set(mean_kept[0]) | set(scale_kept[0])))
    frame = frame_skeleton(max(mean_kept[1], scale_kept[1]), tuple(reference_scales[i] for i in scales))
    union = columns((scales, frame.degree))
    mean, log_scale = np.zeros((len(union), 3)), np.zeros((len(union), 3))
    mean[np.isin(union, mean_columns)] = mean_coefficients
    log_scale[np.isin(union, scale_columns)] = _fit_log_scale(basis[:, scale_columns], squared, w)[0]
    frame = eqx.tree_at(lambda f: (f.centre, f.radius), frame, (jnp.asarray(centre), jnp.asarray(radius)))
    return eqx.tree_at(lambda f: (f.mean_coefficients, f.log_scale_coefficients), frame,
                       (jnp.asarray(mean, jnp.float32), jnp.asarray(log_scale, jnp.float32)))


def _legendre_columns(degree: int) -> int:
    """Legendre products of total degree 1 … `degree`."""
    return (degree + 1) * (degree + 2) * (degree + 3) // 6 - 1


def _fit_mean(basis: np.ndarray, components: np.ndarray, w: np.ndarray) -> np.ndarray:
    """μ's coefficients `(K, 3)` on these columns: weighted least squares."""
    weighted = basis * w[:, None]
    return np.linalg.solve(weighted.T @ basis, weighted.T @ components)


def _mean_log_likelihood(basis: np.ndarray, components: np.ndarray, w: np.ndarray) -> float:
    """The weighted Gaussian log-likelihood (less constants) of μ on these columns, each dispersion constant."""
    squared = (components - basis @ _fit_mean(basis, components, w)) ** 2
    return float(-0.5 * w.sum() * np.sum(np.log(np.average(squared, axis=0, weights=w))))


def _fit_log_scale(basis: np.ndarray, squared: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """ln σ's coefficients `(K, 3)` on these columns for the squared residuals `(n, 3)`, and the weighted Gaussian
    log-likelihood (less constants)."""
    log_scale = np.zeros((basis.shape[1], 3))
    orthonormal, triangle = np.linalg.qr(basis / np.sqrt(len(basis)))  # Newton in orthonormal columns: the
    orthonormal *= np.sqrt(len(basis))                                  # reference shapes are near the polynomials
    for i in range(3):
        start = np.zeros(basis.shape[1])
        start[0] = 0.5 * np.log(np.average(squared[:, i], weights=w))  # column 0 is the constant 1
        log_scale[:, i] = np.linalg.solve(triangle, _newton_log_scale(orthonormal, squared[:, i], w, triangle @ start))
    log_sigma = basis @ log_scale
    return log_scale, float(-np.sum(w[:, None] * (log_sigma + 0.5 * squared * np.exp(-2 * log_sigma))))


def _basis_and_components(frame: VelocityFrame, velocities, positions) -> tuple[np.ndarray, np.ndarray]:
    """B `(n, K)` and the spherical components `(n, 3)` of the stars, in float64, chunk by chunk."""
    @jax.jit
    def one_chunk(v, x):
        # per-star vmap, not basis_rows: the recorded builds were fitted so, and another float32 order of operations
        # sends the flow's training down another path (README build: ρ 0.066 → 0.086, within the seeds' spread)
        return jax.vmap(frame.basis)(x), jax.vmap(lambda a, b: spherical_axes(b) @ a)(v, x)

    parts = [one_chunk(jnp.asarray(velocities[i:i + _CHUNK], jnp.float32), jnp.asarray(positions[i:i + _CHUNK], jnp.float32))
             for i in range(0, len(positions), _CHUNK)]
    return (np.concatenate([np.asarray(p[0], np.float64) for p in parts]),
            np.concatenate([np.asarray(p[1], np.float64) for p in parts]))


def _newton_log_scale(basis: np.ndarray, squared: np.ndarray, w: np.ndarray, start: np.ndarray) -> np.ndarray:
    """argmin over θ of Σ w [θ·B + s² e^{−2θ·B} / 2], the Gaussian −ln L in ln σ = θ·B (convex)."""
    theta = start.copy()
    for _ in range(_NEWTON_STEPS):
        e = w * squared * np.exp(-2 * basis @ theta)
        gradient = basis.T @ (w - e)
        hessian = (basis * (2 * e)[:, None]).T @ basis
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if gradient @ step / w.sum() < _NEWTON_TOLERANCE:
            break
    return theta
