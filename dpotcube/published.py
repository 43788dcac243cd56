"""The fitted fields published beside a cube: `<entry>.fields/` holds every member's model of Φ (a network, or
the `weak` method's basis coefficients and their spec) in the
project's one serialisation (`dpotcube.serialise`: a JSON header line, then equinox leaves) and a
`spec.json` that says what they are (architecture, units, frame, members, checksums).

Layout beside `<entry>.zarr` (a local folder or any fsspec URL)::

    <entry>.fields/spec.json
    <entry>.fields/members/<m>.eqx      m = 0..M-1, the cube's member order

This module copies and reads files only; it never imports JAX (`dpotcube.learned` evaluates them).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import fsspec
import xarray as xr

from .errors import DataError
from .stores import copy_to_url, is_url, join

SPEC_VERSION = 1
"""`spec_version` of `spec.json`; bumped when a key changes meaning."""

SERIALISATION = "dpotcube.serialise: one JSON header line {kind, hyperparameters}, then equinox.tree_serialise_leaves"

UNITS = {"position": "kpc", "potential": "km2 s-2", "acceleration": "km2 s-2 kpc-1", "density": "solMass pc-3"}


def fields_folder_name(entry: str) -> str:
    return f"{entry}.fields"


def write_fields_folder(
    model_paths: Sequence[Path], member_kinds: Sequence[str], cube_attrs: dict, folder: Path
) -> Path:
    """Write `folder` (replacing it): each member's field model and `spec.json`. Returns `folder`.

    `model_paths`: the saved models of Φ (`CBEFields`, or `WeakPotential` coefficients) of members 0..M-1 in cube
    order (`.eqx` files, from the method's `published_models`);
    `cube_attrs`: the cube's global attributes (method, frame, reference point, volume).
    """
    if len(model_paths) != len(member_kinds):
        raise ValueError(f"`model_paths` ({len(model_paths)}) and `member_kinds` ({len(member_kinds)}) must pair up.")
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    (staging / "members").mkdir(parents=True)
    members = []
    header = None
    for m, (path, kind) in enumerate(zip(model_paths, member_kinds, strict=True)):
        target = staging / "members" / f"{m}.eqx"
        shutil.copyfile(path, target)
        with open(target, "rb") as f:
            member_header = json.loads(f.readline())
        header = header or member_header
        members.append({"index": m, "kind": str(kind), "file": f"members/{m}.eqx", "sha256": _sha256(target)})
    spec = {
        "spec_version": SPEC_VERSION,
        "serialisation": SERIALISATION,
        "loader": "dpotcube.potential(entry, member=m), or dpotcube.fields.model.load_fields(path) "
        "(model_kind weak: dpotcube.weak.load_weak(path))",
        "model_kind": header["kind"] if header else None,
        "architecture": header["hyperparameters"] if header else None,
        "method": cube_attrs.get("method"),
        "units": UNITS,
        "frame": cube_attrs.get("frame", "astropy Galactocentric"),
        "galcen_distance_kpc": cube_attrs.get("galcen_distance_kpc"),
        "z_sun_kpc": cube_attrs.get("z_sun_kpc"),
        "galcen_v_sun_kms": cube_attrs.get("galcen_v_sun_kms"),
        "observer_position_kpc": cube_attrs.get("observer_position_kpc"),
        "volume_radius_kpc": cube_attrs.get("volume_radius_kpc"),
        "potential_reference_point": cube_attrs.get("potential_reference_point"),
        "G_kpc_km2_s2_per_msun": cube_attrs.get("G_kpc_km2_s2_per_msun"),
        "recipe_sha256": cube_attrs.get("recipe_sha256"),
        "potential": "Phi(x) = model(x) - model(potential_reference_point), as in the cube (model: the potential "
        "network, or for model_kind weak the expansion in its hyperparameters' basis)",
        "members": members,
    }
    (staging / "spec.json").write_text(json.dumps(spec, indent=2))
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder


def publish_fields(
    model_paths: Sequence[Path] | None, member_kinds: Sequence[str], cube_attrs: dict, build_dir: Path,
    destination: str | Path, entry: str,
) -> Path | str | None:
    """Write `<build_dir>/fields-published/` and copy it to `<destination>/<entry>.fields` (a folder or URL).

    `model_paths` None (the `pointwise` method: no model of Φ) publishes nothing and returns None.
    """
    if model_paths is None:
        return None
    local = write_fields_folder(model_paths, member_kinds, cube_attrs, Path(build_dir) / "fields-published")
    target = join(str(destination), fields_folder_name(entry))
    if is_url(target):
        copy_to_url(local, target)
        return target
    target_path = Path(target)
    staging = target_path.with_name(f".{target_path.name}.{uuid.uuid4().hex[:8]}.partial")
    shutil.copytree(local, staging)
    if target_path.exists():
        shutil.rmtree(target_path)
    staging.rename(target_path)
    return target_path


def fields_location(ds: xr.Dataset, fallback: str | Path | None = None) -> str:
    """Where the fields of cube `ds` are published: `<entry>.fields` beside its store (`ds.encoding["source"]`)."""
    source = ds.encoding.get("source") or (str(fallback) if fallback is not None else None)
    if not source:
        raise DataError(
            "The cube does not say where it was read from, so its published fields cannot be found. Pass the "
            "`<entry>.fields` folder itself: `dpotcube.potential('path/to/<entry>.fields')`."
        )
    source = str(source).rstrip("/")
    parent, name = source.rsplit("/", 1) if "/" in source else (".", source)
    return f"{parent}/{fields_folder_name(name.removesuffix('.zarr'))}"


def read_spec(location: str) -> dict:
    """`spec.json` of the published fields at `location` (a folder path or fsspec URL)."""
    url = join(str(location), "spec.json")
    try:
        with fsspec.open(url, "r") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(
            f"No published fields at {location} (no spec.json). Cubes built before fields were published, and "
            "cubes of the `pointwise` method (no Φ network), have none: rebuild with `dpotcube build RECIPE`."
        ) from None


def member_file(location: str, spec: dict, member: int) -> Path:
    """A local path of member `member`'s model file (downloaded to a temporary folder for a URL), checksum verified."""
    members = spec["members"]
    if not 0 <= member < len(members):
        raise DataError(f"`member` (={member}) must be in 0..{len(members) - 1}: the published fields have {len(members)}.")
    url = join(str(location), members[member]["file"])
    if is_url(url) and not url.startswith("file://"):
        local = Path(tempfile.mkdtemp(prefix="dpotcube-fields-")) / f"{member}.eqx"
        with fsspec.open(url, "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        local = Path(url.removeprefix("file://"))
    if _sha256(local) != members[member]["sha256"]:
        raise DataError(f"{url} does not match its checksum in spec.json: the copy is damaged. Publish it again.")
    return local


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
