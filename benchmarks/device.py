"""Device check: one short fixed set on the CPU and on the GPU (when JAX sees one), seconds and GPU/CPU speed-ups.

    python -m benchmarks run device [--n-stars N] [--cpu-flow-batches B] [--field-steps S] [--cube-edge E] ...

In one process, on each backend JAX sees (always `jax.devices("cpu")`, and `jax.devices("gpu")` when there is
one), through the project's own code:
(1) one epoch of the MAF velocity flow p(v|x) at the quickstart's sizes (`fit_flow`) and of the flow-matching
    CNF (`fit_cfm`, its default sizes), on the Plummer mock's stars: two epochs are run; the first holds the
    compilation, the second is the steady epoch (compile = first − second). The CPU runs the epochs on
    `--cpu-flow-batches` batches only and scales the steady epoch to the full epoch (`scaled_from_batches`).
(2) `--field-steps` steps of the conditional method's field training (`train_fields`, the quickstart's
    networks) on collocation points with the Plummer mock's exact gradients; the first call of 50 steps holds
    the compilation.
(3) an `--cube-edge`³ cube of `--members` members (Φ, a, ρ, n) through the cube stage (the block evaluator,
    Dask, Zarr) into a temporary store, after a small cube that compiles.
(4) the Laplacian kernel alone, ρ = ∇²Φ/(4πG) of the quickstart's Φ network at `--laplacian-points` points,
    in calls of the cube's batch (1,024 points) and of 65,536 points; the faster of the two is compared.
The default device is switched with `jax.config.update("jax_default_device", ...)` (global, so the cube's
Dask threads follow it). Each part is guarded: an error is recorded and the others still run; parts are
skipped once `--time-limit` seconds have passed. The JSON is written after every part, so a killed run leaves
what it measured. Without a GPU the CPU alone runs, and the result says so (`"gpu": null`).
(5) optionally (`--builds RECIPE[,RECIPE]`, `--build-set key=value`), whole `dpotcube build`s of recipes on the
    first backend only (the GPU when there is one), measured as the quickstart benchmark measures a build:
    wall and stage seconds, peak memory, scores against the mock's truth.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from .report import REPO, environment, provenance_line

TITLE = "Device check: CPU against GPU"
RESULTS = REPO / "benchmarks" / "results" / "device.json"
RECIPE = REPO / "recipes" / "quickstart.yaml"
CONDITIONAL = ("fields.method=conditional", "density.position=null")
"""The quickstart as it was when the device figures were made (it has used `vanilla` since 2026-12-05)."""
QUICKSTART = REPO / "benchmarks" / "results" / "quickstart.json"
PARTS = ("maf_epoch", "cfm_epoch", "fields", "cube", "laplacian")
LAPLACIAN_BATCHES = (1024, 65_536)


@dataclass(frozen=True)
class Sizes:
    """What the check runs; the defaults are the quickstart's sizes (tests shrink them)."""

    n_stars: int = 1_000_000
    cpu_flow_batches: int = 32
    field_steps: int = 1000
    cube_edge: int = 128
    members: int = 4
    laplacian_points: int = 1_000_000
    time_limit: float = 360.0
    parts: tuple[str, ...] = PARTS
    builds: tuple[str, ...] = ()
    build_overrides: tuple[str, ...] = ()


class _EpochClock:
    """Stands in for the training loops' progress bar: the time of each update that advances (each follows a
    host sync on the call's loss, so it marks the end of a jitted call)."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def __call__(self) -> _EpochClock:
        return self

    def __enter__(self) -> _EpochClock:
        self.marks = [time.perf_counter()]
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, task: int, advance: float = 0, **kwargs: Any) -> None:
        if advance:
            self.marks.append(time.perf_counter())

    def calls(self) -> list[float]:
        """Seconds of each jitted call, in order."""
        return list(np.diff(self.marks))


@contextlib.contextmanager
def _clocked(*modules: Any) -> Iterator[_EpochClock]:
    clock = _EpochClock()
    with contextlib.ExitStack() as stack:
        for module in modules:
            stack.enter_context(mock.patch.object(module, "progress_bar", clock))
        yield clock


def _stars(n_stars: int):
    """The quickstart's Plummer mock at `n_stars` stars, and its analytic truth."""
    from dpotcube.recipe import load_recipe
    from dpotcube.sources.load import load_stars, plummer_truth

    recipe, _ = load_recipe(RECIPE, [f"data.n_stars={n_stars}", *CONDITIONAL])
    return recipe, load_stars(recipe.data, seed=recipe.seed), plummer_truth(recipe.data)


def _epoch_stars(n_full: int, batch: int, val_fraction: float, batches: int | None) -> tuple[int, int, int]:
    """(stars to fit, batches per epoch then, batches per epoch at `n_full`): `batches` caps the epoch."""

    def n_batches(n: int) -> int:
        return (n - max(int(round(val_fraction * n)), 1)) // min(batch, n)

    full = n_batches(n_full)
    if batches is None or batches >= full:
        return n_full, full, full
    n = math.ceil(batches * batch / (1 - val_fraction)) + 2
    return n, n_batches(n), full


def _epoch_result(clock: _EpochClock, total: float, n: int, batches: int, full_batches: int, batch: int) -> dict:
    calls = clock.calls()
    first, steady = calls[:2]
    scale = full_batches / batches
    return {
        "stars": n,
        "batch_size": batch,
        "batches_per_epoch": full_batches,
        "scaled_from_batches": None if batches == full_batches else batches,
        "first_epoch_s": round(first, 3),
        "compile_s": round(max(first - steady, 0.0), 3),
        "epoch_s": round(steady * scale, 3),
        "outside_epochs_s": round(total - sum(calls), 3),  # building the model, eager ops and their compilation
    }


def maf_epoch(recipe, stars, sizes: Sizes, kind: str) -> dict:
    """(1) MAF p(v|x), the quickstart's flow, through `fit_density`: a compiling epoch, then a steady one."""
    import dpotcube.training
    from dpotcube.density.registry import fit_density

    spec = recipe.density.velocity.model_copy(update={"max_epochs": 2, "patience": 10})
    n, batches, full = _epoch_stars(len(stars), spec.batch_size, spec.val_fraction,
                                    sizes.cpu_flow_batches if kind == "cpu" else None)
    started = time.perf_counter()
    with _clocked(dpotcube.training) as clock:
        fit_density(stars.velocities[:n], spec, seed=0, conditions=stars.positions[:n], label=f"maf ({kind})")
    total = time.perf_counter() - started
    return {"flow": f"{spec.flow_layers} layers, {spec.nn_depth} × {spec.nn_width}", **_epoch_result(
        clock, total, n, batches, full, spec.batch_size)}


def cfm_epoch(recipe, stars, sizes: Sizes, kind: str) -> dict:
    """(1) the flow-matching CNF p(v|x) at its default sizes: a compiling epoch, then a steady one."""
    import dpotcube.density.cfm as cfm
    import dpotcube.training
    from dpotcube.recipe import CFMSpec

    spec = CFMSpec(max_epochs=2)
    n, batches, full = _epoch_stars(len(stars), spec.batch_size, spec.val_fraction,
                                    sizes.cpu_flow_batches if kind == "cpu" else None)
    started = time.perf_counter()
    with _clocked(dpotcube.training) as clock:
        cfm.fit_cfm(stars.velocities[:n], spec, seed=0, conditions=stars.positions[:n], label=f"cfm ({kind})")
    total = time.perf_counter() - started
    return {"flow": f"ResNet {spec.depth} × {spec.width}",
            **_epoch_result(clock, total, n, batches, full, spec.batch_size)}


def _exact_collocation(recipe, stars, truth):
    """Collocation points at the quickstart's count: mock stars (x, v drawn from the exact DF) with exact ∇ ln p."""
    from dpotcube.density.collocation import CollocationPoints

    n = min(recipe.density.collocation.n_positions * recipe.density.collocation.velocities_per_position, len(stars))
    x, v = stars.positions[:n], stars.velocities[:n]
    gx, gv = truth.grad_log_p(x, v)
    return CollocationPoints(*(np.asarray(a, np.float32) for a in (x, v, gx, gv)))


def fields(recipe, points, stars, sizes: Sizes, kind: str) -> dict:
    """(2) `sizes.field_steps` steps of the conditional method's training; the first call of 50 steps compiles."""
    import dpotcube.training
    from dpotcube.fields.train import _STEPS_PER_CALL, train_fields
    from dpotcube.methods import get_method

    spec = recipe.fields.model_copy(update={"steps": sizes.field_steps, "polish_steps": 0})
    started = time.perf_counter()
    with _clocked(dpotcube.training) as clock:
        train_fields(points, stars.observer, stars.volume_radius_kpc, len(stars), spec, seed=0,
                     method=get_method(spec.method))
    total = time.perf_counter() - started
    calls = clock.calls()
    steady = float(np.median(calls[1:])) if len(calls) > 1 else calls[0]
    return {
        "networks": f"Φ {spec.potential.depth} × {spec.potential.width}, ln n {spec.log_density.depth} × "
                    f"{spec.log_density.width}",
        "collocation_points": len(points.x),
        "batch_size": spec.batch_size,
        "steps": sizes.field_steps,
        "total_s": round(total, 3),
        "compile_s": round(max(calls[0] - steady, 0.0), 3),
        "steps_s": round(steady * len(calls), 3),
        "steps_per_s": round(_STEPS_PER_CALL / steady, 1),
    }


def cube(recipe, sizes: Sizes, kind: str, folder: Path) -> dict:
    """(3) an edge³ cube of `members` members through the cube stage into Zarr, after a compiling 16³ one."""
    from dpotcube.cube.blocks import kernel_batch

    from .cube_throughput import CHUNK, cube_grid, fresh_models, write_members

    net = {k: v for k, v in recipe.fields.potential.model_dump().items() if k in ("width", "depth", "activation")}
    paths = fresh_models(folder / f"models_{kind}", sizes.members, net)  # a folder per backend: models load per path
    started = time.perf_counter()
    write_members(paths, cube_grid(16, 16), folder / f"warm_{kind}.zarr")
    warm = time.perf_counter() - started
    started = time.perf_counter()
    write_members(paths, cube_grid(sizes.cube_edge), folder / f"cube_{kind}.zarr")
    seconds = time.perf_counter() - started
    n = sizes.members * sizes.cube_edge**3
    return {"net": net, "edge": sizes.cube_edge, "members": sizes.members,
            "kernel_batch": kernel_batch(min(CHUNK, sizes.cube_edge) ** 3),
            "warm_cube_16_s": round(warm, 3), "seconds": round(seconds, 3), "points_per_s": round(n / seconds)}


def laplacian(recipe, sizes: Sizes, device) -> dict:
    """(4) ρ = ∇²Φ/(4πG) of the quickstart's Φ network alone, jitted, in calls of each of `LAPLACIAN_BATCHES`."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jax.random as jr

    from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN
    from dpotcube.fields.nets import ScalarField, laplacian

    net = {k: v for k, v in recipe.fields.potential.model_dump().items() if k in ("width", "depth", "activation")}
    field = ScalarField(**net, loc=(-8.122, 0.0, 0.0208), length_scale=3.0, out_scale=3.0e4, key=jr.key(0))
    rho = eqx.filter_jit(lambda f, x: jax.vmap(laplacian, in_axes=(None, 0))(f, x) / (4 * jnp.pi * G_KPC_KM2_S2_PER_MSUN))
    result: dict[str, Any] = {"net": net, "n_points": sizes.laplacian_points, "by_batch": {}}
    for batch in LAPLACIAN_BATCHES:
        n = max(batch, sizes.laplacian_points // batch * batch)
        x = np.random.default_rng(0).uniform(-3, 3, (n, 3)).astype(np.float32) + np.asarray(field.loc, np.float32)
        chunks = [jax.device_put(x[i : i + batch], device) for i in range(0, n, batch)]
        params, static = eqx.partition(field, eqx.is_array)
        field_on = eqx.combine(jax.device_put(params, device), static)
        started = time.perf_counter()
        rho(field_on, chunks[0]).block_until_ready()
        compile_s = time.perf_counter() - started
        started = time.perf_counter()
        out = [rho(field_on, c) for c in chunks]
        jax.block_until_ready(out)
        seconds = time.perf_counter() - started
        result["by_batch"][str(batch)] = {"n_points": n, "compile_s": round(compile_s, 3), "seconds": round(seconds, 4),
                                          "points_per_s": round(n / seconds)}
    return result


STEADY_SECONDS: dict[str, Callable[[dict], float]] = {
    "maf_epoch": lambda r: r["epoch_s"],
    "cfm_epoch": lambda r: r["epoch_s"],
    "fields": lambda r: r["steps_s"],
    "cube": lambda r: r["seconds"],
    "laplacian": lambda r: r["n_points"] / max(b["points_per_s"] for b in r["by_batch"].values()),
}
"""The steady (compiled) seconds of each part that the GPU/CPU speed-up compares."""

COMPILE_SECONDS: dict[str, Callable[[dict], float]] = {
    "maf_epoch": lambda r: r["compile_s"],
    "cfm_epoch": lambda r: r["compile_s"],
    "fields": lambda r: r["compile_s"],
    "cube": lambda r: r["warm_cube_16_s"],
    "laplacian": lambda r: sum(b["compile_s"] for b in r["by_batch"].values()),
}
"""The first-call overhead (mostly compilation) of each part: for the cube, the whole small warm-up cube."""

QUICKSTART_STAGES = {"velocity_flow_0": "maf_epoch", "collocation": "maf_epoch", "fields": "fields", "cube": "cube"}
"""Which part's speed-up a quickstart stage is scaled by (collocation: flow evaluations; stars: NumPy, unscaled)."""


def whole_build(recipe_path: Path, sizes: Sizes, kind: str, deadline: float, folder: Path) -> dict:
    """(5) One whole build of `recipe_path` on the default device, as `benchmarks.builds.measured_build` measures it."""
    from .builds import measured_build

    if time.perf_counter() > deadline:
        return {"device": kind, "skipped": f"time limit of {sizes.time_limit:.0f} s reached"}
    build_dir = folder / f"build_{recipe_path.stem}"
    catalog = f"publish.catalog={folder / 'catalog' / 'catalog.yaml'}"
    print(f"[device] build {recipe_path} on {kind} ({', '.join(sizes.build_overrides) or 'as written'})", flush=True)
    try:
        _, record = measured_build(recipe_path, [*sizes.build_overrides, catalog], build_dir)
    except Exception as exc:  # noqa: BLE001  (recorded, like a failing part)
        record = {"error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": traceback.format_exc()[-3000:]}
    record = {"device": kind, "recipe": str(recipe_path), "overrides": list(sizes.build_overrides), **record}
    print(f"[device] build {recipe_path.stem}: {json.dumps(record)[:1500]}", flush=True)
    return record


def speedups(parts: dict) -> dict[str, float]:
    """CPU seconds / GPU seconds of each part both backends finished."""
    out = {}
    for name, by_kind in parts.items():
        cpu, gpu = by_kind.get("cpu", {}), by_kind.get("gpu", {})
        if "error" in cpu or "error" in gpu or not cpu or not gpu or "skipped" in cpu or "skipped" in gpu:
            continue
        out[name] = round(float(STEADY_SECONDS[name](cpu) / max(STEADY_SECONDS[name](gpu), 1e-9)), 2)
    return out


def projection(speedup: dict[str, float]) -> dict | None:
    """The quickstart's recorded stage times divided by the matching speed-ups: a projection, not a measurement."""
    if not QUICKSTART.exists() or not speedup:
        return None
    quick = json.loads(QUICKSTART.read_text())
    stages = {}
    for stage, seconds in quick["stage_seconds"].items():
        part = QUICKSTART_STAGES.get("fields" if stage.startswith("member_seed_") else stage)  # refits of the fields
        factor = speedup.get(part, 1.0) if part else 1.0
        stages[stage] = round(float(seconds / factor), 1)
    return {
        "what": "PROJECTION, not measured: each stage of benchmarks/results/quickstart.json (measured on "
                f"{quick['machine']}) divided by this run's GPU/CPU speed-up of the matching part; the speed-ups "
                "are against this machine's CPU, so where that CPU is faster than the quickstart's the projection "
                "is pessimistic. Compilation is not rescaled.",
        "quickstart_machine": quick["machine"],
        "quickstart_stage_seconds": quick["stage_seconds"],
        "scaled_by": {stage: QUICKSTART_STAGES.get(stage) for stage in quick["stage_seconds"]},
        "projected_gpu_stage_seconds": stages,
        "projected_gpu_total_seconds": round(sum(stages.values()), 1),
        "quickstart_total_seconds": round(sum(quick["stage_seconds"].values()), 1),
    }


def _process_seconds() -> float | None:
    """Seconds since this process started (imports and JAX start-up included), where psutil can tell."""
    try:
        import psutil

        return round(time.time() - psutil.Process().create_time(), 1)
    except Exception:  # noqa: BLE001  (a nicety: never the reason a run fails)
        return None


def _backends() -> dict[str, Any]:
    import jax

    backends: dict[str, Any] = {"cpu": jax.devices("cpu")[0]}
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if gpus:
        backends = {"gpu": gpus[0], **backends}  # the GPU first: if the run is cut short, its numbers are there
    return backends


def measure(sizes: Sizes, out: Path | None, command: str) -> dict:
    """Run every part on every backend; write `out` (when given) after each."""
    import jax

    started = time.perf_counter()
    deadline = started + sizes.time_limit
    backends = _backends()
    result: dict[str, Any] = {
        "command": command,
        **environment(),
        "jax_devices": {kind: str(dev) for kind, dev in backends.items()},
        "gpu": str(backends["gpu"].device_kind) if "gpu" in backends else None,
        "note": "GPU and CPU" if "gpu" in backends else "no GPU visible: CPU only",
        "cpu_count": os.cpu_count(),
        "sizes": asdict(sizes),
        "parts": {},
    }

    def save() -> None:
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        result["process_seconds"] = _process_seconds()
        result["speedup_gpu_over_cpu"] = speedups(result["parts"])
        result["projection"] = projection(result["speedup_gpu_over_cpu"]) if "gpu" in backends else None
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"[device] backends: {result['jax_devices']}; {result['note']}; {os.cpu_count()} CPUs", flush=True)
    recipe = stars = points = None
    if sizes.parts:  # whole builds alone (`--parts ""`) need no quickstart stars
        recipe, stars, truth = _stars(sizes.n_stars)
        points = _exact_collocation(recipe, stars, truth)
        print(f"[device] {len(stars):,} stars, {len(points.x):,} collocation points "
              f"({time.perf_counter() - started:.1f} s)", flush=True)
    save()
    with tempfile.TemporaryDirectory(prefix="device_") as tmp:
        runs: dict[str, Callable[[str], dict]] = {
            "maf_epoch": lambda kind: maf_epoch(recipe, stars, sizes, kind),
            "cfm_epoch": lambda kind: cfm_epoch(recipe, stars, sizes, kind),
            "fields": lambda kind: fields(recipe, points, stars, sizes, kind),
            "cube": lambda kind: cube(recipe, sizes, kind, Path(tmp)),
            "laplacian": lambda kind: laplacian(recipe, sizes, backends[kind]),
        }
        try:
            for name in sizes.parts:
                for kind, device in backends.items():
                    part = result["parts"].setdefault(name, {})
                    if time.perf_counter() > deadline:
                        part[kind] = {"skipped": f"time limit of {sizes.time_limit:.0f} s reached"}
                        print(f"[device] {name} on {kind}: skipped (time limit)", flush=True)
                        continue
                    jax.config.update("jax_default_device", device)
                    t0 = time.perf_counter()
                    try:
                        part[kind] = runs[name](kind)
                    except Exception as exc:  # noqa: BLE001  (one failing part must not stop the others)
                        part[kind] = {"error": f"{type(exc).__name__}: {exc}"[:2000],
                                      "traceback": traceback.format_exc()[-3000:]}
                    part[kind]["wall_s"] = round(time.perf_counter() - t0, 2)
                    state = "ERROR " + part[kind]["error"][:300] if "error" in part[kind] else json.dumps(part[kind])
                    print(f"[device] {name} on {kind} ({part[kind]['wall_s']:.1f} s): {state}", flush=True)
                    save()
            kind, device = next(iter(backends.items()))
            jax.config.update("jax_default_device", device)
            for recipe_path in sizes.builds:
                result.setdefault("builds", {})[Path(recipe_path).stem] = whole_build(
                    Path(recipe_path), sizes, kind, deadline, Path(tmp))
                save()
        finally:
            jax.config.update("jax_default_device", None)
    save()
    print(f"[device] speed-up GPU/CPU: {result['speedup_gpu_over_cpu']}; wall {result['wall_seconds']} s", flush=True)
    return result


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run device", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Sizes()
    parser.add_argument("--n-stars", type=int, default=default.n_stars, help="mock stars (default 10⁶)")
    parser.add_argument("--cpu-flow-batches", type=int, default=default.cpu_flow_batches,
                        help="batches of the CPU's flow epochs, scaled to a full epoch (default %(default)s)")
    parser.add_argument("--field-steps", type=int, default=default.field_steps, help="field-training steps")
    parser.add_argument("--cube-edge", type=int, default=default.cube_edge, help="grid points along each cube axis")
    parser.add_argument("--members", type=int, default=default.members, help="ensemble members of the cube")
    parser.add_argument("--laplacian-points", type=int, default=default.laplacian_points, help="points of (4)")
    parser.add_argument("--time-limit", type=float, default=default.time_limit,
                        help="seconds after which the parts not yet started are skipped (default %(default)s)")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts to run (default all: %(default)s)")
    parser.add_argument("--builds", default="", help="comma-separated recipes built whole on the first backend (5)")
    parser.add_argument("--build-set", dest="build_overrides", action="append", default=[],
                        help="override a key of every recipe in --builds (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON written after every part (and in the end, in place of device.json)")
    args = parser.parse_args(argv)
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"--parts: no part {', '.join(unknown)}; the parts are {', '.join(PARTS)}.")
    sizes = Sizes(args.n_stars, args.cpu_flow_batches, args.field_steps, args.cube_edge, args.members,
                  args.laplacian_points, args.time_limit, parts,
                  tuple(b.strip() for b in args.builds.split(",") if b.strip()), tuple(args.build_overrides))
    changed = [f"--{k.replace('_', '-')} {','.join(v) if isinstance(v, tuple) else f'{v:g}'}"
               for k, v in asdict(sizes).items() if v != getattr(default, k) and k != "build_overrides"]
    changed += [f"--build-set {o}" for o in sizes.build_overrides]
    result = measure(sizes, args.out, " ".join(["python -m benchmarks run device", *changed]))
    if args.out.resolve() != RESULTS.resolve():  # e.g. a GPU build of the paper recipe: device.json stays as it was
        result["_results_file"] = str(args.out)
    return result


def _seconds(r: dict | None, name: str, seconds: dict[str, Callable[[dict], float]] = STEADY_SECONDS) -> str:
    if not r:
        return "–"
    if "error" in r:
        return "error"
    if "skipped" in r:
        return "skipped"
    return f"{seconds[name](r):.2f} s"


def markdown(r: dict) -> str:
    parts, speed = r["parts"], r["speedup_gpu_over_cpu"]
    sizes = r["sizes"]
    labels = {
        "maf_epoch": "(1) MAF p(v\\|x), one epoch at {n_stars:,} stars",
        "cfm_epoch": "(1) flow-matching CNF p(v\\|x), one epoch at {n_stars:,} stars",
        "fields": "(2) conditional fields, {field_steps:,} steps",
        "cube": "(3) cube stage, {members} members × {cube_edge}³ (Φ, a, ρ, n) into Zarr",
        "laplacian": "(4) ρ = ∇²Φ/(4πG) alone, {laplacian_points:,} points (the faster call size)",
    }
    gpu = r["gpu"] or "none visible"
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        f"GPU: {gpu}; {r['cpu_count']} CPUs; {r['note']}. Whole run {r['wall_seconds']:.0f} s "
        f"({r.get('process_seconds') or r['wall_seconds']:.0f} s with the process's start-up). Steady seconds "
        "(the first call's compilation apart, in the last column; for the cube a whole 16³ warm-up cube); the CPU's flow epochs are measured on "
        f"{sizes['cpu_flow_batches']} batches and scaled to the full epoch.",
        "",
        "| part | CPU | GPU | speed-up GPU/CPU | first-call overhead CPU · GPU |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in PARTS:
        by_kind = parts.get(name, {})
        factor = f"{speed[name]:.1f} ×" if name in speed else "–"
        lines.append(f"| {labels[name].format(**sizes)} | {_seconds(by_kind.get('cpu'), name)} | "
                     f"{_seconds(by_kind.get('gpu'), name)} | {factor} | {_seconds(by_kind.get('cpu'), name, COMPILE_SECONDS)} · "
                     f"{_seconds(by_kind.get('gpu'), name, COMPILE_SECONDS)} |")
    lap = parts.get("laplacian", {})
    for kind in ("cpu", "gpu"):
        by_batch = lap.get(kind, {}).get("by_batch")
        if by_batch:
            rates = " · ".join(f"{int(b):,}: {v['points_per_s']:,}" for b, v in by_batch.items())
            lines.append(f"| (4) points/s on the {kind.upper()} by call size | {rates} | | | |")
    proj = r.get("projection")
    if proj:
        lines += [
            "",
            f"**Projection, not a measurement**: the quickstart's stages ({proj['quickstart_total_seconds']:.0f} s "
            f"on {proj['quickstart_machine']}) divided by these speed-ups give about "
            f"{proj['projected_gpu_total_seconds']:.0f} s on this GPU ("
            + ", ".join(f"{k} {v:.0f} s" for k, v in proj["projected_gpu_stage_seconds"].items()) + ").",
        ]
    builds = r.get("builds") or {}
    if builds:
        lines += ["", "Whole builds (5), measured on the first backend:", "",
                  "| recipe | device | wall | stages | \\|Δa\\|/\\|a\\| | \\|Δρ\\|/ρ |", "| --- | --- | --- | --- | --- | --- |"]
        for name, b in builds.items():
            overrides = f" (`{' '.join(b.get('overrides', []))}`)" if b.get("overrides") else ""
            if "wall_seconds" not in b:
                lines.append(f"| {name}{overrides} | {b['device']} | {'error' if 'error' in b else 'skipped'} | | | |")
                continue
            stages = ", ".join(f"{k} {v:.0f} s" for k, v in b["stage_seconds"].items())
            s = b.get("scores") or {}
            acc = [f"{s[k]:.3f}" if k in s else "–" for k in ("median_rel_error_accel", "median_rel_error_density")]
            lines.append(f"| {name}{overrides} | {b['device']} | {b['wall_seconds']:.0f} s | {stages} | {acc[0]} | {acc[1]} |")
    lines.append("")
    return "\n".join(lines)
