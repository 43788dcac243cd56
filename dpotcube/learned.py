"""The learned Φ of a published entry as a function of position, exact inside the volume, with a smooth
extension outside it so that orbits never meet NaN.

Φ(x) = w(s) Φ_net(x) + (1 − w(s)) Φ_ext(x),  s = |x − observer| / volume_radius,
w = 1 for s ≤ 1 (the network, exactly: region 0), w = 0 for s ≥ 1 + `BLEND_WIDTH` (the extension
only: region 2), and the quintic smootherstep in between (region 1), so Φ, ∇Φ and ∇²Φ are continuous
everywhere. Φ_ext(x) = −G M / √(|x|² + b²) + C is a Plummer sphere about the Galactic centre whose
M, b and C are fitted by least squares to the network's Φ and a at `EXTENSION_POINTS` points
uniform in the volume: a monopole extension, right for the Plummer mock and a rough continuation for
the Milky Way (docs/released.md). Φ is one smooth function, so its orbits conserve energy.

`Φ_net` is the published network (or, for `weak` cubes, the published Legendre/reference expansion, exact in
float64) minus its value at `potential_reference_point` (as in the cube).
Evaluation runs in float64 (the float32 weights are widened), so orbit integrators see a smooth Φ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from scipy.optimize import least_squares

from .constants import G_KPC_KM2_S2_PER_MSUN, MSUN_PER_KPC3_TO_MSUN_PER_PC3
from .errors import DataError
from .fields.model import load_fields
from .fields.nets import ScalarField
from .published import fields_location, member_file, read_spec
from .weak.model import KIND as WEAK_KIND
from .weak.model import load_weak

BLEND_WIDTH = 0.25
"""Width of the blending shell in units of the volume radius: s in (1, 1.25)."""

EXTENSION_POINTS = 2048
"""Points (uniform in the volume, fixed seed 0) at which the extension is fitted to the network."""

REGIONS = {0: "inside the volume: the network", 1: "blending shell", 2: "outside: the fitted extension"}


@dataclass(frozen=True)
class PlummerExtension:
    """Φ_ext(x) = −G M / √(|x|² + b²) + C (km² s⁻²), x in kpc about the Galactic centre."""

    mass_msun: float
    scale_radius_kpc: float
    offset_km2_s2: float

    def __call__(self, x: Float[Array, "3"]) -> Float[Array, ""]:
        r2 = jnp.sum(x * x, axis=-1)
        return -G_KPC_KM2_S2_PER_MSUN * self.mass_msun / jnp.sqrt(r2 + self.scale_radius_kpc**2) + self.offset_km2_s2


class LearnedPotential:
    """Φ(x) of one member of a published entry; positions in kpc (astropy's Galactocentric frame).

    Calling it is a pure JAX function of one position `x` of shape `(3,)` (or `(..., 3)`), so
    `jax.grad(pot)` and `jax.hessian(pot)` work; `potential`, `acceleration`, `density` and `region`
    take NumPy arrays of shape `(n, 3)` (or `(3,)`) and evaluate in float64.
    """

    def __init__(self, network: ScalarField, reference: np.ndarray, observer: np.ndarray, radius: float,
                 spec: dict | None = None, member: int = 0):
        self.network = network
        self.reference = np.asarray(reference, np.float64)
        self.observer = np.asarray(observer, np.float64)
        self.radius = float(radius)
        self.spec = spec or {}
        self.member = member
        with jax.enable_x64(True):
            self._net64 = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, network)
            self.extension = _fit_extension(self._net64, self.reference, self.observer, self.radius)

    # ---- pure JAX (traceable) -------------------------------------------------------------------------
    def __call__(self, x: Float[Array, "... 3"]) -> Float[Array, "..."]:
        """Φ(x) in km² s⁻²: the network inside the volume, blended into the extension outside."""
        return jnp.vectorize(lambda p: self._phi(self.network, p), signature="(3)->()")(x)

    def _phi(self, net: ScalarField, x: Float[Array, "3"]) -> Float[Array, ""]:
        o = jnp.asarray(self.observer, x.dtype)
        d = x - o
        dist = jnp.sqrt(jnp.sum(d * d) + 1e-30)
        s = dist / self.radius
        t = jnp.clip((s - 1.0) / BLEND_WIDTH, 0.0, 1.0)
        w = 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t**2)
        inner = o + d * jnp.minimum(1.0, (1.0 + BLEND_WIDTH) * self.radius / dist)  # the network never far out
        phi_net = net(inner) - net(jnp.asarray(self.reference, x.dtype))
        return w * phi_net + (1.0 - w) * self.extension(x)

    # ---- NumPy in, NumPy out, float64 -------------------------------------------------------------------
    def potential(self, x: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, " n"]:
        """Φ in km² s⁻²."""
        return self._evaluate(x)[0]

    def acceleration(self, x: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, "n 3"]:
        """a = −∇Φ in km² s⁻² kpc⁻¹."""
        return -self._evaluate(x)[1]

    def density(self, x: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, " n"]:
        """ρ = ∇²Φ / (4πG) in M☉ pc⁻³ (of the blend in region 1, of the extension in region 2)."""
        lap = self._evaluate(x, laplacian=True)[2]
        return lap / (4 * np.pi * G_KPC_KM2_S2_PER_MSUN) * MSUN_PER_KPC3_TO_MSUN_PER_PC3

    def evaluate(self, x: Float[np.ndarray, "n 3"]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Φ, ∇Φ, ∇²Φ) at once, shapes `(n,)`, `(n, 3)`, `(n,)`."""
        return self._evaluate(x, laplacian=True)

    def region(self, x: Float[np.ndarray, "n 3"]) -> np.ndarray:
        """0 inside the volume (the network exactly), 1 in the blending shell, 2 outside (the extension)."""
        s = np.linalg.norm(np.asarray(x, np.float64) - self.observer, axis=-1) / self.radius
        return np.where(s <= 1.0, 0, np.where(s < 1.0 + BLEND_WIDTH, 1, 2)).astype(np.int8)

    def _evaluate(self, x, laplacian: bool = False):
        x = np.asarray(x, np.float64)
        single = x.ndim == 1
        points = x.reshape(-1, 3)
        with jax.enable_x64(True):
            phi, grad, lap = (np.asarray(a) for a in _value_grad_lap(self, self._net64, jnp.asarray(points), laplacian))
        if single:
            return phi[0], grad[0], lap[0]
        return phi, grad, lap


@eqx.filter_jit
def _value_grad_lap(pot: LearnedPotential, net: ScalarField, x: Float[Array, "n 3"], laplacian: bool):
    def phi(p):
        return pot._phi(net, p)

    value, grad = jax.vmap(jax.value_and_grad(phi))(x)
    lap = jax.vmap(lambda p: jnp.trace(jax.hessian(phi)(p)))(x) if laplacian else jnp.zeros(len(x))
    return value, grad, lap


def _fit_extension(net: ScalarField, reference: np.ndarray, observer: np.ndarray, radius: float) -> PlummerExtension:
    rng = np.random.default_rng(0)
    d = rng.normal(size=(EXTENSION_POINTS, 3))
    d *= (radius * rng.uniform(size=(EXTENSION_POINTS, 1)) ** (1 / 3)) / np.linalg.norm(d, axis=1, keepdims=True)
    x = jnp.asarray(observer + d)

    def phi(p):
        return net(p) - net(jnp.asarray(reference))

    values, grads = (np.asarray(a, np.float64) for a in jax.jit(jax.vmap(jax.value_and_grad(phi)))(x))
    x = np.asarray(x)
    r2 = np.sum(x * x, axis=1)
    scale_phi = np.std(values) + 1e-12
    scale_a = np.sqrt(np.mean(grads**2)) + 1e-12
    g = G_KPC_KM2_S2_PER_MSUN

    def residuals(params):
        log_m, log_b, c = params
        m, b = np.exp(log_m), np.exp(log_b)
        s = np.sqrt(r2 + b * b)
        model_phi = -g * m / s + c
        model_grad = g * m * x / s[:, None] ** 3
        return np.concatenate([(model_phi - values) / scale_phi, ((model_grad - grads) / scale_a).ravel()])

    r_mean = float(np.sqrt(np.mean(r2)))
    m0 = max(float(np.mean(np.sum(grads * x, axis=1) / np.sqrt(r2)) * r_mean**2 / g), 1.0)
    c0 = float(np.mean(values + g * m0 / np.sqrt(r2 + 1.0)))
    fit = least_squares(residuals, [np.log(m0), 0.0, c0], x_scale=[1.0, 1.0, scale_phi])
    log_m, log_b, c = fit.x
    return PlummerExtension(float(np.exp(log_m)), float(np.exp(log_b)), float(c))


def potential(entry, member: int = 0, catalog: str | Path = "catalog/catalog.yaml") -> LearnedPotential:
    """The learned Φ of member `member` of a published entry (name, store path or URL, Dataset, or the
    `<entry>.fields` folder itself), exact inside the volume (`LearnedPotential`)."""
    import xarray as xr

    from .catalog import open_cube

    if isinstance(entry, (str, Path)) and str(entry).rstrip("/").endswith(".fields"):
        location = str(entry).rstrip("/")
    else:
        ds = entry if isinstance(entry, xr.Dataset) else open_cube(entry, catalog=catalog)
        if "potential" not in ds.data_vars:
            raise DataError(
                f"This cube (method `{ds.attrs.get('method', '?')}`) has no `potential`: its method has no model of Φ "
                "(e.g. `pointwise`, which solves a at each grid point), so no Φ is published. Use the cube "
                "(`dpotcube.query`), or build with a method that fits Φ (`conditional`, `vanilla`, `selection`, "
                "`weak`)."
            )
        location = fields_location(ds)
    spec = read_spec(location)
    path = member_file(location, spec, member)
    network = load_weak(path) if spec.get("model_kind") == WEAK_KIND else load_fields(path).potential
    return LearnedPotential(network, spec["potential_reference_point"], spec["observer_position_kpc"],
                            spec["volume_radius_kpc"], spec, member)
