"""The trained field model of the `conditional` method: Φ(x) and the true tracer density n(x)."""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..serialise import load_model, save_model
from .nets import ScalarField


class ConditionalFields(eqx.Module):
    """Φ(x) in km² s⁻² and n(x) = exp(ln n_φ(x) + log_norm) in kpc⁻³."""

    potential: ScalarField
    log_density: ScalarField
    log_norm: Float[Array, ""]

    def tracer_density(self, x: Float[Array, "3"]) -> Float[Array, ""]:
        return jnp.exp(self.log_density(x) + self.log_norm)


def conditional_skeleton(potential: dict, log_density: dict) -> ConditionalFields:
    """Untrained model from the two networks' constructor arguments (also the loading skeleton)."""
    return ConditionalFields(ScalarField(**potential), ScalarField(**log_density), jnp.zeros(()))


def save_fields(path: Path, model: ConditionalFields, hyperparameters: dict) -> None:
    save_model(path, model, "conditional", hyperparameters)


def load_fields(path: Path) -> ConditionalFields:
    model, _ = load_model(path, {"conditional": conditional_skeleton})
    return model
