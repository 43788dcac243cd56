"""The Intake (v2-native) catalog of published cubes: add or replace entries atomically; open by name."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import xarray as xr
import yaml
from intake.readers.datatypes import Zarr
from intake.readers.entry import Catalog
from intake.readers.readers import XArrayDatasetReader

from .cube.store import replace_directory
from .errors import CatalogError

CUBES_FOLDER = "cubes"


def read_catalog(path: Path) -> Catalog:
    """The catalog at `path`, or an empty one if the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return Catalog(metadata={"description": "dpotcube cubes of the Galactic potential"})
    try:
        return Catalog.from_yaml_file(str(path))
    except (yaml.YAMLError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(
            f"Catalog {path} cannot be read as an intake v2 catalog ({type(exc).__name__}: {exc}). "
            "Restore it from version control, or move it aside to start a new one."
        ) from None


def publish_cube(catalog_path: Path, entry: str, cube_path: Path, metadata: dict) -> Path:
    """Copy the cube into `<catalog dir>/cubes/<entry>.zarr` and add or replace its catalog entry.

    The store path is written relative to the catalog (`{CATALOG_DIR}`), so the folder can move.
    The catalog file is rewritten atomically under a lock. Returns the published store's path.
    """
    catalog_path = Path(catalog_path)
    target = catalog_path.parent / CUBES_FOLDER / f"{entry}.zarr"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    shutil.copytree(cube_path, staging)
    with _locked(catalog_path):
        catalog = read_catalog(catalog_path)
        replace_directory(staging, target)
        data = Zarr(url=f"{{CATALOG_DIR}}/{CUBES_FOLDER}/{entry}.zarr")
        catalog[entry] = XArrayDatasetReader(data, engine="zarr", chunks={}, consolidated=True, metadata=metadata)
        _write_atomically(catalog, catalog_path)
    return target


def list_entries(catalog_path: Path) -> dict[str, dict]:
    """Entry name → metadata of every cube in the catalog."""
    catalog = read_catalog(catalog_path)
    return {name: dict(catalog.entries[name].metadata) for name in catalog.entries}


def open_cube(name_or_path: str | Path, catalog: str | Path = "catalog/catalog.yaml") -> xr.Dataset:
    """Open a cube by catalog entry name, or by the path of its Zarr store."""
    if Path(name_or_path).exists():
        return xr.open_zarr(name_or_path)
    cat = read_catalog(Path(catalog))
    if str(name_or_path) not in cat.entries:
        known = ", ".join(sorted(cat.entries)) or "none"
        raise CatalogError(f"No cube `{name_or_path}` in {catalog} (entries: {known}) and no store at that path.")
    return cat[str(name_or_path)].read()


def _write_atomically(catalog: Catalog, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    catalog.user_parameters.pop("CATALOG_DIR", None)  # set again from the file's location when read
    catalog.user_parameters.pop("CATALOG_PATH", None)
    catalog.user_parameters.pop("STORAGE_OPTIONS", None)
    catalog.to_yaml_file(str(tmp))
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
