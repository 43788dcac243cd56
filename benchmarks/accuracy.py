"""Accuracy against the analytic truth of every method on every mock: one full build per case.

    python -m benchmarks run accuracy [--cases NAME ...] [--set key=value ...]

A case is a method on a mock: a recipe and the overrides that pick them (one line in `CASES`).
Each case is built from scratch and its cube scored inside the tracer volume
(`dpotcube.truth.score_against_truth`). Writes `benchmarks/results/accuracy.json` (cases not run keep
their previous results, each with its own date and command) and the accuracy table of `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .builds import measured_build
from .report import REPO, environment, provenance_line

TITLE = "Accuracy of every method on every mock"
RESULTS = REPO / "benchmarks" / "results" / "accuracy.json"
QUICKSTART = "recipes/quickstart.yaml"
CASES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {  # name: (method, mock, recipe, overrides)
    "conditional/plummer": ("conditional", "Plummer, isotropic", QUICKSTART, ()),
    "conditional/plummer-om": (
        "conditional", "Plummer, Osipkov–Merritt r_a = 6 kpc", QUICKSTART, ("data.plummer.anisotropy_radius_kpc=6.0",)
    ),
}


def run_case(name: str, scratch: Path, extra: tuple[str, ...] | list[str] = ()) -> dict:
    """Build case `name` in `scratch` (with `extra` overrides last) and return its scores and wall time."""
    method, mock, recipe, overrides = CASES[name]
    catalog = f"publish.catalog={scratch / 'catalog' / 'catalog.yaml'}"
    _, measured = measured_build(REPO / recipe, [*overrides, *extra, catalog], scratch / "build")
    return {"method": method, "mock": mock, "recipe": recipe, "overrides": [*overrides, *extra],
            **{k: measured[k] for k in ("n_stars", "wall_seconds", "peak_rss_mb", "scores")}}


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override a key in every case")
    args = parser.parse_args(argv)
    previous = json.loads(RESULTS.read_text())["cases"] if RESULTS.exists() else {}
    command = " ".join(["python -m benchmarks run accuracy", *(f"--set {o}" for o in args.overrides)])
    env = environment()
    cases = dict(previous)
    for name in args.cases:
        with tempfile.TemporaryDirectory(prefix="accuracy_") as scratch:
            case = run_case(name, Path(scratch), args.overrides)
        cases[name] = {**case, "command": f"{command} --cases {name}", "date": env["date"]}
        print(name, json.dumps(cases[name]), flush=True)
    ran = "" if args.cases == list(CASES) else " --cases " + " ".join(args.cases)
    return {"command": command + ran, **env, "cases": {k: cases[k] for k in CASES if k in cases}}


def markdown(r: dict) -> str:
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r) + " Each row was made by its own command on its own date (last columns).",
        "Medians over grid points inside the tracer volume; goals as for the quickstart (a ≤ 0.05, ρ ≤ 0.15).",
        "",
        "| method | mock | stars | \\|Δa\\|/\\|a\\| | \\|Δρ\\|/ρ | ρ/ρ_true | \\|Δn\\|/n | \\|ΔΦ\\| (km² s⁻²) | wall time | made by | date |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in r["cases"].values():
        s = c["scores"]
        tracer = s.get("median_rel_error_tracer_density")
        lines.append(
            f"| {c['method']} | {c['mock']} | {c['n_stars']:,} | {s['median_rel_error_accel']:.3f} | "
            f"{s['median_rel_error_density']:.3f} | {s['median_density_ratio']:.3f} | "
            f"{'–' if tracer is None else f'{tracer:.3f}'} | {s['median_abs_error_potential_kms2']:.0f} | "
            f"{c['wall_seconds']:.0f} s | `{c['command']}` | {c['date'][:10]} |"
        )
    missing = [name for name in CASES if name not in r["cases"]]
    if missing:
        lines += ["", "Not run yet: " + ", ".join(f"`{m}`" for m in missing) + "."]
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    from .__main__ import main

    main(["run", "accuracy", *sys.argv[1:]])
