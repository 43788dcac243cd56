"""Build `recipes/quickstart.yaml` in a scratch folder and record wall time per stage, peak memory and accuracy.

    python -m benchmarks.quickstart [--set key=value ...]

Writes `benchmarks/results/quickstart.json` and regenerates the quickstart table in `docs/results.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from .report import environment, provenance_line, update_section

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "quickstart.json"
DOC = REPO / "docs" / "results.md"


def run(overrides: list[str]) -> dict:
    import dpotcube
    from dpotcube.recipe import load_recipe

    recipe, text = load_recipe(REPO / "recipes" / "quickstart.yaml", overrides)
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        started = time.perf_counter()
        result = dpotcube.build(recipe, text, Path("builds/quickstart"), force=True)
        wall = time.perf_counter() - started
        manifest = json.loads((result.build_dir / "manifest.json").read_text())
    return {
        "command": " ".join(["python -m benchmarks.quickstart", *(f"--set {o}" for o in overrides)]),
        **environment(),
        "n_stars": recipe.data.n_stars,
        "wall_seconds": round(wall, 1),
        "stage_seconds": {stage: entry["seconds"] for stage, entry in manifest.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "scores": result.scores,
    }


def markdown(r: dict) -> str:
    s = r["scores"]
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in r["stage_seconds"].items())
    return "\n".join([
        "## Quickstart build (`recipes/quickstart.yaml`)",
        "",
        provenance_line(r),
        "",
        "| quantity | measured | goal |",
        "| --- | --- | --- |",
        f"| wall time, whole build | {r['wall_seconds']:.0f} s ({stages}) | ≤ 600 s |",
        f"| peak resident memory | {r['peak_rss_mb']:.0f} MB | – |",
        f"| median \\|Δa\\|/\\|a\\| in the volume | {s['median_rel_error_accel']:.3f} | ≤ 0.05 |",
        f"| median \\|Δρ\\|/ρ in the volume | {s['median_rel_error_density']:.3f} | ≤ 0.15 |",
        f"| median ρ/ρ_true | {s['median_density_ratio']:.3f} | 1 |",
        f"| median \\|Δn\\|/n (tracer density) | {s['median_rel_error_tracer_density']:.3f} | – |",
        f"| median \\|ΔΦ\\| (Φ range {s['potential_range_kms2']:.0f} km² s⁻²) | {s['median_abs_error_potential_kms2']:.0f} km² s⁻² | – |",
        f"| grid points scored | {s['n_points']} | – |",
        "",
    ])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    result = run(parser.parse_args(argv).overrides)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    update_section(DOC, "quickstart", markdown(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
