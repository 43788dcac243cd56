"""The finiteness check a new cube passes before it replaces an old one or is published (no JAX: the catalog uses it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import BuildError


def check_finite(store: Path, kept: Path | None = None) -> None:
    """Refuse a cube with NaN or inf inside the tracer volume (`in_volume`), one chunk at a time.

    Raises `BuildError` naming the variable, the member and the count; `kept` names the cube left in place.
    """
    ds = xr.open_zarr(store)
    inside = ds.get("in_volume")
    for name, var in ds.data_vars.items():
        if name == "in_volume" or not np.issubdtype(var.dtype, np.floating):
            continue
        bad = ~np.isfinite(var)
        if inside is not None and set(inside.dims) <= set(var.dims):
            bad = bad & inside
        per_member = bad.sum([d for d in var.dims if d != "member"]).values
        if np.any(per_member):
            members = np.flatnonzero(np.atleast_1d(per_member)).tolist()
            where = f"member(s) {members[:5]}" if "member" in var.dims else "the cube"
            old = f" The cube already at {kept} is kept unchanged." if kept is not None and Path(kept).exists() else ""
            raise BuildError(
                f"The new cube has {int(np.sum(per_member)):,} NaN or inf values of `{name}` inside the tracer volume "
                f"({where}); it is not written, published or marked done.{old} The training most likely diverged: "
                "lower `fields.learning_rate` (or `density.velocity.learning_rate`), or change `seed`, and build again."
            )
