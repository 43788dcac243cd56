"""Physical constants, unit conversions and default solar parameters.

Internal units everywhere: kpc, km/s, M☉. Φ in km² s⁻², a in km² s⁻² kpc⁻¹. Constants come from
astropy.constants and astropy.units; where the cube contract (CUBE_SPEC.md, SCIENCE.md) states a value
to fewer digits, it is rounded to those digits so that every cube records the contract's number
(tests/test_constants.py checks both).
"""

import astropy.constants as _c
import astropy.units as _u


def _digits(value: float, significant: int) -> float:
    return float(f"{value:.{significant - 1}e}")


G_KPC_KM2_S2_PER_MSUN: float = _digits(_c.G.to_value(_u.kpc * _u.km**2 / _u.s**2 / _u.Msun), 7)
"""Newton's constant in kpc km² s⁻² M☉⁻¹: 4.300917e-6 (CUBE_SPEC v1)."""

MSUN_PER_KPC3_TO_MSUN_PER_PC3: float = (_u.Msun / _u.kpc**3).to(_u.Msun / _u.pc**3)
MSUN_PER_PC3_TO_GEV_PER_CM3: float = _digits((_u.Msun / _u.pc**3 * _c.c**2).to_value(_u.GeV / _u.cm**3), 4)
"""1 M☉ pc⁻³ = 37.97 GeV cm⁻³ (mass-energy density, c² ρ)."""
KM2_S2_PER_KPC_TO_M_S2: float = _digits((_u.km**2 / _u.s**2 / _u.kpc).to(_u.m / _u.s**2), 5)

GALCEN_DISTANCE_KPC: float = 8.122
Z_SUN_KPC: float = 0.0208
GALCEN_V_SUN_KMS: tuple[float, float, float] = (12.9, 245.6, 7.78)
SUN_POSITION_KPC: tuple[float, float, float] = (-GALCEN_DISTANCE_KPC, 0.0, Z_SUN_KPC)
"""The Sun in astropy's Galactocentric frame with the default parameters (x ≈ −R⊙, the small tilt neglected)."""

PLUMMER_MIN_ANISOTROPY_RADIUS: float = 0.75
"""Smallest Osipkov–Merritt r_a / b of a Plummer sphere whose f(Q) is nowhere negative (b²/r_a² ≤ 16/9)."""

CUBE_VERSION: str = "1"
"""`dpotcube_cube_version` written into every cube (../shared/CUBE_SPEC.md)."""
KMS_PER_KPC_TO_PER_GYR: float = (_u.km / _u.s / _u.kpc).to(1 / _u.Gyr)
"""1 km s⁻¹ kpc⁻¹ in Gyr⁻¹ (rates such as ∂ ln f/∂t)."""
