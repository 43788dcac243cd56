"""The conditional velocity flow p(v|x): a flowjax masked autoregressive flow on standardized variables.

Affine transformers with a smooth activation give smooth ∇ ln p; flowjax's spline
transformer and ReLU give gradients with jumps, which the CBE cannot use.
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

from ..progress import progress_bar
from ..recipe import DensitySpec
from ..serialise import load_model, save_model

ACTIVATIONS = {"silu": jax.nn.silu, "gelu": jax.nn.gelu, "tanh": jnp.tanh}


class VelocityFlow(eqx.Module):
    """p(v|x) with v and x standardized before the flow; `log_prob` works in km/s and kpc."""

    flow: eqx.Module
    x_loc: Float[Array, "3"]
    x_scale: Float[Array, "3"]
    v_loc: Float[Array, "3"]
    v_scale: Float[Array, "3"]

    def log_prob(self, v: Float[Array, "3"], x: Float[Array, "3"]) -> Float[Array, ""]:
        """ln p(v|x) in (km/s)⁻³ for one star: `v`, `x` of shape `(3,)`."""
        v_std = (v - self.v_loc) / self.v_scale
        x_std = (x - self.x_loc) / self.x_scale
        return self.flow.log_prob(v_std, x_std) - jnp.sum(jnp.log(self.v_scale))

    def sample(self, key: PRNGKeyArray, x: Float[Array, "n 3"]) -> Float[Array, "n 3"]:
        """One velocity per position `x`, shape `(n, 3)`."""
        x_std = (x - self.x_loc) / self.x_scale
        return self.flow.sample(key, condition=x_std) * self.v_scale + self.v_loc


def flow_skeleton(
    flow_layers: int, nn_width: int, nn_depth: int, activation: str, key: PRNGKeyArray | None = None
) -> VelocityFlow:
    """An untrained flow with identity standardization (also the loading skeleton)."""
    flow = masked_autoregressive_flow(
        jr.key(0) if key is None else key,
        base_dist=Normal(jnp.zeros(3)),
        transformer=Affine(),
        cond_dim=3,
        flow_layers=flow_layers,
        nn_width=nn_width,
        nn_depth=nn_depth,
        nn_activation=ACTIVATIONS[activation],
    )
    zeros, ones = jnp.zeros(3), jnp.ones(3)
    return VelocityFlow(flow=flow, x_loc=zeros, x_scale=ones, v_loc=zeros, v_scale=ones)


def _hyperparameters(spec: DensitySpec) -> dict:
    return {"flow_layers": spec.flow_layers, "nn_width": spec.nn_width, "nn_depth": spec.nn_depth, "activation": spec.activation}


def fit_velocity_flow(
    positions: Float[np.ndarray, "n 3"], velocities: Float[np.ndarray, "n 3"], spec: DensitySpec, seed: int
) -> tuple[VelocityFlow, dict[str, list[float]]]:
    """Fit p(v|x) by maximum likelihood with a validation split, cosine LR decay and early stopping.

    Returns the flow with the best validation loss and the per-epoch losses.
    """
    key_init, key_split, key_train = jr.split(jr.key(seed), 3)
    x = jnp.asarray(positions, jnp.float32)
    v = jnp.asarray(velocities, jnp.float32)
    model = eqx.tree_at(
        lambda m: (m.x_loc, m.x_scale, m.v_loc, m.v_scale),
        flow_skeleton(**_hyperparameters(spec), key=key_init),
        (x.mean(0), x.std(0), v.mean(0), v.std(0)),
    )
    x_std = (x - model.x_loc) / model.x_scale
    v_std = (v - model.v_loc) / model.v_scale

    order = jr.permutation(key_split, len(x))
    n_val = max(int(round(spec.val_fraction * len(x))), 1)
    val, train = order[:n_val], order[n_val:]
    batch = min(spec.batch_size, len(train))
    n_batches = len(train) // batch
    schedule = optax.cosine_decay_schedule(spec.learning_rate, spec.max_epochs * n_batches, alpha=0.05)
    optimizer = optax.adam(schedule)
    params, static = eqx.partition(model.flow, eqx.is_inexact_array, is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable))
    opt_state = optimizer.init(params)

    def nll(params, v_b, x_b):
        flow = paramax.unwrap(eqx.combine(params, static))
        return -jnp.mean(flow.log_prob(v_b, x_b))

    @jax.jit
    def run_epoch(params, opt_state, key):
        idx = jr.permutation(key, train)[: n_batches * batch].reshape(n_batches, batch)

        def step(carry, batch_idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(nll)(params, v_std[batch_idx], x_std[batch_idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), idx)
        return params, opt_state, losses.mean(), nll(params, v_std[val], x_std[val])

    history: dict[str, list[float]] = {"train": [], "val": []}
    best_params, best_val, stale = params, np.inf, 0
    with progress_bar() as bar:
        task = bar.add_task("flow p(v|x)", total=spec.max_epochs, status="")
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
    flow: VelocityFlow, x: Float[Array, "n 3"], v: Float[Array, "n 3"]
) -> tuple[Float[Array, "n 3"], Float[Array, "n 3"]]:
    """(∇ₓ ln p(v|x), ∇ᵥ ln p(v|x)) at `n` points, in kpc⁻¹ and s/km."""
    grad_v, grad_x = jax.vmap(jax.grad(flow.log_prob, argnums=(0, 1)))(v, x)
    return grad_x, grad_v


def save_flow(path: Path, flow: VelocityFlow, spec: DensitySpec) -> None:
    save_model(path, flow, "velocity_flow", _hyperparameters(spec))


def load_flow(path: Path) -> VelocityFlow:
    flow, _ = load_model(path, {"velocity_flow": flow_skeleton})
    return flow
