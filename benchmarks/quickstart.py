"""Build `recipes/quickstart.yaml` from scratch: wall time and peak resident memory per stage, accuracy against truth.

    python -m benchmarks run quickstart [--recipe FILE] [--set key=value ...]

Writes `benchmarks/results/quickstart.json` and the quickstart table of `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from .builds import measured_build
from .report import REPO, environment, provenance_line

TITLE = "Quickstart build (`recipes/quickstart.yaml`)"
RESULTS = REPO / "benchmarks" / "results" / "quickstart.json"
RECIPE = REPO / "recipes" / "quickstart.yaml"


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run quickstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="another recipe (default: the quickstart's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override a recipe key")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        catalog = f"publish.catalog={Path(scratch) / 'catalog' / 'catalog.yaml'}"
        _, measured = measured_build(args.recipe, [*args.overrides, catalog], Path(scratch) / "build")
    recipe = [] if args.recipe == RECIPE else [f"--recipe {args.recipe}"]
    command = " ".join(["python -m benchmarks run quickstart", *recipe, *(f"--set {o}" for o in args.overrides)])
    return {"command": command, **environment(), **measured}


def markdown(r: dict) -> str:
    s = r["scores"]
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
        f"| peak resident memory | {memory} | – |",
        f"| median \\|Δa\\|/\\|a\\| in the volume | {s['median_rel_error_accel']:.3f} | ≤ 0.05 |",
        f"| median \\|Δρ\\|/ρ in the volume | {s['median_rel_error_density']:.3f} | ≤ 0.15 |",
        f"| median ρ/ρ_true | {s['median_density_ratio']:.3f} | 1 |",
        f"| median \\|Δn\\|/n (tracer density) | {s['median_rel_error_tracer_density']:.3f} | – |",
        f"| median \\|ΔΦ\\| (Φ range {s['potential_range_kms2']:.0f} km² s⁻²) | {s['median_abs_error_potential_kms2']:.0f} km² s⁻² | – |",
        f"| grid points scored | {s['n_points']} | – |",
        "",
    ])


if __name__ == "__main__":  # the older spelling, `python -m benchmarks.quickstart`
    from .__main__ import main

    main(["run", "quickstart", *sys.argv[1:]])
