"""The stage graph: stars → flow → collocation → fields → cube → publish, with a manifest for resume.

Each stage records a key (a hash of its recipe section, its seed and its inputs' checksums)
and its outputs' checksums in `manifest.json`; a re-run skips a stage whose key matches and
whose outputs still verify.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from . import __version__
from .catalog import publish_cube
from .compile_cache import enable_compile_cache
from .constants import CUBE_VERSION, G_KPC_KM2_S2_PER_MSUN
from .cube.evaluate import METHOD_FIELDS, field_blocks, flow_density_blocks
from .cube.scheduler import SchedulerSpec, scheduler
from .cube.store import add_baryons, add_flow_tracer_density, cube_dataset, write_cube
from .diagnostics import run_diagnostics
from .errors import BuildError
from .fields.model import load_fields
from .members import Member, MemberFiles, NominalFiles, member_files, plan_members, require_errors, train_member
from .plots import copy_quicklooks, write_quicklooks
from .pointwise.evaluate import PointwiseFiles, pointwise_blocks, pointwise_fields
from .preflight import preflight
from .progress import console
from .recipe import Recipe, recipe_sha256
from .sources import PhaseSpaceTable, load_stars
from .sources.gaia import fetch_gaia
from .sources.load import GAIA_CACHE, plummer_truth
from .stages import collocate_file, fit_fields_file, fit_flow_file, flow_seeds, star_weights
from .stores import copy_to_url, join
from .truth import score_against_truth

STAGES = ("stars", "flow", "collocation", "fields", "cube")


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
    stage_monitor: Callable[[str], AbstractContextManager[object]] = nullcontext,
) -> BuildResult:
    """Run every stage of `recipe` in `out_dir` (default `builds/<name>/`), skipping finished ones.

    `force` redoes every stage; `replace` lets the cube replace a catalog entry made by another
    recipe; `on` names the Dask scheduler for the cube stage (local threads by default);
    `stage_monitor(stage)` is entered around each stage that runs (benchmarks measure memory with it).
    """
    enable_compile_cache()
    plan = preflight(recipe, out_dir, replace=replace, on=on, repair=True)  # every check `validate` makes, before any work
    build_dir, grid = plan.build_dir, plan.grid
    build_dir.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest(build_dir / "manifest.json")
    paths = {
        "stars": build_dir / "stars.parquet",
        "collocation": build_dir / "collocation.npz",
        "fields": build_dir / "fields.eqx",
        "cube": build_dir / "cube.zarr",
    }
    seeds = {stage: recipe.seed * 1000 + i for i, stage in enumerate(STAGES)}

    gaia_files = []
    if recipe.data.source == "gaia":  # cached after the first download: a rebuild never queries again
        gaia_files = fetch_gaia(recipe.data.gaia, build_dir / GAIA_CACHE, log=console.print)

    def run(stage: str, inputs: list[str], section: object, action: Callable[[], None]) -> None:
        key = _hash([stage, _dump(section), seeds.get(stage), *(manifest.checksum(i) for i in inputs)])
        if stage == "stars" and recipe.data.table is not None and Path(recipe.data.table.path).is_file():
            key = _hash([key, _checksum(Path(recipe.data.table.path))])  # a changed table file reruns
        if stage == "stars" and gaia_files:
            key = _hash([key, *(_checksum(f) for f in gaia_files)])  # a new download reruns
        if not force and manifest.is_done(stage, key, paths[stage]):
            console.print(f"[dim]{stage}: up to date, skipped[/dim]")
            return
        console.print(f"[bold]{stage}[/bold] …")
        started = time.perf_counter()
        with stage_monitor(stage):
            action()
        manifest.record(stage, key, paths[stage], seconds=time.perf_counter() - started)

    run("stars", [], recipe.data, lambda: load_stars(recipe.data, seeds["stars"], build_dir).save(paths["stars"]))
    stars = PhaseSpaceTable.load(paths["stars"])
    for step in stars.meta.get("cuts", []):
        console.print(f"  cut {step['cut']}: removed {step['removed']:,}, {step['remaining']:,} left", highlight=False)
    if recipe.ensemble.noise > 0:
        require_errors(stars)  # now, not after the nominal build has trained

    density = recipe.density
    flow_stages: dict[str, list[str]] = {"velocity": [], "position": []}
    for kind, spec in (("velocity", density.velocity), ("position", density.position)):
        for member in range(density.ensemble.members if spec is not None else 0):
            stage = f"{kind}_flow_{member}"
            paths[stage] = build_dir / "flows" / f"{stage}.eqx"
            flow_stages[kind].append(stage)
            member_seed, split_seed = flow_seeds(seeds["flow"], member, kind, density.ensemble.resplit)
            fit = functools.partial(fit_flow_file, stage, kind, spec, member_seed, split_seed, stars, paths[stage])
            run(stage, ["stars"], [spec, member_seed, split_seed], fit)
    flow_files = {kind: tuple(paths[s] for s in stages) for kind, stages in flow_stages.items()}

    all_flows = [*flow_stages["velocity"], *flow_stages["position"]]
    method = recipe.fields.method
    if method != "pointwise":
        collocate = functools.partial(collocate_file, density, stars, flow_files["velocity"], flow_files["position"],
                                      seeds["collocation"], paths["collocation"])
        run("collocation", all_flows, [density.collocation, density.ensemble.combine], collocate)

    attrs = cube_attributes(recipe, recipe_text, stars)
    if method != "pointwise":
        fit = functools.partial(fit_fields_file, paths["collocation"], stars, recipe.fields, seeds["fields"],
                                paths["fields"])
        run("fields", ["collocation"], recipe.fields, fit)
        pattern_speed = load_fields(paths["fields"]).pattern_speed
        if pattern_speed is not None:
            attrs["pattern_speed_kms_per_kpc"] = float(pattern_speed)

    nominal = NominalFiles(paths["stars"], flow_files["velocity"], flow_files["position"], paths["collocation"])
    members = plan_members(recipe)
    member_stages = run_members(members, recipe, build_dir, nominal, manifest, all_flows, force, on, stage_monitor)
    files = [MemberFiles(flow_files["velocity"], flow_files["position"], None if method == "pointwise" else paths["fields"])]
    files += [member_files(m, recipe, build_dir, nominal) for m in members]
    kinds = ["seed", *(m.kind for m in members)]

    def evaluate() -> None:
        if method == "pointwise":  # no collocation points and no networks: a is solved on the grid itself
            spec = recipe.fields.pointwise
            flows = [PointwiseFiles(f.velocity, f.position, density.ensemble.combine) for f in files]
            ds = cube_dataset(pointwise_blocks(flows, grid, spec, seeds["cube"]), grid, attrs, member_kinds=kinds,
                              fields=pointwise_fields(spec))
            if recipe.cube.baryon_model != "none" and spec.density:
                ds = add_baryons(ds, grid, recipe.cube.baryon_model, recipe.cube.baryon_relative_error, seeds["cube"])
            write_cube(ds, paths["cube"], on)
            return
        blocks = field_blocks([f.fields for f in files], grid, stars.observer, method)
        ds = cube_dataset(blocks, grid, attrs, member_kinds=kinds, fields=METHOD_FIELDS[method])
        position = density.position
        if method == "selection" or (method == "vanilla" and position.selection_weights):
            total = len(stars) if method == "selection" else float(np.sum(star_weights(position, stars)))
            per_flows = {f.position: flow_density_blocks(f.position, grid, total) for f in files}  # shared: once
            n_flow = da.stack([per_flows[f.position] for f in files])
            ds = add_flow_tracer_density(ds, n_flow, divide_by_efficiency=method == "selection")
        if recipe.cube.baryon_model != "none":
            ds = add_baryons(ds, grid, recipe.cube.baryon_model, recipe.cube.baryon_relative_error, seeds["cube"])
        write_cube(ds, paths["cube"], on)

    cube_inputs = [*(all_flows if method == "pointwise" else ["fields"]), *member_stages]
    cube_section = [recipe.cube, recipe.fields.pointwise] if method == "pointwise" else [recipe.cube]
    run("cube", cube_inputs, [*cube_section, recipe_sha256(recipe_text)], evaluate)

    scores = truth = None
    if recipe.data.source == "plummer":
        truth = plummer_truth(recipe.data)  # once: with `data.observation` it caches a Monte Carlo ⟨S⟩
        scores = score_against_truth(paths["cube"], truth)
        (build_dir / "scores.json").write_text(json.dumps(scores, indent=2))
    write_quicklooks(xr.open_zarr(paths["cube"]), build_dir, "quicklook", truth)
    if recipe.diagnostics.enabled:
        console.print("[bold]diagnostics[/bold] …")
        checks = recipe.diagnostics
        run_diagnostics(xr.open_zarr(paths["cube"]), build_dir / "diagnostics", build_dir, n_velocities=checks.velocities,
                        mcmc_steps=checks.mcmc_steps, seed=seeds["cube"], name=recipe.entry_name)

    console.print("[bold]publish[/bold] …")
    written = xr.open_zarr(paths["cube"])  # the cube stage may have been skipped: describe what is on disk
    metadata = {**entry_metadata(written), "recipe_name": recipe.name}
    store = recipe.publish.store
    published = publish_cube(recipe.publish.catalog, recipe.entry_name, paths["cube"], metadata, replace, store)
    copy_quicklooks(build_dir, "quicklook", store or Path(published).parent, recipe.entry_name)
    if recipe.diagnostics.enabled:
        copy_to_url(build_dir / "diagnostics", join(str(store or Path(published).parent), f"{recipe.entry_name}.diagnostics"))
    return BuildResult(build_dir, paths["cube"], published, recipe.entry_name, scores)


def run_members(
    members: list[Member],
    recipe: Recipe,
    build_dir: Path,
    nominal: NominalFiles,
    manifest: _Manifest,
    flow_stages: list[str],
    force: bool,
    on: SchedulerSpec,
    stage_monitor: Callable[[str], AbstractContextManager[object]],
) -> list[str]:
    """Fit every unfinished ensemble member, each a stage of its own; return the members' stage names.

    A member's key covers what it is fitted from (not how many members there are), so adding members
    keeps the finished ones. Members run one after another here, or all at once on `dask.distributed`
    workers when `on` names a scheduler; each is recorded in the manifest as soon as it finishes.
    """
    shared_inputs = ["stars", *flow_stages, *(["collocation"] if recipe.fields.method != "pointwise" else [])]
    sections = [_dump(recipe.data), _dump(recipe.density), _dump(recipe.fields)]

    def key(member: Member) -> str:  # what this member is fitted from: a frame member's errors, a seed's sharing
        inputs = shared_inputs if member.shares_flows(recipe) else ["stars"]
        own = _dump(recipe.ensemble.frame_errors) if member.kind == "frame" else member.shares_flows(recipe)
        return _hash([member.stage, *sections, own, member.seed, *(manifest.checksum(i) for i in inputs)])

    pending = [m for m in members if force or not manifest.is_done(m.stage, key(m), m.folder(build_dir))]
    for member in members:
        if member not in pending:
            console.print(f"[dim]{member.stage}: up to date, skipped[/dim]")
    if pending and on.distributed:
        from distributed import as_completed, get_client

        with scheduler(on) as where:
            console.print(f"[bold]members[/bold] … {len(pending)} on {where}")
            client = get_client()
            started = time.perf_counter()
            futures = {client.submit(train_member, m, recipe, build_dir, nominal, pure=False): m for m in pending}
            for future in as_completed(futures):
                future.result()
                member = futures[future]
                manifest.record(member.stage, key(member), member.folder(build_dir), time.perf_counter() - started)
                console.print(f"  {member.stage} done")
    else:
        for i, member in enumerate(pending):
            console.print(f"[bold]{member.stage}[/bold] … (member {i + 1} of {len(pending)} to fit)")
            started = time.perf_counter()
            with stage_monitor(member.stage):
                train_member(member, recipe, build_dir, nominal)
            manifest.record(member.stage, key(member), member.folder(build_dir), time.perf_counter() - started)
    return [m.stage for m in members]


def cube_attributes(recipe: Recipe, recipe_text: str, stars: PhaseSpaceTable) -> dict:
    """Global attributes required by CUBE_SPEC v1, plus provenance."""
    import dask
    import equinox
    import flowjax
    import jax
    import xarray
    import zarr

    versions = {m.__name__: m.__version__ for m in (jax, equinox, flowjax, xarray, zarr, dask, np)}
    frame = recipe.data.frame
    return {
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
    }


def _dump(section: object) -> object:
    if hasattr(section, "model_dump"):
        return section.model_dump(mode="json")
    if isinstance(section, list):
        return [_dump(s) for s in section]
    return section


def _hash(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _checksum(path: Path) -> str:
    """SHA-256 of a file, or of every file (name and bytes) under a directory."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class _Manifest:
    """`manifest.json`: per stage, the key it was run with and its output's checksum."""

    def __init__(self, path: Path):
        self.path = path
        self.stages: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}

    def is_done(self, stage: str, key: str, output: Path) -> bool:
        entry = self.stages.get(stage)
        return bool(entry) and entry["key"] == key and output.exists() and _checksum(output) == entry["checksum"]

    def checksum(self, stage: str) -> str:
        if stage not in self.stages:
            raise BuildError(f"Stage `{stage}` has not run in {self.path.parent}; run `dpotcube build` without skipping it.")
        return self.stages[stage]["checksum"]

    def record(self, stage: str, key: str, output: Path, seconds: float) -> None:
        self.stages[stage] = {
            "key": key,
            "checksum": _checksum(output),
            "finished": datetime.now(timezone.utc).isoformat(),
            "seconds": round(seconds, 2),
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stages, indent=2))
        tmp.replace(self.path)
