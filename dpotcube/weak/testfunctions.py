"""Test functions w(x, v) = φ_a(x) h_m(v): position parts that vanish on the volume's edge, velocity parts in
u = (v − ⟨v⟩)/σ. Written for `jax.numpy` (and numpy) through `xp`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .basis import multi_indices, tensor_basis
from .spec import WeakSpec


@dataclass(frozen=True)
class TestFunctions:
    """What fixes the test functions: the ball, the position family and the velocity scaling."""

    observer: np.ndarray  # (3,) kpc
    radius_kpc: float
    kind: str  # "polynomial" | "bumps"
    degree: int
    centres: np.ndarray  # (C, 3) kpc, bump centres (empty for polynomials)
    bump_radius_kpc: float
    velocity_functions: tuple[str, ...]
    velocity_mean: np.ndarray  # (3,) km/s
    velocity_scale: float  # km/s

    @property
    def n_position(self) -> int:
        return len(self.centres) if self.kind == "bumps" else len(multi_indices(self.degree, True))

    @property
    def n_velocity(self) -> int:
        return sum(_N_VELOCITY[name] for name in self.velocity_functions)

    @property
    def size(self) -> int:
        return self.n_position * self.n_velocity


_N_VELOCITY = {"linear": 3, "quadratic": 6, "cubic": 3, "gaussian": 3}


def make_test_functions(spec: WeakSpec, observer: np.ndarray, radius_kpc: float, velocities: np.ndarray) -> TestFunctions:
    """Test functions for stars in the ball of `radius_kpc` around `observer`, scaled to the stars' `velocities`."""
    centres = np.zeros((0, 3))
    if spec.test_functions == "bumps":
        reach = radius_kpc - spec.bump_radius_kpc
        if reach < 0:
            raise ValueError(
                f"[recipe -> fields -> weak -> bump_radius_kpc] {spec.bump_radius_kpc} kpc is larger than the volume "
                f"radius {radius_kpc} kpc: no bump fits inside; lower it"
            )
        n = int(np.floor(reach / spec.bump_spacing_kpc + 1e-9))
        grid = spec.bump_spacing_kpc * np.arange(-n, n + 1)
        lattice = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
        centres = observer + lattice[np.linalg.norm(lattice, axis=1) <= reach + 1e-9]
    mean = velocities.mean(axis=0)
    scale = float(np.sqrt(np.mean((velocities - mean) ** 2)))
    return TestFunctions(
        observer=np.asarray(observer, np.float64), radius_kpc=float(radius_kpc), kind=spec.test_functions,
        degree=spec.test_degree, centres=centres, bump_radius_kpc=spec.bump_radius_kpc,
        velocity_functions=tuple(spec.velocity_functions), velocity_mean=mean, velocity_scale=scale,
    )


def position_parts(tf: TestFunctions, x: Any, xp: Any = np) -> tuple[Any, Any]:
    """φ_a(x) `(n, A)` and ∇φ_a `(n, 3, A)` per kpc, zero on and beyond the volume's edge."""
    if tf.kind == "polynomial":
        q, dq, _ = tensor_basis(x, tf.observer, tf.radius_kpc, tf.degree, True, xp)
        u = (x - tf.observer) / tf.radius_kpc
        taper = 1 - xp.sum(u**2, axis=1)  # (n,)
        inside = taper > 0
        values = xp.where(inside[:, None], q * taper[:, None], 0.0)
        grads = dq * taper[:, None, None] - q[:, None, :] * (2 * u / tf.radius_kpc)[:, :, None]
        return values, xp.where(inside[:, None, None], grads, 0.0)
    d = x[:, None, :] - tf.centres[None]  # (n, C, 3)
    r = xp.sqrt(xp.sum(d**2, axis=-1)) / tf.bump_radius_kpc
    s = xp.clip(1 - r, 0.0, None)
    values = s**4 * (4 * r + 1)
    grads = -20 * (s**3)[..., None] * d / tf.bump_radius_kpc**2  # ψ'(r) = −20 r (1 − r)³; ∇r = d / (|d| h)
    return values, xp.moveaxis(grads, 2, 1)


def velocity_parts(tf: TestFunctions, v: Any, xp: Any = np) -> tuple[Any, Any]:
    """h_m(v) `(n, M)` and ∇ᵥh_m `(n, 3, M)` per km/s, for the spec's velocity functions in order."""
    u = (v - tf.velocity_mean) / tf.velocity_scale
    eye = xp.eye(3, dtype=u.dtype)
    values, grads = [], []
    for name in tf.velocity_functions:
        if name == "linear":
            values.append(u)
            grads.append(xp.broadcast_to(eye, (u.shape[0], 3, 3)))
        elif name == "gaussian":
            g = xp.exp(-0.5 * xp.sum(u**2, axis=1))[:, None]
            values.append(u * g)
            # ∂(u_m e^{−|u|²/2})/∂u_j = e^{−|u|²/2} (δ_jm − u_j u_m)
            grads.append(g[:, :, None] * (eye[None] - u[:, :, None] * u[:, None, :]))
        elif name == "cubic":
            u2 = xp.sum(u**2, axis=1)
            values.append(u * u2[:, None])
            # ∂(u_m |u|²)/∂u_j = δ_jm |u|² + 2 u_m u_j  -> (n, j, m)
            grads.append(eye[None] * u2[:, None, None] + 2 * u[:, :, None] * u[:, None, :])
        else:  # quadratic: u_j u_k, j ≤ k
            pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
            values.append(xp.stack([u[:, j] * u[:, k] for j, k in pairs], axis=1))
            cols = []
            for j, k in pairs:
                cols.append(eye[j][None, :] * u[:, k][:, None] + eye[k][None, :] * u[:, j][:, None])  # (n, 3)
            grads.append(xp.stack(cols, axis=2))
    return xp.concatenate(values, axis=1), xp.concatenate(grads, axis=2) / tf.velocity_scale
