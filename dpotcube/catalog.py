"""The Intake (v2-native) catalog of published cubes: add or replace entries atomically; open by name."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import xarray as xr
import yaml
from filelock import FileLock
from intake.readers.datatypes import Zarr
from intake.readers.entry import Catalog
from intake.readers.readers import XArrayDatasetReader

from .cube.finite import check_finite
from .errors import CatalogError
from .release import entry_release_metadata
from .stores import copy_to_url, is_url, join, replace_directory, store_exists

CUBES_FOLDER = "cubes"


def read_catalog(path: Path) -> Catalog:
    """The catalog at `path`, or an empty one if the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return Catalog(metadata={"description": "dpotcube cubes of the Galactic potential"})
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(
            f"Catalog {path} is not readable YAML ({type(exc).__name__}). Restore it from version control or a "
            "backup, or move it aside to start a new catalog."
        ) from None
    if not isinstance(raw, dict) or raw.get("version") != 2:
        found = raw.get("version", "none") if isinstance(raw, dict) else type(raw).__name__
        raise CatalogError(
            f"Catalog {path} is not an intake v2 catalog (version: {found}); dpotcube writes intake>=2 native "
            "catalogs. Point `publish.catalog` at a new file, or move the old catalog aside."
        )
    try:
        return Catalog.from_yaml_file(str(path))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CatalogError(
            f"Catalog {path} cannot be read as an intake v2 catalog ({type(exc).__name__}: {exc}). "
            "Restore it from version control, or move it aside to start a new one."
        ) from None


def publish_cube(
    catalog_path: Path, entry: str, cube_path: Path, metadata: dict, replace: bool = False, store: str | None = None
) -> Path | str:
    """Copy the cube into `<catalog dir>/cubes/<entry>.zarr`, or `<store>/<entry>.zarr` for an fsspec
    folder URL, and add or replace its catalog entry.

    An entry made by another recipe (`metadata["recipe_name"]` differs) is replaced only with
    `replace=True`. A local store path is written relative to the catalog (`{CATALOG_DIR}`), so the
    folder can move; a URL is written as is. The catalog file is rewritten atomically under a lock.
    Returns the store's path or URL.
    """
    catalog_path = Path(catalog_path)
    metadata = {**entry_release_metadata(metadata), **metadata}  # description, licence, citation
    read_catalog(catalog_path)  # refuse a corrupt catalog before copying anything
    check_finite(cube_path)  # a cube with NaN or inf inside the volume is never published
    if store is not None:
        return _publish_to_url(catalog_path, entry, cube_path, metadata, replace, join(store, f"{entry}.zarr"))
    target = catalog_path.parent / CUBES_FOLDER / f"{entry}.zarr"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    shutil.copytree(cube_path, staging)
    try:
        with _locked(catalog_path):
            catalog = read_catalog(catalog_path)
            _check_not_taken(catalog, entry, metadata.get("recipe_name", ""), catalog_path, replace)
            replace_directory(staging, target)
            data = Zarr(url=f"{{CATALOG_DIR}}/{CUBES_FOLDER}/{entry}.zarr")
            catalog[entry] = XArrayDatasetReader(data, engine="zarr", chunks={}, consolidated=True, metadata=metadata)
            _write_atomically(catalog, catalog_path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def _publish_to_url(
    catalog_path: Path, entry: str, cube_path: Path, metadata: dict, replace: bool, url: str
) -> str:
    check_entry_available(catalog_path, entry, metadata.get("recipe_name", ""), replace)  # before any copying
    copy_to_url(cube_path, url)
    with _locked(catalog_path):
        catalog = read_catalog(catalog_path)
        _check_not_taken(catalog, entry, metadata.get("recipe_name", ""), catalog_path, replace)
        reader = XArrayDatasetReader(Zarr(url=url), engine="zarr", chunks={}, consolidated=True, metadata=metadata)
        catalog[entry] = reader
        _write_atomically(catalog, catalog_path)
    return url


def check_entry_available(catalog_path: Path, entry: str, recipe_name: str, replace: bool = False) -> None:
    """Refuse a corrupt catalog, and an entry name already published by another recipe (unless `replace`)."""
    _check_not_taken(read_catalog(catalog_path), entry, recipe_name, catalog_path, replace)


def _check_not_taken(catalog: Catalog, entry: str, recipe_name: str, catalog_path: Path, replace: bool) -> None:
    if replace or entry not in catalog.entries:
        return
    owner = catalog.entries[entry].metadata.get("recipe_name")
    if owner != recipe_name:
        raise CatalogError(
            f"Entry `{entry}` in {catalog_path} was published by recipe `{owner}`, not `{recipe_name}`. "
            "Choose another name with `publish.entry`, or pass `--replace` to overwrite it."
        )


def list_entries(catalog_path: Path) -> dict[str, dict]:
    """Entry name → metadata of every cube in the catalog."""
    catalog = read_catalog(catalog_path)
    return {name: dict(catalog.entries[name].metadata) for name in catalog.entries}


def open_cube(name_or_path: str | Path, catalog: str | Path = "catalog/catalog.yaml") -> xr.Dataset:
    """Open a cube by catalog entry name, by the path or fsspec URL of its Zarr store, or by
    `<catalog URL or path>#<entry>` (e.g. `https://host/catalog.yaml#quickstart`): lazily, nothing is read
    until sliced."""
    if "#" in str(name_or_path):
        location, entry = str(name_or_path).rsplit("#", 1)
        return _open_entry(location, entry)
    if is_url(name_or_path):
        if not store_exists(str(name_or_path)):
            raise CatalogError(f"No complete Zarr store at {name_or_path} (no zarr.json). Check the URL.")
        return xr.open_zarr(str(name_or_path))
    if Path(name_or_path).exists():
        return _open_store(Path(name_or_path))
    cat = read_catalog(Path(catalog))
    if str(name_or_path) not in cat.entries:
        known = ", ".join(sorted(cat.entries)) or "none"
        raise CatalogError(f"No cube `{name_or_path}` in {catalog} (entries: {known}) and no store at that path.")
    return cat[str(name_or_path)].read()


def _open_entry(catalog_location: str, entry: str) -> xr.Dataset:
    """Entry `entry` of the catalog at a local path or any fsspec URL (http, s3, …)."""
    if not is_url(catalog_location):
        return open_cube(entry, catalog=catalog_location)
    try:
        cat = Catalog.from_yaml_file(catalog_location)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as exc:
        raise CatalogError(f"Cannot read the catalog at {catalog_location} ({type(exc).__name__}: {exc}). Check the URL.") from None
    if entry not in cat.entries:
        known = ", ".join(sorted(cat.entries)) or "none"
        raise CatalogError(f"No cube `{entry}` in {catalog_location} (entries: {known}).")
    ds = cat[entry].read()
    ds.encoding.setdefault("source", _entry_url(cat, entry))
    return ds


def _entry_url(cat: Catalog, entry: str) -> str:
    """The store URL of `entry`, with `{CATALOG_DIR}` filled in."""
    reader = cat[entry]
    data = reader.kwargs["args"][0] if reader.kwargs.get("args") else reader.kwargs.get("data")
    url = getattr(data, "url", str(data))
    return url.replace("{CATALOG_DIR}", str(cat.user_parameters.get("CATALOG_DIR", "")))


def _open_store(path: Path) -> xr.Dataset:
    if not (path / "zarr.json").is_file():
        raise CatalogError(
            f"{path} is not a complete Zarr store (no zarr.json): the cube may be half-copied. Publish it again with "
            "`dpotcube build RECIPE` (finished stages are reused)."
        )
    try:
        return xr.open_zarr(path)
    except (OSError, ValueError, KeyError) as exc:
        raise CatalogError(f"Cannot open the cube at {path} ({type(exc).__name__}: {exc}). Publish it again.") from None


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
    with FileLock(str(path.with_name(path.name + ".lock"))):  # portable (fcntl does not exist on Windows)
        yield
