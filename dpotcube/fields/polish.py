"""Second-order polish of trained fields: full-batch L-BFGS on a fixed collocation set after Adam.

Adam's stochastic steps leave Φ accurate to ~1% in a but ρ = ∇²Φ/(4πG) only to ~20%: the second
derivatives need the loss minimised far more tightly than minibatch noise allows. L-BFGS (optax's
`lbfgs` with its zoom line search) on one fixed, large set of points — the same loss as training —
converges to that set's minimum and brings ρ to a few percent on exact gradients (benchmarks/solver.py).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PyTree

from ..geometry import uniform_in_ball
from ..training import train_loop

_STEPS_PER_CALL = 25  # L-BFGS iterations fused into one jitted scan between progress updates

LossFn = Callable[[PyTree, Int[Array, " b"], Int[Array, " l"], Float[Array, "u 3"]], Float[Array, ""]]
"""`loss(params, idx, lap_idx, uniform)`: the training loss on collocation indices `idx`, Laplacian
indices `lap_idx` and uniform in-volume points `uniform` (as in `train_fields`)."""


def polish_sets(
    n_collocation: int, points: int, laplacian_points: int, observer: np.ndarray, radius: float, seed: int
) -> tuple[Int[Array, " b"], Int[Array, " l"], Float[Array, "b 3"]]:
    """The fixed sets of the polish: `points` collocation indices (all if fewer), `laplacian_points` indices
    for the positivity penalty and as many uniform in-volume points as collocation indices."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n_collocation) if points >= n_collocation else rng.choice(n_collocation, points, replace=False)
    lap_idx = rng.choice(n_collocation, min(laplacian_points, n_collocation), replace=False)
    uniform = uniform_in_ball(rng, len(idx), np.asarray(observer, np.float64), radius)
    return jnp.asarray(idx), jnp.asarray(lap_idx), jnp.asarray(uniform, jnp.float32)


def lbfgs_polish(
    loss: Callable[[PyTree], Float[Array, ""]], params: PyTree, steps: int, label: str = "L-BFGS polish",
    memory: int = 20,
) -> tuple[PyTree, list[float]]:
    """Minimise `loss(params)` (deterministic, full batch) by `steps` L-BFGS iterations with a zoom line search,
    through the one training loop. Returns the parameters and the loss every `_STEPS_PER_CALL` iterations; stops
    early if the loss stops being finite (keeping the last finite parameters)."""
    optimizer = optax.lbfgs(memory_size=memory)
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    def run(params, state):
        def step(carry, _):
            params, state = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = optimizer.update(grad, state, params, value=value, grad=grad, value_fn=loss)
            return (optax.apply_updates(params, updates), state), value

        (params, state), values = jax.lax.scan(step, (params, state), None, length=_STEPS_PER_CALL)
        return params, state, values[-1]

    def run_call(params, state, key):
        params, state, value = run(params, state)
        return params, state, {"polish_loss": value}

    calls = -(-steps // _STEPS_PER_CALL)
    params, history = train_loop(run_call, params, optimizer.init(params), [None] * calls, label, _STEPS_PER_CALL,
                                 lambda metrics, _: f"loss {metrics['polish_loss']:.4g}", finish_on_non_finite=True)
    return params, history.get("polish_loss", [])


def polish_fields(
    loss_fn: LossFn, params: PyTree, n_collocation: int, observer: np.ndarray, radius: float, spec, seed: int
) -> tuple[PyTree, list[float]]:
    """The polish `spec` (a `FieldsSpec`) asks for: `spec.polish_steps` L-BFGS iterations of `loss_fn` on fixed
    sets of `spec.polish_points` collocation points and `spec.polish_laplacian_points` Laplacian points."""
    idx, lap_idx, uniform = polish_sets(
        n_collocation, spec.polish_points, spec.polish_laplacian_points, observer, radius, seed + 7919
    )
    return lbfgs_polish(lambda p: loss_fn(p, idx, lap_idx, uniform), params, spec.polish_steps,
                        f"fields L-BFGS polish ({len(idx):,} points)")
