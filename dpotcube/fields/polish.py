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
from scipy.spatial import cKDTree

from ..geometry import uniform_in_ball
from ..training import EarlyStopping, train_loop

_STEPS_PER_CALL = 25  # L-BFGS iterations fused into one jitted scan between progress updates

LossFn = Callable[[PyTree, Int[Array, " b"], Int[Array, " l"], Float[Array, "u 3"]], Float[Array, ""]]
"""`loss(params, idx, lap_idx, uniform)`: the training loss on collocation indices `idx`, Laplacian
indices `lap_idx` and uniform in-volume points `uniform` (as in `train_fields`)."""


def spread_probabilities(x: Float[np.ndarray, "n 3"], neighbours: int = 16) -> Float[np.ndarray, " n"]:
    """Drawing probabilities of the collocation points that spread a draw evenly through the volume: ∝ 1/n̂(x), the
    positions' own density estimated from the distance to the `neighbours`-th nearest distinct position."""
    unique, inverse = np.unique(np.asarray(x, np.float64), axis=0, return_inverse=True)
    distance = cKDTree(unique).query(unique, k=min(neighbours + 1, len(unique)))[0][:, -1]
    weight = distance[inverse.reshape(-1)] ** 3 / np.bincount(inverse.reshape(-1))[inverse.reshape(-1)]
    return weight / weight.sum()


def position_groups(x: Float[np.ndarray, "n 3"]) -> Int[np.ndarray, "p k"] | None:
    """Indices of the collocation points grouped by position, `(p, k)`, when they come as runs of k > 1 equal
    positions (k velocities per position, as `draw_collocation` stores them); None otherwise."""
    x = np.asarray(x)
    starts = np.flatnonzero(np.r_[True, np.any(x[1:] != x[:-1], axis=1)])
    lengths = np.diff(np.r_[starts, len(x)])
    if len(x) == 0 or lengths[0] < 2 or np.any(lengths != lengths[0]):
        return None
    return np.arange(len(x)).reshape(len(starts), lengths[0])


def polish_sets(
    n_collocation: int, points: int, laplacian_points: int, observer: np.ndarray, radius: float, seed: int,
    exclude: np.ndarray | None = None, probabilities: np.ndarray | None = None,
) -> tuple[Int[Array, " b"], Int[Array, " l"], Float[Array, "b 3"]]:
    """The fixed sets of the polish: `points` collocation indices (all not in `exclude` if fewer; drawn with
    `probabilities` if given), `laplacian_points` indices for the positivity penalty and as many uniform in-volume
    points as collocation indices."""
    rng = np.random.default_rng(seed)
    pool = np.arange(n_collocation) if exclude is None else np.setdiff1d(np.arange(n_collocation), exclude)
    p = None if probabilities is None else probabilities[pool] / probabilities[pool].sum()
    idx = pool if points >= len(pool) else rng.choice(pool, points, replace=False, p=p)
    lap_idx = rng.choice(pool, min(laplacian_points, len(pool)), replace=False)
    uniform = uniform_in_ball(rng, len(idx), np.asarray(observer, np.float64), radius)
    return jnp.asarray(idx), jnp.asarray(lap_idx), jnp.asarray(uniform, jnp.float32)


def lbfgs_polish(
    loss: Callable[[PyTree], Float[Array, ""]], params: PyTree, steps: int, label: str = "L-BFGS polish",
    memory: int = 20, validation: Callable[[PyTree], Float[Array, ""]] | None = None, patience: int = 4,
) -> tuple[PyTree, dict[str, list[float]]]:
    """Minimise `loss(params)` (deterministic, full batch) by `steps` L-BFGS iterations with a zoom line search,
    through the one training loop. Returns the parameters and the history of `polish_loss` (and
    `polish_validation` with a `validation` loss) every `_STEPS_PER_CALL` iterations; stops early if the loss stops
    being finite (keeping the last finite parameters), or, with `validation`, after `patience` calls without a new
    minimum of it (keeping the parameters at that minimum, or the unpolished ones if the polish never lowered it)."""
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
        metrics = {"polish_loss": values[-1]}
        if validation is not None:
            metrics["polish_validation"] = validation(params)
        return params, state, metrics

    def status(metrics: dict[str, float], _) -> str:
        held_out = f", held out {metrics['polish_validation']:.4g}" if "polish_validation" in metrics else ""
        return f"loss {metrics['polish_loss']:.4g}{held_out}"

    calls = -(-steps // _STEPS_PER_CALL)
    stopping = None if validation is None else EarlyStopping("polish_validation", patience)
    polished, history = train_loop(lambda p, s, _: run(p, s), params, optimizer.init(params), [None] * calls, label,
                                   _STEPS_PER_CALL, status, early_stopping=stopping, finish_on_non_finite=True)
    if validation is not None:  # the held-out loss before the first iteration: no polish at all may be best
        start = float(jax.jit(validation)(params))
        history["polish_validation_start"] = [start]
        if not min(history.get("polish_validation", [np.inf])) < start:
            return params, history
    return polished, history


def polish_fields(
    loss_fn: LossFn, params: PyTree, x: Float[np.ndarray, "n 3"], observer: np.ndarray, radius: float, spec, seed: int
) -> tuple[PyTree, dict[str, list[float]]]:
    """The polish `spec` (a `FieldsSpec`) asks for: `spec.polish_steps` L-BFGS iterations of `loss_fn` on fixed
    sets of `spec.polish_points` collocation points (of positions `x`, spread evenly through the volume with
    `spec.polish_sampling: volume`) and `spec.polish_laplacian_points` Laplacian points, stopped early on
    `spec.polish_validation_points` held-out points (at most a quarter of them) if > 0. With
    `spec.polish_by_position` (and points stored as runs of velocities per position) the points are whole
    positions, each with all its velocities: k times the residuals for the cost of the position-only fields."""
    groups = position_groups(x) if spec.polish_by_position else None
    units = np.arange(len(x))[:, None] if groups is None else groups  # (units, velocities per unit)
    probabilities = None
    if spec.polish_sampling == "volume":
        probabilities = spread_probabilities(x)[units].sum(axis=1)

    def as_points(unit_idx, lap_units, uniform):
        idx = units[np.asarray(unit_idx)]
        return jnp.asarray(idx[:, 0] if groups is None else idx), jnp.asarray(units[np.asarray(lap_units), 0]), uniform

    validation = None
    held_out = None
    if spec.polish_validation_points:
        v_units, v_lap, v_uniform = polish_sets(  # drawn as the polish's set is: the same loss, on other points
            len(units), min(spec.polish_validation_points, len(units) // 4), spec.polish_laplacian_points,
            observer, radius, seed + 7907, probabilities=probabilities,
        )
        held_out = np.asarray(v_units)
        v_idx, v_lap, v_uniform = as_points(v_units, v_lap, v_uniform)
        validation = lambda p: loss_fn(p, v_idx, v_lap, v_uniform)  # noqa: E731
    idx, lap_idx, uniform = as_points(*polish_sets(
        len(units), spec.polish_points, spec.polish_laplacian_points, observer, radius, seed + 7919, held_out,
        probabilities,
    ))
    what = "points" if groups is None else f"positions × {units.shape[1]} velocities"
    return lbfgs_polish(lambda p: loss_fn(p, idx, lap_idx, uniform), params, spec.polish_steps,
                        f"fields L-BFGS polish ({len(idx):,} {what})", validation=validation,
                        patience=spec.polish_patience)
