"""Training the `conditional` fields on the CBE with optax: jitted scans of steps, progress with ETA."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

from ..density.collocation import CollocationPoints
from ..geometry import uniform_in_ball
from ..progress import progress_bar
from ..recipe import FieldsSpec
from .cbe import conditional_residual
from .losses import mean_squared, negative_density_penalty, position_log_likelihood
from .model import ConditionalFields
from .nets import ScalarField, laplacian

_STEPS_PER_CALL = 50  # steps fused into one jitted scan between progress updates


def conditional_hyperparameters(
    points: CollocationPoints, observer: np.ndarray, volume_radius_kpc: float, spec: FieldsSpec
) -> dict:
    """Constructor arguments of both networks: standardization from the volume, Φ scaled by ⟨v²⟩."""
    common = {"loc": tuple(float(c) for c in observer), "length_scale": float(volume_radius_kpc)}
    phi_scale = float(np.mean(np.sum(points.v.astype(np.float64) ** 2, axis=1)))
    return {
        "potential": {**spec.potential.model_dump(), **common, "out_scale": phi_scale},
        "log_density": {**spec.log_density.model_dump(), **common, "out_scale": 1.0},
    }


def train_conditional(
    points: CollocationPoints,
    observer: np.ndarray,
    volume_radius_kpc: float,
    n_tracers: int,
    spec: FieldsSpec,
    seed: int,
) -> tuple[ConditionalFields, dict, dict[str, list[float]]]:
    """Fit Φ and ln n to the CBE residual of eq. (3) plus the negative-density penalty.

    Returns the model (with n normalised to `n_tracers` inside the volume), its hyperparameters
    for saving, and the loss history sampled every `_STEPS_PER_CALL` steps.
    """
    hyper = conditional_hyperparameters(points, observer, volume_radius_kpc, spec)
    key_phi, key_n, key_train = jr.split(jr.key(seed), 3)
    model = ConditionalFields(
        ScalarField(**hyper["potential"], key=key_phi), ScalarField(**hyper["log_density"], key=key_n), jnp.zeros(())
    )
    x, v = jnp.asarray(points.x), jnp.asarray(points.v)
    gx, gv = jnp.asarray(points.grad_x_log_p), jnp.asarray(points.grad_v_log_p)
    residual_scale = float(jnp.sqrt(jnp.mean(jnp.sum(v * gx, axis=1) ** 2)))
    laplacian_scale = hyper["potential"]["out_scale"] / volume_radius_kpc**2
    batch = min(spec.batch_size, len(x))
    lap_batch = min(spec.laplacian_batch, len(x))

    schedule = optax.warmup_cosine_decay_schedule(
        0.0, spec.learning_rate, min(200, spec.steps // 10 + 1), spec.steps, end_value=spec.learning_rate * 0.02
    )
    optimizer = optax.adam(schedule)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)

    def loss_fn(params, idx, lap_idx, uniform):
        m = eqx.combine(params, static)
        r = jax.vmap(conditional_residual, in_axes=(None, None, 0, 0, 0, 0))(
            m.potential, m.log_density, x[idx], v[idx], gx[idx], gv[idx]
        )
        lap = jax.vmap(laplacian, in_axes=(None, 0))(m.potential, x[lap_idx])
        loss = mean_squared(r, residual_scale) + spec.positivity_weight * negative_density_penalty(lap, laplacian_scale)
        if spec.density_tie_weight > 0:  # collocation positions are star positions
            tie = position_log_likelihood(jax.vmap(m.log_density)(x[idx]), jax.vmap(m.log_density)(uniform))
            loss = loss + spec.density_tie_weight * tie
        return loss

    @jax.jit
    def run_steps(params, opt_state, key):
        def step(carry, step_key):
            params, opt_state = carry
            k1, k2, k3 = jr.split(step_key, 3)
            idx = jr.randint(k1, (batch,), 0, len(x))
            lap_idx = jr.randint(k2, (lap_batch,), 0, len(x))
            uniform = _uniform_in_ball(k3, batch, jnp.asarray(observer, jnp.float32), volume_radius_kpc)
            loss, grads = jax.value_and_grad(loss_fn)(params, idx, lap_idx, uniform)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), jr.split(key, _STEPS_PER_CALL))
        return params, opt_state, losses.mean()

    history: dict[str, list[float]] = {"loss": []}
    n_calls = -(-spec.steps // _STEPS_PER_CALL)
    with progress_bar() as bar:
        task = bar.add_task("fields Φ, ln n", total=n_calls * _STEPS_PER_CALL, status="")
        for call_key in jr.split(key_train, n_calls):
            params, opt_state, loss = run_steps(params, opt_state, call_key)
            history["loss"].append(float(loss))
            bar.update(task, advance=_STEPS_PER_CALL, status=f"loss {history['loss'][-1]:.4g}")
    model = eqx.combine(params, static)
    log_norm = _log_normalisation(model, observer, volume_radius_kpc, n_tracers, seed)
    return eqx.tree_at(lambda m: m.log_norm, model, log_norm), hyper, history


def _uniform_in_ball(key, n: int, centre: jnp.ndarray, radius: float) -> jnp.ndarray:
    k1, k2 = jr.split(key)
    direction = jr.normal(k1, (n, 3))
    direction = direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    return centre + radius * jr.uniform(k2, (n, 1)) ** (1 / 3) * direction


def _log_normalisation(
    model: ConditionalFields, observer: np.ndarray, radius: float, n_tracers: int, seed: int, n_points: int = 65_536
) -> jnp.ndarray:
    """ln C such that ∫_V C exp(ln n_φ) dV = n_tracers (Monte Carlo over the observer's sphere)."""
    pts = uniform_in_ball(np.random.default_rng(seed), n_points, observer, radius)
    log_n = jax.vmap(model.log_density)(jnp.asarray(pts, jnp.float32))
    volume = 4 / 3 * np.pi * radius**3
    log_mean = jax.scipy.special.logsumexp(log_n) - jnp.log(n_points)
    return jnp.log(n_tracers / volume) - log_mean
