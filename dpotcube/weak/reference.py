"""Global potential shapes about the Galactic centre (the frame's origin): the weak fit's reference part.

A galaxy's Φ over a few kpc is dominated by smooth, centrally concentrated mass. A handful of such shapes
carries most of Φ with few unknowns (so ρ = ∇²Φ/4πG is far less noisy than from a local polynomial
alone); the Legendre expansion on the observer's ball stays as a correction whose prior strength the
evidence picks. Per scale s (kpc), dimensionless (coefficients are then in km² s⁻²), u = r² + s²:

- `spherical`: the monopole K₀ = −s/√u (a Plummer sphere's shape of scale s);
- `axisymmetric`: K₀ and the quadrupole about z, K₂ = s³ Y/u^{5/2}, Y = z² − (x² + y²)/2.

Gradients and Laplacians are exact: ∇²K₀ = 3s³/u^{5/2}, ∇²K₂ = −35 s⁵ Y/u^{9/2}. Written once for numpy
and jax.numpy (`xp`).
"""

from __future__ import annotations

from typing import Any

from .basis import tensor_basis

REFERENCE_KINDS = ("none", "spherical", "axisymmetric")


def n_reference(kind: str, scales: tuple[float, ...]) -> int:
    """How many reference shapes `kind` has at these scales."""
    return {"none": 0, "spherical": 1, "axisymmetric": 2}[kind] * len(scales)


def reference_basis(x: Any, kind: str, scales: tuple[float, ...], xp: Any) -> tuple[Any, Any, Any]:
    """Values `(n, R)`, gradients `(n, 3, R)` per kpc and Laplacians `(n, R)` per kpc² at positions `x` `(n, 3)`
    in kpc, Galactocentric (the Galactic centre at the origin). Columns: monopoles by scale, then quadrupoles."""
    if kind == "none":
        return xp.zeros((x.shape[0], 0)), xp.zeros((x.shape[0], 3, 0)), xp.zeros((x.shape[0], 0))
    r2 = xp.sum(x**2, axis=1)[:, None]  # (n, 1)
    s = xp.asarray(scales, dtype=x.dtype)[None, :]  # (1, S)
    u = r2 + s**2
    values = [-s / xp.sqrt(u)]
    grads = [x[:, :, None] * (s / u**1.5)[:, None, :]]
    laps = [3 * s**3 / u**2.5]
    if kind == "axisymmetric":
        y = (x[:, 2] ** 2 - 0.5 * (x[:, 0] ** 2 + x[:, 1] ** 2))[:, None]  # (n, 1)
        grad_y = xp.stack([-x[:, 0], -x[:, 1], 2 * x[:, 2]], axis=1)[:, :, None]  # (n, 3, 1)
        values.append(s**3 * y / u**2.5)
        grads.append(s[:, None, :] ** 3 * (grad_y / u[:, None, :] ** 2.5 - 5 * y[:, None, :] * x[:, :, None] / u[:, None, :] ** 3.5))
        laps.append(-35 * s**5 * y / u**4.5)
    return xp.concatenate(values, axis=1), xp.concatenate(grads, axis=2), xp.concatenate(laps, axis=1)


def potential_basis(
    x: Any, observer: Any, radius: float, degree: int, kind: str, scales: tuple[float, ...], xp: Any
) -> tuple[Any, Any, Any]:
    """Φ's whole basis: the reference shapes, then the Legendre products on the observer's ball (no constant);
    values `(n, R + P)`, gradients `(n, 3, R + P)`, Laplacians `(n, R + P)`."""
    ref = reference_basis(x, kind, scales, xp)
    leg = tensor_basis(x, observer, radius, degree, False, xp)
    return tuple(xp.concatenate([a, b], axis=-1) for a, b in zip(ref, leg, strict=True))
