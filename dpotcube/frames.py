"""Astropy's Galactocentric frame, built from the recipe's solar parameters."""

from __future__ import annotations

import astropy.coordinates as coord
import astropy.units as u
import numpy as np

from .recipe import FrameSpec


def galactocentric_frame(frame: FrameSpec) -> coord.Galactocentric:
    """astropy's `Galactocentric` frame with the recipe's solar position and velocity."""
    return coord.Galactocentric(
        galcen_distance=frame.galcen_distance_kpc * u.kpc,
        z_sun=frame.z_sun_kpc * u.kpc,
        galcen_v_sun=coord.CartesianDifferential(list(frame.galcen_v_sun_kms) * (u.km / u.s)),
    )


def solar_position_kpc(frame: FrameSpec) -> np.ndarray:
    """Position of the Sun in the Galactocentric frame, shape `(3,)`, kpc (x < 0 by astropy's convention)."""
    sun = coord.ICRS(coord.CartesianRepresentation([0.0, 0.0, 0.0] * u.kpc))
    return sun.transform_to(galactocentric_frame(frame)).cartesian.xyz.to_value(u.kpc)
