"""The stars each kind of ensemble member is fitted to: resampled, redrawn within errors, or in another frame."""

from __future__ import annotations

import dataclasses

import astropy.coordinates as coord
import astropy.units as u
import numpy as np
from jaxtyping import Float

from ..errors import RecipeError
from ..frames import galactocentric_frame, solar_position_kpc
from ..recipe import FrameErrorSpec, FrameSpec
from ..sources import PhaseSpaceTable

_KMS = u.km / u.s


def bootstrap_stars(stars: PhaseSpaceTable, seed: int) -> PhaseSpaceTable:
    """As many stars as `stars`, drawn with replacement (with their covariances and S where present)."""
    pick = np.random.default_rng(seed).integers(0, len(stars), len(stars))
    return _subset(stars, pick, {"member": "bootstrap", "member_seed": seed})


def require_errors(stars: PhaseSpaceTable) -> None:
    """Refuse `ensemble.noise` members for stars without measurement errors, naming where errors come from."""
    has_errors = stars.has_covariances if hasattr(stars, "has_covariances") else stars.covariances is not None
    if not has_errors:  # (a table in chunks, `sources.chunks.StarChunks`, says so itself)
        origin = stars.meta.get("path", f"`data.source: {stars.data_source}`")
        raise RecipeError(
            f"`ensemble.noise` members redraw each star within its measurement errors, but the stars of {origin} "
            "have none. Give the table its `_error` columns (x_error … vz_error for Galactocentric tables; "
            "parallax_error, pmra_error, pmdec_error, radial_velocity_error for Gaia-style ones), or set "
            "`ensemble.noise: 0` (use `bootstrap` members for the sampling noise)."
        )


def noisy_stars(stars: PhaseSpaceTable, seed: int) -> PhaseSpaceTable:
    """Each star redrawn from N(its phase-space point, its 6×6 covariance), then re-cut to the volume.

    Stars outside the volume that would scatter in are not in the table, so the redrawn sample is
    slightly thinner near the edge than the truth (by the share that scatters out).
    """
    require_errors(stars)
    rng = np.random.default_rng(seed)
    values, vectors = np.linalg.eigh(stars.covariances)  # robust where a covariance is (nearly) singular
    roots = vectors * np.sqrt(np.clip(values, 0, None))[:, None, :]
    kicks = np.einsum("nij,nj->ni", roots, rng.standard_normal((len(stars), 6)))
    drawn = np.hstack([stars.positions, stars.velocities]) + kicks
    moved = dataclasses.replace(stars, positions=drawn[:, :3], velocities=drawn[:, 3:])
    inside = np.flatnonzero(np.linalg.norm(moved.positions - stars.observer, axis=1) < stars.volume_radius_kpc)
    return _subset(moved, inside, {"member": "noise", "member_seed": seed, "n_scattered_out": len(stars) - len(inside)})


def perturbed_frame(nominal: FrameSpec, errors: FrameErrorSpec, seed: int) -> FrameSpec:
    """The solar parameters redrawn from independent Gaussians around `nominal` with 1σ `errors`."""
    rng = np.random.default_rng(seed)
    v_sun = np.asarray(nominal.galcen_v_sun_kms) + np.asarray(errors.galcen_v_sun_kms) * rng.standard_normal(3)
    return FrameSpec(
        galcen_distance_kpc=nominal.galcen_distance_kpc + errors.galcen_distance_kpc * rng.standard_normal(),
        z_sun_kpc=nominal.z_sun_kpc + errors.z_sun_kpc * rng.standard_normal(),
        galcen_v_sun_kms=tuple(float(c) for c in v_sun),
    )


def stars_in_frame(stars: PhaseSpaceTable, nominal: FrameSpec, member: FrameSpec) -> PhaseSpaceTable:
    """The same stars seen from another solar frame: nominal Galactocentric → ICRS → `member`'s Galactocentric.

    What the Sun observed is kept (positions and velocities relative to it), so the volume cut is unchanged.
    """
    positions, velocities = _transform(stars.positions, stars.velocities, nominal, member)
    meta = stars.meta | {"member": "frame", "frame": member.model_dump(mode="json")}
    return dataclasses.replace(stars, positions=positions, velocities=velocities,
                               observer=solar_position_kpc(member), meta=meta)


def _transform(
    x: Float[np.ndarray, "n 3"], v: Float[np.ndarray, "n 3"], nominal: FrameSpec, member: FrameSpec
) -> tuple[Float[np.ndarray, "n 3"], Float[np.ndarray, "n 3"]]:
    cartesian = coord.CartesianRepresentation(
        x.T * u.kpc, differentials=coord.CartesianDifferential(v.T * _KMS)
    )
    seen = coord.SkyCoord(cartesian, frame=galactocentric_frame(nominal)).transform_to(coord.ICRS())
    moved = seen.transform_to(galactocentric_frame(member))
    return moved.cartesian.xyz.to_value(u.kpc).T, moved.velocity.d_xyz.to_value(_KMS).T


def _subset(stars: PhaseSpaceTable, rows: np.ndarray, meta: dict) -> PhaseSpaceTable:
    return dataclasses.replace(
        stars,
        positions=stars.positions[rows],
        velocities=stars.velocities[rows],
        covariances=None if stars.covariances is None else stars.covariances[rows],
        selection=None if stars.selection is None else stars.selection[rows],
        meta=stars.meta | meta,
    )
