"""Physical constants, unit conversions and default solar parameters.

Internal units everywhere: kpc, km/s, M☉. Φ in km² s⁻², a in km² s⁻² kpc⁻¹.
"""

G_KPC_KM2_S2_PER_MSUN: float = 4.300917e-6
"""Newton's constant in kpc km² s⁻² M☉⁻¹."""

MSUN_PER_KPC3_TO_MSUN_PER_PC3: float = 1e-9
MSUN_PER_PC3_TO_GEV_PER_CM3: float = 37.97
KM2_S2_PER_KPC_TO_M_S2: float = 3.2408e-14

GALCEN_DISTANCE_KPC: float = 8.122
Z_SUN_KPC: float = 0.0208
GALCEN_V_SUN_KMS: tuple[float, float, float] = (12.9, 245.6, 7.78)

PLUMMER_MIN_ANISOTROPY_RADIUS: float = 0.75
"""Smallest Osipkov–Merritt r_a / b of a Plummer sphere whose f(Q) is nowhere negative (b²/r_a² ≤ 16/9)."""

CUBE_VERSION: str = "1"
"""`dpotcube_cube_version` written into every cube (../shared/CUBE_SPEC.md)."""
KMS_PER_KPC_TO_PER_GYR: float = 1.0227121650537077
"""1 km s⁻¹ kpc⁻¹ in Gyr⁻¹ (rates such as ∂ ln f/∂t)."""
