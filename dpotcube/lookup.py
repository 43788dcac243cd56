"""Fields of a cube at arbitrary positions: a `SkyCoord` in any frame, or Galactocentric x, y, z.

`query` interpolates the grid linearly (`curves.sample_along`), so it needs no JAX and no network; its
error is the grid's interpolation error (docs/released.md states it for the tiny recipe). For the
exact network values inside the volume, use `dpotcube.potential(entry)`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import astropy.coordinates as coord
import astropy.units as u
import numpy as np
import xarray as xr
from astropy.utils.masked import Masked
from jaxtyping import Float

from .curves import sample_along
from .errors import DataError

DEFAULT_QUANTITIES = ("potential", "accel_x", "accel_y", "accel_z", "density", "density_dm")
"""What `query` returns by default (those the cube has)."""

Interval = Literal["16-84", "members"]


class OutsideVolumeWarning(UserWarning):
    """Some queried points lie outside the tracer volume: their values are masked (NaN)."""


class SingleMemberWarning(UserWarning):
    """A cube of one member has no spread: its 16–84% range equals the median and is no uncertainty."""


def cube_frame(ds: xr.Dataset) -> coord.Galactocentric:
    """astropy's `Galactocentric` frame with the solar parameters the cube was built with (`ds.attrs`)."""
    attrs = ds.attrs
    try:
        return coord.Galactocentric(
            galcen_distance=float(attrs["galcen_distance_kpc"]) * u.kpc,
            z_sun=float(attrs["z_sun_kpc"]) * u.kpc,
            galcen_v_sun=coord.CartesianDifferential(np.asarray(attrs["galcen_v_sun_kms"], float) * u.km / u.s),
        )
    except KeyError as exc:
        raise DataError(
            f"The cube has no `{exc.args[0]}` attribute, so sky positions cannot be placed in its frame. Pass "
            "Galactocentric x, y, z instead, or set the attribute (CUBE_SPEC v1 requires it)."
        ) from None


def galactocentric_points(ds: xr.Dataset, coords) -> Float[np.ndarray, "n 3"]:
    """Positions in kpc, shape `(n, 3)`, in the cube's Galactocentric frame.

    `coords`: a `SkyCoord` (any frame, with distances; a `Galactocentric` one is taken as is), a
    `Quantity` of shape `(n, 3)` or `(3,)` with length units, or a tuple `(x, y, z)` of Quantities.
    """
    if isinstance(coords, (coord.SkyCoord, coord.BaseCoordinateFrame)):
        frame = coords.frame if isinstance(coords, coord.SkyCoord) else coords
        if not isinstance(frame, coord.Galactocentric):
            if frame.data.differentials.get("s") is None and _no_distance(frame):
                raise DataError(
                    "The SkyCoord has no distances, so it names directions, not positions. Give it one, e.g. "
                    "`SkyCoord(ra=..., dec=..., distance=1.2 * u.kpc)`."
                )
            frame = frame.transform_to(cube_frame(ds))
        xyz = frame.cartesian.xyz.to_value(u.kpc)
        return np.atleast_2d(np.asarray(xyz, np.float64).T.reshape(-1, 3))
    if isinstance(coords, tuple) and len(coords) == 3:
        coords = u.Quantity([u.Quantity(c) for c in coords]).T
    if not isinstance(coords, u.Quantity):
        raise TypeError(
            f"`coords` must be a SkyCoord or a Quantity of Galactocentric x, y, z; got {type(coords).__name__}. "
            "Wrap plain numbers in kpc: `np.asarray(points) * u.kpc`."
        )
    points = np.atleast_2d(coords.to_value(u.kpc)).astype(np.float64)
    if points.shape[-1] != 3 or points.ndim != 2:
        raise ValueError(f"Expected Galactocentric positions of shape (n, 3); got {coords.shape}.")
    return points


def _no_distance(frame: coord.BaseCoordinateFrame) -> bool:
    return isinstance(frame.data, coord.UnitSphericalRepresentation) or frame.data.norm().unit == u.one


def query(
    cube_or_entry: xr.Dataset | str | Path,
    coords,
    quantities: Sequence[str] | None = None,
    interval: Interval = "16-84",
    output: Literal["dataset", "quantity"] = "dataset",
    catalog: str | Path = "catalog/catalog.yaml",
) -> xr.Dataset | dict[str, u.Quantity]:
    """The cube's fields at `coords`, interpolated linearly on the grid.

    `cube_or_entry`: a cube Dataset, or a catalog entry name, store path or URL (`open_cube`);
    `coords`: see `galactocentric_points`; `quantities`: variable names (default those of
    `DEFAULT_QUANTITIES` the cube has); `interval`: `"16-84"` gives `<name>` (median over members),
    `<name>_p16` and `<name>_p84`; `"members"` gives every member's value (dim `member`).
    `output`: an xarray Dataset along dim `points` (NaN outside the volume, boolean `in_volume`), or a
    dict of astropy `Masked` Quantities (masked outside the volume).

    A point counts as inside when every grid point around it is inside `in_volume`; an
    `OutsideVolumeWarning` says how many are not.
    """
    from .catalog import open_cube

    ds = cube_or_entry if isinstance(cube_or_entry, xr.Dataset) else open_cube(cube_or_entry, catalog=catalog)
    points = galactocentric_points(ds, coords)
    names = _quantities(ds, quantities)
    index = np.arange(len(points))
    sampled = sample_along(ds[[*names, *(["in_volume"] if "in_volume" in ds else [])]], points, "points", index,
                           {"long_name": "index of the queried point"})
    inside = sampled["in_volume"].values
    if (~inside).any():
        warnings.warn(
            f"{int((~inside).sum())} of {len(points)} points lie outside the tracer volume (or less than one grid "
            "spacing inside its edge): their values are masked. `in_volume` says which.",
            OutsideVolumeWarning, stacklevel=2,
        )
    out = xr.Dataset(coords=sampled.coords, attrs={"source_cube_created": ds.attrs.get("created", "")})
    out["in_volume"] = sampled["in_volume"]
    with_members = "member" in sampled.dims
    if interval == "members" or not with_members:
        for name in names:
            out[name] = sampled[name]
    elif interval == "16-84":
        n_members = sampled.sizes["member"]
        if n_members == 1:
            warnings.warn(
                "The cube has one member: its 16–84% range equals the median and says nothing about the uncertainty. "
                "Build an ensemble (`ensemble:` in the recipe) for a range.", SingleMemberWarning, stacklevel=2,
            )
        for name in names:
            var = sampled[name]
            if "member" not in var.dims:
                out[name] = var
                continue
            with warnings.catch_warnings():  # outside the volume every member is NaN: masked below, not news
                warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
                q = var.load().quantile([0.16, 0.5, 0.84], dim="member").drop_vars("quantile")
            for i, suffix in enumerate(("", "_p16", "_p84")):
                out[name + suffix] = q.isel(quantile=[1, 0, 2][i]).assign_attrs(var.attrs)
        out = out.drop_vars([c for c in ("member", "member_kind") if c in out.coords])
    else:
        raise ValueError(f"`interval` must be '16-84' or 'members'; got {interval!r}.")
    out = out.load()
    if output == "dataset":
        return out
    if output != "quantity":
        raise ValueError(f"`output` must be 'dataset' or 'quantity'; got {output!r}.")
    mask = ~out["in_volume"].values
    result = {}
    for name, var in out.data_vars.items():
        if name == "in_volume":
            continue
        values = np.asarray(var.values, np.float64) * u.Unit(var.attrs["units"])
        result[name] = Masked(values, mask=np.broadcast_to(mask, values.shape) if var.dims[-1] == "points" else mask)
    return result


def _quantities(ds: xr.Dataset, quantities: Sequence[str] | None) -> list[str]:
    if quantities is None:
        return [name for name in DEFAULT_QUANTITIES if name in ds]
    if isinstance(quantities, str):
        quantities = [quantities]
    missing = [name for name in quantities if name not in ds]
    if missing:
        known = ", ".join(name for name in ds.data_vars if name != "in_volume")
        raise DataError(f"The cube has no variable {missing[0]!r}; it has: {known}.")
    return list(quantities)
