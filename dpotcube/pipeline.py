"""A recipe's build: stars → the nominal member's fit (flows → collocation → fields) → ensemble members → cube →
scores, quicklooks, diagnostics → catalog entry, each stage resumable through the manifest (`plan/`).

Each stage records a key (a hash of its recipe section, its seed and its inputs' checksums) and its outputs'
checksums in `manifest.json`; a re-run skips a stage whose key matches and whose outputs still verify.
"""

from __future__ import annotations

import json
import platform
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__
from .catalog import publish_cube
from .compile_cache import enable_compile_cache
from .constants import CUBE_VERSION, G_KPC_KM2_S2_PER_MSUN
from .cube.grid import Grid
from .cube.scheduler import SchedulerSpec, scheduler
from .cube.store import add_baryons, cube_dataset, write_cube
from .diagnostics import run_diagnostics
from .members import Member, member_files, plan_members, require_errors, train_member
from .methods import CubeInputs, FitFiles, Method, get_method
from .plan import BuildLayout, Manifest, Runner, Stage, fit_stages, stage_seed
from .plan.runner import StageMonitor, dump
from .plots import copy_quicklooks, write_quicklooks
from .preflight import preflight
from .progress import console
from .published import publish_fields
from .recipe import Recipe, recipe_sha256
from .release import PATTERN_SPEED_CITATION
from .sources import PhaseSpaceTable, load_stars
from .sources.chunks import StarChunks, open_stars
from .sources.gaia import fetch_gaia
from .sources.load import plummer_truth
from .stores import copy_to_url, join
from .truth import score_against_truth


@dataclass(frozen=True)
class BuildResult:
    build_dir: Path
    cube_path: Path
    published_path: Path | str
    entry: str
    scores: dict[str, float] | None


def build(
    recipe: Recipe,
    recipe_text: str,
    out_dir: Path | None = None,
    force: bool = False,
    replace: bool = False,
    on: SchedulerSpec = SchedulerSpec(),
    stage_monitor: StageMonitor = nullcontext,
) -> BuildResult:
    """Run every stage of `recipe` in `out_dir` (default `builds/<name>/`), skipping finished ones.

    `force` redoes every stage; `replace` lets the cube replace a catalog entry made by another
    recipe; `on` names the Dask scheduler for the cube stage (local threads by default);
    `stage_monitor(stage)` is entered around each stage that runs (benchmarks measure memory with it).
    """
    enable_compile_cache()
    method = get_method(recipe.fields.method)
    plan = preflight(recipe, out_dir, replace=replace, on=on, repair=True)  # every check `validate` makes, first
    layout, grid = BuildLayout(plan.build_dir), plan.grid
    layout.root.mkdir(parents=True, exist_ok=True)
    runner = Runner(Manifest(layout.manifest), force, stage_monitor)
    stars = run_stars(recipe, layout, runner)
    nominal = layout.fit_files(recipe, method)
    seeds = {stage: stage_seed(recipe.seed, stage) for stage in ("flow", "collocation", "fields")}
    for stage in fit_stages(recipe, method, stars, nominal, seeds):
        runner.run(stage)
    members = plan_members(recipe)
    member_stages = run_members(members, recipe, layout, runner, on)
    files = (nominal, *(member_files(m, recipe, layout.root) for m in members))
    runner.run(cube_stage(recipe, recipe_text, method, layout, grid, stars, files, member_stages, on))
    scores = finish(recipe, layout)
    published = publish(recipe, method, layout, replace)
    return BuildResult(layout.root, layout.cube, published, recipe.entry_name, scores)


def run_stars(recipe: Recipe, layout: BuildLayout, runner: Runner) -> PhaseSpaceTable | StarChunks:
    """The `stars` stage (a changed table file or Gaia download reruns it); returns the stars."""
    files: tuple[Path, ...] = ()
    if recipe.data.source == "gaia":  # cached after the first download: a rebuild never queries again
        files = tuple(fetch_gaia(recipe.data.gaia, layout.gaia_cache, log=console.print))
    elif recipe.data.table is not None and Path(recipe.data.table.path).is_file():
        files = (Path(recipe.data.table.path),)
    seed = stage_seed(recipe.seed, "stars")
    runner.run(Stage("stars", (), recipe.data, seed, layout.stars,
                     lambda: load_stars(recipe.data, seed, layout.root).save(layout.stars), files))
    stars = open_stars(layout.stars, recipe.memory.chunk_stars)  # in chunks when larger than that
    for step in stars.meta.get("cuts", []):
        console.print(f"  cut {step['cut']}: removed {step['removed']:,}, {step['remaining']:,} left", highlight=False)
    if recipe.ensemble.noise > 0:
        require_errors(stars)  # now, not after the nominal build has trained
    return stars


def run_members(members: list[Member], recipe: Recipe, layout: BuildLayout, runner: Runner, on: SchedulerSpec) -> list[str]:
    """Fit every unfinished ensemble member, each a stage of its own; return the members' stage names.

    A member's key covers what it is fitted from (not how many members there are), so adding members
    keeps the finished ones. Members run one after another here, or all at once on `dask.distributed`
    workers when `on` names a scheduler; each is recorded in the manifest as soon as it finishes.
    """
    stages = [member_stage(m, recipe, layout) for m in members]
    pending = [s for s in stages if not runner.is_done(s)]
    for stage in stages:
        if stage not in pending:
            console.print(f"[dim]{stage.name}: up to date, skipped[/dim]")
    if pending and on.distributed:
        from distributed import as_completed, get_client

        with scheduler(on) as where:
            console.print(f"[bold]members[/bold] … {len(pending)} on {where}")
            client, started = get_client(), time.perf_counter()
            futures = {client.submit(s.action, pure=False): s for s in pending}
            for future in as_completed(futures):
                future.result()
                stage = futures[future]
                runner.manifest.record(stage.name, runner.key(stage), stage.output, time.perf_counter() - started)
                console.print(f"  {stage.name} done")
    else:
        for i, stage in enumerate(pending):
            console.print(f"({stage.name}: member {i + 1} of {len(pending)} to fit)")
            runner.run(stage)
    return [m.stage for m in members]


def member_stage(member: Member, recipe: Recipe, layout: BuildLayout) -> Stage:
    """A member as one stage: fitted from the nominal stars (and flows, where shared), into its own folder."""
    method = get_method(recipe.fields.method)
    shared = ["stars", *layout.flow_stages(recipe, method), *(["collocation"] if method.uses_collocation else [])]
    inputs = tuple(shared if member.shares_flows(recipe) else ["stars"])
    own = dump(recipe.ensemble.frame_errors) if member.kind == "frame" else member.shares_flows(recipe)
    section = [dump(recipe.data), dump(recipe.density), dump(recipe.fields), own]
    return Stage(member.stage, inputs, section, member.seed, member.folder(layout.root),
                 lambda: train_member(member, recipe, layout.root))


def cube_stage(
    recipe: Recipe, recipe_text: str, method: Method, layout: BuildLayout, grid: Grid, stars: PhaseSpaceTable,
    files: tuple[FitFiles, ...], member_stages: list[str], on: SchedulerSpec,
) -> Stage:
    """The cube: the method's blocks for every member, its own extra variables, then ρ_baryon and ρ_DM."""
    seed = stage_seed(recipe.seed, "cube")
    inputs = CubeInputs(recipe, grid, stars, files, seed)
    kinds = ["seed", *(m.kind for m in plan_members(recipe)), *method.extra_member_kinds(recipe)]

    def evaluate() -> None:
        speed = method.fitted_pattern_speed(layout.fields) if method.fits_fields else None
        attrs = cube_attributes(recipe, recipe_text, stars, speed)
        attrs["references"] = "; ".join([*method.citations, *([PATTERN_SPEED_CITATION] if speed is not None else [])])
        ds = cube_dataset(method.cube_blocks(inputs), grid, attrs, member_kinds=kinds,
                          fields=method.cube_variables(recipe.fields))
        ds = method.finish_cube(ds, inputs)
        if recipe.cube.baryon_model != "none" and "density" in ds:
            ds = add_baryons(ds, grid, recipe.cube.baryon_model, recipe.cube.baryon_relative_error, seed)
        write_cube(ds, layout.cube, on)

    fitted = ["fields"] if method.fits_fields else layout.flow_stages(recipe, method)
    section = [recipe.cube, *method.cube_sections(recipe), recipe_sha256(recipe_text)]
    return Stage("cube", (*fitted, *member_stages), section, seed, layout.cube, evaluate)


def finish(recipe: Recipe, layout: BuildLayout) -> dict[str, float] | None:
    """Scores against a mock's truth, quicklooks and diagnostics of the cube on disk; returns the scores."""
    scores = truth = None
    if recipe.data.source == "plummer":
        truth = plummer_truth(recipe.data)  # once: with `data.observation` it caches a Monte Carlo ⟨S⟩
        scores = score_against_truth(layout.cube, truth)
        layout.scores.write_text(json.dumps(scores, indent=2))
    write_quicklooks(xr.open_zarr(layout.cube), layout.root, layout.quicklook_stem, truth)
    if recipe.diagnostics.enabled:
        console.print("[bold]diagnostics[/bold] …")
        checks = recipe.diagnostics
        run_diagnostics(xr.open_zarr(layout.cube), layout.diagnostics, layout.root, n_velocities=checks.velocities,
                        mcmc_steps=checks.mcmc_steps, seed=stage_seed(recipe.seed, "cube"), name=recipe.entry_name)
    return scores


def publish(recipe: Recipe, method: Method, layout: BuildLayout, replace: bool) -> Path | str:
    """Copy the cube (and its quicklooks, diagnostics and Φ networks) to the catalog's store and add its entry."""
    console.print("[bold]publish[/bold] …")
    written = xr.open_zarr(layout.cube)  # the cube stage may have been skipped: describe what is on disk
    metadata = {**entry_metadata(written), "recipe_name": recipe.name}
    store = recipe.publish.store
    published = publish_cube(recipe.publish.catalog, recipe.entry_name, layout.cube, metadata, replace, store)
    target = store or Path(published).parent
    copy_quicklooks(layout.root, layout.quicklook_stem, target, recipe.entry_name)
    members = plan_members(recipe)
    networks = [layout.fields, *(member_files(m, recipe, layout.root).fields for m in members)]
    kinds = [str(k) for k in written["member_kind"].values]
    models = method.published_models(recipe, networks, stage_seed(recipe.seed, "cube"), layout.root / "published-models")
    publish_fields(models, kinds, written.attrs, layout.root, target, recipe.entry_name)
    if recipe.diagnostics.enabled:
        copy_to_url(layout.diagnostics, join(str(target), f"{recipe.entry_name}.diagnostics"))
    return published


def cube_attributes(recipe: Recipe, recipe_text: str, stars: PhaseSpaceTable, pattern_speed: float | None) -> dict:
    """Global attributes required by CUBE_SPEC v1, plus provenance (and Ω_p where the fields fitted one)."""
    import dask
    import equinox
    import flowjax
    import jax
    import zarr

    versions = {m.__name__: m.__version__ for m in (jax, equinox, flowjax, xr, zarr, dask, np)}
    frame = recipe.data.frame
    attrs = {
        "dpotcube_cube_version": CUBE_VERSION,
        "dpotcube_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": recipe.fields.method,
        "recipe": recipe_text,
        "recipe_sha256": recipe_sha256(recipe_text),
        "seed": recipe.seed,
        "data_source": stars.data_source,
        "data_source_details": json.dumps(stars.meta),
        "n_tracers": len(stars),
        "galcen_distance_kpc": frame.galcen_distance_kpc,
        "z_sun_kpc": frame.z_sun_kpc,
        "galcen_v_sun_kms": list(frame.galcen_v_sun_kms),
        "observer_position_kpc": [float(c) for c in stars.observer],
        "volume_radius_kpc": stars.volume_radius_kpc,
        "potential_reference_point": [float(c) for c in stars.observer],
        "G_kpc_km2_s2_per_msun": G_KPC_KM2_S2_PER_MSUN,
        "frame": "astropy Galactocentric",
        "software_versions": json.dumps({**versions, "python": platform.python_version()}),
    }
    if pattern_speed is not None:
        attrs["pattern_speed_kms_per_kpc"] = pattern_speed
    return attrs


def entry_metadata(cube: xr.Dataset) -> dict:
    """What a catalog entry says about its cube without opening it."""
    attrs = cube.attrs
    fields = [name for name in cube.data_vars if name != "in_volume"]
    return {
        "method": attrs["method"],
        "n_tracers": attrs["n_tracers"],
        "data_source": attrs["data_source"],
        "fields": [*fields, "in_volume"],
        "units": {name: cube[name].attrs["units"] for name in fields},
        **({"pattern_speed_kms_per_kpc": attrs["pattern_speed_kms_per_kpc"]} if "pattern_speed_kms_per_kpc" in attrs else {}),
        **({"baryon_model": attrs["baryon_model"]} if "baryon_model" in attrs else {}),
        "created": attrs["created"],
        "dpotcube_version": attrs["dpotcube_version"],
        "dpotcube_cube_version": attrs["dpotcube_cube_version"],
        "recipe_sha256": attrs["recipe_sha256"],
        "citation": [c for c in attrs.get("references", "").split("; ") if c],
    }

