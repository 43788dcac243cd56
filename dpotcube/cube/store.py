"""Assemble the labeled cube and write it to Zarr chunk by chunk, moved into place only when complete."""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from dask.callbacks import Callback

from ..baryons import BARYON_MODELS
from ..progress import progress_bar
from ..release import COORDINATE_ATTRS, cf_global_attrs
from ..stores import replace_directory
from .evaluate import baryon_blocks, member_baryon_parameters
from .finite import check_finite
from .grid import Grid
from .scheduler import SchedulerSpec, scheduler
from .variables import BARYON_VARIABLES, TRACER_DENSITY, CubeVariables

COMPRESSORS = "auto"
"""Zarr v3 compressors of every variable ("auto": Zarr's default, zstd)."""

MEMBER_KINDS = ("seed", "bootstrap", "noise", "frame", "posterior")
"""What may vary between ensemble members (CUBE_SPEC v1; `posterior`: a draw from a linear fit's posterior)."""


def cube_dataset(
    blocks: da.Array,
    grid: Grid,
    attrs: dict,
    member_kinds: Sequence[str],
    fields: CubeVariables,
) -> xr.Dataset:
    """Dataset with dims `(member, x, y, z)` following CUBE_SPEC v1.

    `blocks`: lazy array `(member, len(fields), nx, ny, nz)` from `field_blocks` (or a method's own
    blocks, e.g. `pointwise_blocks`); `member_kinds`: one of `MEMBER_KINDS` per member; `fields`: the
    method's variables in block order, name → (units, long_name) (`Method.cube_variables`).
    """
    if blocks.shape[1] != len(fields):
        raise ValueError(f"`blocks` holds {blocks.shape[1]} fields but `fields` names {len(fields)}: {list(fields)}.")
    if len(member_kinds) != blocks.shape[0]:
        raise ValueError(f"`member_kinds` (={list(member_kinds)}) must name one kind per member (={blocks.shape[0]}).")
    unknown = sorted(set(member_kinds) - set(MEMBER_KINDS))
    if unknown:
        raise ValueError(f"`member_kinds` must be among {list(MEMBER_KINDS)}; got {unknown}.")
    dims = ("member", "x", "y", "z")
    data_vars = {}
    if len(fields) != blocks.shape[1]:
        raise ValueError(f"`fields` names {len(fields)} variables; `blocks` holds {blocks.shape[1]}.")
    for i, (name, (units, long_name)) in enumerate(fields.items()):
        data_vars[name] = xr.Variable(dims, blocks[:, i], {"units": units, "long_name": long_name})
    data_vars["in_volume"] = xr.Variable(
        ("x", "y", "z"), grid.in_volume(), {"units": "1", "long_name": "within volume_radius_kpc of the observer"}
    )
    coords = {
        "x": ("x", grid.x, COORDINATE_ATTRS["x"]),
        "y": ("y", grid.y, COORDINATE_ATTRS["y"]),
        "z": ("z", grid.z, COORDINATE_ATTRS["z"]),
        "member": ("member", np.arange(len(member_kinds)), COORDINATE_ATTRS["member"]),
        "member_kind": ("member", np.array(list(member_kinds), dtype=object), COORDINATE_ATTRS["member_kind"]),
    }
    return xr.Dataset(data_vars, coords=coords, attrs={**cf_global_attrs(attrs), **attrs})


def add_baryons(ds: xr.Dataset, grid: Grid, model_name: str, relative_error: float, seed: int) -> xr.Dataset:
    """`ds` with `density_baryon` (x, y, z) and `density_dm` = `density` − ρ_baryon (member, x, y, z), lazily.

    Member m subtracts the baryon model at parameter draw m (`member_baryon_parameters`: member 0 the
    nominal model, which is also `density_baryon`), so the spread over members carries the model's
    parameter errors. Attributes `baryon_model` (description) and `baryon_parameters` (JSON: names,
    each member's values, seed) say what was subtracted.
    """
    model = BARYON_MODELS[model_name]
    params = member_baryon_parameters(model, ds.sizes["member"], relative_error, seed)
    rho_b = baryon_blocks(model_name, params, grid)
    (units_b, long_b), (units_dm, long_dm) = BARYON_VARIABLES["density_baryon"], BARYON_VARIABLES["density_dm"]
    density = ds["density"]
    out = ds.assign(
        density_baryon=xr.Variable(("x", "y", "z"), rho_b[0], {"units": units_b, "long_name": long_b}),
        density_dm=xr.Variable(density.dims, density.data - rho_b, {"units": units_dm, "long_name": long_dm}),
    )
    out.attrs.update(
        baryon_model=model.describe(relative_error),
        baryon_parameters=json.dumps({"names": model.parameter_names, "members": params.tolist(), "seed": seed}),
    )
    return out


def add_flow_tracer_density(ds: xr.Dataset, n_flow: da.Array, divide_by_efficiency: bool, how: str) -> xr.Dataset:
    """`ds` with `tracer_density` (member, x, y, z) from each member's n(x) flow density `n_flow` (member, x, y, z).

    With `divide_by_efficiency` (the `selection` method), n = n_obs / ε of each member: the dust-corrected
    density; otherwise the models' n. `how` says where n comes from, in the variable's `long_name`.
    """
    units, long_name = TRACER_DENSITY
    observed = xr.DataArray(n_flow, dims=("member", "x", "y", "z"))
    n = observed / ds["efficiency"].drop_vars([c for c in ("member", "member_kind") if c in ds.coords]) \
        if divide_by_efficiency else observed
    n = n.transpose("member", "x", "y", "z")
    n = n.drop_vars([c for c in ("member", "member_kind") if c in n.coords])
    return ds.assign(tracer_density=xr.Variable(n.dims, n.data, {"units": units, "long_name": f"{long_name} ({how})"}))


def write_cube(ds: xr.Dataset, path: Path, on: SchedulerSpec = SchedulerSpec()) -> None:
    """Write `ds` to a Zarr store at `path`, computing and writing one chunk at a time.

    Chunks are computed on local threads, or on `dask.distributed` workers when `on` says so.
    The store is written beside `path` under a temporary name and renamed into place when
    complete, so an interrupted write never leaves a half-written cube at `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    encoding = {name: {"chunks": _zarr_chunks(ds[name]), "compressors": COMPRESSORS} for name in ds.data_vars}
    try:
        with progress_bar() as bar, warnings.catch_warnings(), scheduler(on) as where:
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            task = bar.add_task("cube → Zarr", total=None, status=where)
            with _ProgressCallback(bar, task) if not on.distributed else contextlib.nullcontext():
                ds.to_zarr(partial, mode="w", consolidated=True, encoding=encoding, zarr_format=3)
            if on.distributed:
                bar.update(task, total=1, completed=1)
        check_finite(partial, kept=path)
    except BaseException:  # an error, a non-finite cube or Ctrl-C: the old cube stays, the partial one goes
        shutil.rmtree(partial, ignore_errors=True)
        raise
    replace_directory(partial, path)


def _zarr_chunks(var: xr.DataArray) -> tuple[int, ...]:
    return tuple(c[0] for c in var.data.chunks)


class _ProgressCallback(Callback):
    """Advances a rich task once per finished dask task."""

    def __init__(self, bar, task):
        super().__init__()
        self._bar, self._task = bar, task

    def _start_state(self, dsk, state):
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self._bar.update(self._task, total=total, completed=0)

    def _posttask(self, key, result, dsk, state, id):
        self._bar.advance(self._task)
