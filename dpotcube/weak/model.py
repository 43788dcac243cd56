"""`WeakPotential`: Φ as a Legendre expansion on the observer's ball, with its posterior; save/load."""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..constants import G_KPC_KM2_S2_PER_MSUN, MSUN_PER_KPC3_TO_MSUN_PER_PC3
from ..serialise import load_model, save_model
from .basis import tensor_basis, value_at_centre
from .reference import n_reference, potential_basis

KIND = "weak"


class WeakPotential(eqx.Module):
    """Φ(x) = Σ_i θ_i [B_i(x) − B_i(x⊙)] (B_i: the `reference` shapes about the Galactic centre at `reference_scales`,
    then Legendre products of total degree ≤ `degree` in (x − x⊙)/R), so Φ(observer) = 0 as in the cube. The
    posterior of θ is N(`coefficients`, L Lᵀ), L = `covariance_factor`.

    Units: positions kpc, Φ km² s⁻², a km² s⁻² kpc⁻¹, ρ M☉ pc⁻³ (the cube's), Ω_p km s⁻¹ kpc⁻¹.
    """

    coefficients: Float[np.ndarray, " P"]
    covariance_factor: Float[np.ndarray, "P P"]
    observer: Float[np.ndarray, "3"]
    pattern_speed: Float[np.ndarray, "2"]  # (mean, std) of Ω_p, Galactic-rotation sense; NaN when not fitted
    selection_coefficients: Float[np.ndarray, " L"]  # ln ε's Legendre coefficients (empty: selection not fitted)
    radius_kpc: float = eqx.field(static=True)
    degree: int = eqx.field(static=True)
    selection_degree: int = eqx.field(static=True, default=0)
    reference: str = eqx.field(static=True, default="none")
    reference_scales: tuple[float, ...] = eqx.field(static=True, default=())

    @classmethod
    def skeleton(
        cls, degree: int, radius_kpc: float, selection_degree: int = 0, reference: str = "none",
        reference_scales: tuple[float, ...] | list[float] = (),
    ) -> WeakPotential:
        """An empty model of the given sizes (what `load_weak` fills)."""
        from .basis import multi_indices

        scales = tuple(float(s) for s in reference_scales)
        p = n_reference(reference, scales) + len(multi_indices(degree, False))
        n_sel = len(multi_indices(selection_degree, False)) if selection_degree else 0
        return cls(np.zeros(p), np.zeros((p, p)), np.zeros(3), np.full(2, np.nan), np.zeros(n_sel), radius_kpc, degree,
                   selection_degree, reference, scales)

    @property
    def hyperparameters(self) -> dict:
        return {"degree": self.degree, "radius_kpc": self.radius_kpc, "selection_degree": self.selection_degree,
                "reference": self.reference, "reference_scales": list(self.reference_scales)}

    def _basis(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(x, np.float64).reshape(-1, 3)
        args = (self.observer, self.radius_kpc, self.degree, self.reference, self.reference_scales, np)
        values, grads, laps = potential_basis(x, *args)
        return values - potential_basis(self.observer[None], *args)[0], grads, laps

    def __call__(self, x: Float[Array, "3"]) -> Float[Array, ""]:
        """Φ(x) − Φ(observer) at one position `(3,)`, a pure JAX function (what `dpotcube.potential` wraps)."""
        observer = jnp.asarray(self.observer, x.dtype)
        args = (self.radius_kpc, self.degree, self.reference, self.reference_scales, jnp)
        values = potential_basis(x.reshape(1, 3), observer, *args)[0] - potential_basis(observer[None], observer, *args)[0]
        return (values @ jnp.asarray(self.coefficients, x.dtype))[0]

    def potential(self, x: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, " n"]:
        """Φ − Φ(observer) in km² s⁻² at positions `x` `(n, 3)` kpc."""
        return self._basis(x)[0] @ self.coefficients

    def acceleration(self, x: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, "n 3"]:
        """a = −∇Φ in km² s⁻² kpc⁻¹, shape `(n, 3)`."""
        return -self._basis(x)[1] @ self.coefficients

    def density(self, x: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, " n"]:
        """ρ = ∇²Φ / (4πG) in M☉ pc⁻³, shape `(n,)`."""
        return self._basis(x)[2] @ self.coefficients / (4 * np.pi * G_KPC_KM2_S2_PER_MSUN) * MSUN_PER_KPC3_TO_MSUN_PER_PC3

    def fields(self, x: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, "5 n"]:
        """Φ, a_x, a_y, a_z, ρ stacked `(5, n)`: the cube's `POTENTIAL_FIELDS` order and units."""
        values, grads, laps = self._basis(x)
        rho = laps @ self.coefficients / (4 * np.pi * G_KPC_KM2_S2_PER_MSUN) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
        return np.concatenate([(values @ self.coefficients)[None], -(grads @ self.coefficients).T, rho[None]])

    def standard_deviations(self, x: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, "5 n"]:
        """Posterior standard deviations of `fields(x)` by linear propagation, `(5, n)`."""
        values, grads, laps = self._basis(x)
        lap_rho = laps / (4 * np.pi * G_KPC_KM2_S2_PER_MSUN) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
        rows = [values, grads[:, 0], grads[:, 1], grads[:, 2], lap_rho]
        return np.stack([np.linalg.norm(r @ self.covariance_factor, axis=1) for r in rows])

    def draw(self, n: int, seed: int) -> list[WeakPotential]:
        """`n` models with coefficients drawn from the posterior (cube members of `member_kind: posterior`)."""
        z = np.random.default_rng(seed).standard_normal((n, len(self.coefficients)))
        draws = self.coefficients + z @ self.covariance_factor.T
        return [eqx.tree_at(lambda m: m.coefficients, self, d) for d in draws]

    def log_efficiency(self, x: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, " n"]:
        """ln ε(x) − ln ε(observer) of a fitted unknown selection (its level is not fixed by the CBE)."""
        if not self.selection_degree:
            raise ValueError("This model fitted no selection (`unknown_selection_degree: 0`).")
        x = np.asarray(x, np.float64).reshape(-1, 3)
        values, _, _ = tensor_basis(x, self.observer, self.radius_kpc, self.selection_degree, False)
        return (values - value_at_centre(self.selection_degree, False)) @ self.selection_coefficients


def save_weak(path: Path, model: WeakPotential) -> None:
    """Write through the project's one save path (`dpotcube.serialise`)."""
    save_model(Path(path), model, KIND, model.hyperparameters)


def load_weak(path: Path) -> WeakPotential:
    model, _ = load_model(Path(path), {KIND: WeakPotential.skeleton})
    assert isinstance(model, WeakPotential)
    return model
