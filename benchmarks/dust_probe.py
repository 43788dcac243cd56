"""Time S(x) of the paper recipe's dusty mock on JAX's default backend (a GPU run's first check: XLA's
compilation of the dust's line integrals once stalled there).

    python -m benchmarks.dust_probe [POINTS]
"""

from __future__ import annotations

import sys
import time

import jax
import numpy as np

from dpotcube.recipe import load_recipe
from dpotcube.sources.load import observation_truth
from dpotcube.sources.selection import selection_of

from .report import REPO


def main(points: int = 1 << 20) -> None:
    recipe, _ = load_recipe(REPO / "recipes" / "paper-plummer.yaml", [])
    truth = observation_truth(recipe.data)
    x = np.asarray(truth.observer) + np.random.default_rng(0).uniform(-3, 3, (points, 3))
    started = time.perf_counter()
    selection_of(truth, x[: 1 << 16])  # one chunk's shape: the compilation
    compiled = time.perf_counter()
    s = selection_of(truth, x)
    done = time.perf_counter()
    print(f"[dust_probe] {jax.default_backend()}: compile {compiled - started:.1f} s, {points:,} points in "
          f"{done - compiled:.2f} s ({points / (done - compiled):,.0f} per s), median S {np.median(s):.3f}", flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
