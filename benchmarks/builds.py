"""One `dpotcube build` of a recipe, measured: wall time and peak resident memory per stage, scores against truth."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

from .memory import StageMemory


def measured_build(recipe_path: Path, overrides: list[str], build_dir: Path, force: bool = True):
    """Build `recipe_path` (with `--set`-style `overrides`) into `build_dir` as `dpotcube build` does.

    Returns the `BuildResult` and a record: `wall_seconds`, `stage_seconds` (from the manifest),
    `stage_peak_rss_mb` (each stage's own peak, Linux only), `peak_rss_mb` (the whole process's peak)
    and `scores` (against the mock's truth, None for observed data).
    """
    import dpotcube
    from dpotcube.recipe import load_recipe

    recipe, text = load_recipe(recipe_path, overrides)
    memory = StageMemory()
    started = time.perf_counter()
    result = dpotcube.build(recipe, text, build_dir, force=force, stage_monitor=memory)
    wall = time.perf_counter() - started
    manifest = json.loads((result.build_dir / "manifest.json").read_text())
    record = {
        "n_stars": recipe.data.n_stars,
        "wall_seconds": round(wall, 1),
        "stage_seconds": {stage: entry["seconds"] for stage, entry in manifest.items()},
        "stage_peak_rss_mb": memory.peaks_mb,
        "peak_rss_mb": round(max([_process_peak_mb(), *memory.peaks_mb.values()]), 1),
        "scores": result.scores,
    }
    return result, record


def _process_peak_mb() -> float:
    """getrusage's peak (KiB on Linux); the stage monitor's resets may lower it, so the caller takes the max."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
