"""Continuous normalizing flows trained by conditional flow matching (Lipman et al. 2022; Tong et al. 2023).

A ResNet vector field u(y, t | c) with SiLU moves base-space normal points (t = 0) to data (t = 1).
Training regresses u onto the straight-path target y₁ − z at y_t = (1 − t) z + t y₁ (no ODE solve);
ln p(y₁|c) = ln N(y₀) − ∫₀¹ ∇·u dt is exact up to the ODE discretisation: the state (y, ∫∇·u) is integrated
from t = 1 back to t = 0 by diffrax with a fixed number of Tsit5 steps, the divergence from the full 3 × 3
Jacobian (cheap in 3-D). Fixed steps keep ln p a smooth function of (y, c), so ∇ₓ ln p and ∇ᵥ ln p by autodiff
through the solve have continuous derivatives (an adaptive controller would switch step sequences).
This is the density model of the conditional Deep Potential paper (Kalda & Green; seeds/002).
"""

from __future__ import annotations

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..recipe import CFMSpec
from ..training import train_by_epochs
from .ball import ball_to_space, space_to_ball
from .base import DensityModel


class VectorField(eqx.Module):
    """u(y, t | c): a ResNet on (y, Fourier features of t, c); all standardized, shape `(3,)` each."""

    inp: eqx.nn.Linear
    blocks: tuple[tuple[eqx.nn.Linear, eqx.nn.Linear], ...]
    out: eqx.nn.Linear
    time_frequencies: int = eqx.field(static=True)
    conditional: bool = eqx.field(static=True)

    def __init__(self, width: int, depth: int, time_frequencies: int, conditional: bool, key: PRNGKeyArray):
        keys = jr.split(key, 2 * depth + 2)
        n_in = 3 + 1 + 2 * time_frequencies + (3 if conditional else 0)
        self.inp = eqx.nn.Linear(n_in, width, key=keys[0])
        self.blocks = tuple(
            (eqx.nn.Linear(width, width, key=keys[2 * i + 1]), eqx.nn.Linear(width, width, key=keys[2 * i + 2]))
            for i in range(depth)
        )
        out = eqx.nn.Linear(width, 3, key=keys[-1])
        self.out = eqx.tree_at(lambda layer: layer.weight, out, out.weight * 0.1)  # start near u = 0
        self.time_frequencies = time_frequencies
        self.conditional = conditional

    def __call__(self, y: Float[Array, "3"], t: Float[Array, ""], c: Float[Array, "3"] | None) -> Float[Array, "3"]:
        k = jnp.arange(1, self.time_frequencies + 1, dtype=y.dtype)
        features = [y, jnp.reshape(t, (1,)), jnp.sin(2 * jnp.pi * k * t), jnp.cos(2 * jnp.pi * k * t)]
        if self.conditional:
            features.append(c)
        h = self.inp(jnp.concatenate(features))
        for first, second in self.blocks:
            h = h + second(jax.nn.silu(first(jax.nn.silu(h))))
        return self.out(jax.nn.silu(h))


class CFMDensity(DensityModel):
    """ln p(y | c) in physical units from a flow-matching CNF on standardized y (and c).

    `log_prob(y (3,), c (3,) | None)`: (km/s)⁻³ for p(v|x), kpc⁻³ for n(x)/N. Unconditional models with `ball`
    support map y from the ball |y − centre| < radius onto R³ first (as `DensityFlow`).
    """

    field: VectorField
    loc: Float[Array, "3"]
    scale: Float[Array, "3"]
    cond_loc: Float[Array, "3"]
    cond_scale: Float[Array, "3"]
    centre: Float[Array, "3"]
    radius: Float[Array, ""]
    conditional: bool = eqx.field(static=True)
    ball: bool = eqx.field(static=True)
    ode_steps: int = eqx.field(static=True)

    def _solve(self, terms, y0, t0: float, t1: float):
        return diffrax.diffeqsolve(
            diffrax.ODETerm(terms), diffrax.Tsit5(), t0, t1, (t1 - t0) / self.ode_steps, y0,
            stepsize_controller=diffrax.ConstantStepSize(), max_steps=self.ode_steps + 1,
            saveat=diffrax.SaveAt(t1=True),
        ).ys

    def _std_condition(self, c: Float[Array, "3"] | None) -> Float[Array, "3"] | None:
        return None if c is None else (c - self.cond_loc) / self.cond_scale

    def log_prob_standard(self, y_std: Float[Array, "3"], c_std: Float[Array, "3"] | None) -> Float[Array, ""]:
        """ln p of the standardized variable (no units): ln N(y₀) + ∫₁⁰ ∇·u dt along the ODE."""

        def rhs(t, state, args):
            y, _ = state
            # exact divergence: the trace of the 3 × 3 Jacobian, three forward-mode tangents
            u, tangent = jax.linearize(lambda q: self.field(q, t, c_std), y)
            return u, jnp.trace(jax.vmap(tangent)(jnp.eye(3, dtype=y.dtype)))

        y0, delta = self._solve(rhs, (y_std, jnp.zeros((), y_std.dtype)), 1.0, 0.0)
        return -0.5 * jnp.sum(y0[0] ** 2) - 1.5 * math.log(2 * math.pi) + delta[0]

    def log_prob(self, y: Float[Array, "3"], c: Float[Array, "3"] | None = None) -> Float[Array, ""]:
        """ln p for one point: (km/s)⁻³ for p(v|x), kpc⁻³ for n(x)/N."""
        log_det = 0.0
        if self.ball:
            y, log_det = ball_to_space(y, self.centre, self.radius)
        y_std = (y - self.loc) / self.scale
        return self.log_prob_standard(y_std, self._std_condition(c)) - jnp.sum(jnp.log(self.scale)) + log_det

    def _push(self, z: Float[Array, "3"], c_std: Float[Array, "3"] | None) -> Float[Array, "3"]:
        y = self._solve(lambda t, y, args: self.field(y, t, c_std), z, 0.0, 1.0)[0] * self.scale + self.loc
        return space_to_ball(y, self.centre, self.radius) if self.ball else y

    @eqx.filter_jit
    def from_base(self, z: Float[Array, "k 3"], c: Float[Array, "3"] | None = None) -> Float[Array, "k 3"]:
        """Base-space normal points `z` carried to data space, all at the one condition `c`."""
        c_std = self._std_condition(c)
        return jax.vmap(lambda zi: self._push(zi, c_std))(z)

    @eqx.filter_jit
    def sample(self, key: PRNGKeyArray, n: int, c: Float[Array, "n 3"] | None = None) -> Float[Array, "n 3"]:
        """`n` draws, one per row of `c` for a conditional model."""
        z = jr.normal(key, (n, 3))
        if not self.conditional:
            return jax.vmap(lambda zi: self._push(zi, None))(z)
        c_std = (jnp.asarray(c) - self.cond_loc) / self.cond_scale
        return jax.vmap(self._push)(z, c_std)


def cfm_skeleton(
    width: int,
    depth: int,
    time_frequencies: int,
    ode_steps: int,
    conditioned: bool = True,
    ball: bool = False,
    key: PRNGKeyArray | None = None,
) -> CFMDensity:
    """An untrained model with identity standardization (also the loading skeleton); `conditioned`: p(v|x)."""
    field = VectorField(width, depth, time_frequencies, conditioned, jr.key(0) if key is None else key)
    zeros, ones = jnp.zeros(3), jnp.ones(3)
    return CFMDensity(field=field, loc=zeros, scale=ones, cond_loc=zeros, cond_scale=ones, centre=zeros,
                      radius=jnp.ones(()), conditional=conditioned, ball=ball, ode_steps=ode_steps)


def cfm_hyperparameters(spec: CFMSpec, conditioned: bool, ball: bool) -> dict:
    """The keyword arguments of `cfm_skeleton` that rebuild a model fitted with `spec`."""
    return {
        "width": spec.width,
        "depth": spec.depth,
        "time_frequencies": spec.time_frequencies,
        "ode_steps": spec.ode_steps,
        "conditioned": conditioned,
        "ball": ball,
    }


def fit_cfm(
    targets: Float[np.ndarray, "n 3"],
    spec: CFMSpec,
    seed: int,
    conditions: Float[np.ndarray, "n 3"] | None = None,
    weights: Float[np.ndarray, " n"] | None = None,
    ball: tuple[Float[np.ndarray, "3"], float] | None = None,
    split_seed: int | None = None,
    label: str = "cfm",
) -> tuple[CFMDensity, dict[str, list[float]]]:
    """Fit p(targets | conditions) by (weighted) conditional flow matching.

    Same meaning as `fit_flow`: validation split from `split_seed` (default `seed`), AdamW with cosine decay,
    early stopping on the validation flow-matching loss (fixed noise and times, so epochs compare); returns the
    model with the best validation loss and the per-epoch losses. `ball = (centre, radius)` gives an
    unconditional model an exact spherical edge.
    """
    key_init, key_split, key_train = jr.split(jr.key(seed), 3)
    if split_seed is not None and split_seed != seed:
        key_split = jr.split(jr.key(split_seed), 3)[1]
    y = jnp.asarray(targets, jnp.float32)
    c = None if conditions is None else jnp.asarray(conditions, jnp.float32)
    w = jnp.ones(len(y), jnp.float32) if weights is None else jnp.asarray(weights / np.mean(weights), jnp.float32)
    model = cfm_skeleton(**cfm_hyperparameters(spec, c is not None, ball is not None), key=key_init)
    if ball is not None:
        centre, radius = jnp.asarray(ball[0], jnp.float32), jnp.asarray(ball[1], jnp.float32)
        model = eqx.tree_at(lambda m: (m.centre, m.radius), model, (centre, radius))
        y = jax.vmap(lambda p: ball_to_space(p, centre, radius)[0])(y)
    cond_stats = (model.cond_loc, model.cond_scale) if c is None else (c.mean(0), c.std(0))
    model = eqx.tree_at(lambda m: (m.loc, m.scale, m.cond_loc, m.cond_scale), model, (y.mean(0), y.std(0), *cond_stats))
    y_std = (y - model.loc) / model.scale
    c_std = jnp.zeros_like(y_std) if c is None else (c - model.cond_loc) / model.cond_scale

    order = jr.permutation(key_split, len(y))
    n_val = max(round(spec.val_fraction * len(y)), 1)
    val, train = order[:n_val], order[n_val:]
    batch = min(spec.batch_size, len(train))
    n_batches = len(train) // batch
    schedule = optax.cosine_decay_schedule(spec.learning_rate, spec.max_epochs * n_batches, alpha=0.01)
    optimizer = optax.adamw(schedule, weight_decay=spec.weight_decay)
    params, static = eqx.partition(model.field, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    conditional = c is not None

    def loss(params, idx, key):
        field = eqx.combine(params, static)
        key_z, key_t = jr.split(key)
        y1 = y_std[idx]
        z = jr.normal(key_z, y1.shape)
        t = jr.uniform(key_t, (len(idx),))
        t = jnp.sqrt(t) if spec.time_sampling == "sqrt" else t
        yt = (1 - t[:, None]) * z + t[:, None] * y1
        cond = c_std[idx]
        if conditional and spec.condition_noise_kpc > 0:  # jitter in physical units, then standardized
            cond = cond + spec.condition_noise_kpc * jr.normal(jr.fold_in(key, 1), cond.shape) / model.cond_scale
        u = jax.vmap(lambda a, b, cc: field(a, b, cc if conditional else None))(yt, t, cond)
        per_point = jnp.sum((u - (y1 - z)) ** 2, axis=1)
        return jnp.sum(w[idx] * per_point) / jnp.sum(w[idx])

    val_key = jr.key(seed + 12345)

    @jax.jit
    def run_epoch(params, opt_state, key):
        key_perm, key_steps = jr.split(key)
        idx = jr.permutation(key_perm, train)[: n_batches * batch].reshape(n_batches, batch)

        def step(carry, inputs):
            params, opt_state = carry
            batch_idx, step_key = inputs
            value, grads = jax.value_and_grad(loss)(params, batch_idx, step_key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (idx, jr.split(key_steps, n_batches)))
        return params, opt_state, losses.mean(), loss(params, val, val_key)

    def run_call(params, opt_state, key):
        params, opt_state, train_loss, val_loss = run_epoch(params, opt_state, key)
        return params, opt_state, {"train": train_loss, "val": val_loss}

    best_params, history = train_by_epochs(
        run_call, params, opt_state, jr.split(key_train, spec.max_epochs), label, spec.patience, "val cfm loss"
    )
    return eqx.tree_at(lambda m: m.field, model, eqx.combine(best_params, static)), history
