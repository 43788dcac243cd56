"""Accuracy and cost of the `pointwise` method on the Plummer mock: a and kernel-smoothed ρ against the truth.

    python -m benchmarks.pointwise [--stars N] [--epochs E] [--flows DIR] [--points P] [--density-points D]

Fits p(v|x) like `recipes/quickstart.yaml` (and n(x) with the same budget, ball support), or reuses the
flows saved in `--flows`; then at P random in-volume positions scores the pointwise a for several K
(median |Δa|/|a|), and at D positions within 2.5 kpc of the observer the smoothed ρ against the
truth's kernel average by the same quadrature. Times are per 1,000 positions, wall and CPU seconds
(CPU: all threads of this process; the wall time depends on what else the machine runs).
Writes `benchmarks/results/pointwise.json` and the results section of `docs/pointwise.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .report import environment, provenance_line, update_section

REPO = Path(__file__).resolve().parents[1]
TITLE = "The pointwise method on the Plummer mock (`benchmarks/pointwise.py`)"
RESULTS = REPO / "benchmarks" / "results" / "pointwise.json"
DOC = REPO / "docs" / "pointwise.md"
VELOCITY = {"flow_layers": 6, "nn_width": 128, "nn_depth": 2, "learning_rate": 4e-3, "batch_size": 2048}
POSITION = {"flow_layers": 6, "nn_width": 64, "nn_depth": 2, "learning_rate": 4e-3, "batch_size": 2048}


def timed(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def flows(stars, epochs: int, folder: Path):
    from dpotcube.density.maf import fit_flow
    from dpotcube.density.registry import load_density, save_density
    from dpotcube.recipe import FlowSpec, PositionFlowSpec

    folder.mkdir(parents=True, exist_ok=True)
    specs = {"velocity": FlowSpec(**VELOCITY, max_epochs=epochs), "position": PositionFlowSpec(**POSITION, max_epochs=epochs)}
    out, seconds = {}, {}
    for kind, spec in specs.items():
        path = folder / f"{kind}_{len(stars)}_{epochs}.eqx"
        if not path.exists():
            started = time.perf_counter()
            if kind == "velocity":
                flow, _ = fit_flow(stars.velocities, spec, seed=0, conditions=stars.positions, label="p(v|x)")
            else:
                flow, _ = fit_flow(stars.positions, spec, seed=0, ball=(stars.observer, stars.volume_radius_kpc), label="n(x)")
            save_density(path, flow, spec)
            seconds[kind] = round(time.perf_counter() - started, 1)
        out[kind] = load_density(path)
    return out, seconds


def measure(args) -> dict:
    import jax.numpy as jnp

    from dpotcube.geometry import uniform_in_ball
    from dpotcube.pointwise import (
        accelerations,
        divergences,
        in_batches,
        kernel_offsets,
        plummer_pointwise,
        pointwise_flows,
        qmc_normals,
        smoothed_density,
    )
    from dpotcube.pointwise.kernel import in_volume
    from dpotcube.recipe import DataSpec
    from dpotcube.sources.load import load_stars, plummer_truth

    data = DataSpec(n_stars=args.stars)
    truth, stars = plummer_truth(data), load_stars(data, seed=0)
    fitted, fit_seconds = flows(stars, args.epochs, Path(args.flows))
    rng = np.random.default_rng(1)
    points = uniform_in_ball(rng, args.points, stars.observer, stars.volume_radius_kpc).astype(np.float32)
    true_a = np.asarray(truth.acceleration(points))

    def error(a):
        return float(np.median(np.linalg.norm(a - true_a, axis=1) / np.linalg.norm(true_a, axis=1)))

    rows = []
    for k in args.velocities:
        model = pointwise_flows([fitted["velocity"]], [fitted["position"]], qmc_normals(k, "sobol", 0), 600.0)
        in_batches(accelerations, model, points[: args.batch], args.batch)  # compile
        n = args.points if k <= 2048 else args.batch  # the largest K on a few points only: cost, not accuracy
        a, wall, cpu = timed(in_batches, accelerations, model, points[:n], args.batch)
        rows.append({"K": k, "points": n, "median_rel_error_accel": error(a) if n == args.points else None,
                     "wall_s_per_1000": 1000 * wall / n, "cpu_s_per_1000": 1000 * cpu / n})
        print(rows[-1], flush=True)
    exact = plummer_pointwise(truth, args.velocities[0])
    exact_error = error(in_batches(accelerations, exact, points, args.batch))

    k_rho = args.velocities[0]
    model = pointwise_flows([fitted["velocity"]], [fitted["position"]], qmc_normals(k_rho, "sobol", 0), 600.0)
    in_batches(divergences, model, points[: args.batch], args.batch)  # compile
    centres = uniform_in_ball(rng, args.density_points, stars.observer, 2.5).astype(np.float32)
    offsets = kernel_offsets(args.kernel_points, (0.5, 0.5, 0.2), 2.0, "sobol", 1)
    rho, wall, cpu = timed(smoothed_density, model, centres, offsets, stars.observer, stars.volume_radius_kpc, args.batch)
    kernel = centres[:, None] + offsets
    inside = in_volume(kernel, stars.observer, stars.volume_radius_kpc)
    rho_k = np.sum(np.asarray(truth.density(jnp.asarray(kernel))) * inside, axis=1) / inside.sum(1) * 1e-9
    density = {
        "K": k_rho, "kernel_points": args.kernel_points, "points": args.density_points,
        "median_rel_error_density": float(np.median(np.abs(rho / rho_k - 1))),
        "median_density_ratio": float(np.median(rho / rho_k)),
        "wall_s_per_1000": 1000 * wall / args.density_points, "cpu_s_per_1000": 1000 * cpu / args.density_points,
    }
    print(density, flush=True)
    return {
        "command": " ".join(["python -m benchmarks.pointwise", *sys.argv[1:]]),
        **environment(),
        "n_stars": args.stars, "epochs": args.epochs, "fit_seconds": fit_seconds,
        "velocity_flow": VELOCITY, "position_flow": POSITION,
        "acceleration": rows, "exact_p_median_rel_error_accel": exact_error, "density": density,
    }


def markdown(r: dict) -> str:
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        f"Flows: p(v|x) {r['velocity_flow']['flow_layers']} layers × {r['velocity_flow']['nn_width']}, n(x) "
        f"{r['position_flow']['flow_layers']} layers × {r['position_flow']['nn_width']}, fitted on {r['n_stars']:,} "
        f"stars for {r['epochs']} epochs. With the exact p(v|x) instead of the flows, median |Δa|/|a| = "
        f"{r['exact_p_median_rel_error_accel']:.1e}.",
        "",
        "| K (velocities) | positions | median \\|Δa\\|/\\|a\\| | wall s / 1,000 positions | CPU s / 1,000 positions |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in r["acceleration"]:
        err = "–" if row["median_rel_error_accel"] is None else f"{row['median_rel_error_accel']:.3f}"
        lines.append(f"| {row['K']:,} | {row['points']} | {err} | {row['wall_s_per_1000']:.1f} | {row['cpu_s_per_1000']:.1f} |")
    d = r["density"]
    lines += [
        "",
        f"Density, K = {d['K']}, N = {d['kernel_points']} kernel points, {d['points']} positions within 2.5 kpc: "
        f"median |Δρ|/ρ_K = {d['median_rel_error_density']:.2f} (median ratio {d['median_density_ratio']:.2f}) against the "
        f"truth's kernel average; {d['wall_s_per_1000']:.0f} wall s ({d['cpu_s_per_1000']:.0f} CPU s) per 1,000 positions.",
        "",
    ]
    return "\n".join(lines)


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run pointwise", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stars", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--flows", default="builds/benchmark-pointwise-flows", help="folder of cached fitted flows")
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--velocities", type=int, nargs="+", default=[256, 1024, 10_000])
    parser.add_argument("--density-points", type=int, default=32)
    parser.add_argument("--kernel-points", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    return measure(parser.parse_args(argv))


def main(argv: list[str]) -> None:
    result = run(argv)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    update_section(DOC, "pointwise-results", markdown(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
