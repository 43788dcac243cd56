"""User tables of Galactocentric positions and velocities (Parquet, CSV, FITS, ECSV)."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..errors import DataError
from ..recipe import TableSpec
from .checks import check_units, drop_nonfinite

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "ascii.csv", ".fits": "fits", ".fit": "fits", ".ecsv": "ascii.ecsv"}
_UNITS = {"x": u.kpc, "y": u.kpc, "z": u.kpc, "vx": u.km / u.s, "vy": u.km / u.s, "vz": u.km / u.s}


def read_galactocentric_table(spec: TableSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """Read positions `(n, 3)` in kpc and velocities `(n, 3)` in km/s; drop non-finite rows.

    Columns with astropy units are converted; unitless columns are taken as kpc and km/s.
    Returns positions, velocities and the number of rows dropped.
    """
    path = Path(spec.path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"Table {path} has suffix `{path.suffix}`; dpotcube reads {', '.join(sorted(_FORMATS))}. "
            "Convert the file or rename it with the right suffix."
        )
    if not path.is_file():
        raise DataError(f"Table file {path} does not exist. Fix `data.table.path` in the recipe.")
    try:
        table = Table.read(path, format=fmt)
    except Exception as exc:  # astropy raises many types for unreadable files
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(
            f"Cannot read table {path} as {fmt} ({reason}). The file may be truncated or not a {fmt} file: "
            "write it again, or fix its suffix."
        ) from None
    columns = {name: spec.columns.get(name, name) for name in _UNITS}
    missing = [f"{name} (column `{col}`)" for name, col in columns.items() if col not in table.colnames]
    if missing:
        raise DataError(
            f"Table {path} lacks {', '.join(missing)}; it has {', '.join(table.colnames)}. "
            "Map names with `data.table.columns`, e.g. `columns: {x: X_GC}`."
        )
    values = np.column_stack([_in_unit(table[col], _UNITS[name], path) for name, col in columns.items()])
    values, n_dropped = drop_nonfinite(values, str(path), spec.max_nonfinite_fraction)
    if len(values) == 0:
        raise DataError(f"Table {path} has no rows with finite x, y, z, vx, vy, vz. Check the file.")
    check_units(values[:, :3], values[:, 3:], str(path))
    return values[:, :3], values[:, 3:], n_dropped


def _in_unit(column, unit: u.UnitBase, path: Path) -> np.ndarray:
    if column.unit is None:
        return np.asarray(column, np.float64)
    try:
        return column.quantity.to_value(unit)
    except u.UnitConversionError:
        raise DataError(
            f"Column `{column.name}` of {path} has unit {column.unit}, which cannot be converted to {unit}."
        ) from None
