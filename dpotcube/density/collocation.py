"""Collocation points (x, v) with flow gradients of ln p (and ln n), computed once and stored with the build.

Memory: 12 float32 per point (x, v, ∇ₓ ln p, ∇ᵥ ln p) = 48 bytes, 60 with ∇ ln n; 10⁶ points
take 48–60 MB. Gradients are computed chunk by chunk, so peak memory beyond the stored arrays is
one chunk times the ensemble size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Float

from ..progress import progress_bar
from ..recipe import CollocationSpec
from ..sources import PhaseSpaceTable
from ..sources.chunks import StarChunks, star_positions
from .ensemble import FlowEnsemble


@dataclass(frozen=True)
class CollocationPoints:
    """Points at which the CBE is imposed, each array of shape `(n_points, 3)`."""

    x: Float[np.ndarray, "n 3"]
    v: Float[np.ndarray, "n 3"]
    grad_x_log_p: Float[np.ndarray, "n 3"]
    grad_v_log_p: Float[np.ndarray, "n 3"]
    grad_log_n: Float[np.ndarray, "n 3"] | None = None

    def __len__(self) -> int:
        return len(self.x)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp.npz")
        arrays = {name: value for name, value in vars(self).items() if value is not None}
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> CollocationPoints:
        with np.load(path) as data:
            return cls(**{name: data[name] for name in data.files})


def draw_collocation(
    velocity: FlowEnsemble,
    stars: Float[np.ndarray, "n 3"] | PhaseSpaceTable | StarChunks,
    spec: CollocationSpec,
    seed: int,
    position: FlowEnsemble | None = None,
    inner_ball: tuple[Float[np.ndarray, "3"], float] | None = None,
) -> CollocationPoints:
    """`n_positions` positions, each repeated with `velocities_per_position` draws from p(v|x).

    Positions are the positions of `stars` (`spec.positions == "stars"`; a table in chunks is read chunk by
    chunk, with the same draws) or draws from the n(x) ensemble, restricted to `inner_ball` (centre, radius)
    when given; ∇ ln n is stored when a position ensemble is given.
    """
    rng = np.random.default_rng(seed)
    key_positions, key_velocities = jr.split(jr.key(seed))
    if spec.positions == "flow":
        chosen = np.asarray(position.sample(key_positions, 2 * spec.n_positions if inner_ball else spec.n_positions))
        if inner_ball is not None:
            centre, radius = inner_ball
            chosen = chosen[np.linalg.norm(chosen - centre, axis=1) < radius]
        chosen = chosen[: spec.n_positions]
    else:
        chosen = star_positions(stars, spec.n_positions, rng, inner_ball)
    chosen = chosen.astype(np.float32)
    x = np.repeat(chosen, spec.velocities_per_position, axis=0)
    v, grad_x, grad_v = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    grad_n = None
    if position is not None:  # once per position, then repeated like the positions
        per_position = [position.grad_log_n(jnp.asarray(chosen[i : i + spec.chunk_size]))
                        for i in range(0, len(chosen), spec.chunk_size)]
        grad_n = np.repeat(np.concatenate(per_position), spec.velocities_per_position, axis=0)
    keys = jr.split(key_velocities, -(-len(x) // spec.chunk_size))
    with progress_bar() as bar:
        task = bar.add_task("collocation ∇ ln f", total=len(x), status=f"{len(velocity)} flow(s)")
        for key, start in zip(keys, range(0, len(x), spec.chunk_size)):
            stop = min(start + spec.chunk_size, len(x))
            x_chunk = jnp.asarray(x[start:stop])
            v_chunk = velocity.sample(key, stop - start, x_chunk)
            v[start:stop] = v_chunk
            grad_x[start:stop], grad_v[start:stop] = velocity.grad_log_p(x_chunk, v_chunk)
            bar.update(task, advance=stop - start)
    return CollocationPoints(x=x, v=v, grad_x_log_p=grad_x, grad_v_log_p=grad_v, grad_log_n=grad_n)
