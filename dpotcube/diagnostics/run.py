"""`run_diagnostics`: every diagnostic of a cube, written as `diagnostics.json`, `diagnostics.md` and PNGs."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Literal

import fsspec
import numpy as np
import xarray as xr
from jaxtyping import Float

from .. import accessor  # noqa: F401  (registers ds.dpot)
from ..constants import SUN_POSITION_KPC
from ..curves import observer_kpc
from ..errors import DataError
from ..plots._common import title_prefix
from ..plots.quicklook import DPI, LOAD_BELOW_BYTES, truth_from_attrs
from .figures import gnfw_figure, local_density_figure, north_south_figure, residual_figure
from .gnfw import gnfw_diagnostic
from .gradients import GradientSource, PlummerGradients, build_gradients, ensemble_combine
from .local_density import local_density
from .report import markdown
from .residual import residual_at_sun
from .solar import TO_1E10_M_S2, lim_axes, solar_acceleration
from .symmetry import north_south

AccelUnits = Literal["km2 s-2 kpc-1", "1e-10 m s-2"]
AccelAxes = Literal["galactocentric", "lim2025"]
FILES = ("diagnostics.json", "diagnostics.md", "diagnostics.north-south.png", "diagnostics.local-density.png",
         "diagnostics.gnfw.png", "diagnostics.dlnf-dt.png")


def parse_acceleration(
    text: str, units: str = "km2 s-2 kpc-1", axes: str = "galactocentric", observer: Float[np.ndarray, "3"] | None = None
) -> Float[np.ndarray, "3"]:
    """`"ax,ay,az"` in `units` and `axes` → Galactocentric a in km² s⁻² kpc⁻¹.

    `units`: `km2 s-2 kpc-1` or `1e-10 m s-2`; `axes`: `galactocentric` (astropy's) or `lim2025`
    (x from the Galactic centre through the Sun, z north; needs the `observer`).
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = np.array([float(p) for p in parts], np.float64)
    except ValueError:
        values = np.array([])
    if values.shape != (3,) or not np.all(np.isfinite(values)):
        raise DataError(
            f"--accel must be three finite numbers separated by commas, e.g. --accel \"4700,0,-12\"; got {text!r}."
        )
    if units not in ("km2 s-2 kpc-1", "1e-10 m s-2"):
        raise DataError(f"--accel-units must be `km2 s-2 kpc-1` or `1e-10 m s-2`; got {units!r}.")
    if axes not in ("galactocentric", "lim2025"):
        raise DataError(f"--accel-axes must be `galactocentric` or `lim2025`; got {axes!r}.")
    if units == "1e-10 m s-2":
        values = values / TO_1E10_M_S2
    if axes == "lim2025":
        values = lim_axes(np.asarray(observer if observer is not None else SUN_POSITION_KPC)).T @ values
    return values


def run_diagnostics(
    cube: xr.Dataset,
    out: str | Path,
    build_dir: Path | None = None,
    accel: Float[np.ndarray, "3"] | None = None,
    gradients: GradientSource | None = None,
    n_velocities: int = 1_000_000,
    mcmc_steps: int = 8000,
    seed: int = 0,
    name: str = "cube",
) -> dict:
    """Run every diagnostic on `cube` and write `FILES` into the folder or fsspec folder URL `out`.

    The ∂ ln f/∂t residual needs the density model: `gradients` if given, else the build folder's flows
    (`build_dir`), else a mock's analytic truth (from the cube's recipe); otherwise it is skipped with a
    note. It is evaluated under the cube's ball-averaged a⊙ (member median) and, if given, `accel`
    (Galactocentric, km² s⁻² kpc⁻¹; see `parse_acceleration`). Returns the JSON's content.
    """
    ds = cube.load() if cube.nbytes < LOAD_BELOW_BYTES else cube
    notes: list[str] = []
    accelerations: dict[str, Float[np.ndarray, "3"]] = {}
    try:
        solar = solar_acceleration(ds, seed=seed)
        accelerations["cube a⊙ (member median)"] = np.array(
            [solar["galactocentric_kms2_per_kpc"][c]["median"] for c in "xyz"]
        )
    except DataError as exc:  # a grid too coarse or a volume without the observer: the rest still runs
        solar = {"skipped": str(exc)}
        notes.append(f"a⊙ skipped: {exc}")
    has_density = "density" in ds  # `pointwise` with `density: false` writes a only
    no_density = "the cube has no density (e.g. `pointwise` with `fields.pointwise.density: false`)"
    density = local_density(ds) if has_density else {"skipped": no_density}
    notes.append(density.get("note") if has_density else f"Local density and gNFW fit skipped: {no_density}.")
    symmetry = north_south(ds)
    if accel is not None:
        accelerations["user-given"] = np.asarray(accel, np.float64)
    source, why = _gradient_source(ds, build_dir, gradients)
    if source is not None and not accelerations:
        source, why = None, "neither the cube's a⊙ nor a user-given --accel is available"
    samples: dict[str, np.ndarray] = {}
    if source is None:
        residual: dict = {"skipped": why}
        notes.append(f"∂ ln f/∂t skipped: {why}.")
    else:
        residual, samples = residual_at_sun(source, observer_kpc(ds), accelerations, n_velocities, seed)
    gnfw = gnfw_diagnostic(ds, seed=seed, n_steps=mcmc_steps)[0] if has_density else {"skipped": no_density}
    result = {
        "cube": name,
        "summary_line": f"{title_prefix(ds) or 'cube'} · {ds.sizes.get('member', 1)} member(s) · "
                        f"observer {np.round(observer_kpc(ds), 4).tolist()} kpc",
        "attrs": {k: ds.attrs.get(k) for k in ("method", "data_source", "n_tracers", "recipe_sha256", "created")},
        "solar_acceleration": solar,
        "local_density": density,
        "north_south": symmetry,
        "dlnf_dt": residual,
        "gnfw": gnfw,
        "notes": [n for n in notes if n],
    }
    title = title_prefix(ds) or name
    figures = {"diagnostics.north-south.png": north_south_figure(symmetry, title)}
    if has_density:
        figures["diagnostics.local-density.png"] = local_density_figure(density, title)
        figures["diagnostics.gnfw.png"] = gnfw_figure(gnfw, title)
    if samples:
        figures["diagnostics.dlnf-dt.png"] = residual_figure(residual, samples, title)
    result["files"] = [f for f in FILES if f in figures or not f.endswith(".png")]
    _write(out, result, figures)
    return result


def _gradient_source(
    ds: xr.Dataset, build_dir: Path | None, gradients: GradientSource | None
) -> tuple[GradientSource | None, str]:
    if gradients is not None:
        return gradients, gradients.description
    why = "no build folder was given (--build DIR)"
    if build_dir is not None:
        source, why = build_gradients(Path(build_dir), ensemble_combine(ds.attrs))
        if source is not None:
            return source, why
    truth = truth_from_attrs(ds.attrs)
    if truth is not None:
        return PlummerGradients(truth), "Plummer truth"
    return None, f"{why}, and the cube is not an analytic mock; pass --build with the cube's build folder"


def _write(out: str | Path, result: dict, figures: dict) -> None:
    """The JSON, the Markdown and the PNGs into `out`, a local folder or an fsspec folder URL."""
    fs, root = fsspec.core.url_to_fs(str(out))
    fs.makedirs(root, exist_ok=True)
    root = root.rstrip("/")
    with fs.open(f"{root}/diagnostics.json", "w") as f:
        json.dump(_finite(result), f, indent=1, allow_nan=False)
    with fs.open(f"{root}/diagnostics.md", "w") as f:
        f.write(markdown(result))
    for filename, fig in figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
        with fs.open(f"{root}/{filename}", "wb") as f:
            f.write(buffer.getvalue())
    for stale in (f"{root}/{f}" for f in FILES if f.endswith(".png") and f not in figures):
        if fs.exists(stale):  # from an earlier run on a cube that had it
            fs.rm(stale)


def _finite(value: object) -> object:
    """NaN and ±inf → None (strict JSON), recursively."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    return value
