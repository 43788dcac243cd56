"""User tables: Galactocentric columns or Gaia-style astrometry (Parquet, CSV, FITS, ECSV, VOTable)."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..errors import DataError
from ..recipe import TableSpec
from .astrometry import CORRELATIONS, ERRORS, OBSERVABLES
from .checks import check_units, drop_nonfinite

_FORMATS = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "ascii.csv", ".fits": "fits", ".fit": "fits",
    ".ecsv": "ascii.ecsv", ".vot": "votable", ".xml": "votable", ".votable": "votable",
}
_UNITS = {"x": u.kpc, "y": u.kpc, "z": u.kpc, "vx": u.km / u.s, "vy": u.km / u.s, "vz": u.km / u.s}
_PM = u.mas / u.yr
GAIA_UNITS: dict[str, u.UnitBase | None] = {
    "ra": u.deg, "dec": u.deg, "parallax": u.mas, "pmra": _PM, "pmdec": _PM, "radial_velocity": u.km / u.s,
    "ra_error": u.mas, "dec_error": u.mas, "parallax_error": u.mas, "pmra_error": _PM, "pmdec_error": _PM,
    "radial_velocity_error": u.km / u.s, "grvs_mag": None, **{name: None for name in CORRELATIONS.values()},
}
"""Gaia column → unit assumed when the file has none (`None`: a pure number; magnitudes are taken as they are)."""


def read_table(path: Path) -> Table:
    """Read any supported table file, or raise a `DataError` that names the fix."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"Table {path} has suffix `{path.suffix}`; dpotcube reads {', '.join(sorted(_FORMATS))}. "
            "Convert the file or rename it with the right suffix."
        )
    if not path.is_file():
        raise DataError(f"Table file {path} does not exist. Fix `data.table.path` in the recipe.")
    try:
        return Table.read(path, format=fmt)
    except Exception as exc:  # astropy raises many types for unreadable files
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(
            f"Cannot read table {path} as {fmt} ({reason}). The file may be truncated or not a {fmt} file: "
            "write it again, or fix its suffix."
        ) from None


def read_galactocentric_table(spec: TableSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Read positions `(n, 3)` in kpc, velocities `(n, 3)` in km/s and, if named, S `(n,)`; drop non-finite rows.

    Columns with astropy units are converted; unitless columns are taken as kpc and km/s.
    Returns positions, velocities, selection probabilities (or None) and the number of rows dropped.
    """
    path = Path(spec.path)
    table = read_table(path)
    columns = {name: spec.columns.get(name, name) for name in _UNITS}
    if spec.selection_column is not None:
        columns["selection"] = spec.selection_column
    _require(table, columns, path)
    values = np.column_stack(
        [column_values(table[col], _UNITS.get(name), path) for name, col in columns.items()]
    )
    values, n_dropped = drop_nonfinite(values, str(path), spec.max_nonfinite_fraction)
    if len(values) == 0:
        raise DataError(f"Table {path} has no rows with finite x, y, z, vx, vy, vz. Check the file.")
    check_units(values[:, :3], values[:, 3:6], str(path))
    selection = values[:, 6] if spec.selection_column is not None else None
    if selection is not None and not np.all((selection > 0) & (selection <= 1)):
        bad = int(np.sum(~((selection > 0) & (selection <= 1))))
        raise DataError(
            f"Column `{spec.selection_column}` of {path} must hold selection probabilities in (0, 1]; {bad} rows do "
            "not. Fix the column, or drop `data.table.selection_column`."
        )
    return values[:, :3], values[:, 3:6], selection, n_dropped


def gaia_columns(table: Table, mapping: dict[str, str], path: Path | str) -> dict[str, np.ndarray]:
    """Gaia-style columns of `table` in Gaia's units, keyed by Gaia's names.

    The six observables are required; errors, correlations and `grvs_mag` are returned where present.
    `mapping` renames dpotcube's (Gaia's) names to the table's own.
    """
    names = {name: mapping.get(name, name) for name in GAIA_UNITS}
    _require(table, {name: names[name] for name in OBSERVABLES}, path)
    return {
        name: column_values(table[col], GAIA_UNITS[name], path) for name, col in names.items() if col in table.colnames
    }


def column_values(column, unit: u.UnitBase | None, path: Path | str) -> np.ndarray:
    """A column as float64 in `unit` (masked entries → NaN); unitless columns are taken as already in `unit`."""
    if hasattr(column, "filled"):
        column = column.filled(np.nan)
    if unit is None or column.unit is None or column.unit == u.dimensionless_unscaled:
        return np.asarray(column, np.float64)
    try:
        return column.quantity.to_value(unit)
    except u.UnitConversionError:
        raise DataError(
            f"Column `{column.name}` of {path} has unit {column.unit}, which cannot be converted to {unit}."
        ) from None


def _require(table: Table, columns: dict[str, str], path: Path | str) -> None:
    missing = [f"{name} (column `{col}`)" for name, col in columns.items() if col not in table.colnames]
    if missing:
        first = next(iter(columns))
        raise DataError(
            f"Table {path} lacks {', '.join(missing)}; it has {', '.join(table.colnames)}. "
            f"Map names with `data.table.columns`, e.g. `columns: {{{first}: MY_{first.upper()}}}`."
        )


__all__ = ["ERRORS", "GAIA_UNITS", "column_values", "gaia_columns", "read_galactocentric_table", "read_table"]
