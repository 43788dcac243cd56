"""Build `recipes/quickstart.yaml` from scratch, cold: wall time and peak resident memory per stage, accuracy against truth.

    python -m benchmarks run quickstart [--recipe FILE] [--set key=value ...]

The build runs in a fresh Python process with JAX's compilation cache off (`DPOTCUBE_COMPILE_CACHE=0`, no
`JAX_COMPILATION_CACHE_DIR`), so every program compiles, as in a user's first `dpotcube build`:
`cold_wall_seconds` is that build's wall time (imports excluded, as in `wall_seconds`, the same number),
`cold_ratio_to_433` its ratio to the 433 s recorded before the cold-start work (goal: ≤ 300 s, a ratio
≤ 0.69, on an otherwise idle machine). Also recorded: the child's CPU seconds (less sensitive to other
load than the wall time), the machine's load average before and after, and the XLA compilations
(count and seconds). Writes `benchmarks/results/quickstart.json` and the quickstart table of `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .builds import measured_build
from .report import REPO, environment, provenance_line

TITLE = "Quickstart build (`recipes/quickstart.yaml`)"
RESULTS = REPO / "benchmarks" / "results" / "quickstart.json"
RECIPE = REPO / "recipes" / "quickstart.yaml"
RECORDED_COLD_SECONDS = 433.2
"""The quickstart's wall time recorded on 2026-11-30 (before the cold-start work): the reference of `cold_ratio_to_433`."""


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run quickstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="another recipe (default: the quickstart's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override a recipe key")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        measured = cold_build(args.recipe, args.overrides, Path(scratch))
    recipe = [] if args.recipe == RECIPE else [f"--recipe {args.recipe}"]
    command = " ".join(["python -m benchmarks run quickstart", *recipe, *(f"--set {o}" for o in args.overrides)])
    return {"command": command, **environment(), **measured}


def cold_build(recipe: Path, overrides: list[str], scratch: Path) -> dict:
    """`measured_build` in a fresh process without a compilation cache; the record plus the cold-start figures."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"} | {"DPOTCUBE_COMPILE_CACHE": "0"}
    out = scratch / "record.json"
    load_before = os.getloadavg()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmarks.quickstart", "--child", str(recipe), str(scratch), str(out),
                    *overrides], check=True, env=env, cwd=REPO)
    process_seconds = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    record = json.loads(out.read_text())
    return {
        **record,
        "cold_wall_seconds": record["wall_seconds"],
        "cold_ratio_to_433": round(record["wall_seconds"] / RECORDED_COLD_SECONDS, 3),
        "cold_process_seconds": round(process_seconds, 1),
        "cold_cpu_seconds": round(children.ru_utime + children.ru_stime, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def _child(recipe: Path, scratch: Path, out: Path, overrides: list[str]) -> None:
    """The measured build, in this (fresh) process: counts XLA compilations through `jax.monitoring`."""
    import jax

    from dpotcube.compile_cache import enable_compile_cache

    assert enable_compile_cache() is None and not jax.config.jax_compilation_cache_dir, "the cache must be off"
    compiles: list[float] = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **_: compiles.append(seconds) if event == "/jax/core/compile/backend_compile_duration" else None
    )
    catalog = f"publish.catalog={scratch / 'catalog' / 'catalog.yaml'}"
    _, measured = measured_build(recipe, [*overrides, catalog], scratch / "build")
    measured["compilations"] = {"count": len(compiles), "seconds": round(sum(compiles), 1)}
    out.write_text(json.dumps(measured))


def markdown(r: dict) -> str:
    s = r["scores"]
    cold = ""
    if "cold_wall_seconds" in r:  # recorded since the benchmark builds cold
        calls = r["compilations"]
        cold = (f"| cold build: no compilation cache, fresh process | {r['cold_wall_seconds']:.0f} s, "
                f"{r['cold_ratio_to_433']:.2f} × the 433 s recorded before ({calls['count']} XLA compilations, "
                f"{calls['seconds']:.0f} s; {r['cold_cpu_seconds']:.0f} CPU s; load average "
                f"{r['load_average_before'][0]:.1f} before, {r['load_average_after'][0]:.1f} after) | ≤ 300 s idle |\n")
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in r["stage_seconds"].items())
    memory = f"{r['peak_rss_mb']:.0f} MB"
    if r.get("stage_peak_rss_mb"):  # recorded since the benchmark monitors each stage
        memory += " (" + ", ".join(f"{k} {v:.0f} MB" for k, v in r["stage_peak_rss_mb"].items()) + ")"
    return "\n".join([
        f"## {TITLE}",
        "",
        provenance_line(r),
        "",
        "| quantity | measured | goal |",
        "| --- | --- | --- |",
        f"| wall time, whole build | {r['wall_seconds']:.0f} s ({stages}) | ≤ 600 s |",
        *([cold.rstrip()] if cold else []),
        f"| peak resident memory | {memory} | – |",
        f"| median \\|Δa\\|/\\|a\\| in the volume | {s['median_rel_error_accel']:.3f} | ≤ 0.05 |",
        f"| median \\|Δρ\\|/ρ in the volume | {s['median_rel_error_density']:.3f} | ≤ 0.15 |",
        f"| median ρ/ρ_true | {s['median_density_ratio']:.3f} | 1 |",
        f"| median \\|Δn\\|/n (tracer density) | {s['median_rel_error_tracer_density']:.3f} | – |",
        f"| median \\|ΔΦ\\| (Φ range {s['potential_range_kms2']:.0f} km² s⁻²) | {s['median_abs_error_potential_kms2']:.0f} km² s⁻² | – |",
        f"| grid points scored | {s['n_points']} | – |",
        "",
    ])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:  # the cold build's own process (see `cold_build`)
        _child(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5:])
    else:  # the older spelling, `python -m benchmarks.quickstart`
        from .__main__ import main

        main(["run", "quickstart", *sys.argv[1:]])
