"""User tables: Galactocentric columns or Gaia-style astrometry (Parquet, CSV, FITS, ECSV, VOTable)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import astropy.units as u
import numpy as np
from astropy.table import Table
from jaxtyping import Float

from ..errors import DataError
from ..recipe import TableSpec
from .astrometry import CORRELATIONS, ERRORS, OBSERVABLES, PHASE_SPACE
from .checks import check_spread, check_units, drop_nonfinite

_FORMATS = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "ascii.csv", ".fits": "fits", ".fit": "fits",
    ".ecsv": "ascii.ecsv", ".vot": "votable", ".xml": "votable", ".votable": "votable",
}
_UNITS = {"x": u.kpc, "y": u.kpc, "z": u.kpc, "vx": u.km / u.s, "vy": u.km / u.s, "vz": u.km / u.s}
GALACTOCENTRIC_ERRORS = {f"{name}_error": _UNITS[name] for name in PHASE_SPACE}
"""Optional 1σ errors of a Galactocentric table (all six or none), used by `ensemble.noise` members."""
_PM = u.mas / u.yr
GAIA_UNITS: dict[str, u.UnitBase | None] = {
    "ra": u.deg, "dec": u.deg, "parallax": u.mas, "pmra": _PM, "pmdec": _PM, "radial_velocity": u.km / u.s,
    "ra_error": u.mas, "dec_error": u.mas, "parallax_error": u.mas, "pmra_error": _PM, "pmdec_error": _PM,
    "radial_velocity_error": u.km / u.s, "grvs_mag": None, **{name: None for name in CORRELATIONS.values()},
}
"""Gaia column → unit assumed when the file has none (`None`: a pure number; magnitudes are taken as they are)."""


def check_table_file(path: Path) -> str:
    """The astropy format of a table file that has a known suffix, exists, is a file and is not empty."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"Table {path} has suffix `{path.suffix}`; dpotcube reads {', '.join(sorted(_FORMATS))}. "
            "Convert the file or rename it with the right suffix."
        )
    if path.is_dir():
        raise DataError(f"Table {path} is a folder, not a file. Point `data.table.path` at the table file.")
    if not path.is_file():
        raise DataError(f"Table file {path} does not exist. Fix `data.table.path` in the recipe.")
    if path.stat().st_size == 0:
        raise DataError(f"Table {path} is empty (0 bytes). Write it again, or fix `data.table.path`.")
    return fmt


def read_table(path: Path) -> Table:
    """Read any supported table file, or raise a `DataError` that names the fix."""
    path = Path(path)
    fmt = check_table_file(path)
    try:
        table = Table.read(path, format=fmt)
    except Exception as exc:  # astropy raises many types for unreadable files
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(
            f"Cannot read table {path} as {fmt} ({reason}). The file may be truncated or not a {fmt} file: "
            "write it again, or fix its suffix."
        ) from None
    names = _column_names(path, fmt, table)
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise DataError(
            f"Table {path} has column(s) {', '.join(f'`{d[:40]}`' for d in duplicated[:5])} more than once; readers would "
            "silently take one of them. Rename or drop the duplicates."
        )
    return table


def _column_names(path: Path, fmt: str, table: Table) -> list[str]:
    """The column names as written in the file (astropy renames duplicates `x`, `x_2` when reading CSV)."""
    if fmt == "ascii.csv":
        with open(path, errors="replace") as f:
            header = next((line for line in f if line.strip() and not line.startswith("#")), "")
        return [name.strip().strip('"') for name in header.rstrip("\n").split(",")]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return list(table.colnames)


class GalactocentricStars(NamedTuple):
    """What a Galactocentric table gives, rows with a non-finite value dropped."""

    positions: Float[np.ndarray, "n 3"]  # kpc
    velocities: Float[np.ndarray, "n 3"]  # km/s
    selection: Float[np.ndarray, " n"] | None  # S(x), if the table names a column for it
    covariances: Float[np.ndarray, "n 6 6"] | None  # diagonal, from the `_error` columns, if present
    n_dropped: int  # rows with a non-finite value


def read_galactocentric_table(spec: TableSpec) -> GalactocentricStars:
    """Read x, y, z (kpc), vx, vy, vz (km/s), S if named and the six `_error` columns if present; drop non-finite rows.

    Columns with astropy units are converted; unitless columns are taken as kpc and km/s.
    """
    path = Path(spec.path)
    table = read_table(path)
    columns = {name: spec.columns.get(name, name) for name in _UNITS}
    if spec.selection_column is not None:
        columns["selection"] = spec.selection_column
    errors = {name: spec.columns.get(name, name) for name in GALACTOCENTRIC_ERRORS}
    present = [name for name, col in errors.items() if col in table.colnames]
    if present and len(present) < len(errors):
        missing = [f"{name} (column `{errors[name]}`)" for name in errors if name not in present]
        raise DataError(
            f"Table {path} has {', '.join(present)} but lacks {', '.join(missing)}: measurement errors are used all six "
            "or not at all. Add the missing columns (0 where a coordinate is exact), map them with "
            "`data.table.columns`, or drop the `_error` columns."
        )
    if present:
        columns |= errors
    _require(table, columns, path)
    units = _UNITS | GALACTOCENTRIC_ERRORS
    values = np.column_stack([column_values(table[col], units.get(name), path) for name, col in columns.items()])
    values, n_dropped = drop_nonfinite(values, str(path), spec.max_nonfinite_fraction)
    if len(values) == 0:
        raise DataError(f"Table {path} has no rows with finite x, y, z, vx, vy, vz. Check the file.")
    check_spread(values[:, :6], [columns[name] for name in _UNITS], str(path))
    check_units(values[:, :3], values[:, 3:6], str(path))
    by_name = dict(zip(columns, values.T))
    selection = by_name.get("selection")
    if selection is not None and not np.all((selection > 0) & (selection <= 1)):
        bad = int(np.sum(~((selection > 0) & (selection <= 1))))
        raise DataError(
            f"Column `{spec.selection_column}` of {path} must hold selection probabilities in (0, 1]; {bad} rows do "
            "not. Fix the column, or drop `data.table.selection_column`."
        )
    covariances = None
    if present:
        sigma = np.column_stack([by_name[name] for name in GALACTOCENTRIC_ERRORS])
        if np.any(sigma < 0):
            bad = [errors[name] for name, col in zip(GALACTOCENTRIC_ERRORS, sigma.T) if np.any(col < 0)]
            raise DataError(f"Error columns {', '.join(f'`{c}`' for c in bad)} of {path} hold negative values; "
                            "errors are 1σ widths (≥ 0). Fix the columns.")
        covariances = sigma[:, :, None] * np.eye(6) * sigma[:, None, :]
    return GalactocentricStars(values[:, :3], values[:, 3:6], selection, covariances, n_dropped)


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
    if column.dtype.kind == "b":
        raise DataError(
            f"Column `{column.name}` of {path} holds booleans (true/false), not numbers. Map the right column with "
            "`data.table.columns`, or fix the file."
        )
    if column.dtype.kind not in "iuf":
        return _parse_numbers(column, path)
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


def _parse_numbers(column, path: Path | str) -> np.ndarray:
    """A text column as float64 (masked entries → NaN), or a `DataError` naming the first entry that is no number."""
    values = column.filled("nan") if hasattr(column, "filled") else column
    out = np.empty(len(values), np.float64)
    for i, value in enumerate(np.asarray(values).tolist()):
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            shown = str(value)[:40]
            raise DataError(
                f"Column `{column.name}` of {path} holds text where numbers go (row {i + 1}: {shown!r}). Fix the file, "
                "or map the right column with `data.table.columns`."
            ) from None
    return out


def _require(table: Table, columns: dict[str, str], path: Path | str) -> None:
    missing = [f"{name} (column `{col}`)" for name, col in columns.items() if col not in table.colnames]
    if missing:
        first = next(iter(columns))
        raise DataError(
            f"Table {path} lacks {', '.join(missing)}; it has {', '.join(table.colnames)}. "
            f"Map names with `data.table.columns`, e.g. `columns: {{{first}: MY_{first.upper()}}}`."
        )


__all__ = ["ERRORS", "GAIA_UNITS", "GALACTOCENTRIC_ERRORS", "GalactocentricStars", "check_table_file", "column_values", "gaia_columns", "read_galactocentric_table", "read_table"]
