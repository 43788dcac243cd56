"""Normalizing flows for n(x) (3-D) and p(v|x) (3-D given 3-D), behind one module and one fit.

Both are flowjax masked autoregressive flows with affine transformers and smooth activations on
standardized variables: affine MAFs give ∇ ln p with continuous derivatives. flowjax's spline
transformer is only C¹ (its second derivative jumps at knots) and ReLU gives kinked gradients;
the CBE differentiates the networks trained on these gradients, so neither is offered.
"""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import paramax
from flowjax.bijections import Affine
from flowjax.distributions import Normal
from flowjax.flows import masked_autoregressive_flow
from jaxtyping import Array, Float, PRNGKeyArray

from ..fields.nets import ACTIVATIONS
from ..progress import progress_bar
from ..recipe import FlowSpec
from ..serialise import load_model, save_model
from .ball import ball_to_space, space_to_ball


class DensityFlow(eqx.Module):
    """ln p(y | c) in physical units: y (and c) standardized before a flowjax flow.

    Unconditional flows model n(x)/N (`c` is None). With `ball` support, y is first mapped from
    the ball |y − centre| < radius onto R³ (see `ball.py`), so the density has an exact edge.
    """

    flow: eqx.Module
    loc: Float[Array, "3"]
    scale: Float[Array, "3"]
    cond_loc: Float[Array, "3"]
    cond_scale: Float[Array, "3"]
    centre: Float[Array, "3"]
    radius: Float[Array, ""]
    conditional: bool = eqx.field(static=True)
    ball: bool = eqx.field(static=True)

    def log_prob(self, y: Float[Array, "3"], c: Float[Array, "3"] | None = None) -> Float[Array, ""]:
        """ln p for one point: (km/s)⁻³ for p(v|x), kpc⁻³ for n(x)/N."""
        log_det = 0.0
        if self.ball:
            y, log_det = ball_to_space(y, self.centre, self.radius)
        y_std = (y - self.loc) / self.scale
        c_std = None if c is None else (c - self.cond_loc) / self.cond_scale
        return self.flow.log_prob(y_std, c_std) - jnp.sum(jnp.log(self.scale)) + log_det

    def sample(self, key: PRNGKeyArray, n: int, c: Float[Array, "n 3"] | None = None) -> Float[Array, "n 3"]:
        """`n` draws, one per row of `c` for a conditional flow."""
        if self.conditional:
            y_std = self.flow.sample(key, condition=(c - self.cond_loc) / self.cond_scale)
        else:
            y_std = self.flow.sample(key, (n,))
        y = y_std * self.scale + self.loc
        return space_to_ball(y, self.centre, self.radius) if self.ball else y


def flow_skeleton(
    flow_layers: int,
    nn_width: int,
    nn_depth: int,
    activation: str,
    conditional: bool = True,
    ball: bool = False,
    key: PRNGKeyArray | None = None,
) -> DensityFlow:
    """An untrained flow with identity standardization (also the loading skeleton)."""
    flow = masked_autoregressive_flow(
        jr.key(0) if key is None else key,
        base_dist=Normal(jnp.zeros(3)),
        transformer=Affine(),
        cond_dim=3 if conditional else None,
        flow_layers=flow_layers,
        nn_width=nn_width,
        nn_depth=nn_depth,
        nn_activation=ACTIVATIONS[activation],
    )
    zeros, ones = jnp.zeros(3), jnp.ones(3)
    return DensityFlow(flow, zeros, ones, zeros, ones, zeros, jnp.ones(()), conditional, ball)


def flow_hyperparameters(spec: FlowSpec, conditional: bool, ball: bool) -> dict:
    return {
        "flow_layers": spec.flow_layers,
        "nn_width": spec.nn_width,
        "nn_depth": spec.nn_depth,
        "activation": spec.activation,
        "conditional": conditional,
        "ball": ball,
    }


def fit_flow(
    targets: Float[np.ndarray, "n 3"],
    spec: FlowSpec,
    seed: int,
    conditions: Float[np.ndarray, "n 3"] | None = None,
    weights: Float[np.ndarray, " n"] | None = None,
    ball: tuple[Float[np.ndarray, "3"], float] | None = None,
    split_seed: int | None = None,
    label: str = "flow",
) -> tuple[DensityFlow, dict[str, list[float]]]:
    """Fit p(targets | conditions) by (weighted) maximum likelihood.

    Validation split from `split_seed` (default `seed`), Adam with cosine decay, early stopping;
    returns the flow with the best validation loss and the per-epoch losses.
    `ball = (centre, radius)` gives an unconditional flow an exact spherical edge.
    """
    key_init, key_split, key_train = jr.split(jr.key(seed), 3)
    if split_seed is not None and split_seed != seed:
        key_split = jr.split(jr.key(split_seed), 3)[1]
    y = jnp.asarray(targets, jnp.float32)
    c = None if conditions is None else jnp.asarray(conditions, jnp.float32)
    w = None if weights is None else jnp.asarray(weights / np.mean(weights), jnp.float32)
    model = flow_skeleton(**flow_hyperparameters(spec, c is not None, ball is not None), key=key_init)
    if ball is not None:
        centre, radius = jnp.asarray(ball[0], jnp.float32), jnp.asarray(ball[1], jnp.float32)
        model = eqx.tree_at(lambda m: (m.centre, m.radius), model, (centre, radius))
        y = jax.vmap(lambda p: ball_to_space(p, centre, radius)[0])(y)  # the flow sees z = g(x)
    cond_stats = (model.cond_loc, model.cond_scale) if c is None else (c.mean(0), c.std(0))
    model = eqx.tree_at(lambda m: (m.loc, m.scale, m.cond_loc, m.cond_scale), model, (y.mean(0), y.std(0), *cond_stats))
    y_std = (y - model.loc) / model.scale
    c_std = None if c is None else (c - model.cond_loc) / model.cond_scale

    order = jr.permutation(key_split, len(y))
    n_val = max(int(round(spec.val_fraction * len(y))), 1)
    val, train = order[:n_val], order[n_val:]
    batch = min(spec.batch_size, len(train))
    n_batches = len(train) // batch
    schedule = optax.cosine_decay_schedule(spec.learning_rate, spec.max_epochs * n_batches, alpha=0.05)
    optimizer = optax.adamw(schedule, weight_decay=spec.weight_decay) if spec.weight_decay else optax.adam(schedule)
    params, static = eqx.partition(model.flow, eqx.is_inexact_array, is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable))
    opt_state = optimizer.init(params)

    def loss(params, idx):
        flow = paramax.unwrap(eqx.combine(params, static))
        cond = None if c_std is None else c_std[idx]
        log_prob = flow.log_prob(y_std[idx], cond)
        return -jnp.mean(log_prob) if w is None else -jnp.sum(w[idx] * log_prob) / jnp.sum(w[idx])

    @jax.jit
    def run_epoch(params, opt_state, key):
        idx = jr.permutation(key, train)[: n_batches * batch].reshape(n_batches, batch)

        def step(carry, batch_idx):
            params, opt_state = carry
            value, grads = jax.value_and_grad(loss)(params, batch_idx)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), idx)
        return params, opt_state, losses.mean(), loss(params, val)

    history: dict[str, list[float]] = {"train": [], "val": []}
    best_params, best_val, stale = params, np.inf, 0
    with progress_bar() as bar:
        task = bar.add_task(label, total=spec.max_epochs, status="")
        for epoch_key in jr.split(key_train, spec.max_epochs):
            params, opt_state, train_loss, val_loss = run_epoch(params, opt_state, epoch_key)
            history["train"].append(float(train_loss))
            history["val"].append(float(val_loss))
            if history["val"][-1] < best_val:
                best_params, best_val, stale = params, history["val"][-1], 0
            else:
                stale += 1
            bar.update(task, advance=1, status=f"val nll {history['val'][-1]:.4f}")
            if stale >= spec.patience:
                bar.update(task, status=f"early stop, best val nll {best_val:.4f}")
                break
    return eqx.tree_at(lambda m: m.flow, model, eqx.combine(best_params, static)), history


@eqx.filter_jit
def grad_log_p(
    flow: DensityFlow, x: Float[Array, "n 3"], v: Float[Array, "n 3"]
) -> tuple[Float[Array, "n 3"], Float[Array, "n 3"]]:
    """(∇ₓ ln p(v|x), ∇ᵥ ln p(v|x)) of a conditional flow at `n` points, in kpc⁻¹ and s/km."""
    grad_v, grad_x = jax.vmap(jax.grad(flow.log_prob, argnums=(0, 1)))(v, x)
    return grad_x, grad_v


@eqx.filter_jit
def grad_log_n(flow: DensityFlow, x: Float[Array, "n 3"]) -> Float[Array, "n 3"]:
    """∇ ln n(x) of an unconditional flow at `n` points, in kpc⁻¹."""
    return jax.vmap(jax.grad(flow.log_prob))(x)


def save_flow(path: Path, flow: DensityFlow, spec: FlowSpec) -> None:
    save_model(path, flow, "density_flow", flow_hyperparameters(spec, flow.conditional, flow.ball))


def load_flow(path: Path) -> DensityFlow:
    flow, _ = load_model(path, {"density_flow": flow_skeleton})
    return flow
