"""A small, seeded affine-invariant ensemble sampler (the stretch move of Goodman & Weare 2010) in numpy.

Walkers are split in two halves; each walker of one half proposes y = x_j + z (x_k − x_j) towards a
random walker x_j of the other half, with z drawn from g(z) ∝ 1/√z on [1/a, a], and accepts with
probability min(1, z^{d−1} p(y)/p(x_k)). `log_prob` is evaluated on all walkers of a half at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from jaxtyping import Float


def sample_stretch(
    log_prob: Callable[[Float[np.ndarray, "w d"]], Float[np.ndarray, " w"]],
    start: Float[np.ndarray, "w d"],
    n_steps: int,
    seed: int = 0,
    a: float = 2.0,
) -> tuple[Float[np.ndarray, "s w d"], Float[np.ndarray, "s w"], float]:
    """Chain of shape `(n_steps, walkers, d)`, its log-probabilities, and the mean acceptance fraction.

    `start`: initial walkers (an even number, at least 2·d, each with finite `log_prob`).
    """
    rng = np.random.default_rng(seed)
    x = np.array(start, np.float64)
    n_walkers, d = x.shape
    if n_walkers % 2 or n_walkers < 2 * d:
        raise ValueError(f"`start` must hold an even number of walkers >= 2·d (={2 * d}); got {n_walkers}.")
    lp = log_prob(x)
    if not np.all(np.isfinite(lp)):
        raise ValueError("Every starting walker must have a finite log-probability.")
    halves = (np.arange(n_walkers // 2), np.arange(n_walkers // 2, n_walkers))
    chain, lps = np.empty((n_steps, n_walkers, d)), np.empty((n_steps, n_walkers))
    accepted = 0
    for step in range(n_steps):
        for active, other in (halves, halves[::-1]):
            z = ((a - 1) * rng.uniform(size=len(active)) + 1) ** 2 / a
            partners = x[rng.choice(other, len(active))]
            proposal = partners + z[:, None] * (x[active] - partners)
            lp_new = log_prob(proposal)
            log_ratio = (d - 1) * np.log(z) + lp_new - lp[active]
            accept = np.log(rng.uniform(size=len(active))) < log_ratio
            x[active[accept]], lp[active[accept]] = proposal[accept], lp_new[accept]
            accepted += int(accept.sum())
        chain[step], lps[step] = x, lp
    return chain, lps, accepted / (n_steps * n_walkers)
