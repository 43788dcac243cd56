"""`recipes/paper-plummer.yaml` shrunk to run on a CPU: per-star, per-step and per-point costs, and the full cost projected.

    python -m benchmarks run paper-plummer [--stars N] [--epochs E1 E2] [--steps S1 S2] [--positions P1 P2]

Builds the paper's recipe twice with the same `data.n_stars` (reduced) and its network sizes and batch sizes
unchanged, the two builds differing in the p(v|x) flow's epochs, the field steps and the collocation positions:
each stage's time difference over the difference in work is its cost per unit without compilation. Projected
to the recipe's own sizes (linear in stars × epochs, steps, collocation points; stars and cube stages linear in
stars and grid points from the first build, compilation included, so upper bounds). Diagnostics are off in
both builds and not projected. Writes `benchmarks/results/paper_plummer.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .report import REPO, environment, provenance_line

TITLE = "The paper's dusty Plummer recipe on a CPU (`recipes/paper-plummer.yaml`, projected)"
RESULTS = REPO / "benchmarks" / "results" / "paper_plummer.json"
RECIPE = REPO / "recipes" / "paper-plummer.yaml"
GPU_RUN = REPO / "benchmarks" / "results" / "device_paper.json"
"""The recipe built on a GPU, reduced (`python -m benchmarks run device --parts "" --builds recipes/paper-plummer.yaml
--build-set ... --out benchmarks/results/device_paper.json`, through benchmarks/device_run.sh on the device)."""
GPU_STAGES = {"velocity_flow_0": "density.velocity.max_epochs", "collocation": "density.collocation.n_positions",
              "fields": "fields.steps"}
"""The stages whose GPU time is scaled to the recipe's size by the ratio of this key's full value to the run's."""


class StageCPU:
    """CPU seconds (user + system, every thread) of each build stage: on a shared machine the wall time measures
    the neighbours too, the CPU time only this build (core-seconds, what free cores would take)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = _cpu_seconds()
        try:
            yield
        finally:
            self.seconds[stage] = round(_cpu_seconds() - started, 2)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _build(overrides: list[str], scratch: Path) -> dict:
    """Build the paper's recipe with `overrides`; each stage's CPU and wall seconds."""
    import dpotcube
    from dpotcube.recipe import load_recipe

    catalog = f"publish.catalog={scratch / 'catalog' / 'catalog.yaml'}"
    recipe, text = load_recipe(RECIPE, [*overrides, catalog])
    cpu = StageCPU()
    started = time.perf_counter()
    result = dpotcube.build(recipe, text, scratch / "build", force=True, stage_monitor=cpu)
    manifest = json.loads((result.build_dir / "manifest.json").read_text())
    return {"cpu_seconds": cpu.seconds, "wall_seconds": {k: v["seconds"] for k, v in manifest.items()},
            "total_wall_seconds": round(time.perf_counter() - started, 1)}


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run paper-plummer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stars", type=int, default=40_000, help="observed stars of both builds")
    parser.add_argument("--epochs", type=int, nargs=2, default=(1, 9), help="p(v|x) epochs of the two builds")
    parser.add_argument("--steps", type=int, nargs=2, default=(50, 450), help="field steps of the two builds (run in calls of 50)")
    parser.add_argument("--positions", type=int, nargs=2, default=(16, 48),
                        help="collocation positions of the two builds (× the recipe's velocities per position)")
    args = parser.parse_args(argv)
    from dpotcube.recipe import load_recipe

    full, _ = load_recipe(RECIPE)
    builds = []
    for epochs, steps, positions in zip(args.epochs, args.steps, args.positions, strict=True):
        overrides = [
            f"data.n_stars={args.stars}", f"density.velocity.max_epochs={epochs}",
            f"density.velocity.patience={epochs}", f"fields.steps={steps}",
            f"density.collocation.n_positions={positions}", "cube.spacing_kpc=0.5", "diagnostics.enabled=false",
        ]
        with tempfile.TemporaryDirectory() as scratch:
            measured = _build(overrides, Path(scratch))
        builds.append({"epochs": epochs, "steps": steps, "positions": positions, "overrides": overrides, **measured})
    first, second = builds
    velocity = full.density.velocity
    per_velocity = full.density.collocation.velocities_per_position
    train_fraction = 1 - velocity.val_fraction

    def slope(stage: str, work: tuple[float, float]) -> float:
        return (second["cpu_seconds"][stage] - first["cpu_seconds"][stage]) / (work[1] - work[0])

    flow_per_star_epoch = slope("velocity_flow_0", tuple(e * train_fraction * args.stars for e in args.epochs))
    field_per_step = slope("fields", args.steps)
    collocation_per_point = slope("collocation", tuple(p * per_velocity for p in args.positions))
    grid_points = (2 * round(3.0 / 0.5) + 1) ** 3
    full_grid = (2 * round(full.data.volume_radius_kpc / full.cube.spacing_kpc) + 1) ** 3
    per_unit = {
        "stars_per_star": first["cpu_seconds"]["stars"] / args.stars,
        "flow_per_star_epoch": flow_per_star_epoch,
        "collocation_per_point": collocation_per_point,
        "fields_per_step": field_per_step,
        "cube_per_grid_point": first["cpu_seconds"]["cube"] / grid_points,
    }
    projected = {
        "stars": per_unit["stars_per_star"] * full.data.n_stars,
        "velocity_flow": flow_per_star_epoch * train_fraction * full.data.n_stars * velocity.max_epochs,
        "collocation": collocation_per_point * full.density.collocation.n_positions * per_velocity,
        "fields": field_per_step * full.fields.steps,
        "cube": per_unit["cube_per_grid_point"] * full_grid,
    }
    cores = len(os.sched_getaffinity(0))
    command = (f"python -m benchmarks run paper-plummer --stars {args.stars} --epochs {' '.join(map(str, args.epochs))} "
               f"--steps {' '.join(map(str, args.steps))} --positions {' '.join(map(str, args.positions))}")
    return {
        "command": command, **environment(), "cores": cores, "builds": builds,
        "per_unit_seconds": {k: float(f"{v:.4g}") for k, v in per_unit.items()},
        "projected_seconds": {k: round(v) for k, v in projected.items()},
        "projected_total_hours": round(sum(projected.values()) / 3600, 1),
        "full_size": {"n_stars": full.data.n_stars, "epochs": velocity.max_epochs, "steps": full.fields.steps,
                      "collocation_points": full.density.collocation.n_positions * per_velocity,
                      "grid_points": full_grid},
    }


def markdown(r: dict) -> str:
    u, p, f = r["per_unit_seconds"], r["projected_seconds"], r["full_size"]
    rows = [
        ("mock stars (dust, magnitude limit)", f"{u['stars_per_star'] * 1e6:.3g} µs per observed star",
         f"{f['n_stars']:,} stars", p["stars"]),
        ("p(v\\|x) CFM", f"{u['flow_per_star_epoch'] * 1e6:.3g} µs per training star per epoch",
         f"{f['n_stars']:,} stars × {f['epochs']} epochs", p["velocity_flow"]),
        ("collocation (∇ ln p through the ODE)", f"{u['collocation_per_point'] * 1e3:.3g} ms per point",
         f"{f['collocation_points']:,} points", p["collocation"]),
        ("fields (Φ, ln n)", f"{u['fields_per_step']:.3g} s per step", f"{f['steps']:,} steps", p["fields"]),
        ("cube", f"{u['cube_per_grid_point'] * 1e3:.3g} ms per grid point", f"{f['grid_points']:,} points", p["cube"]),
    ]
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        f"Two builds of {int(r['builds'][0]['overrides'][0].split('=')[1]):,} observed stars on {r['cores']} core(s), the "
        "recipe's networks and batch sizes unchanged; per-unit costs from the difference between the builds "
        "(compilation cancels), except the stars and cube stages (one build, compilation included). Costs are "
        "CPU seconds of the build's process (all its threads: core-seconds), not wall time, because the machine "
        "was shared. Diagnostics not included. A GPU is the intended machine (docs/density.md).",
        "",
        "| stage | measured cost (CPU) | full size | projected CPU time |",
        "| --- | --- | --- | --- |",
        *(f"| {name} | {cost} | {size} | {seconds / 3600:.1f} h |" for name, cost, size, seconds in rows),
        f"| total | | | {r['projected_total_hours']:.0f} h |",
        "",
    ]
    if GPU_RUN.exists():
        lines += gpu_lines(json.loads(GPU_RUN.read_text()))
    return "\n".join(lines)


def gpu_lines(run: dict) -> list[str]:
    """The GPU build of the recipe (reduced where its overrides say), each stage projected to the recipe's size."""
    from dpotcube.recipe import load_recipe

    build = next(iter(run["builds"].values()))
    if "stage_seconds" not in build:
        return [f"The GPU run ({run['date'][:10]}) did not finish: {build.get('error') or build.get('skipped')}", ""]
    full, _ = load_recipe(RECIPE)
    reduced, _ = load_recipe(RECIPE, build["overrides"])
    rows, total = [], 0.0
    for stage, seconds in build["stage_seconds"].items():
        key = GPU_STAGES.get(stage)
        factor = 1.0 if key is None else _key(full, key) / _key(reduced, key)
        rows.append(f"| {stage} | {seconds:.0f} s | {'as the recipe' if key is None else f'{key} × {factor:g}'} | "
                    f"{seconds * factor / 60:.1f} min |")
        total += seconds * factor
    s = build["scores"]
    return [
        f"On one {run['gpu']} ({run['date'][:10]}, `{run['command']}`): the recipe's {build['n_stars']:,} observed "
        f"stars, networks and batch sizes, reduced by {', '.join(f'`{o}`' for o in build['overrides'])}; the build "
        f"took {build['wall_seconds']:.0f} s (peak memory {build['peak_rss_mb'] / 1024:.0f} GB, in the stars stage). "
        "Each stage's time (compilation included) scaled linearly to the recipe's size:",
        "",
        "| stage | GPU time | scaled by | recipe's size |",
        "| --- | --- | --- | --- |",
        *rows,
        f"| total | {sum(build['stage_seconds'].values()):.0f} s | | {total / 3600:.1f} h |",
        "",
        f"Its cube against the truth (in-volume median): |Δa|/|a| {s['median_rel_error_accel']:.3f}, |Δρ|/ρ "
        f"{s['median_rel_error_density']:.3f} (ratio {s['median_density_ratio']:.2f}), share within 10% "
        f"{s['share_density_within_10pct']:.2f} ({s['share_density_within_10pct_well_seen']:.2f} where S > 0.1), "
        f"n shape {s['median_shape_error_tracer_density']:.3f}.",
        "",
    ]


def _key(recipe, dotted: str) -> float:
    value = recipe
    for part in dotted.split("."):
        value = getattr(value, part)
    return float(value)
