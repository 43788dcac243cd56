"""The trained field model of every CBE method: Φ(x), plus ln n(x) (`conditional`), ε(x) (`selection`)
and a pattern speed Ω_p where fitted."""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ..serialise import load_model, save_model
from .nets import ScalarField

EFFICIENCY_OFFSET = 2.0
"""ln ε = −softplus(s − 2): ε ≈ 0.88 for an untrained s ≈ 0, and ε → 1 smoothly as s → −∞."""

PATTERN_SPEED_UNIT = 50.0
"""Ω_p = 50 km s⁻¹ kpc⁻¹ × the trained scalar, so that Adam's step size suits Galactic pattern speeds."""


class CBEFields(eqx.Module):
    """Φ(x) in km² s⁻²; n(x) = exp(ln n_φ(x) + log_norm) in kpc⁻³; ε(x) in (0, 1]; Ω_p in km s⁻¹ kpc⁻¹.

    `method` names the method that trained it (`dpotcube.methods`, which also says how ∇ ln n enters its
    CBE). Networks a method does not use are None, as is `pattern_speed_raw` when Ω_p is not fitted.
    """

    potential: ScalarField
    log_density: ScalarField | None
    efficiency_logit: ScalarField | None
    pattern_speed_raw: Float[Array, ""] | None
    log_norm: Float[Array, ""]
    method: str = eqx.field(static=True)

    def tracer_density(self, x: Float[Array, "3"]) -> Float[Array, ""]:
        return jnp.exp(self.log_density(x) + self.log_norm)

    def log_efficiency(self, x: Float[Array, "3"]) -> Float[Array, ""]:
        return -jax.nn.softplus(self.efficiency_logit(x) - EFFICIENCY_OFFSET)

    def efficiency(self, x: Float[Array, "3"]) -> Float[Array, ""]:
        return jnp.exp(self.log_efficiency(x))

    @property
    def pattern_speed(self) -> Float[Array, ""] | None:
        """Ω_p, positive in the sense of Galactic rotation (clockwise seen from +z in astropy's frame)."""
        return None if self.pattern_speed_raw is None else PATTERN_SPEED_UNIT * self.pattern_speed_raw


def fields_skeleton(
    method: str, potential: dict, log_density: dict | None = None, efficiency: dict | None = None,
    pattern_speed: bool = False, pattern_speed_init: float = 0.0, key: PRNGKeyArray | None = None,
) -> CBEFields:
    """Model from the networks' constructor arguments, initialised from `key` (also the loading skeleton)."""
    k_phi, k_n, k_eps = jr.split(jr.key(0) if key is None else key, 3)
    return CBEFields(
        ScalarField(**potential, key=k_phi),
        None if log_density is None else ScalarField(**log_density, key=k_n),
        None if efficiency is None else ScalarField(**efficiency, key=k_eps),
        jnp.asarray(pattern_speed_init / PATTERN_SPEED_UNIT, jnp.float32) if pattern_speed else None,
        jnp.zeros(()),
        method,
    )


def save_fields(path: Path, model: CBEFields, hyperparameters: dict) -> None:
    save_model(path, model, "cbe_fields", hyperparameters)


def load_fields(path: Path) -> CBEFields:
    model, _ = load_model(path, {"cbe_fields": fields_skeleton})
    return model
