"""Small geometric samplers shared by the mocks and the field stage."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float


def uniform_in_ball(
    rng: np.random.Generator, n: int, centre: Float[np.ndarray, "3"], radius: float
) -> Float[np.ndarray, "n 3"]:
    """`n` points uniform in the ball of `radius` around `centre`, shape `(n, 3)`."""
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return np.asarray(centre) + radius * rng.uniform(0, 1, (n, 1)) ** (1 / 3) * direction
