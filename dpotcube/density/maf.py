"""The masked autoregressive flow (`type: maf`): n(x) (3-D) and p(v|x) (3-D given 3-D) behind one module and one fit.

Both are flowjax masked autoregressive flows with affine transformers and smooth activations on
standardized variables (p(v|x) optionally in a velocity frame that follows position, `frame.py`): affine MAFs
give ∇ ln p with continuous derivatives. flowjax's spline transformer is only C¹ (its second derivative jumps at
knots) and ReLU gives kinked gradients; the CBE differentiates the networks trained on these gradients, so neither
is offered.
"""

from __future__ import annotations

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

from ..activations import ACTIVATIONS
from ..recipe import FlowSpec
from ..sources.chunks import FlowSample
from ..training import train_by_epochs
from .ball import BallToSpace
from .base import DensityModel
from .frame import VelocityFrame, fit_frame, frame_skeleton

FRAME_STARS = 1_000_000
"""Stars the velocity frame is fitted on when the table is read in chunks (its few dozen coefficients need no more)."""


class DensityFlow(DensityModel):
    """ln p(y | c) in physical units: y (and c) standardized before a flowjax MAF.

    Unconditional flows model n(x)/N (`c` is None). With ball support, `support` (a flowjax bijection,
    `ball.BallToSpace`) first maps the ball |y − centre| < radius onto R³, so the density has an exact edge.
    With a `frame` (p(v|x) only), the flow models u = frame(v; x) conditioned on `flow_condition`: `position` (x),
    `dispersions` (the frame's three ln σ at x) or `none` (None: x when `conditional`, as every model saved before
    frames existed).
    """

    flow: eqx.Module
    loc: Float[Array, "3"]
    scale: Float[Array, "3"]
    cond_loc: Float[Array, "3"]
    cond_scale: Float[Array, "3"]
    support: BallToSpace | None
    conditional: bool = eqx.field(static=True)
    frame: VelocityFrame | None = None
    flow_condition: str | None = eqx.field(static=True, default=None)

    @property
    def condition_kind(self) -> str:
        """What the flow is conditioned on: `position`, `dispersions` or `none`."""
        if self.flow_condition is not None:
            return self.flow_condition
        return "position" if self.conditional else "none"

    @property
    def flow_sees_condition(self) -> bool:
        return self.condition_kind != "none"

    def raw_condition(self, c: Float[Array, "... 3"] | None) -> Float[Array, "... 3"] | None:
        """The flow's condition at positions `c` before standardisation (None when it takes none)."""
        if c is None or self.condition_kind == "none":
            return None
        return self.frame.log_dispersions(c) if self.condition_kind == "dispersions" else c

    def standardised_condition(self, raw: Float[Array, "... 3"] | None) -> Float[Array, "... 3"] | None:
        """A condition from `raw_condition` in the flow's standardized units."""
        return None if raw is None else (raw - self.cond_loc) / self.cond_scale

    def _flow_condition(self, c: Float[Array, "... 3"] | None) -> Float[Array, "... 3"] | None:
        return self.standardised_condition(self.raw_condition(c))

    def log_prob(self, y: Float[Array, "3"], c: Float[Array, "3"] | None = None) -> Float[Array, ""]:
        """ln p for one point: (km/s)⁻³ for p(v|x), kpc⁻³ for n(x)/N."""
        log_det = 0.0
        if self.frame is not None:
            y, log_det = self.frame.to_frame(y, c)
        if self.support is not None:
            y, support_log_det = self.support.transform_and_log_det(y)
            log_det = log_det + support_log_det
        y_std = (y - self.loc) / self.scale
        return self.flow.log_prob(y_std, self._flow_condition(c)) - jnp.sum(jnp.log(self.scale)) + log_det

    def sample(self, key: PRNGKeyArray, n: int, c: Float[Array, "n 3"] | None = None) -> Float[Array, "n 3"]:
        """`n` draws, one per row of `c` for a conditional flow."""
        if self.flow_sees_condition:
            y_std = self.flow.sample(key, condition=self._flow_condition(c))
        else:
            y_std = self.flow.sample(key, (n if c is None else len(c),))
        y = y_std * self.scale + self.loc
        return self._to_data(y if self.frame is None else jax.vmap(self.frame.from_frame)(y, c))

    def from_base(self, z: Float[Array, "k 3"], c: Float[Array, "3"] | None = None) -> Float[Array, "k 3"]:
        inner = paramax.unwrap(self.flow)
        u = inner.base_dist.loc + inner.base_dist.scale * z
        y_std = jax.vmap(inner.bijection.transform, in_axes=(0, None))(u, self._flow_condition(c))
        y = y_std * self.scale + self.loc
        return self._to_data(y if self.frame is None else jax.vmap(self.frame.from_frame, in_axes=(0, None))(y, c))

    def _to_data(self, y: Float[Array, "n 3"]) -> Float[Array, "n 3"]:
        return y if self.support is None else jax.vmap(self.support.inverse)(y)


def flow_skeleton(
    flow_layers: int,
    nn_width: int,
    nn_depth: int,
    activation: str,
    conditioned: bool = True,
    ball: bool = False,
    key: PRNGKeyArray | None = None,
    frame_degree: int | None = None,
    frame_scales: tuple[float, ...] = (),
    flow_condition: str = "position",
) -> DensityFlow:
    """An untrained flow with identity standardization (also the loading skeleton); with `frame_degree`, p(v|x) in a
    velocity frame of that degree and reference scales, the flow conditioned on `flow_condition`."""
    flow_conditioned = conditioned and flow_condition != "none"
    flow = masked_autoregressive_flow(
        jr.key(0) if key is None else key,
        base_dist=Normal(jnp.zeros(3)),
        transformer=Affine(),
        cond_dim=3 if flow_conditioned else None,
        flow_layers=flow_layers,
        nn_width=nn_width,
        nn_depth=nn_depth,
        nn_activation=ACTIVATIONS[activation],
    )
    zeros, ones = jnp.zeros(3), jnp.ones(3)
    support = BallToSpace(zeros, jnp.ones(())) if ball else None
    framed = conditioned and frame_degree is not None
    return DensityFlow(flow=flow, loc=zeros, scale=ones, cond_loc=zeros, cond_scale=ones, support=support,
                       conditional=conditioned, frame=frame_skeleton(frame_degree, frame_scales) if framed else None,
                       flow_condition=flow_condition if framed else None)


def flow_hyperparameters(spec: FlowSpec, conditioned: bool, ball: bool, frame: VelocityFrame | None = None) -> dict:
    """The skeleton's arguments; a fitted `frame` gives the degree and scales its fit chose."""
    frame_keys = {}
    if conditioned and spec.frame != "none":
        frame_keys = {"frame_degree": spec.frame_max_degree if frame is None else frame.degree,
                      "frame_scales": tuple(spec.frame_reference_scales_kpc if frame is None else frame.reference_scales),
                      "flow_condition": spec.frame_condition}
    return {
        "flow_layers": spec.flow_layers,
        "nn_width": spec.nn_width,
        "nn_depth": spec.nn_depth,
        "activation": spec.activation,
        "conditioned": conditioned,
        "ball": ball,
        **frame_keys,
    }


def framed_flow(
    model: DensityFlow, spec: FlowSpec, velocities: Float[np.ndarray, "n 3"], positions: Float[np.ndarray, "n 3"],
    weights: Float[np.ndarray, " n"] | None,
) -> DensityFlow:
    """`model` with its velocity frame fitted to these stars (unchanged when it has none)."""
    if model.frame is None:
        return model
    frame = fit_frame(velocities, positions, spec.frame_max_degree, tuple(spec.frame_reference_scales_kpc), weights)
    return eqx.tree_at(lambda m: m.frame, model, frame)


def to_frame(model: DensityFlow, velocities: Array, positions: Array, chunk: int = 200_000) -> Array:
    """The flow's targets u `(n, 3)` of these stars (the velocities themselves without a frame)."""
    if model.frame is None:
        return velocities
    transform = jax.jit(jax.vmap(lambda v, x: model.frame.to_frame(v, x)[0]))
    return jnp.concatenate([transform(velocities[i:i + chunk], positions[i:i + chunk])
                            for i in range(0, len(velocities), chunk)])


def fit_flow(
    targets: Float[np.ndarray, "n 3"] | FlowSample,
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
    `ball = (centre, radius)` gives an unconditional flow an exact spherical edge. `targets` may be a
    `FlowSample` (a table too large to hold: it carries its conditions and weights), fitted chunk by chunk.
    """
    if isinstance(targets, FlowSample):
        return fit_flow_streamed(targets, spec, seed, ball, split_seed, label)
    key_init, key_split, key_train = jr.split(jr.key(seed), 3)
    if split_seed is not None and split_seed != seed:
        key_split = jr.split(jr.key(split_seed), 3)[1]
    y = jnp.asarray(targets, jnp.float32)
    c = None if conditions is None else jnp.asarray(conditions, jnp.float32)
    w = None if weights is None else jnp.asarray(weights / np.mean(weights), jnp.float32)
    model = flow_skeleton(**flow_hyperparameters(spec, c is not None, ball is not None), key=key_init)
    if c is not None:
        model = framed_flow(model, spec, targets, conditions, weights)
        y = to_frame(model, y, c)
    if ball is not None:
        support = BallToSpace(jnp.asarray(ball[0], jnp.float32), jnp.asarray(ball[1], jnp.float32))
        model = eqx.tree_at(lambda m: m.support, model, support)
        y = jax.vmap(support.transform)(y)  # the flow sees z = g(x)
    raw = model.raw_condition(c)
    cond_stats = (model.cond_loc, model.cond_scale) if raw is None else (raw.mean(0), raw.std(0))
    model = eqx.tree_at(lambda m: (m.loc, m.scale, m.cond_loc, m.cond_scale), model, (y.mean(0), y.std(0), *cond_stats))
    y_std = (y - model.loc) / model.scale
    c_std = model.standardised_condition(raw)
    n_stars = len(y)
    del y, c  # only the standardised copies are trained on

    order = jr.permutation(key_split, n_stars)
    n_val = max(int(round(spec.val_fraction * n_stars)), 1)
    val, train = order[:n_val], order[n_val:]
    batch = min(spec.batch_size, len(train))
    n_batches = len(train) // batch
    schedule = optax.cosine_decay_schedule(spec.learning_rate, spec.max_epochs * n_batches, alpha=0.05)
    optimizer = optax.adamw(schedule, weight_decay=spec.weight_decay) if spec.weight_decay else optax.adam(schedule)
    params, static = eqx.partition(model.flow, eqx.is_inexact_array, is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable))
    opt_state = optimizer.init(params)

    data = (y_std, c_std, w, train, val)  # jit arguments, not closed-over constants: XLA would copy them into the program

    jitter = condition_jitter(spec, model)

    def loss(params, idx, y_std, c_std, w, key=None):
        flow = paramax.unwrap(eqx.combine(params, static))
        cond = None if c_std is None else c_std[idx]
        if key is not None and jitter is not None:
            cond = cond + jitter * jr.normal(key, cond.shape)
        log_prob = flow.log_prob(y_std[idx], cond)
        return -jnp.mean(log_prob) if w is None else -jnp.sum(w[idx] * log_prob) / jnp.sum(w[idx])

    @jax.jit
    def run_epoch(params, opt_state, key, data):
        y_std, c_std, w, train, val = data
        idx = jr.permutation(key, train)[: n_batches * batch].reshape(n_batches, batch)

        def step(carry, inputs):
            params, opt_state = carry
            batch_idx, step_key = inputs
            value, grads = jax.value_and_grad(loss)(params, batch_idx, y_std, c_std, w, step_key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (idx, jr.split(jr.fold_in(key, 1), n_batches)))
        return params, opt_state, losses.mean(), loss(params, val, y_std, c_std, w)

    def run_call(params, opt_state, key):
        params, opt_state, train_loss, val_loss = run_epoch(params, opt_state, key, data)
        return params, opt_state, {"train": train_loss, "val": val_loss}

    best_params, history = train_by_epochs(
        run_call, params, opt_state, jr.split(key_train, spec.max_epochs), label, spec.patience, "val nll"
    )
    return eqx.tree_at(lambda m: m.flow, model, eqx.combine(best_params, static)), history


def condition_jitter(spec: FlowSpec, model: DensityFlow) -> Float[Array, "3"] | None:
    """`spec.condition_noise_kpc` in the flow's standardized condition units; None for none (or no condition)."""
    if model.condition_kind != "position" or spec.condition_noise_kpc <= 0:
        return None
    return spec.condition_noise_kpc / model.cond_scale


def fit_flow_streamed(
    sample: FlowSample,
    spec: FlowSpec,
    seed: int,
    ball: tuple[Float[np.ndarray, "3"], float] | None = None,
    split_seed: int | None = None,
    label: str = "flow",
) -> tuple[DensityFlow, dict[str, list[float]]]:
    """`fit_flow` for a table read chunk by chunk: memory holds one chunk, never the table.

    A first pass takes the standardisation (float64 sums) and a validation set of at most one chunk's rows;
    each star is held out with probability `val_fraction` (a draw per chunk from `split_seed`). An epoch visits
    the chunks in a random order and steps through each chunk's training stars in random batches. Every chunk
    runs one compiled scan of equal length: a chunk with fewer batches pads the scan with steps that leave the
    parameters and the optimiser's state unchanged.
    """
    key_init, _, key_train = jr.split(jr.key(seed), 3)
    split = seed if split_seed is None else split_seed
    conditioned, weighted = sample.conditions is not None, sample.max_weight is not None
    model = flow_skeleton(**flow_hyperparameters(spec, conditioned, ball is not None), key=key_init)
    support = None
    if ball is not None:
        support = BallToSpace(jnp.asarray(ball[0], jnp.float32), jnp.asarray(ball[1], jnp.float32))
        model = eqx.tree_at(lambda m: m.support, model, support)
    if conditioned and model.frame is not None:
        model = framed_flow(model, spec, *_spread_rows(sample, FRAME_STARS))

    def chunk(i: int) -> tuple[Array, Array | None, np.ndarray | None, np.ndarray]:
        """(the flow's targets, its condition before standardisation, weights, held out) of chunk `i`."""
        y, c, w = sample.read(i)
        y = jnp.asarray(y, jnp.float32)
        if c is not None:
            c = jnp.asarray(c, jnp.float32)
            y = to_frame(model, y, c)
        if support is not None:
            y = jax.vmap(support.transform)(y)  # the flow sees z = g(x)
        held_out = np.random.default_rng([split, i]).random(len(y)) < spec.val_fraction
        return y, model.raw_condition(c), w, held_out

    sums = np.zeros((4, 3))  # Σy, Σy², Σc, Σc²
    n, weight_sum, n_train, val = len(sample), 0.0, [], []
    for i in range(sample.n_chunks):
        y, c, w, held_out = chunk(i)
        y64 = np.asarray(y, np.float64)
        sums[:2] += y64.sum(0), (y64**2).sum(0)
        if c is not None:
            c64 = np.asarray(c, np.float64)
            sums[2:] += c64.sum(0), (c64**2).sum(0)
        weight_sum += 0.0 if w is None else float(w.sum())
        n_train.append(int((~held_out).sum()))
        keep = np.flatnonzero(held_out)[: -(-sample.stars.rows * len(y) // n)]  # ≤ one chunk of validation rows
        val.append((y[keep], None if c is None else c[keep], None if w is None else w[keep]))
    mean, std = sums[::2] / n, np.sqrt(np.maximum(sums[1::2] / n - (sums[::2] / n) ** 2, 0))
    stats = [jnp.asarray(a, jnp.float32) for a in (mean[0], std[0], mean[1], std[1])]
    if not model.flow_sees_condition:
        stats[2:] = [model.cond_loc, model.cond_scale]
    model = eqx.tree_at(lambda m: (m.loc, m.scale, m.cond_loc, m.cond_scale), model, tuple(stats))
    w_mean = weight_sum / n if weighted else 1.0

    def standardise(y, c, w):
        return ((y - model.loc) / model.scale, model.standardised_condition(c),
                None if w is None else jnp.asarray(w / w_mean, jnp.float32))

    y_val, c_val, w_val = standardise(jnp.concatenate([v[0] for v in val]),
                                      jnp.concatenate([v[1] for v in val]) if model.flow_sees_condition else None,
                                      np.concatenate([v[2] for v in val]) if weighted else None)
    del val
    batch = min(spec.batch_size, sum(n_train))
    batches = [k // batch for k in n_train]
    steps, longest = sum(batches), max(batches)
    schedule = optax.cosine_decay_schedule(spec.learning_rate, spec.max_epochs * steps, alpha=0.05)
    optimizer = optax.adamw(schedule, weight_decay=spec.weight_decay) if spec.weight_decay else optax.adam(schedule)
    params, static = eqx.partition(model.flow, eqx.is_inexact_array, is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable))
    opt_state = optimizer.init(params)

    jitter = condition_jitter(spec, model)

    def loss(params, y, c, w, key=None):
        if key is not None and jitter is not None:
            c = c + jitter * jr.normal(key, c.shape)
        log_prob = paramax.unwrap(eqx.combine(params, static)).log_prob(y, c)
        return -jnp.mean(log_prob) if w is None else -jnp.sum(w * log_prob) / jnp.sum(w)

    @jax.jit
    def run_chunk(params, opt_state, y, c, w, active, keys):
        def step(carry, inputs):
            params, opt_state = carry
            y, c, w, on, key = inputs
            value, grads = jax.value_and_grad(loss)(params, y, c, w, key)
            updates, new_state = optimizer.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(on, a, b), new, old)  # noqa: E731
            return (keep(new_params, params), keep(new_state, opt_state)), jnp.where(on, value, 0.0)

        (params, opt_state), values = jax.lax.scan(step, (params, opt_state), (y, c, w, active, keys))
        return params, opt_state, values.sum()

    validation = jax.jit(loss)

    def padded(values, rows):
        return None if values is None else jnp.zeros((longest * batch, *values.shape[1:]), values.dtype).at[
            : len(rows)].set(values[rows]).reshape(longest, batch, *values.shape[1:])

    def run_call(params, opt_state, key):
        order_key, *chunk_keys = jr.split(key, sample.n_chunks + 1)
        total = 0.0
        for i in np.asarray(jr.permutation(order_key, sample.n_chunks)):
            if not batches[i]:
                continue
            y, c, w, held_out = chunk(int(i))
            y, c, w = standardise(y, c, w)
            train = jnp.asarray(np.flatnonzero(~held_out))
            rows = jr.permutation(chunk_keys[i], train)[: batches[i] * batch]
            active = jnp.arange(longest) < batches[i]
            params, opt_state, value = run_chunk(params, opt_state, padded(y, rows), padded(c, rows), padded(w, rows),
                                                 active, jr.split(jr.fold_in(chunk_keys[i], 1), longest))
            total += value
        return params, opt_state, {"train": total / steps, "val": validation(params, y_val, c_val, w_val)}

    best_params, history = train_by_epochs(
        run_call, params, opt_state, jr.split(key_train, spec.max_epochs), label, spec.patience, "val nll"
    )
    return eqx.tree_at(lambda m: m.flow, model, eqx.combine(best_params, static)), history


def _spread_rows(sample: FlowSample, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(targets, conditions, weights) of every k-th star of every chunk, at most about `limit` rows: stars from the
    whole table even when it is sorted by position."""
    step = -(-len(sample) // limit)
    parts = [tuple(None if a is None else a[::step] for a in sample.read(i)) for i in range(sample.n_chunks)]
    weights = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), weights
