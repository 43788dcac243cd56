"""Kernel-smoothed mass density from the divergence of the pointwise acceleration: 4πG (ρ∗K) = −(∇·a)∗K."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from ..constants import G_KPC_KM2_S2_PER_MSUN, MSUN_PER_KPC3_TO_MSUN_PER_PC3
from .batch import AccelerationModel, divergences, in_batches
from .kernel import in_volume, kernel_average


def smoothed_density(
    model: AccelerationModel,
    centres: Float[np.ndarray, "n 3"],
    offsets: Float[np.ndarray, "k 3"],
    observer: Float[np.ndarray, "3"],
    volume_radius_kpc: float,
    batch: int,
) -> Float[np.ndarray, " n"]:
    """(ρ∗K) in M☉ pc⁻³ at `centres`, from ∇·a at `centres + offsets` (`kernel_offsets`, distributed as K).

    ∇·a is evaluated only at kernel points inside the tracer volume, and the kernel is renormalised
    over them (to the centre alone when every kernel point falls outside); a centre outside the volume
    gets NaN (no data there).
    """
    points = (centres[:, None, :] + offsets[None]).reshape(-1, 3)
    centre_inside = in_volume(centres, observer, volume_radius_kpc)
    inside = in_volume(points, observer, volume_radius_kpc) & np.repeat(centre_inside, len(offsets))  # centres outside are NaN: skip their kernels
    div = np.zeros(len(points), np.float32)
    div[inside] = in_batches(divergences, model, points[inside], batch)
    mean_div = kernel_average(div.reshape(len(centres), -1), inside.reshape(len(centres), -1))
    bare = centre_inside & ~inside.reshape(len(centres), -1).any(axis=1)  # every kernel point outside: few of them
    if bare.any():  # at the very edge; the kernel shrinks to its centre, so a cube is finite inside the volume
        mean_div[bare] = in_batches(divergences, model, centres[bare], batch)
    rho = -mean_div / (4 * np.pi * G_KPC_KM2_S2_PER_MSUN) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
    return np.where(centre_inside, rho, np.nan).astype(np.float32)
