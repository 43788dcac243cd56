"""Baryonic mass models subtracted from the cube's density (ρ_DM = ρ − ρ_baryon), with parameter draws.

`BARYON_MODELS` maps a recipe's `cube.baryon_model` to a `BaryonModel`: named parameters with
nominal values, the baryons' density for any parameter vector, and (where the model has one) the
total potential. To add a model (e.g. the local model of McKee et al. 2015), subclass `BaryonModel`
and add an instance here and its name to `CubeSpec.baryon_model` in `recipe.py`.

Positions are Galactocentric Cartesian kpc, shape `(..., 3)`; densities are returned in M☉ pc⁻³,
potentials in km² s⁻² (zero at infinity). The component functions below work in M☉ kpc⁻³.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np
import scipy.special
from jaxtyping import Array, ArrayLike, Float

from .constants import G_KPC_KM2_S2_PER_MSUN as G
from .constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3


class BaryonModel(abc.ABC):
    """A baryonic mass model with named parameters; `nominal` holds the published values.

    Parameter vectors are arrays of shape `(p,)` in the order of `parameter_names`.
    """

    name: ClassVar[str]
    """Key in `BARYON_MODELS` and value of the recipe's `cube.baryon_model`."""
    title: ClassVar[str]
    """What the cube's `baryon_model` attribute says, before the parameter errors."""
    parameter_names: ClassVar[tuple[str, ...]]
    nominal: ClassVar[tuple[float, ...]]
    upper_bounds: ClassVar[dict[str, float]] = {}
    """Draws above these are clipped (keeps them physical)."""

    @abc.abstractmethod
    def density_baryon(
        self, xyz: Float[ArrayLike, "... 3"], params: Float[ArrayLike, " p"] | None = None
    ) -> Float[Array, "..."]:
        """Baryonic mass density (M☉ pc⁻³) at `xyz` (kpc, shape `(..., 3)`); `params` default: `nominal`."""

    def potential(
        self, xyz: Float[ArrayLike, "... 3"], params: Float[ArrayLike, " p"] | None = None
    ) -> Float[Array, "..."]:
        """Total potential Φ (km² s⁻²) of the model, where it has one."""
        raise NotImplementedError(f"baryon model `{self.name}` has no total potential")

    def draw_parameters(self, n: int, relative_error: float, seed: int) -> Float[np.ndarray, "n p"]:
        """`n` parameter vectors, each parameter independently log-normal about its nominal value.

        The log-normal has mean = nominal and standard deviation = `relative_error` × nominal, so draws
        stay positive (a Gaussian would give negative masses and scale lengths for large errors); values
        above `upper_bounds` are clipped. The same `seed` gives the same draws.
        """
        if relative_error < 0:
            raise ValueError(f"`relative_error` (={relative_error}) must be >= 0.")
        var = np.log1p(relative_error**2)
        normal = np.random.default_rng(seed).standard_normal((n, len(self.parameter_names)))
        draws = np.asarray(self.nominal) * np.exp(np.sqrt(var) * normal - var / 2)
        upper = np.array([self.upper_bounds.get(k, np.inf) for k in self.parameter_names])
        return np.minimum(draws, upper)

    def density_baryon_samples(
        self, xyz: Float[ArrayLike, "... 3"], n: int, seed: int, relative_error: float = 0.2
    ) -> Float[Array, "n ..."]:
        """ρ_baryon (M☉ pc⁻³) at `xyz` for `n` parameter draws (`draw_parameters`), shape `(n, ...)`."""
        draws = jnp.asarray(self.draw_parameters(n, relative_error, seed))
        return jax.vmap(lambda p: self.density_baryon(xyz, p))(draws)

    def describe(self, relative_error: float) -> str:
        """The cube's `baryon_model` attribute: the model and its parameter errors."""
        return f"{self.title}, {100 * relative_error:g}% parameter errors (log-normal, independent)"

    def _params(self, params: Float[ArrayLike, " p"] | None) -> Float[Array, " p"]:
        p = jnp.asarray(self.nominal if params is None else params)
        if p.shape != (len(self.parameter_names),):
            raise ValueError(f"Expected parameters of shape ({len(self.parameter_names)},); got {p.shape}.")
        return p


# MWPotential2014 (Bovy 2015, galpy) in galpy's natural units: ro = 8 kpc, vo = 220 km/s.
_RO_KPC, _VO_KMS = 8.0, 220.0
_BULGE_ALPHA, _BULGE_RC, _BULGE_NORMALIZE = 1.8, 1.9, 0.05
_DISK_A, _DISK_B, _DISK_NORMALIZE = 3.0, 0.28, 0.6
_HALO_A, _HALO_NORMALIZE = 16.0, 0.35


def _mass_for_normalize(normalize: float, force_per_gm: float) -> float:
    """Mass whose radial force at R = ro, z = 0 is `normalize` × vo²/ro, given that force per unit G·M (kpc⁻²)."""
    return normalize * _VO_KMS**2 / _RO_KPC / (G * force_per_gm)


def _nominal_mwpotential2014() -> tuple[float, ...]:
    s = 1.5 - _BULGE_ALPHA / 2
    bulge_force = scipy.special.gammainc(s, (_RO_KPC / _BULGE_RC) ** 2) / _RO_KPC**2
    disk_force = _RO_KPC / (_RO_KPC**2 + (_DISK_A + _DISK_B) ** 2) ** 1.5
    c = _RO_KPC / _HALO_A
    halo_force = (np.log1p(c) - c / (1 + c)) / _RO_KPC**2
    return (
        _mass_for_normalize(_BULGE_NORMALIZE, bulge_force), _BULGE_ALPHA, _BULGE_RC,
        _mass_for_normalize(_DISK_NORMALIZE, disk_force), _DISK_A, _DISK_B,
        _mass_for_normalize(_HALO_NORMALIZE, halo_force), _HALO_A,
    )  # fmt: skip


class MWPotential2014Model(BaryonModel):
    """galpy's MWPotential2014 (Bovy 2015): power-law bulge with cutoff, Miyamoto–Nagai disk, NFW halo.

    Baryons are the bulge and the disk; the halo enters only `potential` and `density_halo`.
    Published scaling ro = 8 kpc, vo = 220 km/s; each component's mass is set so that its radial
    force at R = ro, z = 0 is its `normalize` fraction (bulge 0.05, disk 0.6, halo 0.35) of vo²/ro.
    Parameters (all varied by draws):

    - `bulge_mass_msun` (total), `bulge_alpha` (inner slope, capped at 2.9 in draws: a finite
      central mass needs α < 3), `bulge_rc_kpc` (cutoff radius);
    - `disk_mass_msun`, `disk_a_kpc`, `disk_b_kpc` (Miyamoto–Nagai scale length and height);
    - `halo_mass_msun` (4π ρ_s a³), `halo_a_kpc` (NFW scale radius).
    """

    name = "mwpotential2014"
    title = "MWPotential2014 bulge+disk (Bovy 2015), ro=8 kpc, vo=220 km/s"
    parameter_names = (
        "bulge_mass_msun", "bulge_alpha", "bulge_rc_kpc", "disk_mass_msun", "disk_a_kpc", "disk_b_kpc",
        "halo_mass_msun", "halo_a_kpc",
    )  # fmt: skip
    nominal = _nominal_mwpotential2014()
    upper_bounds: ClassVar[dict[str, float]] = {"bulge_alpha": 2.9}

    def density_baryon(
        self, xyz: Float[ArrayLike, "... 3"], params: Float[ArrayLike, " p"] | None = None
    ) -> Float[Array, "..."]:
        """Bulge + disk density (M☉ pc⁻³)."""
        mb, alpha, rc, md, a, b, _, _ = self._params(params)
        r, R, z = _radii(xyz)
        rho = bulge_density(r, mb, alpha, rc) + miyamoto_nagai_density(R, z, md, a, b)
        return rho * MSUN_PER_KPC3_TO_MSUN_PER_PC3

    def density_halo(
        self, xyz: Float[ArrayLike, "... 3"], params: Float[ArrayLike, " p"] | None = None
    ) -> Float[Array, "..."]:
        """NFW halo density (M☉ pc⁻³)."""
        *_, mh, ah = self._params(params)
        return nfw_density(_radii(xyz)[0], mh, ah) * MSUN_PER_KPC3_TO_MSUN_PER_PC3

    def potential(
        self, xyz: Float[ArrayLike, "... 3"], params: Float[ArrayLike, " p"] | None = None
    ) -> Float[Array, "..."]:
        """Φ of bulge + disk + halo (km² s⁻²), zero at infinity."""
        mb, alpha, rc, md, a, b, mh, ah = self._params(params)
        r, R, z = _radii(xyz)
        return bulge_potential(r, mb, alpha, rc) + miyamoto_nagai_potential(R, z, md, a, b) + nfw_potential(r, mh, ah)


def _radii(xyz: Float[ArrayLike, "... 3"]) -> tuple[Float[Array, "..."], Float[Array, "..."], Float[Array, "..."]]:
    xyz = jnp.asarray(xyz)
    if xyz.shape[-1:] != (3,):
        raise ValueError(f"Expected positions of shape (..., 3); got {xyz.shape}.")
    R = jnp.hypot(xyz[..., 0], xyz[..., 1])
    return jnp.hypot(R, xyz[..., 2]), R, xyz[..., 2]


def bulge_density(r: Float[Array, "..."], mass: float, alpha: float, rc: float) -> Float[Array, "..."]:
    """ρ ∝ r^−α exp(−r²/rc²) with total mass `mass` (M☉ kpc⁻³)."""
    s = 1.5 - alpha / 2
    norm = mass / (2 * jnp.pi * rc ** (3 - alpha) * jnp.exp(jss.gammaln(s)))
    return norm * r**-alpha * jnp.exp(-((r / rc) ** 2))


def bulge_potential(r: Float[Array, "..."], mass: float, alpha: float, rc: float) -> Float[Array, "..."]:
    """Φ = −G M(<r)/r − 4πG ∫ᵣ^∞ ρ r′ dr′ of `bulge_density`, in closed form with incomplete gamma functions."""
    s, u = 1.5 - alpha / 2, (r / rc) ** 2
    inner = jss.gammainc(s, u) / r
    outer = _upper_gamma(1 - alpha / 2, u) / (rc * jnp.exp(jss.gammaln(s)))
    return -G * mass * (inner + outer)


def _upper_gamma(t: Float[Array, ""], x: Float[Array, "..."]) -> Float[Array, "..."]:
    """Γ(t, x) = ∫ₓ^∞ u^(t−1) e^(−u) du, not regularised, for −1 < t and x > 0 (t < 0 when α > 2)."""
    t_pos = jnp.where(t > 0, t, 1.0)  # safe arguments keep gradients of the unused branches finite
    t_neg = jnp.where(t < 0, t, -0.5)
    direct = jss.gammaincc(t_pos, x) * jnp.exp(jss.gammaln(t_pos))
    recurrence = (jss.gammaincc(t_neg + 1, x) * jnp.exp(jss.gammaln(t_neg + 1)) - x**t_neg * jnp.exp(-x)) / t_neg
    return jnp.where(t > 0, direct, jnp.where(t < 0, recurrence, _exp1(x)))


@jax.custom_jvp
def _exp1(x: Float[Array, "..."]) -> Float[Array, "..."]:
    """E₁(x) = Γ(0, x); jax's own `exp1` has no second derivative (needed for ∇²Φ)."""
    return jss.exp1(x)


@_exp1.defjvp
def _exp1_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x,), (dx,) = primals, tangents
    return _exp1(x), -jnp.exp(-x) / x * dx


def miyamoto_nagai_density(
    R: Float[Array, "..."], z: Float[Array, "..."], mass: float, a: float, b: float
) -> Float[Array, "..."]:
    """Miyamoto & Nagai (1975) disk density (M☉ kpc⁻³)."""
    zeta = jnp.sqrt(z**2 + b**2)
    numerator = a * R**2 + (a + 3 * zeta) * (a + zeta) ** 2
    return b**2 * mass / (4 * jnp.pi) * numerator / ((R**2 + (a + zeta) ** 2) ** 2.5 * zeta**3)


def miyamoto_nagai_potential(
    R: Float[Array, "..."], z: Float[Array, "..."], mass: float, a: float, b: float
) -> Float[Array, "..."]:
    """Φ = −GM / √(R² + (a + √(z² + b²))²)."""
    return -G * mass / jnp.sqrt(R**2 + (a + jnp.sqrt(z**2 + b**2)) ** 2)


def nfw_density(r: Float[Array, "..."], mass: float, a: float) -> Float[Array, "..."]:
    """NFW density ρ_s / ((r/a)(1 + r/a)²) with `mass` = 4π ρ_s a³ (M☉ kpc⁻³)."""
    x = r / a
    return mass / (4 * jnp.pi * a**3) / (x * (1 + x) ** 2)


def nfw_potential(r: Float[Array, "..."], mass: float, a: float) -> Float[Array, "..."]:
    """Φ = −G M ln(1 + r/a) / r."""
    return -G * mass * jnp.log1p(r / a) / r


MWPotential2014 = MWPotential2014Model()

BARYON_MODELS: dict[str, BaryonModel] = {MWPotential2014.name: MWPotential2014}
"""Baryon models by recipe name (`cube.baryon_model`); `none` in a recipe means no subtraction."""
