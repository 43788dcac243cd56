"""Dispatch from the recipe's `data` section to a source; cut to the observer's volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..frames import solar_position_kpc
from ..recipe import DataSpec
from .base import PhaseSpaceTable
from .dust import DustField
from .mocks import PlummerTruth, sample_observed_plummer, sample_plummer
from .observed import observed_stars
from .selection import SelectionTruth
from .table import gaia_columns, read_galactocentric_table, read_table

MIN_STARS = 200
"""Fewest stars a build accepts (the mock's `n_stars` has the same lower bound)."""

GAIA_CACHE = "gaia"
"""Folder inside the build folder that holds the downloaded Gaia parent sample."""


def plummer_truth(data: DataSpec) -> PlummerTruth:
    """The analytic truth behind `data.source: plummer`, with its selection S(x) when `data.observation` is set."""
    return PlummerTruth(
        mass_msun=data.plummer.mass_msun,
        scale_radius_kpc=data.plummer.scale_radius_kpc,
        observer=tuple(float(c) for c in solar_position_kpc(data.frame)),
        volume_radius_kpc=data.volume_radius_kpc,
        n_stars=data.n_stars,
        selection=observation_truth(data),
        anisotropy_radius_kpc=data.plummer.anisotropy_radius_kpc,
    )


def observation_truth(data: DataSpec) -> SelectionTruth | None:
    """The mock's selection function S(x) from `data.observation` (the dust made from its seed); None if unset."""
    spec = data.observation
    if spec is None:
        return None
    observer = tuple(float(c) for c in solar_position_kpc(data.frame))
    dust = None
    if spec.dust is not None:
        dust = DustField.from_seed(
            seed=spec.dust.seed,
            observer=observer,
            mean_extinction_mag_per_kpc=spec.dust.mean_extinction_mag_per_kpc,
            log_sigma=spec.dust.log_sigma,
            spectral_index=spec.dust.spectral_index,
            min_scale_kpc=spec.dust.min_scale_kpc,
            max_scale_kpc=spec.dust.max_scale_kpc,
            n_modes=spec.dust.n_modes,
            quadrature_nodes=spec.dust.quadrature_nodes,
        )
    return SelectionTruth(
        observer=observer,
        magnitude_limit=spec.magnitude_limit,
        absolute_magnitude_mean=spec.absolute_magnitude_mean,
        absolute_magnitude_sigma=spec.absolute_magnitude_sigma,
        dust=dust,
    )


def load_stars(data: DataSpec, seed: int, build_dir: Path | None = None) -> PhaseSpaceTable:
    """Load the tracer stars the recipe names, in Galactocentric kpc and km/s.

    `build_dir` is needed for `source: gaia`, whose parent sample `dpotcube fetch-gaia` cached there.
    """
    observer = solar_position_kpc(data.frame)
    covariances = selection = None
    if data.source == "plummer":
        truth = plummer_truth(data)
        meta: dict = {"mass_msun": truth.mass_msun, "scale_radius_kpc": truth.scale_radius_kpc}
        if truth.anisotropy_radius_kpc is not None:
            meta["anisotropy_radius_kpc"] = truth.anisotropy_radius_kpc
        if truth.selection is None:
            positions, velocities = sample_plummer(truth, seed)
        else:
            positions, velocities, selection, n_true = sample_observed_plummer(truth, seed)
            meta["observation"] = data.observation.model_dump(mode="json")
            meta["n_true_stars_drawn"] = n_true
            meta["acceptance_fraction"] = len(positions) / n_true
        return PhaseSpaceTable(
            positions, velocities, observer, data.volume_radius_kpc, data.source, meta, selection=selection
        )
    if data.source == "table" and data.table is not None and data.table.coordinates == "galactocentric":
        table = read_galactocentric_table(data.table)
        positions, velocities, selection, covariances = table.positions, table.velocities, table.selection, table.covariances
        meta = {"path": str(data.table.path), "n_dropped_nonfinite": table.n_dropped}
        origin = str(data.table.path)
    else:
        columns, meta, origin = _astrometric_columns(data, build_dir)
        apply_cuts = data.source == "gaia" or (data.table is not None and data.table.apply_gaia_cuts)
        stars = observed_stars(columns, data, apply_cuts)
        positions, velocities, covariances = stars.positions, stars.velocities, stars.covariances
        meta["cuts"] = [step.as_dict() for step in stars.report]
    inside = np.linalg.norm(positions - observer, axis=1) < data.volume_radius_kpc
    positions, velocities = positions[inside], velocities[inside]
    covariances = None if covariances is None else covariances[inside]
    selection = None if selection is None else selection[inside]
    meta["n_outside_volume"] = int((~inside).sum())
    if "cuts" in meta:
        volume = f"inside the {data.volume_radius_kpc:g} kpc volume"
        meta["cuts"].append({"cut": volume, "removed": int((~inside).sum()), "remaining": int(inside.sum())})
    if len(positions) < MIN_STARS:
        after = " after the cuts" if "cuts" in meta else ""
        raise DataError(
            f"Only {len(positions)} stars of {origin} lie within {data.volume_radius_kpc} kpc of the observer at "
            f"{np.round(observer, 3).tolist()} kpc{after}; at least {MIN_STARS} are needed. Check that the columns are "
            "Galactocentric kpc (Sun near x = -8.1) or in Gaia's units, or raise `data.volume_radius_kpc`."
        )
    return PhaseSpaceTable(
        positions=positions,
        velocities=velocities,
        observer=observer,
        volume_radius_kpc=data.volume_radius_kpc,
        data_source=data.source,
        meta=meta,
        covariances=covariances,
        selection=selection,
    )


def _astrometric_columns(data: DataSpec, build_dir: Path | None) -> tuple[dict[str, np.ndarray], dict, str]:
    """Gaia-style columns from the user's table or the cached Gaia parent sample, with provenance."""
    if data.source == "table":
        assert data.table is not None
        path = Path(data.table.path)
        return gaia_columns(read_table(path), data.table.columns, path), {"path": str(path)}, str(path)
    from .gaia import adql_query, cached_parent, read_parent

    cache = Path(build_dir or ".") / GAIA_CACHE
    files = cached_parent(data.gaia, cache)
    if files is None:
        raise DataError(
            f"No complete Gaia download for this recipe's query in {cache}. Run `dpotcube fetch-gaia RECIPE` "
            "(with the same `--out`) first; `dpotcube build` also fetches it when the network is available."
        )
    meta = {
        "tap_url": data.gaia.tap_url,
        "query": adql_query(data.gaia, 0) if data.gaia.chunks == 1 else f"{data.gaia.chunks} chunks by source_id",
        "parent_sample": [str(p) for p in files],
        "parent_radius_kpc": data.gaia.parent_radius_kpc,
    }
    return gaia_columns(read_parent(files), {}, cache), meta, f"the Gaia download in {cache}"
