"""The affine-invariant ensemble sampler of emcee (Foreman-Mackey et al. 2013; the stretch move of Goodman &
Weare 2010), seeded and vectorised, behind the one function the gNFW fit calls."""

from __future__ import annotations

from collections.abc import Callable

import emcee
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

    `start`: initial walkers (an even number, at least 2·d, each with finite `log_prob`); `log_prob` is
    called on many walkers at once; `a`: the stretch scale. The same `seed` gives the same chain.
    """
    x = np.array(start, np.float64)
    n_walkers, d = x.shape
    if n_walkers % 2 or n_walkers < 2 * d:
        raise ValueError(f"`start` must hold an even number of walkers >= 2·d (={2 * d}); got {n_walkers}.")
    if not np.all(np.isfinite(log_prob(x))):
        raise ValueError("Every starting walker must have a finite log-probability.")
    sampler = emcee.EnsembleSampler(n_walkers, d, log_prob, vectorize=True, moves=emcee.moves.StretchMove(a=a))
    sampler.random_state = np.random.RandomState(seed).get_state()
    sampler.run_mcmc(x, n_steps, progress=False)
    return sampler.get_chain(), sampler.get_log_prob(), float(np.mean(sampler.acceptance_fraction))
