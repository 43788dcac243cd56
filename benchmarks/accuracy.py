"""Accuracy against the analytic truth of every method on every mock, at the quickstart's budget.

    python -m benchmarks run accuracy [--cases NAME ...] [--set key=value ...]

A case is a method on a mock: the quickstart recipe and the overrides that pick them (`MOCKS`, `METHODS`).
The cases of one mock run in one fresh build folder, so its stars and flows are made once; each cube is
scored inside the tracer volume (`dpotcube.truth.score_against_truth`). Writes `benchmarks/results/accuracy.json` (cases not run keep
their previous results, each with its own date and command) and the accuracy table of `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from dpotcube.methods import get_method

from .builds import measured_build
from .report import REPO, environment, provenance_line

TITLE = "Accuracy of every method on every mock"
RESULTS = REPO / "benchmarks" / "results" / "accuracy.json"
QUICKSTART = "recipes/quickstart.yaml"
MOCKS: dict[str, tuple[str, tuple[str, ...]]] = {  # name: (description, overrides)
    "plummer": ("Plummer, isotropic", ()),
    "plummer-om": ("Plummer, Osipkov–Merritt r_a = 6 kpc", ("data.plummer.anisotropy_radius_kpc=6.0",)),
    "plummer-4M": ("Plummer, isotropic, 4 × 10⁶ stars", ("data.n_stars=4000000",)),
    "plummer-om-4M": ("Plummer, Osipkov–Merritt r_a = 6 kpc, 4 × 10⁶ stars",
                      ("data.n_stars=4000000", "data.plummer.anisotropy_radius_kpc=6.0")),
}
LARGE = ("plummer-4M", "plummer-om-4M")
"""Mocks at the seed paper's star count: run only when named (`--cases vanilla/plummer-4M`), ~30 min a case here."""
POSITION_FLOW = ("density.position.type=maf", "density.position.flow_layers=6", "density.position.nn_width=64", "density.position.max_epochs=16")
POSITION_LEGENDRE = ("density.position.type=legendre",)
"""`vanilla`'s n(x) of the (smooth) true tracers: ∇ ln n 1.6% against the MAF's 4.4% (gradients benchmark)."""
ONE_BUILD = ("ensemble.seed=1",)
"""Each case is one build, without the quickstart's seed members (it had none before 2026-12-05, fifth session)."""
NO_FRAME = ("density.velocity.frame=none", "density.velocity.frame_condition=position")
METHODS: dict[str, tuple[str, ...]] = {  # the quickstart recipe with these overrides
    "conditional": ("fields.method=conditional", "density.position=null"),  # the quickstart before 2026-12-05
    "vanilla": ("fields.method=vanilla", *POSITION_LEGENDRE),  # the quickstart itself (its p(v|x) in the frame)
    "vanilla+acceleration": ("fields.method=vanilla", *POSITION_LEGENDRE, "fields.residual_form=acceleration"),
    # p(v|x) without the velocity frame (the quickstart before 2026-12-05, second session), or the frame alone
    "vanilla+no-frame": ("fields.method=vanilla", *POSITION_LEGENDRE, *NO_FRAME),
    "vanilla+frame-alone": ("fields.method=vanilla", *POSITION_LEGENDRE, "density.velocity.frame_condition=none"),
    "selection": ("fields.method=selection", *POSITION_FLOW),
    "selection+legendre": ("fields.method=selection", *POSITION_LEGENDRE),  # n_obs smooth, as on a complete sample
    "pointwise": ("fields.method=pointwise", *POSITION_FLOW, "fields.pointwise.density=false"),  # ρ: s per point
    "weak": ("fields.method=weak",),  # no flow: a linear fit; members: 32 posterior draws
}
CASES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {  # name: (method, mock, recipe, overrides)
    f"{method}/{mock}": (method, description, QUICKSTART, (*mock_overrides, *method_overrides, *ONE_BUILD))
    for mock, (description, mock_overrides) in MOCKS.items() for method, method_overrides in METHODS.items()
}
"""Every method on every mock. Cases on one mock share a build folder when run together, so the stars and
flows are made once (as a user switching `fields.method` would); a case's wall time sums the stages it uses."""
DEFAULT_CASES = [name for name in CASES if name.split("/")[1] not in LARGE]


def run_case(name: str, scratch: Path, extra: tuple[str, ...] | list[str] = (), peaks: dict | None = None) -> dict:
    """Build case `name` in `scratch/build` (with `extra` overrides last; finished shared stages are reused).

    Returns its scores, the wall time of the stages it uses and their peak memory; `peaks` collects the
    stages' peaks across the cases sharing the folder.
    """
    method, mock, recipe, overrides = CASES[name]
    catalog = f"publish.catalog={scratch / 'catalog' / 'catalog.yaml'}"
    _, measured = measured_build(REPO / recipe, [*overrides, *extra, catalog, "diagnostics.enabled=false"],
                                 scratch / "build", force=False)
    peaks = {} if peaks is None else peaks
    peaks.update(measured["stage_peak_rss_mb"])
    m = get_method(method.split("+")[0])  # `name+variant`: the method `name` with the variant's overrides
    used = ["stars", *(["velocity_flow_0"] if m.fits_flows else []),
            *(["position_flow_0"] if m.needs_position_flow else []),
            *(["collocation"] if m.uses_collocation else []), *(["fields"] if m.fits_fields else []), "cube"]
    seconds = measured["stage_seconds"]
    return {"method": method, "mock": mock, "recipe": recipe, "overrides": [*overrides, *extra],
            "n_stars": measured["n_stars"], "scores": measured["scores"],
            "stage_seconds": {stage: seconds[stage] for stage in used},
            "wall_seconds": round(sum(seconds[stage] for stage in used), 1),
            "peak_rss_mb": max((peaks[stage] for stage in used if stage in peaks), default=measured["peak_rss_mb"])}


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=DEFAULT_CASES)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override a key in every case")
    args = parser.parse_args(argv)
    command = " ".join(["python -m benchmarks run accuracy", *(f"--set {o}" for o in args.overrides)])
    env = environment()
    cases = {}
    by_mock = {mock: [name for name in args.cases if CASES[name][1] == description]
               for mock, (description, _) in MOCKS.items()}
    for names in by_mock.values():
        with tempfile.TemporaryDirectory(prefix="accuracy_") as scratch:
            peaks: dict = {}
            for name in names:
                case = run_case(name, Path(scratch), args.overrides, peaks)
                cases[name] = {**case, "command": f"{command} --cases {' '.join(names)}", "date": env["date"]}
                print(name, json.dumps(cases[name]), flush=True)
    previous = json.loads(RESULTS.read_text())["cases"] if RESULTS.exists() else {}  # read last: runs side by side
    cases = {**previous, **cases}
    ran = "" if args.cases == DEFAULT_CASES else " --cases " + " ".join(args.cases)
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
    def cell(scores: dict, key: str, fmt: str) -> str:
        return format(scores[key], fmt) if scores.get(key) is not None else "–"

    for c in r["cases"].values():
        s = c["scores"]
        lines.append(
            f"| {c['method']} | {c['mock']} | {c['n_stars']:,} | {cell(s, 'median_rel_error_accel', '.3f')} | "
            f"{cell(s, 'median_rel_error_density', '.3f')} | {cell(s, 'median_density_ratio', '.3f')} | "
            f"{cell(s, 'median_rel_error_tracer_density', '.3f')} | {cell(s, 'median_abs_error_potential_kms2', '.0f')} | "
            f"{c['wall_seconds']:.0f} s | `{c['command']}` | {c['date'][:10]} |"
        )
    missing = [name for name in DEFAULT_CASES if name not in r["cases"]]  # the opt-in LARGE mocks are not owed
    if missing:
        lines += ["", "Not run yet: " + ", ".join(f"`{m}`" for m in missing) + "."]
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    from .__main__ import main

    main(["run", "accuracy", *sys.argv[1:]])
