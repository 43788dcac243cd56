"""Gaia astrometry ↔ Galactocentric phase space with astropy, and its error propagation.

Observables, in this order and these units: ra, dec (deg), parallax (mas), pmra = μ_α* and pmdec (mas/yr),
radial_velocity (km/s). Distances are d = 1/parallax. Covariances of the observables use the local tangent
offsets (α*, δ) in mas for the first two axes, as Gaia's `ra_error` and `dec_error` do.
"""

from __future__ import annotations

import astropy.coordinates as coord
import astropy.units as u
import numpy as np
from jaxtyping import Float

from ..frames import galactocentric_frame
from ..recipe import FrameSpec

OBSERVABLES = ("ra", "dec", "parallax", "pmra", "pmdec", "radial_velocity")
ERRORS = tuple(f"{name}_error" for name in OBSERVABLES)
CORRELATIONS = {  # (i, j) in OBSERVABLES order → Gaia column name; radial_velocity has none
    (i, j): f"{OBSERVABLES[i]}_{OBSERVABLES[j]}_corr" for i in range(5) for j in range(i + 1, 5)
}
PHASE_SPACE = ("x", "y", "z", "vx", "vy", "vz")
_MAS_PER_DEG = 3.6e6
_CHUNK = 200_000


def to_galactocentric(
    astrometry: Float[np.ndarray, "n 6"], frame: FrameSpec
) -> tuple[Float[np.ndarray, "n 3"], Float[np.ndarray, "n 3"]]:
    """Positions (kpc) and velocities (km/s) in the recipe's Galactocentric frame; parallaxes must be > 0."""
    ra, dec, parallax, pmra, pmdec, rv = astrometry.T
    icrs = coord.ICRS(
        ra=ra * u.deg,
        dec=dec * u.deg,
        distance=(1.0 / parallax) * u.kpc,
        pm_ra_cosdec=pmra * (u.mas / u.yr),
        pm_dec=pmdec * (u.mas / u.yr),
        radial_velocity=rv * (u.km / u.s),
    )
    gc = icrs.transform_to(galactocentric_frame(frame))
    positions = gc.cartesian.xyz.to_value(u.kpc).T
    velocities = gc.velocity.d_xyz.to_value(u.km / u.s).T
    return np.ascontiguousarray(positions), np.ascontiguousarray(velocities)


def from_galactocentric(
    positions: Float[np.ndarray, "n 3"], velocities: Float[np.ndarray, "n 3"], frame: FrameSpec
) -> Float[np.ndarray, "n 6"]:
    """The inverse of `to_galactocentric`: ra, dec, parallax, pmra, pmdec, radial_velocity (for mocks)."""
    gc = coord.SkyCoord(
        x=positions[:, 0] * u.kpc,
        y=positions[:, 1] * u.kpc,
        z=positions[:, 2] * u.kpc,
        v_x=velocities[:, 0] * (u.km / u.s),
        v_y=velocities[:, 1] * (u.km / u.s),
        v_z=velocities[:, 2] * (u.km / u.s),
        frame=galactocentric_frame(frame),
    )
    icrs = gc.transform_to(coord.ICRS())
    return np.column_stack(
        [
            icrs.ra.to_value(u.deg),
            icrs.dec.to_value(u.deg),
            1.0 / icrs.distance.to_value(u.kpc),
            icrs.pm_ra_cosdec.to_value(u.mas / u.yr),
            icrs.pm_dec.to_value(u.mas / u.yr),
            icrs.radial_velocity.to_value(u.km / u.s),
        ]
    )


def observable_covariance(
    errors: Float[np.ndarray, "n 6"], correlations: dict[tuple[int, int], np.ndarray] | None = None
) -> Float[np.ndarray, "n 6 6"]:
    """Per-star covariance of the observables from Gaia's errors and correlation coefficients.

    `errors` are σ of (α* mas, δ mas, ϖ mas, μ_α* mas/yr, μ_δ mas/yr, v_r km/s); `correlations` maps index
    pairs `(i, j)`, i < j, to arrays of shape `(n,)` (missing pairs are uncorrelated).
    """
    errors = np.asarray(errors, np.float64)
    corr = np.broadcast_to(np.eye(6), (len(errors), 6, 6)).copy()
    for (i, j), rho in (correlations or {}).items():
        corr[:, i, j] = corr[:, j, i] = rho
    return errors[:, :, None] * corr * errors[:, None, :]


def galactocentric_covariance(
    astrometry: Float[np.ndarray, "n 6"], obs_covariance: Float[np.ndarray, "n 6 6"], frame: FrameSpec
) -> Float[np.ndarray, "n 6 6"]:
    """Linearised covariance of (x, y, z, vx, vy, vz) in kpc and km/s: J C Jᵀ.

    The Jacobian J comes from central finite differences of the astropy transform, with steps of 1% of
    each star's own error, at least 1 mas in angle, 1e-4 ϖ in parallax and 0.01 in proper motion and v_r.
    """
    out = np.empty((len(astrometry), 6, 6))
    for start in range(0, len(astrometry), _CHUNK):
        block = slice(start, start + _CHUNK)
        jac = jacobian(astrometry[block], np.sqrt(np.diagonal(obs_covariance[block], axis1=1, axis2=2)), frame)
        cov = jac @ obs_covariance[block] @ np.swapaxes(jac, 1, 2)
        out[block] = 0.5 * (cov + np.swapaxes(cov, 1, 2))  # exactly symmetric
    return out


def jacobian(
    astrometry: Float[np.ndarray, "n 6"], sigma: Float[np.ndarray, "n 6"], frame: FrameSpec
) -> Float[np.ndarray, "n 6 6"]:
    """∂(x, y, z, vx, vy, vz)/∂(α* mas, δ mas, ϖ mas, μ_α*, μ_δ, v_r) per star, by central differences."""
    floor = np.column_stack([np.ones(len(astrometry)), np.ones(len(astrometry)), 1e-4 * astrometry[:, 2]])
    floor = np.hstack([floor, np.full((len(astrometry), 3), 1e-2)])
    steps = np.maximum(1e-2 * np.nan_to_num(sigma), floor)
    steps[:, 2] = np.minimum(steps[:, 2], 1e-2 * astrometry[:, 2])  # keep ϖ − h > 0, nearly linear
    jac = np.empty((len(astrometry), 6, 6))
    for k in range(6):
        delta = np.zeros_like(astrometry)
        delta[:, k] = steps[:, k]
        if k == 0:
            delta[:, 0] /= _MAS_PER_DEG * np.cos(np.deg2rad(astrometry[:, 1]))
        elif k == 1:
            delta[:, 1] /= _MAS_PER_DEG
        plus = np.hstack(to_galactocentric(astrometry + delta, frame))
        minus = np.hstack(to_galactocentric(astrometry - delta, frame))
        jac[:, :, k] = (plus - minus) / (2 * steps[:, k, None])
    return jac


def pack_covariance(cov: Float[np.ndarray, "n 6 6"]) -> dict[str, np.ndarray]:
    """The 21 independent entries as columns `cov_<a>_<b>` (a ≤ b in x, y, z, vx, vy, vz order)."""
    return {f"cov_{PHASE_SPACE[i]}_{PHASE_SPACE[j]}": cov[:, i, j] for i in range(6) for j in range(i, 6)}


def unpack_covariance(columns: dict[str, np.ndarray]) -> Float[np.ndarray, "n 6 6"]:
    """Inverse of `pack_covariance`."""
    n = len(next(iter(columns.values())))
    cov = np.empty((n, 6, 6))
    for i in range(6):
        for j in range(i, 6):
            cov[:, i, j] = cov[:, j, i] = columns[f"cov_{PHASE_SPACE[i]}_{PHASE_SPACE[j]}"]
    return cov
