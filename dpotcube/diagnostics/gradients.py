"""Where ∇ ln f comes from for the ∂ ln f/∂t residual: a build folder's density model, or a mock's truth.

A `GradientSource` gives, at positions x (kpc) and velocities v (km/s): ∇ ln n(x) (kpc⁻¹),
(∇ₓ ln p(v|x), ∇ᵥ ln p(v|x)) (kpc⁻¹, s/km), and draws from p(v|x). With f = n p,
∇ₓ ln f = ∇ ln n + ∇ₓ ln p and ∇ᵥ ln f = ∇ᵥ ln p.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import yaml
from jaxtyping import Array, Float, PRNGKeyArray

from ..density.base import DensityModel
from ..density.ensemble import Combine, FlowEnsemble
from ..density.registry import load_density
from ..errors import DpotcubeError
from ..fields.model import CBEFields, load_fields
from ..methods import FieldMethod, get_method
from ..plan.layout import BuildLayout
from ..sources.mocks import PlummerTruth, draw_velocities


class GradientSource(Protocol):
    """A density model f(x, v) = n(x) p(v|x) that the residual can differentiate and sample."""

    description: str

    def grad_log_n(self, x: Float[Array, "n 3"]) -> Float[Array, "n 3"]: ...

    def grad_log_p(self, x: Float[Array, "n 3"], v: Float[Array, "n 3"]) -> tuple[Float[Array, "n 3"], Float[Array, "n 3"]]: ...

    def sample_velocities(self, x: Float[np.ndarray, "3"], n: int, seed: int) -> Float[np.ndarray, "n 3"]: ...


@dataclass(frozen=True)
class PlummerGradients:
    """The exact gradients and DF draws of a Plummer mock (tests, and mocks without a build folder)."""

    truth: PlummerTruth
    description: str = "Plummer mock's analytic DF (exact gradients)"

    def grad_log_n(self, x: Float[Array, "n 3"]) -> Float[Array, "n 3"]:
        return self.truth.grad_log_tracer_density(x)

    def grad_log_p(self, x: Float[Array, "n 3"], v: Float[Array, "n 3"]) -> tuple[Float[Array, "n 3"], Float[Array, "n 3"]]:
        return self.truth.grad_log_p(x, v)

    def sample_velocities(self, x: Float[np.ndarray, "3"], n: int, seed: int) -> Float[np.ndarray, "n 3"]:
        return draw_velocities(self.truth, np.broadcast_to(np.asarray(x, np.float64), (n, 3)), np.random.default_rng(seed))


@dataclass(frozen=True)
class BuildGradients:
    """The density model a build trained: its p(v|x) flows, and ∇ ln n of the true tracers as its method
    models it (`CBEFields.grad_log_n`: the ln n network, the n(x) flows, or the observed flows less ∇ ln ε),
    or the n(x) flows alone when the build has no field model."""

    velocity: FlowEnsemble
    fields: CBEFields | None
    position: FlowEnsemble | None
    description: str

    def grad_log_n(self, x: Float[Array, "n 3"]) -> Float[Array, "n 3"]:
        x = jnp.asarray(x, jnp.float32)
        from_flows = jnp.zeros_like(x) if self.position is None else self.position.grad_log_n(x)
        return from_flows if self.fields is None else _grad_log_n(get_method(self.fields.method), self.fields, x, from_flows)

    def grad_log_p(self, x: Float[Array, "n 3"], v: Float[Array, "n 3"]) -> tuple[Float[Array, "n 3"], Float[Array, "n 3"]]:
        return self.velocity.grad_log_p(jnp.asarray(x, jnp.float32), jnp.asarray(v, jnp.float32))

    def sample_velocities(
        self, x: Float[np.ndarray, "3"], n: int, seed: int, chunk: int = 65_536
    ) -> Float[np.ndarray, "n 3"]:
        """`n` draws from the members' equal-weight mixture at `x`, in fixed-size jitted chunks (one compile)."""
        chunk = min(chunk, n)
        c = jnp.broadcast_to(jnp.asarray(x, jnp.float32), (chunk, 3))
        members = self.velocity.members
        pick = np.random.default_rng(seed).integers(0, len(members), n)
        out = np.empty((n, 3), np.float32)
        for i, key in enumerate(jr.split(jr.key(seed), -(-n // chunk))):
            rows = slice(i * chunk, min((i + 1) * chunk, n))
            draws = np.stack([np.asarray(_draw(flow, k, c)) for flow, k in zip(members, jr.split(key, len(members)))])
            out[rows] = draws[pick[rows], np.arange(rows.stop - rows.start)]
        return out


@eqx.filter_jit
def _draw(flow: DensityModel, key: PRNGKeyArray, c: Float[Array, "n 3"]) -> Float[Array, "n 3"]:
    return flow.sample(key, c.shape[0], c)


@eqx.filter_jit
def _grad_log_n(
    method: FieldMethod, model: CBEFields, x: Float[Array, "n 3"], from_flows: Float[Array, "n 3"]
) -> Float[Array, "n 3"]:
    return jax.vmap(method.grad_log_n, in_axes=(None, 0, 0))(model, x, from_flows)


def build_gradients(build_dir: Path, combine: Combine = "median") -> tuple[BuildGradients | None, str]:
    """The build folder's density model, or None and a note saying what is missing and how to get it."""
    build_dir = Path(build_dir)
    layout = BuildLayout(build_dir)
    velocity, position, fields = layout.flows_on_disk("velocity"), layout.flows_on_disk("position"), layout.fields
    if not velocity:
        return None, f"{build_dir} has no p(v|x) flows (flows/velocity_flow_k.eqx)"
    if not fields.is_file() and not position:
        return None, f"{build_dir} has neither fields.eqx (the ln n network) nor n(x) flows (flows/position_flow_k.eqx)"
    try:
        ensemble = FlowEnsemble(tuple(load_density(p) for p in velocity), combine)
        model = load_fields(fields) if fields.is_file() else None
        flows = FlowEnsemble(tuple(load_density(p) for p in position), combine) if position else None
    except DpotcubeError as exc:
        return None, f"the density model in {build_dir} cannot be loaded ({exc})"
    needs_flows = model is None or get_method(model.method).needs_position_flow
    if model is not None and needs_flows and flows is None:
        return None, f"{build_dir}: the `{model.method}` fields need the n(x) flows (flows/position_flow_k.eqx)"
    origin = f"the `{model.method}` fields (fields.eqx)" if model is not None else f"{len(position)} n(x) flow(s)"
    description = f"build {build_dir}: {len(velocity)} p(v|x) flow(s) ({combine}), ∇ ln n from {origin}"
    return BuildGradients(ensemble, model, flows if needs_flows else None, description), description


def ensemble_combine(attrs: dict) -> Combine:
    """`density.ensemble.combine` of the recipe stored in a cube's attributes (default `median`)."""
    try:
        recipe = yaml.safe_load(attrs.get("recipe", "")) or {}
        return recipe.get("density", {}).get("ensemble", {}).get("combine", "median")
    except (yaml.YAMLError, AttributeError):
        return "median"


def is_build_folder(folder: Path) -> bool:
    """A dpotcube build folder: it has the manifest that `dpotcube build` writes."""
    path = Path(folder) / "manifest.json"
    try:
        return path.is_file() and isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False
