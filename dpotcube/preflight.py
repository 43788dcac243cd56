"""Every check a build makes before its first stage, in one place: `dpotcube validate` and `build` both run it.

Grid against the tracer volume, sizes of everything the build will allocate (with the memory they
would take and the key to change), input files, the catalog, output folders and the scheduler
options. Nothing here trains, allocates a large array or writes outside the build folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

from .catalog import check_entry_available, read_catalog
from .cube.grid import Grid, make_grid
from .cube.scheduler import SchedulerSpec
from .errors import BuildError, RecipeError
from .frames import solar_position_kpc
from .methods import get_method
from .paths import check_output_path
from .progress import console
from .recipe import Recipe
from .sources.table import check_table_file
from .stores import check_url, is_url

ALLOW_LARGE_ENV = "DPOTCUBE_ALLOW_LARGE"
"""Set to 1 (or pass `--allow-large`) to lift the size limits below on purpose."""


@dataclass(frozen=True)
class Limits:
    """Largest sizes a build accepts without `--allow-large` (each is far above any published recipe)."""

    cube_values: int = 100_000_000  # grid points × members, per variable (float32: 400 MB each)
    collocation_points: int = 20_000_000  # n_positions × velocities_per_position (15 float32 each: 1.2 GB)
    mock_stars: int = 20_000_000  # data.n_stars of a mock (6 float64 each and the draws behind them)
    diagnostic_velocities: int = 50_000_000  # diagnostics.velocities
    mcmc_steps: int = 1_000_000  # diagnostics.mcmc_steps (× 32 walkers)
    batch: int = 1_000_000  # any batch size
    pointwise_evaluations: int = 50_000_000  # pointwise.batch × n_velocities × flow members, per jitted call


LIMITS = Limits()
LIMIT_KEYS = {
    "cube_values": ("grid points × ensemble members (per variable)", "`cube.spacing_kpc`, `cube.half_width_kpc`, `ensemble`"),
    "collocation_points": ("collocation points", "`density.collocation.n_positions` × `velocities_per_position`"),
    "mock_stars": ("stars of a mock", "`data.n_stars`"),
    "diagnostic_velocities": ("velocity draws of the diagnostics", "`diagnostics.velocities`"),
    "mcmc_steps": ("MCMC steps per walker of the gNFW fit", "`diagnostics.mcmc_steps`"),
    "batch": ("points in any one batch", ("`density.*.batch_size`, `fields.batch_size`, `fields.laplacian_batch`, "
                                          "`density.collocation.chunk_size`")),
    "pointwise_evaluations": ("flow evaluations per jitted call of `pointwise`",
                              "`fields.pointwise.batch` × `n_velocities` × `density.ensemble.members`"),
}
"""What each limit counts, and the keys that set it (docs/recipes.md)."""
HARD_CUBE_VALUES = 10**12
"""Beyond this even `--allow-large` refuses: the grid's index arithmetic itself would not fit."""
_SCHEDULER = re.compile(r"^((tcp|tls|ucx|ws|wss)://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$|^inproc://\S+$")
"""A dask.distributed address: `[scheme://]host:port` (or `inproc://…`); Dask's own names (`processes`) are not."""


@dataclass
class Plan:
    """What a build will do, known before any work: its folder, grid, sizes and warnings."""

    build_dir: Path
    grid: Grid
    sizes: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def allow_large() -> bool:
    return os.environ.get(ALLOW_LARGE_ENV, "").strip().lower() in ("1", "true", "yes")


@contextlib.contextmanager
def allowing_large(flag: bool) -> Iterator[None]:
    """Inside the block, `--allow-large` holds (when `flag`); the environment is restored afterwards."""
    before = os.environ.get(ALLOW_LARGE_ENV)
    if flag:
        os.environ[ALLOW_LARGE_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ALLOW_LARGE_ENV, None)
        else:
            os.environ[ALLOW_LARGE_ENV] = before


def preflight(
    recipe: Recipe, out_dir: Path | None = None, replace: bool = False, on: SchedulerSpec | None = None,
    repair: bool = False,
) -> Plan:
    """Run every pre-training check of a build of `recipe` into `out_dir` (default `builds/<name>/`).

    Raises a `DpotcubeError` naming the key, file or option and the fix. `repair` (set by `build`, not by
    `validate`) moves a corrupt `manifest.json` aside so the build starts clean; otherwise that is a warning.
    """
    plan_warnings: list[str] = []
    get_method(recipe.fields.method).check(recipe)  # what the method needs of the recipe
    check_scheduler(on or SchedulerSpec())
    build_dir = check_build_folder(Path(out_dir or Path("builds") / recipe.name))
    check_catalog_path(recipe.publish.catalog)
    if recipe.publish.store is not None:
        check_url(recipe.publish.store, "publish.store")
        if recipe.publish.store.startswith("file://"):
            check_output_path(Path(recipe.publish.store.removeprefix("file://")), "store (`publish.store`)")
    check_entry_available(recipe.publish.catalog, recipe.entry_name, recipe.name, replace)
    plan_warnings += _published_store_warnings(recipe)
    sizes = check_sizes(recipe, allow_large())
    observer = solar_position_kpc(recipe.data.frame)
    grid = make_grid(recipe.cube, observer, recipe.data.volume_radius_kpc)
    check_split(recipe)
    if recipe.data.source == "table" and recipe.data.table is not None:
        check_table_file(Path(recipe.data.table.path))
    note = check_manifest(build_dir / "manifest.json", repair)
    if note:
        plan_warnings.append(note)
    for note in plan_warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(note)}", highlight=False, soft_wrap=True)
    return Plan(build_dir, grid, sizes, plan_warnings)


def check_scheduler(on: SchedulerSpec) -> None:
    """`--workers` a positive count, `--scheduler` an address such as `tcp://host:8786`; not both."""
    if on.workers is not None and (isinstance(on.workers, bool) or not isinstance(on.workers, int) or on.workers < 1):
        raise BuildError(f"--workers must be a positive number of worker processes (got {on.workers!r}).")
    if on.address is not None:
        if not _SCHEDULER.match(on.address) or on.address.count("://") > 1:
            raise BuildError(
                f"--scheduler {on.address[:80]!r} is not a Dask scheduler address; give one such as "
                "`tcp://127.0.0.1:8786` (printed by `dask scheduler`), or drop --scheduler to use local threads."
            )
        if on.workers is not None:
            raise BuildError("--scheduler and --workers exclude each other: connect to a scheduler, or start local workers.")


def check_build_folder(path: Path) -> Path:
    """The build folder resolved: inside the allowed roots, not a file, and writable."""
    resolved = check_output_path(path, "build folder (--out)")
    if resolved.exists() and not resolved.is_dir():
        raise BuildError(f"The build folder (--out) {path} is a file, not a folder. Choose another --out, or move the file.")
    _check_writable(resolved, f"The build folder (--out) {path}", "Choose another --out")
    return resolved


def check_catalog_path(path: Path) -> Path:
    """The catalog file resolved: allowed, not a folder, its folder (and `cubes/` beside it) writable; readable YAML."""
    resolved = check_output_path(path, "catalog (`publish.catalog`)")
    if resolved.is_dir():
        raise BuildError(
            f"The catalog (`publish.catalog`) {path} is a folder; it must be a YAML file, e.g. `{Path(path) / 'catalog.yaml'}`."
        )
    _check_writable(resolved.parent, f"The catalog folder of `publish.catalog` ({path})", "Point `publish.catalog` elsewhere")
    if resolved.exists():
        read_catalog(resolved)
    return resolved


def _check_writable(folder: Path, what: str, fix: str) -> None:
    """Probe with a temporary file in `folder`, or in its nearest existing parent when it does not exist yet."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise BuildError(f"{what} cannot be made: {probe} is a file, not a folder. {fix}.")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise BuildError(f"{what} is not writable ({probe}: {exc.strerror}). {fix}, or fix the folder's permissions.") from None


def check_sizes(recipe: Recipe, large_ok: bool = False) -> dict[str, str]:
    """Refuse, before any array exists, what would not fit; returns each size and its memory for the plan."""
    sizes: dict[str, str] = {}

    def check(key: str, count: float, limit: int, bytes_each: float, what: str, hint: str = "") -> None:
        memory = _bytes(count * bytes_each)
        sizes[key] = f"{count:,.0f} {what} ({memory})"
        if count > HARD_CUBE_VALUES or (count > limit and not large_ok):
            raise RecipeError(
                f"[recipe -> {' -> '.join(key.split('.'))}] the build would hold {count:.4g} {what} ({memory}), above the "
                f"limit of {limit:,}{'' if count <= HARD_CUBE_VALUES else ' (and beyond what any machine holds)'}. "
                f"{hint or f'Lower `{key}`'}, or pass --allow-large (or set ${ALLOW_LARGE_ENV}=1) to go ahead on purpose."
            )

    cube, data, density, fields = recipe.cube, recipe.data, recipe.density, recipe.fields
    half = cube.half_width_kpc or data.volume_radius_kpc
    per_axis = 2 * math.floor(min(half / cube.spacing_kpc, 1e13) + 1e-9) + 1
    members = recipe.ensemble.total
    check("cube.spacing_kpc", float(per_axis) ** 3 * members, LIMITS.cube_values, 4 * 12, "grid values per variable",
          f"Raise `cube.spacing_kpc` or lower `cube.half_width_kpc` ({per_axis}³ points × {members} member(s), "
          "~12 float32 variables)")
    col = density.collocation
    check("density.collocation.n_positions", float(col.n_positions) * col.velocities_per_position,
          LIMITS.collocation_points, 15 * 4, "collocation points",
          "Lower `density.collocation.n_positions` or `velocities_per_position`")
    if data.source == "plummer":
        check("data.n_stars", float(data.n_stars), LIMITS.mock_stars, 6 * 8 * 4, "mock stars")
    if recipe.diagnostics.enabled:
        check("diagnostics.velocities", float(recipe.diagnostics.velocities), LIMITS.diagnostic_velocities, 3 * 8 * 8,
              "diagnostic velocity draws")
        check("diagnostics.mcmc_steps", float(recipe.diagnostics.mcmc_steps) * 32, LIMITS.mcmc_steps * 32, 8 * 8,
              "MCMC samples (32 walkers)")
    for key, value in (("density.velocity.batch_size", density.velocity.batch_size),
                       ("density.position.batch_size", getattr(density.position, "batch_size", 0)),  # legendre: none
                       ("fields.batch_size", fields.batch_size), ("fields.laplacian_batch", fields.laplacian_batch),
                       ("density.collocation.chunk_size", col.chunk_size)):
        check(key, float(value), LIMITS.batch, 15 * 4 * 64, "points per batch")
    pw = fields.pointwise  # checked whatever the method: a section's sizes are valid or not on their own
    check("fields.pointwise.batch", float(pw.batch) * pw.n_velocities * density.ensemble.members,
          LIMITS.pointwise_evaluations, 6 * 4 * 16, "flow evaluations per call",
          "Lower `fields.pointwise.batch` or `n_velocities`")
    return sizes


def check_split(recipe: Recipe) -> None:
    """Every flow's validation split leaves stars on both sides (mocks: known before reading any stars)."""
    if recipe.data.source != "plummer":
        return
    n = recipe.data.n_stars
    for kind, spec in (("velocity", recipe.density.velocity), ("position", recipe.density.position)):
        if spec is None:
            continue
        n_val = max(round(spec.val_fraction * n), 1)
        if n - n_val < 1:
            raise RecipeError(
                f"[recipe -> density -> {kind} -> val_fraction] {spec.val_fraction} of {n} stars leaves no training "
                "stars; lower it (e.g. 0.1)."
            )


def check_manifest(path: Path, repair: bool) -> str | None:
    """A `manifest.json` that is not a JSON mapping of stage records: a warning, and (with `repair`) moved aside."""
    if not path.exists():
        return None
    try:
        stages = json.loads(path.read_text())
        good = isinstance(stages, dict) and all(
            isinstance(s, dict) and isinstance(s.get("key"), str) and isinstance(s.get("checksum"), str)
            for s in stages.values()
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        good = False
    if good:
        return None
    if not path.is_file():
        raise BuildError(f"{path} is not a file. Remove it; the build then starts afresh.")
    if not repair:
        return f"{path} is corrupt: `dpotcube build` will move it aside and redo every stage."
    aside = path.with_name(f"manifest.corrupt-{time.strftime('%Y%m%dT%H%M%S')}.json")
    path.rename(aside)
    return f"{path} was corrupt and is kept as {aside.name}; every stage is redone."


def _published_store_warnings(recipe: Recipe) -> list[str]:
    """A catalog entry of this recipe whose local store is gone or half-copied is published again (a warning)."""
    catalog = Path(recipe.publish.catalog)
    if recipe.publish.store is not None or not catalog.is_file():
        return []
    entries = read_catalog(catalog).entries
    if recipe.entry_name not in entries:
        return []
    store = catalog.parent / "cubes" / f"{recipe.entry_name}.zarr"
    if is_url(str(store)) or (store / "zarr.json").is_file():
        return []
    state = "is missing" if not store.exists() else "is incomplete (no zarr.json)"
    return [f"the published cube of entry `{recipe.entry_name}` ({store}) {state}; this build publishes it again."]


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} EB"
