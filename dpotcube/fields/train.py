"""Training the CBE fields of any method with optax: jitted scans of steps, progress with ETA."""

from __future__ import annotations

from typing import Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, Float, Int

from ..density.collocation import CollocationPoints
from ..errors import BuildError
from ..geometry import uniform_in_ball, uniform_in_ball_traced
from ..recipe import FieldsSpec
from ..training import train_loop
from .losses import RESIDUAL_LOSSES, negative_density_penalty
from .model import CBEFields, fields_skeleton
from .nets import laplacian
from .polish import polish_fields


class FieldMethod(Protocol):
    """What training asks of a CBE method (`dpotcube.methods.base.FieldMethod` provides it)."""

    name: str
    second_network: str | None
    networks_label: str

    def residual(self, model: CBEFields, x, v, grad_x_log_p, grad_v_log_p, grad_log_n_flow): ...

    def extra_loss(self, model: CBEFields, spec: FieldsSpec, x, uniform): ...

    def check_collocation(self, has_grad_log_n: bool) -> str | None: ...

_STEPS_PER_CALL = 50  # steps fused into one jitted scan between progress updates


def fields_hyperparameters(
    points: CollocationPoints, observer: np.ndarray, volume_radius_kpc: float, spec: FieldsSpec, method: FieldMethod
) -> dict:
    """Arguments of `fields_skeleton`: standardization from the volume, Φ scaled by ⟨v²⟩."""
    common = {"loc": tuple(float(c) for c in observer), "length_scale": float(volume_radius_kpc)}
    phi_scale = float(np.mean(np.sum(points.v.astype(np.float64) ** 2, axis=1)))
    potential = {**spec.potential.model_dump(), **common, "out_scale": phi_scale}
    if spec.potential_reference != "none":  # saved only when used: fields saved before it load unchanged
        potential["reference"] = spec.potential_reference
    hyper = {"method": method.name, "potential": potential}
    second = method.second_network
    if second is not None:
        hyper[second] = {**getattr(spec, second).model_dump(), **common, "out_scale": 1.0}
    if spec.pattern_speed:
        hyper |= {"pattern_speed": True, "pattern_speed_init": spec.pattern_speed_init_kms_per_kpc}
    return hyper


def train_fields(
    points: CollocationPoints,
    observer: np.ndarray,
    volume_radius_kpc: float,
    n_tracers: int,
    spec: FieldsSpec,
    seed: int,
    method: FieldMethod,
) -> tuple[CBEFields, dict, dict[str, list[float]]]:
    """Fit the networks of `method` to its CBE residual plus the negative-density penalty and its own loss
    terms (e.g. λ_ε⟨(ln ε)²⟩ for `selection`).

    Returns the model (with a ln n network: n normalised to `n_tracers` inside the volume), its
    hyperparameters for saving, and the loss history sampled every `_STEPS_PER_CALL` steps (with Ω_p
    where fitted).
    """
    problem = method.check_collocation(points.grad_log_n is not None)
    if problem is not None:
        raise BuildError(problem)
    hyper = fields_hyperparameters(points, observer, volume_radius_kpc, spec, method)
    key_init, key_train = jr.split(jr.key(seed))
    model = fields_skeleton(**hyper, key=key_init)
    x, v = jnp.asarray(points.x), jnp.asarray(points.v)
    gx, gv = jnp.asarray(points.grad_x_log_p), jnp.asarray(points.grad_v_log_p)
    gn = jnp.zeros_like(x) if points.grad_log_n is None else jnp.asarray(points.grad_log_n)
    weight = residual_weights(gv, spec.residual_form)
    residual_scale = float(jnp.sqrt(jnp.mean((jnp.sum(v * (gx + gn), axis=1) * weight) ** 2)))
    laplacian_scale = hyper["potential"]["out_scale"] / volume_radius_kpc**2
    residual_loss = RESIDUAL_LOSSES[spec.loss]
    batch = min(spec.batch_size, len(x))
    lap_batch = min(spec.laplacian_batch, len(x))

    schedule = optax.warmup_cosine_decay_schedule(
        0.0, spec.learning_rate, min(200, spec.steps // 10 + 1), spec.steps, end_value=spec.learning_rate * 0.02
    )
    optimizer = optax.adam(schedule)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)

    def loss_fn(params, idx, lap_idx, uniform):
        """The loss on points `idx`: `(b,)` collocation indices, or `(p, k)` for p positions with k velocities
        each, whose position-only fields (∇Φ, ∇ ln n) are then evaluated once per position."""
        m = eqx.combine(params, static)
        r, positions = collocation_residuals(method, m, (x, v, gx, gv, gn), idx)
        r = r * weight[idx].reshape(-1)
        lap = jax.vmap(laplacian, in_axes=(None, 0))(m.potential, x[lap_idx])
        loss = residual_loss(r, residual_scale)
        loss = loss + spec.positivity_weight * negative_density_penalty(lap, laplacian_scale, spec.loss)
        extra = method.extra_loss(m, spec, positions, uniform)
        return loss if extra is None else loss + extra

    @jax.jit
    def run_steps(params, opt_state, key):
        def step(carry, step_key):
            params, opt_state = carry
            k1, k2, k3 = jr.split(step_key, 3)
            idx = jr.randint(k1, (batch,), 0, len(x))
            lap_idx = jr.randint(k2, (lap_batch,), 0, len(x))
            uniform = uniform_in_ball_traced(k3, batch, jnp.asarray(observer, jnp.float32), volume_radius_kpc)
            loss, grads = jax.value_and_grad(loss_fn)(params, idx, lap_idx, uniform)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), jr.split(key, _STEPS_PER_CALL))
        return params, opt_state, losses.mean()

    def run_call(params, opt_state, key):
        params, opt_state, loss = run_steps(params, opt_state, key)
        metrics = {"loss": loss}
        if spec.pattern_speed:
            metrics["pattern_speed"] = eqx.combine(params, static).pattern_speed
        return params, opt_state, metrics

    def status(metrics: dict[str, float], _) -> str:
        speed = f", Ω_p {metrics['pattern_speed']:.2f} km/s/kpc" if "pattern_speed" in metrics else ""
        return f"loss {metrics['loss']:.4g}{speed}"

    n_calls = -(-spec.steps // _STEPS_PER_CALL)
    params, history = train_loop(run_call, params, opt_state, jr.split(key_train, n_calls),
                                 f"fields {method.networks_label} ({method.name})", _STEPS_PER_CALL, status,
                                 fix="`fields.learning_rate`")
    if spec.polish_steps:  # full-batch L-BFGS on a fixed set: ρ, a second derivative, needs it (polish.py)
        params, polish_history = polish_fields(loss_fn, params, points.x, observer, volume_radius_kpc, spec, seed)
        history |= polish_history
    model = eqx.combine(params, static)
    if model.log_density is not None:
        log_norm = _log_normalisation(model, observer, volume_radius_kpc, n_tracers, seed)
        model = eqx.tree_at(lambda m: m.log_norm, model, log_norm)
    return model, hyper, history


def residual_weights(grad_v_log_p: Float[Array, "n 3"], form: str) -> Float[Array, " n"]:
    """Per-point factors on the CBE residual (`fields.residual_form`): 1, or 1/|∇ᵥ ln f| scaled to unit rms.

    ∇ᵥ ln f = ∇ᵥ ln p (n does not depend on v), so the factor is known before training. Divided by it, the residual
    is v·∇ₓ ln f/|∇ᵥ ln f| − ∇Φ·∇ᵥ ln f/|∇ᵥ ln f|: a component of the acceleration, equal in weight at every point.
    """
    if form == "ln_f":
        return jnp.ones(grad_v_log_p.shape[0])
    norm = jnp.linalg.norm(grad_v_log_p, axis=1)
    # near rest ∇ᵥ ln f → 0 (at v = 0 in an f(E)) and the divided residual is 0/0: cap those points' factor at 20×
    inverse = 1 / jnp.maximum(norm, 0.05 * jnp.median(norm))
    return inverse / jnp.sqrt(jnp.mean(inverse**2))


def collocation_residuals(
    method: FieldMethod, model: CBEFields, arrays: tuple[Float[Array, "n 3"], ...], idx: Int[Array, "..."]
) -> tuple[Float[Array, " m"], Float[Array, "b 3"]]:
    """The CBE residuals of `method` at collocation points `idx` of `arrays` (x, v, ∇ₓ ln p, ∇ᵥ ln p, ∇ ln n), and
    their positions. `idx` is `(b,)` point indices, or `(b, k)` for b positions with k velocities each (x equal
    along a row): then what depends on x alone (∇Φ, ∇ ln n) is evaluated once per position, not k times."""
    x, v, gx, gv, gn = arrays
    if idx.ndim == 1:
        return jax.vmap(method.residual, in_axes=(None, 0, 0, 0, 0, 0))(model, x[idx], v[idx], gx[idx], gv[idx],
                                                                         gn[idx]), x[idx]
    per_velocity = jax.vmap(method.residual, in_axes=(None, None, 0, 0, 0, 0))  # x unbatched: its fields once
    positions = x[idx[:, 0]]
    r = jax.vmap(per_velocity, in_axes=(None, 0, 0, 0, 0, 0))(model, positions, v[idx], gx[idx], gv[idx], gn[idx])
    return r.reshape(-1), positions


def _log_normalisation(
    model: CBEFields, observer: np.ndarray, radius: float, n_tracers: int, seed: int, n_points: int = 65_536
) -> jnp.ndarray:
    """ln C such that ∫_V C exp(ln n_φ) dV = n_tracers (Monte Carlo over the observer's sphere)."""
    pts = uniform_in_ball(np.random.default_rng(seed), n_points, observer, radius)
    log_n = jax.vmap(model.log_density)(jnp.asarray(pts, jnp.float32))
    volume = 4 / 3 * np.pi * radius**3
    log_mean = jax.scipy.special.logsumexp(log_n) - jnp.log(n_points)
    return jnp.log(n_tracers / volume) - log_mean
