"""n(x) as an exponential family on the observer's ball: ln n(x) = Σ θ_k B_k(x) + c, zero outside the ball. B: a few
global radial shapes ln(1 + r/s) about the Galactic centre (the `reference`), then the Legendre products of total
degree ≤ d in (x − x⊙)/R (as `fields.method: weak` expands Φ).

The likelihood is concave in θ, so the fit is a handful of Newton steps on two sums: the stars' mean basis and
the model's mean basis over a scrambled Sobol quadrature of the ball (its error falls as 1/m, far below the
stars' sampling noise). The degree is chosen by BIC (or held-out likelihood). Few parameters make ∇ ln n smooth
and its noise small where the tracer density is smooth. `vanilla`'s CBE reads ∇ ln n beside ∇ₓ ln p, and ρ, a
derivative of a, reads its curvature ∇² ln n: on the Plummer mock ρ's error is about twice ∇² ln n's relative
error (docs/density.md). The reference carries that curvature with three numbers. Structure finer than the
degree resolves (a thin disc, dust in an observed density) needs `maf` or `cfm`.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from scipy.special import logsumexp

from ..errors import RecipeError
from ..geometry import qmc_ball, uniform_in_ball_traced
from ..progress import progress_bar
from ..recipe import PositionLegendreSpec
from ..weak.basis import multi_indices, tensor_values
from .base import DensityModel

_NEWTON_STEPS = 50
_NEWTON_TOLERANCE = 1e-9  # on the Newton decrement: the log-likelihood per star is then converged to ~1e-9
_STAR_CHUNK = 200_000
_REFERENCE_CORE_KPC = 0.01  # r is softened, √(r² + core²): smooth at the Galactic centre should the ball reach it


def reference_values(x: Any, scales: tuple[float, ...], xp: Any = np) -> Any:
    """The reference columns `(n, S)`: ln(1 + r/s) of the Galactocentric radius r of `x` `(n, 3)`, per scale s."""
    r = xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True) + _REFERENCE_CORE_KPC**2)
    return xp.log1p(r / xp.asarray(scales, dtype=x.dtype).reshape(1, -1))


def log_basis(x: Any, centre: Any, radius: Any, degree: int, scales: tuple[float, ...], xp: Any = np) -> Any:
    """The model's basis `(n, S + P)` at `x` `(n, 3)`: the reference columns (none when `scales` is empty),
    then the Legendre products of total degree 1 … `degree`, so that each lower degree is a prefix."""
    legendre_part = tensor_values(x, centre, radius, degree, xp)
    return xp.concatenate([reference_values(x, scales, xp), legendre_part], axis=1) if scales else legendre_part


class LegendreDensity(DensityModel):
    """n(x)/N = exp(θ·B(x) + `log_norm`) inside the ball of `radius` about `centre` (kpc⁻³), 0 outside."""

    coefficients: Float[Array, " P"]
    log_norm: Float[Array, ""]
    log_max: Float[Array, ""]  # the largest θ·B in the ball (from the quadrature): the rejection sampler's bound
    centre: Float[Array, "3"]
    radius: Float[Array, ""]
    degree: int = eqx.field(static=True)
    acceptance: float = eqx.field(static=True)  # the sampler's mean acceptance over the ball
    reference_scales: tuple[float, ...] = eqx.field(static=True)  # kpc; () for no reference
    conditional: bool = eqx.field(static=True)  # always False: n(x) only

    def basis(self, x: Float[Array, "n 3"]) -> Float[Array, "n P"]:
        return log_basis(x, self.centre, self.radius, self.degree, self.reference_scales, jnp)

    def log_prob(self, y: Float[Array, "3"], c: Float[Array, "3"] | None = None) -> Float[Array, ""]:
        values = self.basis(y[None])[0]
        inside = jnp.sum((y - self.centre) ** 2) < self.radius**2
        return jnp.where(inside, values @ self.coefficients + self.log_norm, -jnp.inf)

    def sample(self, key: PRNGKeyArray, n: int, c: Float[Array, "n 3"] | None = None) -> Float[Array, "n 3"]:
        """`n` draws by rejection from uniform points in the ball (acceptance exp(θ·B − max θ·B)), traceable: a
        fixed 1.5× the expected number of candidates (+64), the accepted ones first (short only with
        vanishing probability)."""
        m = int(n / self.acceptance * 1.5) + 64
        k_ball, k_acc = jr.split(key)
        points = uniform_in_ball_traced(k_ball, m, self.centre, self.radius)
        log_ratio = self.basis(points) @ self.coefficients
        accept = jnp.log(jr.uniform(k_acc, (m,))) < log_ratio - self.log_max
        return points[jnp.argsort(~accept, stable=True)[:n]]

    def from_base(self, z: Float[Array, "k 3"], c: Float[Array, "3"] | None = None) -> Float[Array, "k 3"]:
        raise NotImplementedError(
            "`type: legendre` has no base space: it models n(x) only, and base-space draws are for p(v|x)."
        )


def legendre_skeleton(
    degree: int, acceptance: float = 1.0, reference_scales: tuple[float, ...] | list[float] = ()
) -> LegendreDensity:
    """An empty model of `degree` (the loading skeleton; files saved before the reference have none)."""
    p = len(reference_scales) + len(multi_indices(degree, False))
    return LegendreDensity(coefficients=jnp.zeros(p), log_norm=jnp.zeros(()), log_max=jnp.zeros(()),
                           centre=jnp.zeros(3), radius=jnp.ones(()), degree=degree, acceptance=acceptance,
                           reference_scales=tuple(float(s) for s in reference_scales), conditional=False)


def legendre_hyperparameters(spec: PositionLegendreSpec, model: LegendreDensity) -> dict:
    """The keyword arguments of `legendre_skeleton` that rebuild `model` (its degree is chosen by the fit)."""
    return {"degree": model.degree, "acceptance": model.acceptance, "reference_scales": list(model.reference_scales)}


def fit_legendre(
    targets: Float[np.ndarray, "n 3"],
    spec: PositionLegendreSpec,
    seed: int,
    conditions: Float[np.ndarray, "n 3"] | None = None,
    weights: Float[np.ndarray, " n"] | None = None,
    ball: tuple[Float[np.ndarray, "3"], float] | None = None,
    split_seed: int | None = None,
    label: str = "n(x) legendre",
) -> tuple[LegendreDensity, dict[str, list[float]]]:
    """Maximum-likelihood θ at each degree 1 … `spec.max_degree` (the reference columns at every degree); keep
    the degree `spec.degree_selection` picks. Returns the model and that score per degree, relative to the
    first degree's (`bic_per_star`: ln L/N − ½ k ln N/N over all stars; `val_log_likelihood`: held-out ln L per
    star, the kept degree then refitted on every star)."""
    if conditions is not None:
        raise RecipeError(
            "`type: legendre` models the tracer density n(x) only. Under `density.velocity` set `type: maf` or "
            "`type: cfm`; keep `legendre` under `density.position`."
        )
    if ball is None:
        raise RecipeError("`type: legendre` lives on the observer's ball: set `density.position.support: ball`.")
    centre, radius = np.asarray(ball[0], np.float64), float(ball[1])
    scales = tuple(spec.reference_scales_kpc) if spec.reference == "spherical" else ()
    x = np.asarray(targets, np.float64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, np.float64)
    by_bic = spec.degree_selection == "bic"
    held_out = np.zeros(len(x), bool) if by_bic else (
        np.random.default_rng(seed if split_seed is None else split_seed).random(len(x)) < spec.val_fraction)

    def basis(points: np.ndarray) -> np.ndarray:
        return log_basis(points, centre, radius, spec.max_degree, scales)

    sums, totals = _weighted_basis_sums(x, w, held_out, basis)
    quadrature = basis(centre + qmc_ball(radius, spec.quadrature_points.bit_length() - 1, seed))
    columns = [len(scales) + len(multi_indices(d, False)) for d in range(1, spec.max_degree + 1)]
    n_effective = np.sum(w) ** 2 / np.sum(w**2)
    scores, thetas = [], []
    with progress_bar() as bar:
        task = bar.add_task(label, total=len(columns), status="")
        for p in columns:
            theta = _newton(sums[0][:p] / totals[0], quadrature[:, :p])
            if by_bic:
                log_likelihood = sums[0][:p] @ theta / totals[0] - _log_mean_exp(quadrature[:, :p] @ theta)
                scores.append(float(log_likelihood - 0.5 * p * np.log(n_effective) / n_effective))
            else:
                scores.append(float(sums[1][:p] @ theta / totals[1] - _log_mean_exp(quadrature[:, :p] @ theta)))
            thetas.append(theta)
            bar.update(task, advance=1, status=f"degree {len(scores)}: {'BIC' if by_bic else 'held-out ln L'} "
                                               f"{scores[-1] - scores[0]:+.2e}")
    degree = int(np.argmax(scores)) + 1
    p = columns[degree - 1]
    theta = thetas[degree - 1] if by_bic else _newton(
        (sums[0][:p] + sums[1][:p]) / (totals[0] + totals[1]), quadrature[:, :p])
    s = quadrature[:, :p] @ theta
    log_max = s.max() + 0.05  # a little above the quadrature's largest θ·B: between its points it may be higher
    volume = 4 / 3 * np.pi * radius**3
    model = LegendreDensity(
        coefficients=jnp.asarray(theta, jnp.float32),
        log_norm=jnp.asarray(-_log_mean_exp(s) - np.log(volume), jnp.float32),
        log_max=jnp.asarray(log_max, jnp.float32),
        centre=jnp.asarray(centre, jnp.float32), radius=jnp.asarray(radius, jnp.float32), degree=degree,
        acceptance=float(np.mean(np.exp(s - log_max))), reference_scales=scales, conditional=False,
    )
    return model, {"bic_per_star" if by_bic else "val_log_likelihood": [v - scores[0] for v in scores]}


def _weighted_basis_sums(
    x: np.ndarray, w: np.ndarray, held_out: np.ndarray, basis: Any
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[float, float]]:
    """Σ w B(x) over the fitted and the held-out stars (chunked: memory holds one chunk's basis), and Σ w."""
    sums = [0.0, 0.0]
    for start in range(0, len(x), _STAR_CHUNK):
        rows = slice(start, start + _STAR_CHUNK)
        values = basis(x[rows]) * w[rows, None]
        sums[0] = sums[0] + values[~held_out[rows]].sum(0)
        sums[1] = sums[1] + values[held_out[rows]].sum(0)
    return (sums[0], sums[1]), (float(w[~held_out].sum()), float(w[held_out].sum()))


def _newton(mean_basis: np.ndarray, quadrature: np.ndarray) -> np.ndarray:
    """θ maximising θ·⟨B⟩_stars − ln⟨exp(θ·B)⟩_ball, solved in whitened coordinates: B centred and rotated so that
    its covariance over the ball is the identity, directions it barely spans (eigenvalue below 10⁻¹² of the largest)
    dropped. The reference shapes are nearly spanned by the polynomials, and in the raw basis Newton's steps lose
    their accuracy (degree ≥ 4 with the reference: not converged in 50 steps)."""
    centre = quadrature.mean(axis=0)
    centred = quadrature - centre
    eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / len(centred))
    keep = eigenvalues > 1e-12 * eigenvalues.max()
    whiten = vectors[:, keep] / np.sqrt(eigenvalues[keep])
    return whiten @ _newton_steps((mean_basis - centre) @ whiten, centred @ whiten)


def _newton_steps(mean_basis: np.ndarray, quadrature: np.ndarray) -> np.ndarray:
    """Newton's method with backtracking on the concave objective of `_newton`."""
    theta = np.zeros(len(mean_basis))

    def objective(t: np.ndarray) -> float:
        return float(mean_basis @ t - _log_mean_exp(quadrature @ t))

    for _ in range(_NEWTON_STEPS):
        s = quadrature @ theta
        prob = np.exp(s - s.max())
        prob /= prob.sum()
        mean_q = prob @ quadrature
        covariance = (quadrature * prob[:, None]).T @ quadrature - np.outer(mean_q, mean_q)
        gradient = mean_basis - mean_q
        step = np.linalg.solve(covariance + 1e-12 * np.trace(covariance) * np.eye(len(theta)), gradient)
        if gradient @ step < _NEWTON_TOLERANCE:
            break
        size, current = 1.0, float(mean_basis @ theta - _log_mean_exp(s))
        while objective(theta + size * step) < current and size > 1e-4:
            size /= 2
        theta = theta + size * step
    return theta


def _log_mean_exp(s: np.ndarray) -> float:
    return float(logsumexp(s) - np.log(len(s)))

