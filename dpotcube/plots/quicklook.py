"""Which quicklook figures a cube gets, their file names, and writing or copying them as PNGs.

Files are `<stem>.png` (the plane through the observer) and `<stem>.<name>.png` for the others;
entry names cannot contain dots, so the names never collide across entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import fsspec
import xarray as xr
import yaml
from matplotlib.figure import Figure

from ..errors import DpotcubeError
from .arcs import polar_arc_density_figure
from .lines import north_south_figure
from .meridional import meridional_acceleration_figure
from .midplane import midplane_potential_figure
from .plane import plane_figure
from .profiles import kz_figure, surface_density_figure, vcirc_figure
from .selection import selection_plane_figure
from .sky import efficiency_sky_figure

if TYPE_CHECKING:  # JAX-based: imported for annotations only, so plotting never imports JAX
    from ..sources.mocks import PlummerTruth

DPI = 90
LOAD_BELOW_BYTES = 512 * 2**20
"""Cubes smaller than this are read once into memory instead of chunk by chunk for every figure."""


@dataclass(frozen=True)
class Quicklook:
    """One figure: `draw(cube, truth)` returns it, or None where the cube lacks what it shows."""

    name: str
    draw: Callable[[xr.Dataset, PlummerTruth | None], Figure | None]

    def filename(self, stem: str) -> str:
        return f"{stem}.png" if not self.name else f"{stem}.{self.name}.png"


def _midplane(ds: xr.Dataset, truth: PlummerTruth | None) -> Figure | None:
    if "potential" not in ds:  # `pointwise` cubes have none
        return None
    """Against the mock's truth for mocks, against galpy's MWPotential2014 (Bovy 2015) for real stars."""
    if truth is not None:
        return midplane_potential_figure(ds, truth.potential, "Plummer truth (mock)")
    from ..baryons import MWPotential2014

    return midplane_potential_figure(ds, MWPotential2014.potential, "MWPotential2014 (Bovy 2015)")


QUICKLOOKS: tuple[Quicklook, ...] = (
    Quicklook("", plane_figure),
    Quicklook("accel-Rz", lambda ds, truth: meridional_acceleration_figure(ds)),
    Quicklook("polar-arc", polar_arc_density_figure),
    Quicklook("north-south", lambda ds, truth: north_south_figure(ds)),
    Quicklook("midplane-potential", _midplane),
    Quicklook("efficiency-sky", lambda ds, truth: efficiency_sky_figure(ds) if "efficiency" in ds else None),
    Quicklook("mock-selection", lambda ds, truth: selection_plane_figure(truth) if truth is not None else None),
    Quicklook("vcirc", vcirc_figure),
    Quicklook("kz", kz_figure),
    Quicklook("surface-density", surface_density_figure),
)


def write_quicklooks(ds: xr.Dataset, folder: Path, stem: str, truth: PlummerTruth | None = None) -> list[Path]:
    """Write every applicable quicklook of cube `ds` into `folder`; remove stale ones it no longer gets.

    `truth`: a mock's analytic fields, drawn for comparison. Returns the paths written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if ds.nbytes < LOAD_BELOW_BYTES:
        ds = ds.load()
    written = []
    for look in QUICKLOOKS:
        path = folder / look.filename(stem)
        fig = look.draw(ds, truth)
        if fig is None:
            path.unlink(missing_ok=True)
            continue
        fig.savefig(path, dpi=DPI)
        written.append(path)
    return written


def copy_quicklooks(source: Path, source_stem: str, target: Path | str, target_stem: str) -> list[str]:
    """Copy the quicklooks written as `source/<source_stem>*` to `target/<target_stem>*`, removing stale ones.

    `target`: a local folder or an fsspec folder URL (where `publish.store` puts the cube).
    """
    fs, root = fsspec.core.url_to_fs(str(target))
    copied = []
    for look in QUICKLOOKS:
        src, dst = Path(source) / look.filename(source_stem), f"{root.rstrip('/')}/{look.filename(target_stem)}"
        if src.exists():
            fs.put_file(str(src), dst)
            copied.append(dst)
        elif fs.exists(dst):
            fs.rm(dst)
    return copied


def truth_from_attrs(attrs: dict) -> PlummerTruth | None:
    """A mock cube's analytic truth, rebuilt from the recipe stored in its attributes; None for real data."""
    if attrs.get("data_source") != "plummer" or "recipe" not in attrs:
        return None
    from ..recipe import recipe_from_dict
    from ..sources.load import plummer_truth

    try:
        return plummer_truth(recipe_from_dict(yaml.safe_load(attrs["recipe"])).data)
    except (DpotcubeError, yaml.YAMLError, AttributeError, TypeError):
        return None  # an older or hand-edited recipe: plot without the truth
