"""The one block evaluator of the cube: per member and grid chunk, a model loaded once per worker, evaluated in
fixed-size padded batches, assembled lazily with `dask.array.map_blocks`."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import dask.array as da
import numpy as np
from jaxtyping import Float

from ..backend import default_platform
from .grid import Grid

BATCH = 1024
"""Points per call of a jitted kernel on a CPU: small enough to stay in cache, large enough to hide dispatch."""
ACCELERATOR_BATCH = 32_768
"""The most points per call on a GPU: in 1,024-point calls the H200 evaluated the cube no faster than its CPU
(0.94×), while the Laplacian alone ran 150× faster in 65,536-point calls (docs/benchmarks.md, device check)."""


def kernel_batch(n_points: int) -> int:
    """Points per kernel call for a block of `n_points`: `BATCH` on a CPU; elsewhere the power of two that holds
    the block, from `BATCH` to `ACCELERATOR_BATCH` (few shapes, so few compilations)."""
    if default_platform() == "cpu":
        return BATCH
    return min(max(BATCH, 1 << max(n_points - 1, 0).bit_length()), ACCELERATOR_BATCH)

_load_lock = threading.Lock()


def on_worker(load: Callable[..., Any], *key: Hashable) -> Any:
    """`load(*key)`, once per process: threads share the result, each distributed worker builds it once.

    `key` should carry what invalidates the result (e.g. a file's modification time).
    """
    with _load_lock:  # two threads missing the cache together would both load
        return _cached(load, *key)


@functools.lru_cache(maxsize=64)  # more than the members of any one cube: none is loaded twice
def _cached(load: Callable[..., Any], *key: Hashable) -> Any:
    return load(*key)


def in_padded_batches(
    compute: Callable[[Float[np.ndarray, "b 3"]], Float[np.ndarray, "f b"]],
    points: Float[np.ndarray, "n 3"],
    batch: int | None = None,
) -> Float[np.ndarray, "f n"]:
    """`compute` on `points` in calls of exactly `batch` points (the last padded; default `kernel_batch`), so one
    compilation serves every block shape."""
    n = len(points)
    batch = batch or kernel_batch(n)
    padded = np.concatenate([points, np.repeat(points[-1:], -n % batch, axis=0)]).astype(np.float32)
    parts = [np.asarray(compute(padded[i : i + batch])) for i in range(0, len(padded), batch)]
    return np.concatenate(parts, axis=-1)[..., :n]


def member_blocks(
    members: Sequence[Any],
    grid: Grid,
    n_fields: int,
    evaluate: Callable[[Any, Float[np.ndarray, "n 3"]], Float[np.ndarray, "f n"]],
) -> da.Array:
    """Lazy `(member, n_fields, nx, ny, nz)` float32: `evaluate(members[m], points)` on each grid chunk.

    One task per member and grid chunk.
    """
    if isinstance(members, (str, bytes)) or len(members) == 0:
        raise ValueError(f"`members` must be a non-empty sequence; got {members!r}.")

    def block(block_info=None) -> np.ndarray:
        info = block_info[None]
        points = grid.points(info["array-location"][2:])
        values = evaluate(members[info["chunk-location"][0]], points)
        return np.asarray(values, np.float32).reshape(info["chunk-shape"])

    chunks = ((1,) * len(members), (n_fields,), *grid.chunks)
    return da.map_blocks(block, chunks=chunks, dtype=np.float32, meta=np.empty((0,) * 5, np.float32))
