"""Dispatch from the recipe's `data` section to a source; cut to the observer's volume."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..frames import solar_position_kpc
from ..recipe import DataSpec
from .base import PhaseSpaceTable
from .mocks import PlummerTruth, sample_plummer
from .table import read_galactocentric_table


MIN_STARS = 200
"""Fewest stars a build accepts (the mock's `n_stars` has the same lower bound)."""


def plummer_truth(data: DataSpec) -> PlummerTruth:
    """The analytic truth behind `data.source: plummer`."""
    return PlummerTruth(
        mass_msun=data.plummer.mass_msun,
        scale_radius_kpc=data.plummer.scale_radius_kpc,
        observer=tuple(float(c) for c in solar_position_kpc(data.frame)),
        volume_radius_kpc=data.volume_radius_kpc,
        n_stars=data.n_stars,
    )


def load_stars(data: DataSpec, seed: int) -> PhaseSpaceTable:
    """Load the tracer stars the recipe names, in Galactocentric kpc and km/s."""
    observer = solar_position_kpc(data.frame)
    meta: dict = {}
    if data.source == "plummer":
        truth = plummer_truth(data)
        positions, velocities = sample_plummer(truth, seed)
        meta = {"mass_msun": truth.mass_msun, "scale_radius_kpc": truth.scale_radius_kpc}
    else:
        assert data.table is not None
        positions, velocities, n_dropped = read_galactocentric_table(data.table)
        inside = np.linalg.norm(positions - observer, axis=1) < data.volume_radius_kpc
        positions, velocities = positions[inside], velocities[inside]
        meta = {"path": str(data.table.path), "n_dropped_nonfinite": n_dropped, "n_outside_volume": int((~inside).sum())}
        if len(positions) < MIN_STARS:
            raise DataError(
                f"Only {len(positions)} stars of {data.table.path} lie within {data.volume_radius_kpc} kpc of the "
                f"observer at {np.round(observer, 3).tolist()} kpc; at least {MIN_STARS} are needed. Check that x, y, z are "
                "Galactocentric kpc (Sun near x = -8.1) or raise `data.volume_radius_kpc`."
            )
    return PhaseSpaceTable(
        positions=positions,
        velocities=velocities,
        observer=observer,
        volume_radius_kpc=data.volume_radius_kpc,
        data_source=data.source,
        meta=meta,
    )
