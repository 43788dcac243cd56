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

import numpy as np
import xarray as xr

from . import __version__
from .catalog import check_entry_available, publish_cube
from .constants import CUBE_VERSION, G_KPC_KM2_S2_PER_MSUN
from .cube.evaluate import METHOD_FIELDS, field_blocks, flow_density_blocks
from .cube.grid import make_grid
from .cube.scheduler import SchedulerSpec
from .cube.store import add_baryons, add_flow_tracer_density, cube_dataset, write_cube
from .density.collocation import CollocationPoints, draw_collocation
from .density.ensemble import FlowEnsemble
from .density.flows import fit_flow, load_flow, save_flow
from .diagnostics import run_diagnostics
from .errors import BuildError
from .fields.model import load_fields, save_fields
from .fields.train import train_fields
from .frames import solar_position_kpc
from .paths import check_output_path
from .plots import copy_quicklooks, write_quicklooks
from .pointwise.evaluate import PointwiseFiles, pointwise_blocks, pointwise_fields
from .progress import console
from .recipe import FlowSpec, PositionFlowSpec, Recipe, recipe_sha256
from .sources import PhaseSpaceTable, load_stars
from .sources.gaia import fetch_gaia
from .sources.load import GAIA_CACHE, plummer_truth
from .stores import check_url, copy_to_url, join
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
    build_dir = check_output_path(Path(out_dir or Path("builds") / recipe.name), "build folder (--out)")
    check_output_path(recipe.publish.catalog, "catalog (`publish.catalog`)")
    if recipe.publish.store is not None:
        check_url(recipe.publish.store, "publish.store")
        if recipe.publish.store.startswith("file://"):
            check_output_path(Path(recipe.publish.store.removeprefix("file://")), "store (`publish.store`)")
    check_entry_available(recipe.publish.catalog, recipe.entry_name, recipe.name, replace)  # before any work
    grid = make_grid(recipe.cube, solar_position_kpc(recipe.data.frame), recipe.data.volume_radius_kpc)
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

    density = recipe.density
    flow_stages: dict[str, list[str]] = {"velocity": [], "position": []}
    for kind, spec in (("velocity", density.velocity), ("position", density.position)):
        for member in range(density.ensemble.members if spec is not None else 0):
            stage = f"{kind}_flow_{member}"
            paths[stage] = build_dir / "flows" / f"{stage}.eqx"
            flow_stages[kind].append(stage)
            member_seed = seeds["flow"] + 100 * member + (50 if kind == "position" else 0)
            split_seed = member_seed if density.ensemble.resplit else seeds["flow"]
            fit = functools.partial(_fit_member, stage, kind, spec, member_seed, split_seed, stars, paths[stage])
            run(stage, ["stars"], [spec, member_seed, split_seed], fit)

    def ensemble(kind: str) -> FlowEnsemble | None:
        stages = flow_stages[kind]
        return FlowEnsemble(tuple(load_flow(paths[s]) for s in stages), density.ensemble.combine) if stages else None

    def collocate() -> None:
        inner_ball = None
        if density.position is not None and density.position.support == "ball":
            inner_ball = (stars.observer, stars.volume_radius_kpc - density.collocation.edge_margin_kpc)
        points = draw_collocation(
            ensemble("velocity"), stars.positions, density.collocation, seeds["collocation"], ensemble("position"),
            inner_ball,
        )
        points.save(paths["collocation"])

    all_flows = [*flow_stages["velocity"], *flow_stages["position"]]
    method = recipe.fields.method
    if method != "pointwise":
        run("collocation", all_flows, [density.collocation, density.ensemble.combine], collocate)

    def fit_fields() -> None:
        points = CollocationPoints.load(paths["collocation"])
        model, hyper, history = train_fields(
            points, stars.observer, stars.volume_radius_kpc, len(stars), recipe.fields, seeds["fields"]
        )
        save_fields(paths["fields"], model, hyper)
        (build_dir / "fields_history.json").write_text(json.dumps(history))

    attrs = cube_attributes(recipe, recipe_text, stars)
    if method != "pointwise":
        run("fields", ["collocation"], recipe.fields, fit_fields)
        pattern_speed = load_fields(paths["fields"]).pattern_speed
        if pattern_speed is not None:
            attrs["pattern_speed_kms_per_kpc"] = float(pattern_speed)

    def evaluate() -> None:
        if method == "pointwise":  # no collocation points and no networks: a is solved on the grid itself
            members = [PointwiseFiles(tuple(paths[s] for s in flow_stages["velocity"]),
                                      tuple(paths[s] for s in flow_stages["position"]), density.ensemble.combine)]
            spec = recipe.fields.pointwise
            ds = cube_dataset(pointwise_blocks(members, grid, spec, seeds["cube"]), grid, attrs, member_kinds=["seed"],
                              fields=pointwise_fields(spec))
            if recipe.cube.baryon_model != "none" and spec.density:
                ds = add_baryons(ds, grid, recipe.cube.baryon_model, recipe.cube.baryon_relative_error, seeds["cube"])
            write_cube(ds, paths["cube"], on)
            return
        blocks = field_blocks([paths["fields"]], grid, stars.observer, method)
        ds = cube_dataset(blocks, grid, attrs, member_kinds=["seed"], fields=METHOD_FIELDS[method])
        position = density.position
        if method == "selection" or (method == "vanilla" and position.selection_weights):
            total = len(stars) if method == "selection" else float(np.sum(_star_weights(position, stars)))
            n_flow = flow_density_blocks([paths[s] for s in flow_stages["position"]], grid, total)
            ds = add_flow_tracer_density(ds, n_flow, divide_by_efficiency=method == "selection")
        if recipe.cube.baryon_model != "none":
            ds = add_baryons(ds, grid, recipe.cube.baryon_model, recipe.cube.baryon_relative_error, seeds["cube"])
        write_cube(ds, paths["cube"], on)

    cube_inputs = all_flows if method == "pointwise" else ["fields"]
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


def _fit_member(
    stage: str, kind: str, spec: FlowSpec, seed: int, split_seed: int, stars: PhaseSpaceTable, path: Path
) -> None:
    """Fit one ensemble member: p(v|x), or n(x) (weighted by 1/S when asked) with the ball's edge."""
    if kind == "velocity":
        flow, history = fit_flow(stars.velocities, spec, seed, conditions=stars.positions, split_seed=split_seed,
                                 label=f"p(v|x) {stage}")
    else:
        ball = (stars.observer, stars.volume_radius_kpc) if spec.support == "ball" else None
        weights = _star_weights(spec, stars) if spec.selection_weights else None
        flow, history = fit_flow(stars.positions, spec, seed, weights=weights, ball=ball, split_seed=split_seed,
                                 label=f"n(x) {stage}")
    path.parent.mkdir(exist_ok=True)
    save_flow(path, flow, spec)
    path.with_name(f"{stage}_history.json").write_text(json.dumps(history))


def _star_weights(spec: PositionFlowSpec, stars: PhaseSpaceTable) -> np.ndarray:
    """1/S per star, clipped at `max_weight` (the recipe check ensures a selection column)."""
    return np.minimum(1 / stars.selection, spec.max_weight)


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
