"""Cube throughput: the forward-mode Laplacian, the cube pipeline against its bare kernel, and its peak memory.

    python -m benchmarks run cube-throughput

(a) ∇²Φ of a 5 × 100 network by the forward-mode pass against trace(jacfwd(grad)), same points,
    jitted and warm: points/s of each, their ratio and the largest difference.
(b) The cube stage (Φ, a, ρ and n of every member, through Dask into a Zarr store) against the bare
    jitted kernel `evaluate_points` on the same points, both warm, in the same run.
(c) Peak resident memory of writing a 64³ and a 192³ cube of 4 members, each in a fresh process, from
    the imports done to the store complete (see `_write_cube_and_report`).

Timings interleave the variants and keep the best of several repeats: the machine is shared, and the
best repeat is the one least disturbed. Field models are freshly initialised `CBEFields`
saved with `save_fields`: accuracy is not measured here. Writes
`benchmarks/results/cube_throughput.json` and the cube-throughput section of `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .memory import peak_mb, reset_peak, resident_mb
from .report import REPO, environment, provenance_line

TITLE = "Cube throughput"
RESULTS = REPO / "benchmarks" / "results" / "cube_throughput.json"

NET = {"width": 100, "depth": 5, "activation": "silu"}  # the Φ network of (a) and (b); n(x) gets the same
MEMORY_NET = {"width": 16, "depth": 2, "activation": "silu"}  # (c) measures memory, not speed
OBSERVER = (-8.122, 0.0, 0.0208)
HALF_WIDTH_KPC = 3.0
CHUNK = 32  # the recipe default
MEMBERS = 4
LAPLACIAN_POINTS = 16_384
PIPELINE_EDGE = 64
MEMORY_EDGES = (64, 192)
REPEATS = 3


def fresh_models(folder: Path, members: int, net: dict, seed: int = 0) -> list[Path]:
    """`members` freshly initialised field models of the production class, saved in `folder`."""
    import jax.random as jr

    from dpotcube.fields.model import fields_skeleton, save_fields

    folder.mkdir(parents=True, exist_ok=True)
    common = {"loc": OBSERVER, "length_scale": HALF_WIDTH_KPC}
    hyper = {
        "method": "conditional",
        "potential": {**net, **common, "out_scale": 3.0e4},
        "log_density": {**net, **common, "out_scale": 1.0},
    }
    paths = []
    for member in range(members):
        model = fields_skeleton(**hyper, key=jr.key(seed + member))
        paths.append(folder / f"fields_{member}.eqx")
        save_fields(paths[-1], model, hyper)
    return paths


def cube_grid(edge: int, chunk: int = CHUNK):
    """An `edge`³ grid filling the cube of half-width `HALF_WIDTH_KPC` around the observer."""
    from dpotcube.cube.grid import Grid

    x, y, z = (c + np.linspace(-HALF_WIDTH_KPC, HALF_WIDTH_KPC, edge) for c in OBSERVER)
    return Grid(x=x, y=y, z=z, observer=np.asarray(OBSERVER), volume_radius_kpc=HALF_WIDTH_KPC, chunk=chunk)


def write_members(paths: Sequence[Path], grid, store: Path) -> None:
    """The cube stage as `dpotcube build` runs it, for the members at `paths`."""
    from dpotcube.cube.store import cube_dataset, write_cube
    from dpotcube.methods import CubeInputs, FitFiles, get_method
    from dpotcube.recipe import FieldsSpec, recipe_from_dict
    from dpotcube.sources import PhaseSpaceTable

    method = get_method("conditional")
    members = tuple(FitFiles((), (), None, p) for p in paths)
    stars = PhaseSpaceTable(np.zeros((0, 3)), np.zeros((0, 3)), np.asarray(OBSERVER), HALF_WIDTH_KPC, "benchmark")
    blocks = method.cube_blocks(CubeInputs(recipe_from_dict({"name": "b"}), grid, stars, members, 0))
    fields = method.cube_variables(FieldsSpec())
    write_cube(cube_dataset(blocks, grid, {"method": "conditional"}, ["seed"] * len(paths), fields), store)


def best_seconds(variants: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Fastest of `repeats` wall times, and least of their CPU times (all threads), of each variant, interleaved."""
    wall = {name: float("inf") for name in variants}
    cpu = dict(wall)
    for _ in range(repeats):
        for name, run in variants.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            run()
            wall[name] = min(wall[name], time.perf_counter() - started)
            cpu[name] = min(cpu[name], time.process_time() - cpu_started)
    return wall, cpu


def laplacian_speed(net: dict = NET, n_points: int = LAPLACIAN_POINTS, repeats: int = REPEATS, seed: int = 0) -> dict:
    """(a): forward-mode ∇²Φ against trace(jacfwd(grad)) on the same points, in calls of the cube's batch size."""
    import equinox as eqx
    import jax
    import jax.random as jr

    from dpotcube.cube.blocks import BATCH
    from dpotcube.fields.forward import value_grad_laplacian
    from dpotcube.fields.nets import ScalarField, laplacian_jacfwd

    k_net, k_x = jr.split(jr.key(seed))
    field = ScalarField(**net, loc=OBSERVER, length_scale=HALF_WIDTH_KPC, out_scale=3.0e4, key=k_net)
    x = np.asarray(field.loc + HALF_WIDTH_KPC * jr.uniform(k_x, (n_points, 3), minval=-1, maxval=1), np.float32)
    kernels = {
        "forward": eqx.filter_jit(jax.vmap(value_grad_laplacian, in_axes=(None, 0))),
        "jacfwd": eqx.filter_jit(jax.vmap(laplacian_jacfwd, in_axes=(None, 0))),
    }

    def run(name: str) -> np.ndarray:
        out = [kernels[name](field, x[i : i + BATCH]) for i in range(0, n_points, BATCH)]
        lap = [o[2] if name == "forward" else o for o in out]
        return np.concatenate([np.asarray(o) for o in lap])

    values = {name: run(name) for name in kernels}  # also compiles
    seconds, _ = best_seconds({name: (lambda n=name: run(n)) for name in kernels}, repeats)
    diff = np.abs(values["forward"].astype(np.float64) - values["jacfwd"])
    scale = np.abs(values["jacfwd"]).astype(np.float64)
    return {
        "net": net,
        "n_points": n_points,
        "batch": BATCH,
        "points_per_s": {name: round(n_points / s) for name, s in seconds.items()},
        "speed_ratio": round(seconds["jacfwd"] / seconds["forward"], 2),
        "max_rel_diff": float(f"{diff.max() / scale.max():.3g}"),
        "median_pointwise_rel_diff": float(f"{np.median(diff / scale):.3g}"),
    }


def kernel_before_after(net: dict = NET, n_points: int = LAPLACIAN_POINTS, repeats: int = REPEATS) -> dict:
    """(a'): the cube's whole kernel (Φ, a, ρ and n) with the forward-mode pass against the same kernel built
    from the network, jax.grad and trace(jacfwd(grad)) as it was before, on the same points."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN, MSUN_PER_KPC3_TO_MSUN_PER_PC3
    from dpotcube.cube.blocks import BATCH
    from dpotcube.cube.evaluate import evaluate_points
    from dpotcube.fields.model import load_fields
    from dpotcube.fields.nets import laplacian_jacfwd
    from dpotcube.methods import get_method

    @eqx.filter_jit
    def before(model, reference, points):
        phi = jax.vmap(model.potential)(points) - model.potential(reference)
        accel = -jax.vmap(jax.grad(model.potential))(points)
        lap = jax.vmap(laplacian_jacfwd, in_axes=(None, 0))(model.potential, points)
        rho = lap / (4 * jnp.pi * G_KPC_KM2_S2_PER_MSUN) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
        n = jax.vmap(model.tracer_density)(points)
        return jnp.stack([phi, accel[:, 0], accel[:, 1], accel[:, 2], rho, n]).astype(jnp.float32)

    with tempfile.TemporaryDirectory() as tmp:
        model = load_fields(fresh_models(Path(tmp), 1, net)[0])
    reference = np.asarray(OBSERVER, np.float32)
    x = (reference + np.random.default_rng(0).uniform(-HALF_WIDTH_KPC, HALF_WIDTH_KPC, (n_points, 3))).astype(np.float32)

    def run(kernel) -> np.ndarray:
        return np.concatenate([np.asarray(kernel(model, reference, x[i : i + BATCH])) for i in range(0, n_points, BATCH)], 1)

    extra = get_method("conditional").extra_values

    def after(model, reference, points):
        return evaluate_points(model, reference, points, extra)

    values = {"after": run(after), "before": run(before)}
    seconds, _ = best_seconds({"after": lambda: run(after), "before": lambda: run(before)}, repeats)
    diff = np.abs(values["after"] - values["before"]).max(axis=1) / np.abs(values["before"]).max(axis=1)
    return {
        "net": net,
        "n_points": n_points,
        "points_per_s": {name: round(n_points / s) for name, s in seconds.items()},
        "speed_ratio": round(seconds["before"] / seconds["after"], 2),
        "max_rel_diff": float(f"{diff.max():.3g}"),
    }


def pipeline_throughput(
    folder: Path, edge: int = PIPELINE_EDGE, members: int = MEMBERS, net: dict = NET, repeats: int = REPEATS
) -> dict:
    """(b): the cube stage into Zarr against the bare kernel on the same points, both warm."""
    from dpotcube.cube.blocks import BATCH
    from dpotcube.cube.evaluate import _model_on_worker, evaluate_points
    from dpotcube.methods import get_method

    extra = get_method("conditional").extra_values
    paths = fresh_models(folder / "models", members, net)
    grid = cube_grid(edge)
    write_members(paths, cube_grid(CHUNK), folder / "warm.zarr")  # compiles and loads every model once
    models = [_model_on_worker(str(p.resolve()), p.stat().st_mtime_ns) for p in paths]
    reference = np.asarray(OBSERVER, np.float32)
    points = grid.points([(0, edge)] * 3).astype(np.float32)
    points = np.concatenate([points, np.repeat(points[-1:], -len(points) % BATCH, axis=0)])

    def kernel(threads: int) -> None:
        calls = [(m, i) for m in models for i in range(0, len(points), BATCH)]
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda c: np.asarray(evaluate_points(c[0], reference, points[c[1] : c[1] + BATCH], extra)), calls))

    def pipeline() -> None:
        store = folder / "cube.zarr"
        write_members(paths, grid, store)
        shutil.rmtree(store)

    variants = {"pipeline": pipeline, "kernel_1_thread": lambda: kernel(1), "kernel_2_threads": lambda: kernel(2)}
    seconds, cpu = best_seconds(variants, repeats)
    n = members * edge**3
    kernel_seconds = min(seconds["kernel_1_thread"], seconds["kernel_2_threads"])
    return {
        "net": net,
        "edge": edge,
        "members": members,
        "chunk": CHUNK,
        "batch": BATCH,
        "n_points": n,
        "points_per_s": {name: round(n / s) for name, s in seconds.items()},
        "cpu_points_per_s": {name: round(n / s) for name, s in cpu.items()},
        "ratio": round(kernel_seconds / seconds["pipeline"], 3),
        "cpu_ratio": round(min(cpu["kernel_1_thread"], cpu["kernel_2_threads"]) / cpu["pipeline"], 3),
    }


def peak_memory(folder: Path, edge: int, members: int = MEMBERS, net: dict = MEMORY_NET) -> dict:
    """(c): peak RSS of writing an `edge`³ cube of `members` members, in a fresh process."""
    fresh_models(folder / "models", members, net)
    cmd = [sys.executable, "-m", "benchmarks.cube_throughput", "--write-cube", str(edge), str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-3000:]}")
    return {"edge": edge, "members": members, "chunk": CHUNK, "net": net, **json.loads(done.stdout.strip().splitlines()[-1])}


def _write_cube_and_report(edge: int, folder: Path) -> None:
    """The child of `peak_memory`: write the cube; print as one JSON line the peak RSS of the write and
    the resident memory just before it (imports done, nothing compiled).

    The peak is reset after the imports (Linux `clear_refs`) and read as `VmHWM`: getrusage's
    `ru_maxrss` is the same high-water mark, but also keeps, across fork and exec, the parent's resident
    size at the fork (the benchmark's own few hundred MB), which would hide the write's peak.
    """
    import dpotcube.cube.store  # noqa: F401  (every import the write needs, before the baseline)

    paths = sorted((folder / "models").glob("fields_*.eqx"))
    before = resident_mb()
    reset_peak()  # Linux: the peak RSS restarts from the current RSS
    started = time.perf_counter()
    write_members(paths, cube_grid(edge), folder / f"cube_{edge}.zarr")
    seconds = time.perf_counter() - started
    peak = peak_mb()
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    shutil.rmtree(folder / f"cube_{edge}.zarr")
    one_field_mb = len(paths) * edge**3 * 4 / 2**20
    print(json.dumps({"peak_rss_mb": round(peak), "rss_before_write_mb": round(before), "ru_maxrss_mb": round(ru_maxrss),
                      "one_field_mb": round(one_field_mb, 1), "seconds": round(seconds, 1)}))


def run_all(folder: Path, repeats: int = REPEATS) -> dict:
    laplacian = laplacian_speed(repeats=repeats)
    print("laplacian", json.dumps(laplacian), flush=True)
    kernel = kernel_before_after(repeats=repeats)
    print("kernel", json.dumps(kernel), flush=True)
    pipeline = pipeline_throughput(folder / "pipeline", repeats=repeats)
    print("pipeline", json.dumps(pipeline), flush=True)
    memory = {str(edge): peak_memory(folder / "memory", edge) for edge in MEMORY_EDGES}
    print("memory", json.dumps(memory), flush=True)
    small, large = (memory[str(e)]["peak_rss_mb"] for e in MEMORY_EDGES)
    return {"laplacian": laplacian, "kernel": kernel, "pipeline": pipeline, "memory": memory, "memory_ratio": round(large / small, 2)}


def markdown(r: dict) -> str:
    lap, kern, pipe, mem = r["laplacian"], r["kernel"], r["pipeline"], r["memory"]
    edges = sorted(int(e) for e in mem)
    small, large = mem[str(edges[0])], mem[str(edges[-1])]

    def net(n: dict) -> str:
        return f"{n['depth']} × {n['width']} {n['activation']}"

    p, pc = pipe["points_per_s"], pipe["cpu_points_per_s"]
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        f"Best of {r['repeats']} interleaved repeats. Kernel calls of {lap['batch']} points, as the cube makes them.",
        "",
        "| quantity | measured | goal |",
        "| --- | --- | --- |",
        f"| (a) ∇²Φ, forward mode ({net(lap['net'])}, {lap['n_points']:,} points) | "
        f"{lap['points_per_s']['forward']:,} points/s | – |",
        f"| (a) ∇²Φ, trace(jacfwd(grad)), same points | {lap['points_per_s']['jacfwd']:,} points/s | – |",
        f"| (a) speed ratio forward / jacfwd | {lap['speed_ratio']:.2f} × | ≥ 2 × |",
        f"| (a) max \\|Δ∇²Φ\\| / max \\|∇²Φ\\| (median pointwise) | {lap['max_rel_diff']:.1e} ({lap['median_pointwise_rel_diff']:.1e}) | ≤ 1e-5 |",
        f"| (a′) the cube's kernel Φ, a, ρ, n (both networks {net(kern['net'])}), forward mode | "
        f"{kern['points_per_s']['after']:,} points/s | – |",
        f"| (a′) the same kernel as before (network, jax.grad, trace(jacfwd(grad))) | "
        f"{kern['points_per_s']['before']:,} points/s | – |",
        f"| (a′) speed ratio; largest \\|Δ\\| over a field's largest \\|value\\| | {kern['speed_ratio']:.2f} ×; "
        f"{kern['max_rel_diff']:.1e} | – |",
        f"| (b) cube stage → Zarr, {pipe['members']} members × {pipe['edge']}³, chunk {pipe['chunk']}³ "
        f"({pipe['n_points']:,} points, Φ, a, ρ, n) | {p['pipeline']:,} points/s | – |",
        f"| (b) bare kernel `evaluate_points`, same points (1 thread · 2 threads) | "
        f"{p['kernel_1_thread']:,} · {p['kernel_2_threads']:,} points/s | – |",
        f"| (b) cube stage / faster bare kernel, wall clock | {pipe['ratio']:.2f} | ≥ 0.90 |",
        f"| (b) the same per CPU second (all threads; {pc['pipeline']:,} against "
        f"{max(pc['kernel_1_thread'], pc['kernel_2_threads']):,} points per CPU s) | {pipe['cpu_ratio']:.2f} | – |",
        f"| (c) peak RSS, {small['members']} members × {edges[0]}³, chunk {small['chunk']}³ ({net(small['net'])}, "
        "a fresh process) | "
        f"{small['peak_rss_mb']} MB ({small['rss_before_write_mb']} MB before writing) | – |",
        f"| (c) peak RSS, {large['members']} members × {edges[-1]}³ (one field of all members "
        f"{large['one_field_mb']:.0f} MB, the six {6 * large['one_field_mb']:.0f} MB) | {large['peak_rss_mb']} MB ({large['rss_before_write_mb']} MB before writing) | – |",
        f"| (c) peak RSS ratio {edges[-1]}³ / {edges[0]}³ | {r['memory_ratio']:.2f} | ≤ 1.3 |",
        "",
    ]
    return "\n".join(lines)


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run cube-throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cube_throughput_") as tmp:
        measured = run_all(Path(tmp))
    return {"command": "python -m benchmarks run cube-throughput", **environment(), "repeats": REPEATS, **measured}


def main(argv: list[str]) -> None:
    """`python -m benchmarks.cube_throughput`: the child of `peak_memory`, or the older spelling of `run`."""
    if argv[:1] == ["--write-cube"] and len(argv) == 3:
        _write_cube_and_report(int(argv[1]), Path(argv[2]))
        return
    from .__main__ import main as benchmarks_main

    benchmarks_main(["run", "cube-throughput", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
