"""The `dpotcube` command line: thin wrappers over the package's functions."""

from __future__ import annotations

import functools
import inspect
import json
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .errors import DpotcubeError
from .progress import console


def program() -> None:
    """The `dpotcube` command (and `python -m dpotcube`): the CLI as a process of its own."""
    from . import crash

    crash.IS_PROGRAM = True
    app(prog_name="dpotcube")


app = typer.Typer(help="Build released 3-D maps of the Galactic potential from stellar phase space.", no_args_is_help=True)
catalog_app = typer.Typer(help="Inspect the Intake catalog of published cubes.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML file.")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a recipe value, e.g. `--set fields.steps=2000` (repeatable).")
]
CatalogOpt = Annotated[Path, typer.Option(help="Intake catalog file.")]


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        console.print(f"dpotcube {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Build released 3-D maps of the Galactic potential from stellar phase space."""
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected error.")]
AllowLargeOpt = Annotated[
    bool, typer.Option("--allow-large", help="Lift the size limits (grid, collocation set, stars, batches) on purpose.")
]


def _user_errors(command):
    """Every command ends in one line on failure, never a raw traceback (unless `--debug`).

    A `DpotcubeError` prints its message and exits 2; Ctrl-C says what was interrupted, that finished
    stages are kept and how to resume, and exits 130; any other exception names the error, the stage
    and a log file with the traceback, and exits 1. Adds a `--debug` option to the command.
    """
    from . import crash

    @functools.wraps(command)
    def wrapper(*args, debug: bool = False, **kwargs):
        crash.context()
        crash.remember_interrupts()
        try:
            return command(*args, **kwargs)
        except DpotcubeError as exc:
            console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            console.print(f"[bold red]error:[/bold red] {escape(crash.interrupted())}", highlight=False, soft_wrap=True)
            crash.exit_now_if_program(130)
            raise typer.Exit(code=130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            if debug:
                raise
            console.print(f"[bold red]error:[/bold red] {escape(crash.crashed(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None

    signature = inspect.signature(command, eval_str=True)
    debug = inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOpt)
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), debug])
    wrapper.__annotations__ = {**{k: p.annotation for k, p in signature.parameters.items()}, "debug": DebugOpt}
    return wrapper


def _resume_command(recipe: Path, set_: list[str] | None, out: Path | None, extra: list[str]) -> str:
    words = ["dpotcube", "build", str(recipe), *(w for s in set_ or [] for w in ("--set", s))]
    return shlex.join([*words, *(["--out", str(out)] if out else []), *extra])


def _scheduler_spec(scheduler: str | None, workers: int | None):
    from .cube.scheduler import SchedulerSpec
    from .preflight import check_scheduler

    spec = SchedulerSpec(address=scheduler, workers=workers)
    check_scheduler(spec)
    return spec


@app.command()
@_user_errors
def build(
    recipe: RecipeArg,
    set_: SetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Build folder (default builds/<name>/).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo every stage, even if up to date.")] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Let the cube replace a catalog entry made by another recipe.")
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Fit the ensemble members and evaluate the cube on this dask.distributed "
                     "scheduler address."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Fit the ensemble members and evaluate the cube on a local "
                                  "dask.distributed cluster of this many worker processes.")
    ] = None,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Run a recipe end to end: stars → flow → fields → ensemble members → cube → catalog entry."""
    from . import crash
    from .pipeline import build as run_build
    from .preflight import allowing_large
    from .recipe import load_recipe

    on = _scheduler_spec(scheduler, workers)  # before the recipe: a bad option costs nothing
    parsed, text = load_recipe(recipe, set_ or [])
    extra = [*(["--replace"] if replace else []), *(["--allow-large"] if allow_large else [])]
    extra += [*(["--scheduler", scheduler] if scheduler else []), *(["--workers", str(workers)] if workers else [])]
    crash.context(Path(out or Path("builds") / parsed.name), _resume_command(recipe, set_, out, extra))
    with allowing_large(allow_large):
        result = run_build(parsed, text, out, force=force, replace=replace, on=on, stage_monitor=crash.stage)
    console.print(f"cube: {result.published_path}  (catalog entry `{result.entry}` in {parsed.publish.catalog})")
    if result.scores:
        console.print("against the mock's truth, inside the volume: " + json.dumps(result.scores))


@app.command("fetch-gaia")
@_user_errors
def fetch_gaia(
    recipe: RecipeArg,
    set_: SetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Build folder (default builds/<name>/).")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Query again even where the cache is valid.")] = False,
) -> None:
    """Download (or verify the cached) Gaia DR3 parent sample of a `data.source: gaia` recipe."""
    from .errors import RecipeError
    from .recipe import load_recipe
    from .sources.gaia import fetch_gaia as run_fetch
    from .sources.load import GAIA_CACHE

    parsed, _ = load_recipe(recipe, set_ or [])
    if parsed.data.source != "gaia":
        raise RecipeError(f"Recipe {recipe} has `data.source: {parsed.data.source}`; fetch-gaia needs `gaia`.")
    cache = Path(out or Path("builds") / parsed.name) / GAIA_CACHE
    files = run_fetch(parsed.data.gaia, cache, refresh=refresh, log=console.print)
    console.print(f"gaia parent sample: {len(files)} file(s) in {cache}", highlight=False)


@app.command()
@_user_errors
def validate(
    recipe: RecipeArg,
    set_: SetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Build folder (default builds/<name>/).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="As for `build`.")] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="As for `build`.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="As for `build`.")] = None,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Check a recipe as `build` would before any work (files, grid, sizes, catalog, folders) and print it with
    every default filled in."""
    import yaml

    from .preflight import allowing_large, preflight
    from .recipe import load_recipe

    on = _scheduler_spec(scheduler, workers)
    parsed, _ = load_recipe(recipe, set_ or [])
    with allowing_large(allow_large):
        plan = preflight(parsed, out, replace=replace, on=on)
    console.print(yaml.safe_dump(parsed.model_dump(mode="json"), sort_keys=False), highlight=False, markup=False)
    for key, size in plan.sizes.items():
        console.print(f"size: {key}: {size}", highlight=False, markup=False)
    console.print(f"build folder: {plan.build_dir}; grid {'×'.join(map(str, plan.grid.shape))}", highlight=False)
    console.print(f"[green]recipe {recipe} is valid[/green]", soft_wrap=True)  # a long path stays one copyable line


@app.command()
@_user_errors
def plot(
    cube: Annotated[str, typer.Argument(help="Catalog entry name, or Zarr store path or fsspec URL.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNGs.")] = Path("plots"),
    catalog: CatalogOpt = Path("catalog/catalog.yaml"),
) -> None:
    """Write a cube's quicklook PNGs: the plane through the Sun, a in the R–z plane, the published lines and arcs, …"""
    from .catalog import open_cube
    from .paths import check_output_path
    from .plots import truth_from_attrs, write_quicklooks

    ds = open_cube(cube, catalog=catalog)
    stem = Path(cube.rstrip("/")).name.removesuffix(".zarr")  # an entry name, or a store path's or URL's last part
    folder = check_output_path(out, "plot folder (--out)")
    for path in write_quicklooks(ds, folder, stem, truth_from_attrs(ds.attrs)):
        console.print(str(path), highlight=False, markup=False)


@app.command()
@_user_errors
def diagnose(
    cube: Annotated[str, typer.Argument(help="Catalog entry name, or Zarr store path or fsspec URL.")],
    build: Annotated[
        Path | None, typer.Option("--build", help="Build folder with the cube's flows (default: the cube's folder, if a build).")
    ] = None,
    accel: Annotated[
        str | None, typer.Option("--accel", help="An independent a⊙ for the ∂ ln f/∂t test, \"ax,ay,az\".")
    ] = None,
    accel_units: Annotated[
        str, typer.Option("--accel-units", help="Units of --accel: `km2 s-2 kpc-1` or `1e-10 m s-2`.")
    ] = "km2 s-2 kpc-1",
    accel_axes: Annotated[
        str, typer.Option("--accel-axes", help="Axes of --accel: `galactocentric` (astropy's) or `lim2025` (Sun on +x).")
    ] = "galactocentric",
    out: Annotated[
        str | None, typer.Option("--out", help="Folder or fsspec URL (default: beside the cube, `<name>.diagnostics`).")
    ] = None,
    velocities: Annotated[
        int | None, typer.Option("--velocities", min=1000, help="Velocity draws for ∂ ln f/∂t (default: the recipe's).")
    ] = None,
    mcmc_steps: Annotated[
        int | None, typer.Option("--mcmc-steps", min=100, help="gNFW MCMC steps (default: the recipe's).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of every random draw (default: the one `dpotcube build` used, "
                                 "so the numbers are the build's).")
    ] = None,
    catalog: CatalogOpt = Path("catalog/catalog.yaml"),
) -> None:
    """The published diagnostics: a⊙, local ρ and ρ_DM, north–south symmetry, ∂ ln f/∂t at the Sun, a gNFW fit."""
    from .catalog import open_cube
    from .diagnostics import parse_acceleration, run_diagnostics
    from .diagnostics.gradients import is_build_folder
    from .diagnostics_settings import build_diagnostics_settings
    from .errors import BuildError
    from .paths import check_output_path
    from .stores import check_url, is_url

    ds = open_cube(cube, catalog=catalog)
    location = str(ds.encoding.get("source") or cube).rstrip("/")
    parent, stem = location.rsplit("/", 1) if "/" in location else (".", location)
    stem = stem.removesuffix(".zarr")
    local_parent = None if is_url(parent) and not parent.startswith("file://") else Path(parent.removeprefix("file://"))
    in_build = local_parent is not None and is_build_folder(local_parent)
    if build is None and in_build:
        build = local_parent
    elif build is not None and not is_build_folder(build):
        raise BuildError(f"--build {build} is not a dpotcube build folder (no manifest.json). Pass the folder `dpotcube build` wrote.")
    if out is None:
        out = str(local_parent / "diagnostics") if in_build else f"{parent}/{stem}.diagnostics"
    if is_url(out) and not out.startswith("file://"):
        check_url(out, "--out")
    else:
        check_output_path(Path(out.removeprefix("file://")), "diagnostics folder (--out)")
    observer = ds.attrs.get("observer_position_kpc")
    a = None if accel is None else parse_acceleration(accel, accel_units, accel_axes, observer)
    settings = build_diagnostics_settings(ds.attrs)
    result = run_diagnostics(ds, out, build, accel=a, name=stem,
                             n_velocities=velocities if velocities is not None else settings["velocities"],
                             mcmc_steps=mcmc_steps if mcmc_steps is not None else settings["mcmc_steps"],
                             seed=seed if seed is not None else settings["seed"])
    for name in result["files"]:
        console.print(f"{out.rstrip('/')}/{name}", highlight=False, markup=False)
    for note in result["notes"]:
        console.print(f"note: {note}", highlight=False, markup=False)


@app.command()
@_user_errors
def query(
    cube: Annotated[str, typer.Argument(help="Catalog entry name, or Zarr store path or URL.")],
    ra: Annotated[list[float] | None, typer.Option("--ra", help="Right ascension, deg (ICRS; repeatable).")] = None,
    dec: Annotated[list[float] | None, typer.Option("--dec", help="Declination, deg (repeatable).")] = None,
    distance: Annotated[list[float] | None, typer.Option("--distance", help="Distance, kpc (repeatable).")] = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="A table (CSV, ECSV, FITS, …) with ra, dec (deg) and distance (kpc) "
                                  "columns, or Galactocentric x, y, z (kpc).")
    ] = None,
    quantity: Annotated[
        list[str] | None, typer.Option("--quantity", "-q", help="Variable to report (repeatable; default Φ, a, ρ, ρ_DM).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the result here (CSV or ECSV) instead of printing.")] = None,
    catalog: CatalogOpt = Path("catalog/catalog.yaml"),
) -> None:
    """Φ, a, ρ (median and 16–84% over members) at sky positions, interpolated on the cube's grid."""
    import warnings

    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table as AstropyTable

    from .catalog import open_cube
    from .errors import DataError
    from .lookup import OutsideVolumeWarning
    from .lookup import query as run_query

    if table is not None:
        rows = AstropyTable.read(table)
        names = set(rows.colnames)
        if {"ra", "dec", "distance"} <= names:
            coords = SkyCoord(ra=_column(rows, "ra", u.deg), dec=_column(rows, "dec", u.deg),
                              distance=_column(rows, "distance", u.kpc))
        elif {"x", "y", "z"} <= names:
            coords = tuple(_column(rows, c, u.kpc) for c in "xyz")
        else:
            raise DataError(f"{table} needs columns ra, dec, distance (deg, deg, kpc) or x, y, z (kpc); it has "
                            f"{', '.join(rows.colnames)}.")
    else:
        if not (ra and dec and distance) or not len(ra) == len(dec) == len(distance):
            raise DataError("Give --ra, --dec and --distance once per position (the same number of each), or --table.")
        coords = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, distance=distance * u.kpc)
    ds = open_cube(cube, catalog=catalog)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OutsideVolumeWarning)
        result = run_query(ds, coords, quantities=quantity)
    for w in caught:
        console.print(f"note: {w.message}", highlight=False, markup=False)
    columns = {c: result[c].values for c in ("x", "y", "z")}
    columns |= {name: result[name].values for name in result.data_vars}
    units = {c: "kpc" for c in "xyz"} | {n: result[n].attrs.get("units", "") for n in result.data_vars if n != "in_volume"}
    rows = AstropyTable(columns, units={k: v for k, v in units.items() if v})
    if out is not None:
        rows.write(out, overwrite=True, format="ascii.ecsv" if out.suffix == ".ecsv" else None)
        console.print(str(out), highlight=False, markup=False)
    else:
        typer.echo("\n".join(rows.pformat(max_lines=-1, max_width=-1)))


def _column(rows, name: str, unit):
    import astropy.units as u

    column = rows[name]
    return u.Quantity(column).to(unit) if column.unit is not None else u.Quantity(column, unit)


@catalog_app.command("list")
@_user_errors
def catalog_list(catalog: CatalogOpt = Path("catalog/catalog.yaml")) -> None:
    """List the cubes in the catalog."""
    from .catalog import list_entries

    entries = list_entries(catalog)
    table = Table("entry", "method", "n_tracers", "source", "created")
    for name, meta in sorted(entries.items()):
        table.add_row(name, str(meta.get("method")), str(meta.get("n_tracers")), str(meta.get("data_source")), str(meta.get("created")))
    console.print(table if entries else f"{catalog}: no entries yet")


@catalog_app.command("show")
@_user_errors
def catalog_show(name_or_path: Annotated[str, typer.Argument(help="Entry name or Zarr store path.")], catalog: CatalogOpt = Path("catalog/catalog.yaml")) -> None:
    """Open one cube and print its variables, grid and provenance."""
    from .catalog import open_cube

    ds = open_cube(name_or_path, catalog=catalog)
    console.print(ds.drop_attrs() if hasattr(ds, "drop_attrs") else ds, highlight=False, markup=False)
    for key in ("method", "data_source", "n_tracers", "created", "dpotcube_version", "recipe_sha256"):
        console.print(f"{key}: {ds.attrs.get(key)}", highlight=False, markup=False)
