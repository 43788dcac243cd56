"""The equilibrium residual ∂ ln f/∂t at the Sun (Lim et al. 2025, Fig. 9).

From the CBE, ∂ ln f/∂t = −v·∇ₓ ln f − a·∇ᵥ ln f, in km s⁻¹ kpc⁻¹ (an inverse time: ×1.0227 for
Gyr⁻¹). It is evaluated at the observer for `n_velocities` draws from p(v|x⊙), under each given
acceleration (the cube's ball-averaged a⊙, a user-given one, ...). A field in equilibrium with f
gives a distribution centred on zero; its width says how well one a closes the CBE for all v.
`relative_rms` = rms(∂ ln f/∂t) / rms(v·∇ₓ ln f) puts the width on the scale of the streaming term.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from ..constants import KMS_PER_KPC_TO_PER_GYR
from .gradients import GradientSource

PERCENTILES = (2.5, 16, 50, 84, 97.5)


def dlnf_dt_samples(
    source: GradientSource,
    position: Float[np.ndarray, "3"],
    accelerations: dict[str, Float[np.ndarray, "3"]],
    n_velocities: int = 1_000_000,
    seed: int = 0,
    chunk: int = 65_536,
) -> tuple[dict[str, Float[np.ndarray, " n"]], Float[np.ndarray, " n"]]:
    """∂ ln f/∂t (km s⁻¹ kpc⁻¹) for each named acceleration (km² s⁻² kpc⁻¹) at the same velocity draws,
    and the streaming term v·∇ₓ ln f at those draws."""
    position = np.asarray(position, np.float64)
    v = np.asarray(source.sample_velocities(position, n_velocities, seed), np.float64)
    grad_n = np.asarray(source.grad_log_n(np.asarray(position[None], np.float32)), np.float64)[0]  # one position
    streaming = np.empty(n_velocities)
    accel_terms = {name: np.empty(n_velocities) for name in accelerations}
    chunk = min(chunk, n_velocities)
    x = np.broadcast_to(position, (chunk, 3)).astype(np.float32)
    for start in range(0, n_velocities, chunk):
        stop = min(start + chunk, n_velocities)
        vc = np.zeros((chunk, 3), np.float32)  # every chunk the same shape: jitted gradients compile once
        vc[: stop - start] = v[start:stop]
        gx, gv = (np.asarray(g, np.float64)[: stop - start] for g in source.grad_log_p(x, vc))
        streaming[start:stop] = np.sum(v[start:stop] * (grad_n + gx), axis=1)
        for name, a in accelerations.items():
            accel_terms[name][start:stop] = gv @ np.asarray(a, np.float64)
    return {name: -streaming - term for name, term in accel_terms.items()}, streaming


def residual_at_sun(
    source: GradientSource,
    position: Float[np.ndarray, "3"],
    accelerations: dict[str, Float[np.ndarray, "3"]],
    n_velocities: int = 1_000_000,
    seed: int = 0,
) -> tuple[dict, dict[str, Float[np.ndarray, " n"]]]:
    """Summaries of ∂ ln f/∂t per acceleration (JSON-ready), and the samples themselves (for the histogram)."""
    samples, streaming = dlnf_dt_samples(source, position, accelerations, n_velocities, seed)
    scale = float(np.sqrt(np.mean(streaming**2)))
    summaries = {}
    for name, values in samples.items():
        finite = values[np.isfinite(values)]
        rms = float(np.sqrt(np.mean(finite**2)))
        summaries[name] = {
            "acceleration_kms2_per_kpc": np.asarray(accelerations[name], np.float64).tolist(),
            "mean": float(finite.mean()), "std": float(finite.std()), "rms": rms,
            "percentiles": {f"p{p:g}": float(v) for p, v in zip(PERCENTILES, np.percentile(finite, PERCENTILES))},
            "relative_rms": rms / scale if scale > 0 else None,
            "n_nonfinite": int(len(values) - len(finite)),
        }
    info = {
        "units": "km s-1 kpc-1", "to_per_Gyr": KMS_PER_KPC_TO_PER_GYR, "source": source.description,
        "position_kpc": np.asarray(position, np.float64).tolist(), "n_velocities": n_velocities,
        "streaming_rms": scale, "by_acceleration": summaries,
    }
    return info, samples
