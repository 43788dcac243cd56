"""Every CBE method on the dusty and the dust-free Plummer mock, at the same star count and training budget.

    python -m benchmarks run methods [--stars N] [--steps N] [--mocks dusty,dust-free] [--methods ...]

For each mock, one build folder serves every method, so the stars and the p(v|x) flow are made once and
shared (as a user re-running a recipe with another `fields.method` would); each method's wall time is the
sum of the stages it needs, shared ones included. Scores are against the analytic truth
(`dpotcube.truth.score_against_truth`) at in-volume grid points, and where S > 0.1 ("well seen").
Writes `benchmarks/results/methods.json` and the methods table in `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from dpotcube.methods import get_method

from .report import REPO, environment, provenance_line

TITLE = "Methods on the observed Plummer mocks (`benchmarks/methods.py`)"
RESULTS = REPO / "benchmarks" / "results" / "methods.json"

MOCKS = {"dusty": {}, "dust-free": {"dust": None}}
"""`data.observation` of each mock: the defaults (dust on), or the magnitude limit alone."""

METHODS = ("conditional", "selection", "vanilla", "pointwise", "weak")
VELOCITY_FRAME = {"frame": "galactocentric", "frame_condition": "dispersions"}
"""p(v|x) in the quickstart's velocity frame (docs/density.md); rows from before 2026-12-05 had none."""
POINTWISE = {"n_velocities": 256, "density": False}
"""`pointwise` scores a only: its ρ costs seconds per grid point (docs/pointwise.md)."""


def method_recipe(name: str, mock: str, method: str, stars: int, steps: int, epochs: int) -> dict:
    """The benchmark recipe: one p(v|x) flow and field budget for every method; n(x) flows where a method needs one."""
    position = None
    if method == "vanilla":  # the 1/S-weighted true n(x) is smooth: the Legendre family (gradients benchmark)
        position = {"type": "legendre", "selection_weights": True}
    elif get_method(method).needs_position_flow:  # pointwise weights the stars by 1/S; selection must not
        position = {"flow_layers": 6, "nn_width": 64, "max_epochs": epochs, "selection_weights": method == "pointwise"}
    return {
        "name": name,
        "seed": 0,
        "data": {"source": "plummer", "n_stars": stars, "volume_radius_kpc": 3.0, "observation": MOCKS[mock]},
        "density": {
            "velocity": {"flow_layers": 6, "nn_width": 128, "learning_rate": 1e-3, "max_epochs": epochs, **VELOCITY_FRAME},
            "position": position,
            "collocation": {"n_positions": 32_768, "velocities_per_position": 4},
        },
        "fields": {"method": method, "steps": steps, "efficiency": {"width": 128, "depth": 4, "activation": "gint"},
                   "pointwise": POINTWISE},
        "cube": {"spacing_kpc": 0.25, "chunk": 16, "baryon_model": "none"},
        "diagnostics": {"enabled": False},  # not what this benchmark measures
    }


def run_methods(mocks: list[str], methods: list[str], stars: int, steps: int, epochs: int) -> dict:
    import yaml

    import dpotcube
    from dpotcube.recipe import recipe_from_dict
    from dpotcube.sources.load import plummer_truth
    from dpotcube.truth import score_against_truth

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for mock in mocks:
            build_dir = Path(scratch) / mock
            for method in methods:
                raw = method_recipe(f"methods_{mock.replace('-', '_')}", mock, method, stars, steps, epochs)
                raw["publish"] = {"catalog": str(Path(scratch) / "catalog" / "catalog.yaml")}
                text = yaml.safe_dump(raw, sort_keys=False)
                recipe = recipe_from_dict(raw)
                started = time.perf_counter()
                result = dpotcube.build(recipe, text, build_dir, replace=True)
                session = time.perf_counter() - started
                manifest = json.loads((build_dir / "manifest.json").read_text())
                m = get_method(method)
                used = ["stars", *(["velocity_flow_0"] if m.fits_flows else []),
                        *(["position_flow_0"] if m.needs_position_flow else []),
                        *(["collocation"] if m.uses_collocation else []), *(["fields"] if m.fits_fields else []), "cube"]
                n_params = m.fitted_parameter_count(build_dir / "fields.eqx") if m.fits_fields else 0  # pointwise: none
                scores = score_against_truth(result.cube_path, plummer_truth(recipe.data))
                rows.append({
                    "mock": mock, "method": method, "n_stars": stars,
                    "stage_seconds": {s: manifest[s]["seconds"] for s in used},
                    "wall_seconds": round(sum(manifest[s]["seconds"] for s in used), 1),
                    "session_seconds": round(session, 1),
                    "field_parameters": int(n_params),
                    **({"velocity_frame": VELOCITY_FRAME["frame_condition"]} if m.fits_flows else {}),
                    "scores": scores,
                })
                print(json.dumps(rows[-1]), flush=True)
    return {
        "command": f"python -m benchmarks run methods --stars {stars} --steps {steps} --epochs {epochs}",
        **environment(), "n_stars": stars, "field_steps": steps, "flow_epochs": epochs, "rows": rows,
    }


def markdown(r: dict) -> str:
    def cell(scores: dict, key: str, fmt: str = ".3f") -> str:
        return format(scores[key], fmt) if key in scores else "–"

    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        "",
        f"Observed stars per mock: {r['n_stars']:,} unless the row says; every method with the same p(v|x) flow "
        f"settings ({r['flow_epochs']} epochs) and {r['field_steps']} field steps. Errors are medians over in-volume grid "
        "points; \"well seen\": points with S > 0.1. ε and n are scored by shape (ratio to truth over its median).",
        "",
        "| mock | stars | method | \\|Δa\\|/\\|a\\| | \\|Δρ\\|/ρ | share \\|Δρ\\|/ρ < 10% | same, well seen | ε error | "
        "n error | wall time | field parameters |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    def stars(row: dict) -> str:  # rows recorded before the star count was, and rows of the usual count
        return f"{row.get('n_stars') or r['n_stars']:,}"

    for row in r["rows"]:
        s = row["scores"]
        lines.append(
            f"| {row['mock']} | {stars(row)} | `{row['method']}`{' †' if row.get('velocity_frame') else ''} | {cell(s, 'median_rel_error_accel')} | "
            f"{cell(s, 'median_rel_error_density')} | {cell(s, 'share_density_within_10pct', '.2f')} | "
            f"{cell(s, 'share_density_within_10pct_well_seen', '.2f')} | {cell(s, 'median_shape_error_efficiency')} | "
            f"{cell(s, 'median_shape_error_tracer_density')} | {row['wall_seconds']:.0f} s | {row['field_parameters']:,} |"
        )
    noted = [f"`{row['method']}` on {row['mock']} ({stars(row)} stars): {row['note']}" for row in r["rows"] if row.get("note")]
    framed = any(row.get("velocity_frame") for row in r["rows"])
    lines += ["", *(["† p(v|x) in the velocity frame (`frame: galactocentric`, `frame_condition: dispersions`); the "
                     "other rows that fit a p(v|x) flow predate it."] if framed else []),
              *(["Rows from an earlier run: " + "; ".join(noted) + "."] if noted else []),
              "", "Goal (conditional Deep Potential): `conditional` within 10% density error at ≥ 90% of the "
              "well-seen points, on 2 CPU cores in ≤ 30 minutes.", ""]
    return "\n".join(lines)


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run methods", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stars", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--mocks", default=",".join(MOCKS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--merge", action="store_true",
                        help="keep the recorded rows of the mock/method pairs not run now (each noted as earlier)")
    args = parser.parse_args(argv)
    result = run_methods(args.mocks.split(","), args.methods.split(","), args.stars, args.steps, args.epochs)
    if args.merge and RESULTS.is_file():
        earlier = json.loads(RESULTS.read_text())
        this_run = {"command": result["command"], "date": result["date"], "rows": ", ".join(args.methods.split(","))}
        result["runs"] = [*earlier.get("runs", []), this_run]
        result["rows"] = merge_rows(earlier, result["rows"])
        result["n_stars"] = earlier.get("n_stars") or result["n_stars"]  # the table's usual count; rows say theirs
    return result


def merge_rows(earlier: dict, rows: list[dict]) -> list[dict]:
    """`rows` plus the earlier run's rows for the (mock, method, star count) not in `rows`, each with a note saying
    where it came from; rows recorded without a star count have the earlier run's."""
    earlier_rows = [{"n_stars": earlier.get("n_stars"), **row} for row in earlier.get("rows", [])]
    done = {(row["mock"], row["method"], row["n_stars"]) for row in rows}
    kept = [
        row | {"note": row.get("note") or f"run of {earlier.get('date', 'an earlier date')}"}
        for row in earlier_rows if (row["mock"], row["method"], row["n_stars"]) not in done
    ]
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(kept + rows, key=lambda row: (list(MOCKS).index(row["mock"]), row["n_stars"] or 0,
                                                order.get(row["method"], len(order))))


if __name__ == "__main__":  # the older spelling, `python -m benchmarks.methods`
    from .__main__ import main

    main(["run", "methods", *sys.argv[1:]])
