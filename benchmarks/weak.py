"""Accuracy, calibration and cost of the `weak` method (weak-form CBE, linear least squares) on the Plummer mocks.

    python -m benchmarks run weak [--stars N] [--dusty-stars N] [--draws D] [--seeds S] [--dusty-seeds S]
    python -m benchmarks run weak --calibrate-only dusty [--dusty-seeds S] [--dusty-seed-stars N]
    python -m benchmarks run weak --table-only [--stars N] [--dusty-stars N]
    python -m benchmarks run weak --trials NAME ... [--trial-mocks isotropic anisotropic dusty] [--stars N]

On the isotropic, the anisotropic (Osipkov–Merritt, r_a = 6 kpc) and the dusty mock (known S: 1/S weights) in a
3 kpc volume: fits `dpotcube.weak.fit_weak`, then on the cube grid (spacing 0.2 kpc) inside the volume scores
the median |Δa|/|a| and |Δρ|/ρ against the truth (the dusty mock twice: 1/S weights, and ∇ ln S at the
stars with unit weights, by central differences of the mock's S as the build does), and the share of points whose truth lies inside the 16–84%
range of D posterior draws (a pooled over components, ρ, Φ − Φ(observer)). Wall and CPU seconds of the fit
(the whole build's numerical work: there is no flow); pin the process to one core (`taskset -c 0`) to measure
the single-core cost. Writes `benchmarks/results/weak.json` and its section of docs/benchmarks.md.

`--calibrate-only MOCK ...` reruns only the named mocks' calibration over star draws and merges it into the
previous file, replacing the row of the same mock and star count (the other calibration rows, the main table and the
trials are kept; each calibration row says when and by which command it was measured).

`--table-only` reruns only the main table (accuracy and cost per mock) and keeps the previous calibration rows
and trials as they were (each calibration row keeps its own date and command).

`--trials` runs only the named settings of `TRIALS` (the measurement log of what was tried, kept or not) on
the chosen mocks and merges their rows into the previous file's `trials` (keyed by trial, mock and stars);
the main table and calibration are kept as they were.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .report import environment, provenance_line

REPO = Path(__file__).resolve().parents[1]
TITLE = "The weak method on the Plummer mocks (`benchmarks/weak.py`)"
RESULTS = REPO / "benchmarks" / "results" / "weak.json"
SPACING = 0.2
ANISOTROPY_RADIUS_KPC = 6.0


def grid_in_volume(observer: np.ndarray, radius: float, spacing: float = SPACING) -> np.ndarray:
    """The cube's grid points (spacing `spacing`, centred on the observer) inside the volume, `(n, 3)`."""
    n = int(np.floor(radius / spacing + 1e-9))
    g = spacing * np.arange(-n, n + 1)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    return observer + pts[np.linalg.norm(pts, axis=1) < radius]


def score(model, truth, observer: np.ndarray, radius: float, draws: int) -> dict:
    """Median errors and 16–84% coverage of the posterior draws at the in-volume grid points."""
    pts = grid_in_volume(observer, radius)
    true_a = np.asarray(truth.acceleration(pts), np.float64)
    true_rho = np.asarray(truth.density(pts), np.float64) * 1e-9
    true_phi = np.asarray(truth.potential(pts), np.float64) - float(truth.potential(np.asarray(observer)))
    fields = model.fields(pts)
    members = np.stack([m.fields(pts) for m in model.draw(draws, seed=0)])  # (D, 5, n)
    lo, hi = np.percentile(members, [16, 84], axis=0)
    truth_rows = np.concatenate([true_phi[None], true_a.T, true_rho[None]])
    inside = (truth_rows >= lo) & (truth_rows <= hi)
    return {
        "n_points": int(len(pts)),
        "median_rel_error_accel": float(np.median(np.linalg.norm(fields[1:4].T - true_a, axis=1) / np.linalg.norm(true_a, axis=1))),
        "median_rel_error_density": float(np.median(np.abs(fields[4] / true_rho - 1))),
        "median_density_ratio": float(np.median(fields[4] / true_rho)),
        "coverage_accel": float(inside[1:4].mean()),
        "coverage_density": float(inside[4].mean()),
        "coverage_potential": float(inside[0].mean()),
    }


TRIALS: dict[str, tuple[str, dict]] = {  # name: (what it tries, WeakSpec settings; explicit, so defaults may move)
    "legendre-6": ("Legendre degree 6 alone (the previous default)", {"cross_fit_folds": 1, "reference": "none", "potential_degree": 6}),
    "legendre-8": ("Legendre degree 8 alone", {"cross_fit_folds": 1, "reference": "none", "potential_degree": 8, "test_degree": 8}),
    "legendre-6-cubic": ("degree 6, linear + cubic velocity functions",
                         {"cross_fit_folds": 1, "reference": "none", "potential_degree": 6, "velocity_functions": ["linear", "cubic"]}),
    "legendre-6-bumps": ("degree 6, bump test functions 1 kpc on 0.5 kpc",
                         {"cross_fit_folds": 1, "reference": "none", "potential_degree": 6, "test_functions": "bumps"}),
    "spherical-3": ("monopoles s = 2, 8, 32 kpc, broad prior + Legendre 4 by evidence",
                    {"cross_fit_folds": 1, "reference": "spherical", "potential_degree": 4, "reference_scales_kpc": [2, 8, 32]}),
    "spherical-6": ("monopoles s = 1…32 kpc (×2), broad prior + Legendre 4",
                    {"cross_fit_folds": 1, "reference": "spherical", "potential_degree": 4, "reference_scales_kpc": [1, 2, 4, 8, 16, 32]}),
    "spherical-3-deg6": ("monopoles s = 2, 8, 32 kpc + Legendre 6",
                         {"cross_fit_folds": 1, "reference": "spherical", "potential_degree": 6, "reference_scales_kpc": [2, 8, 32]}),
    "spherical-3-cubic": ("monopoles s = 2, 8, 32 kpc + Legendre 4, linear + cubic velocity functions",
                          {"cross_fit_folds": 1, "reference": "spherical", "potential_degree": 4, "reference_scales_kpc": [2, 8, 32],
                           "velocity_functions": ["linear", "cubic"]}),
    "axisymmetric-3": ("monopoles and z-quadrupoles s = 2, 8, 32 kpc + Legendre 4 (the default before cross-fitting)",
                       {"cross_fit_folds": 1, "reference": "axisymmetric", "potential_degree": 4, "reference_scales_kpc": [2, 8, 32]}),
    "axisymmetric-3-test3": ("as axisymmetric-3 with test functions of degree 3 (60 rows, not 252: less noise in "
                             "the estimated covariance)", {"cross_fit_folds": 1, "reference": "axisymmetric", "potential_degree": 4,
                                                           "reference_scales_kpc": [2, 8, 32], "test_degree": 3}),
    "cross-fit-2": ("as axisymmetric-3, each half's moments weighted by the other half's noise covariance",
                    {"reference": "axisymmetric", "potential_degree": 4, "reference_scales_kpc": [2, 8, 32],
                     "cross_fit_folds": 2}),
    "cross-fit-8": ("as axisymmetric-3, 8 folds each weighted by the other 7's noise covariance, sandwich posterior "
                    "(the default)", {"reference": "axisymmetric", "potential_degree": 4,
                                      "reference_scales_kpc": [2, 8, 32], "cross_fit_folds": 8}),
}
"""Settings tried on the way to the default (`--trials`): rows for what was tried, not only what was kept."""


def case(name: str, data, spec, draws: int, gradient: bool = False) -> dict:
    from dpotcube.sources.load import load_stars, plummer_truth
    from dpotcube.sources.selection import grad_log_selection_of
    from dpotcube.weak import fit_weak_report

    started = time.perf_counter()
    stars = load_stars(data, seed=0)
    load_s = time.perf_counter() - started
    gls, grad_s = None, 0.0
    if gradient:
        started = time.perf_counter()
        gls = grad_log_selection_of(plummer_truth(data).selection, stars.positions)
        grad_s = time.perf_counter() - started
    wall, cpu = time.perf_counter(), time.process_time()
    model, report = fit_weak_report(stars, spec, grad_log_selection=gls)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    row = {"mock": name, "n_stars": len(stars), "load_stars_s": round(load_s, 1), "grad_log_selection_s": round(grad_s, 1),
           "fit_wall_s": round(wall, 1),
           "fit_cpu_s": round(cpu, 1), **{k: report[k] for k in ("n_test_functions", "n_unknowns", "prior_scale_kms2",
           "prior_decay", "chi2_per_test_function")}}
    row |= score(model, plummer_truth(data), stars.observer, stars.volume_radius_kpc, draws)
    print(row, flush=True)
    return row


def seed_calibration(name: str, data, spec, seeds: int, gradient: bool = False) -> dict:
    """Coverage of the analytic ±1σ (the 16–84% range of a Gaussian posterior) over `seeds` star draws: one
    realisation's share over ~14,000 grid points is a noisy statistic (its errors are a few dozen correlated
    modes). `gradient`: the known selection enters by its exact ∇ ln S (the dusty mock)."""
    from dpotcube.sources.load import load_stars, plummer_truth
    from dpotcube.sources.selection import grad_log_selection_of
    from dpotcube.weak import fit_weak

    truth = plummer_truth(data)
    shares, ratios = [], []
    for seed in range(seeds):
        stars = load_stars(data, seed=seed)
        gls = grad_log_selection_of(truth.selection, stars.positions) if gradient else None
        model = fit_weak(stars, spec, grad_log_selection=gls)
        pts = grid_in_volume(stars.observer, stars.volume_radius_kpc)
        phi0 = float(truth.potential(np.asarray(stars.observer)[None])[0])
        true = np.concatenate([
            (np.asarray(truth.potential(pts), np.float64) - phi0)[None],
            np.asarray(truth.acceleration(pts), np.float64).T,
            np.asarray(truth.density(pts), np.float64)[None] * 1e-9,
        ])
        fields = model.fields(pts)
        inside = np.abs(fields - true) <= model.standard_deviations(pts)
        shares.append([inside[1:4].mean(), inside[4].mean(), inside[0].mean()])
        ratios.append(float(np.median(fields[4] / true[4])))
        print(f"{name} draw {seed}: coverage a, ρ, Φ {np.round(shares[-1], 2).tolist()}, median ρ ratio {ratios[-1]:.3f}",
              flush=True)
    shares = np.asarray(shares)
    out = {"mock": name, "n_stars": data.n_stars, "seeds": seeds}
    for i, field in enumerate(("accel", "density", "potential")):
        out[f"coverage_{field}_mean"] = float(shares[:, i].mean())
        out[f"coverage_{field}_sd"] = float(shares[:, i].std(ddof=1)) if seeds > 1 else 0.0
        out[f"coverage_{field}_se"] = out[f"coverage_{field}_sd"] / np.sqrt(seeds)
        out[f"coverage_{field}_per_draw"] = [round(float(c), 3) for c in shares[:, i]]
    out["median_density_ratio_per_draw"] = [round(r, 3) for r in ratios]
    print(out, flush=True)
    return out


def run(argv: list[str]) -> dict:
    import json
    import os

    from dpotcube.recipe import DataSpec
    from dpotcube.weak import WeakSpec

    parser = argparse.ArgumentParser(prog="python -m benchmarks run weak")
    parser.add_argument("--stars", type=int, default=1_000_000)
    parser.add_argument("--dusty-stars", type=int, default=200_000, help="observed stars of the dusty mock")
    parser.add_argument("--draws", type=int, default=200, help="posterior draws for the 16–84% ranges")
    parser.add_argument("--seeds", type=int, default=8, help="star draws for the calibration over seeds")
    parser.add_argument("--seed-stars", type=int, default=200_000, help="stars per draw for the calibration")
    parser.add_argument("--dusty-seeds", type=int, default=4, help="star draws for the dusty mock's calibration")
    parser.add_argument("--dusty-seed-stars", type=int, default=100_000, help="observed stars per dusty draw")
    parser.add_argument("--degree", type=int, default=WeakSpec().potential_degree)
    parser.add_argument("--test-degree", type=int, default=WeakSpec().test_degree)
    parser.add_argument("--trials", nargs="+", choices=sorted(TRIALS), default=[])
    parser.add_argument("--trial-seeds", type=int, default=0, help="with --trials: also the coverage over star draws")
    parser.add_argument("--calibrate-only", nargs="+", choices=["isotropic", "anisotropic", "dusty"], default=[],
                        help="rerun only these mocks' calibration over star draws; keep the rest of the previous file")
    parser.add_argument("--table-only", action="store_true",
                        help="rerun only the main table; keep the previous calibration rows and trials")
    parser.add_argument("--trial-mocks", nargs="+", choices=["isotropic", "anisotropic", "dusty"], default=["isotropic"])
    args = parser.parse_args(argv)
    if args.trials:
        return run_trials(args, argv)
    spec = WeakSpec(potential_degree=args.degree, test_degree=args.test_degree)
    spec_weights = spec.model_copy(update={"known_selection": "weights"})
    cases = [
        ("isotropic", DataSpec(n_stars=args.stars)),
        ("anisotropic", DataSpec(n_stars=args.stars, plummer={"anisotropy_radius_kpc": ANISOTROPY_RADIUS_KPC})),
        ("dusty, 1/S weights", DataSpec(n_stars=args.dusty_stars, observation={})),
        ("dusty, known ∇ ln S", DataSpec(n_stars=args.dusty_stars, observation={})),
    ]
    if args.calibrate_only:
        return run_calibrations(args, argv, spec, cases)
    rows = [case(name, data, spec if "∇" in name else spec_weights, args.draws, gradient="∇" in name)
            for name, data in cases]
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    command, date = " ".join(["python -m benchmarks run weak", *argv]), environment()["date"]
    if args.table_only:
        return {**previous, "command": command, **environment(), "cpu_affinity": sorted(os.sched_getaffinity(0)),
                "draws": args.draws, "rows": rows,
                "calibration": previous_calibrations(previous, spec, "--table-only")}
    calibration = [
        seed_calibration(name, data.model_copy(update={"n_stars": args.seed_stars}), spec, args.seeds)
        for name, data in cases[:2]
    ] if args.seeds else []
    if args.dusty_seeds:
        name, data = cases[3]
        calibration.append(seed_calibration(name, data.model_copy(update={"n_stars": args.dusty_seed_stars}), spec,
                                            args.dusty_seeds, gradient=True))
    return {
        "command": command,
        **environment(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "spec": spec.model_dump(mode="json"),
        "draws": args.draws,
        "rows": rows,
        "calibration": [c | {"command": command, "date": date} for c in calibration],
        "trials": previous.get("trials", []),
    }


def previous_calibrations(previous: dict, spec, flag: str) -> list[dict]:
    """The previous file's calibration rows, each with its own command and date (rows from before they carried
    them get the file's), for a partial rerun (`flag`) that keeps them; it must use the same WeakSpec."""
    if previous.get("spec", spec.model_dump(mode="json")) != spec.model_dump(mode="json"):
        raise SystemExit(f"{flag}: the previous results were measured with another WeakSpec; rerun in full")
    return [c | {"command": c.get("command", previous.get("command")), "date": c.get("date", previous.get("date"))}
            for c in previous.get("calibration", [])]


def run_calibrations(args: argparse.Namespace, argv: list[str], spec, cases: list) -> dict:
    """Only the calibration over star draws of `args.calibrate_only`, merged into the previous results (the rows of
    the other mocks, the main table and the trials kept as they were)."""
    import json

    named = {"isotropic": (cases[0], args.seeds, args.seed_stars, False),
             "anisotropic": (cases[1], args.seeds, args.seed_stars, False),
             "dusty": (cases[3], args.dusty_seeds, args.dusty_seed_stars, True)}
    command, date = " ".join(["python -m benchmarks run weak", *argv]), environment()["date"]
    fresh = []
    for mock in args.calibrate_only:
        (name, data), seeds, stars, gradient = named[mock]
        row = seed_calibration(name, data.model_copy(update={"n_stars": stars}), spec, seeds, gradient=gradient)
        fresh.append(row | {"command": command, "date": date})
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # read last: another run may have written
    done = {(row["mock"], row["n_stars"]) for row in fresh}  # a calibration at another star count is kept beside
    kept = [c for c in previous_calibrations(previous, spec, "--calibrate-only") if (c["mock"], c["n_stars"]) not in done]
    order = [name for name, _ in cases]
    return {**previous, "calibration": sorted(kept + fresh, key=lambda c: (order.index(c["mock"]), c["n_stars"]))}


def run_trials(args: argparse.Namespace, argv: list[str]) -> dict:
    """Run `args.trials` on `args.trial_mocks`; merge their rows into the previous results' `trials`."""
    import json

    from dpotcube.recipe import DataSpec
    from dpotcube.weak import WeakSpec

    mocks = {
        "isotropic": (DataSpec(n_stars=args.stars), False),
        "anisotropic": (DataSpec(n_stars=args.stars, plummer={"anisotropy_radius_kpc": ANISOTROPY_RADIUS_KPC}), False),
        "dusty": (DataSpec(n_stars=args.dusty_stars, observation={}), True),
    }
    from .report import environment as env

    date = env()["date"]
    trials = {}
    for name in args.trials:
        description, overrides = TRIALS[name]
        spec = WeakSpec(**overrides)
        for mock in args.trial_mocks:
            data, gradient = mocks[mock]
            row = case(mock, data, spec, args.draws, gradient=gradient)
            row |= {"trial": name, "description": description, "overrides": overrides, "date": date,
                    "command": " ".join(["python -m benchmarks run weak", *argv])}
            if args.trial_seeds:  # coverage over star draws (one draw's share is noisy)
                stars = args.dusty_seed_stars if gradient else args.seed_stars
                calib = seed_calibration(mock, data.model_copy(update={"n_stars": stars}), spec, args.trial_seeds,
                                         gradient=gradient)
                row["calibration"] = {k: v for k, v in calib.items() if k.startswith("coverage") or k in ("seeds", "n_stars")}
            trials[(name, row["mock"], row["n_stars"])] = row
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # read last: another run may have written
    merged = {(t["trial"], t["mock"], t["n_stars"]): t for t in previous.get("trials", [])} | trials
    return {**previous, "trials": sorted(merged.values(), key=lambda t: (t["mock"], t["n_stars"], t["trial"]))}


def _calibration_cell(c: dict | None) -> str:
    if not c:
        return "–"
    return (f"{c['coverage_accel_mean']:.2f} ± {c['coverage_accel_sd']:.2f}, {c['coverage_density_mean']:.2f} ± "
            f"{c['coverage_density_sd']:.2f} ({c['seeds']} × {c['n_stars']:,})")


def markdown(r: dict) -> str:
    spec = r["spec"]
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        f"Pinned to CPU cores {r['cpu_affinity']} (the machine shared with other work). Φ: reference "
        f"`{spec.get('reference', 'none')}` (scales {spec.get('reference_scales_kpc', [])} kpc) + Legendre degree "
        f"{spec['potential_degree']}; test functions: {spec['test_functions']} of degree {spec['test_degree']} × "
        f"{', '.join(spec['velocity_functions'])}; noise covariance cross-fitted over {spec.get('cross_fit_folds', 1)} "
        "fold(s) (1: from the moments' own stars); prior by evidence. Scores on the cube grid (0.2 kpc) inside the "
        f"3 kpc volume; coverage: share of points whose truth lies inside the 16–84% range of {r['draws']} "
        "posterior draws (goal 0.68 ± 0.1). Fit time is the whole numerical cost (no flows are trained); the "
        "dusty mock's ∇ ln S (central differences of the mock's S) took "
        + ", ".join(f"{row['grad_log_selection_s']} s" for row in r["rows"] if row.get("grad_log_selection_s"))
        + " more.",
        "",
        "| mock | stars | fit wall s | fit CPU s | median \\|Δa\\|/\\|a\\| | median \\|Δρ\\|/ρ | median ρ ratio "
        "| coverage a | coverage ρ | coverage Φ | χ²/K |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['mock']} | {row['n_stars']:,} | {row['fit_wall_s']} | {row['fit_cpu_s']} | "
            f"{row['median_rel_error_accel']:.3f} | {row['median_rel_error_density']:.3f} | "
            f"{row['median_density_ratio']:.3f} | {row['coverage_accel']:.2f} | {row['coverage_density']:.2f} | "
            f"{row['coverage_potential']:.2f} | {row['chi2_per_test_function']:.2f} |"
        )
    if r.get("calibration"):
        lines += [
            "",
            "Calibration over star draws (share of in-volume grid points "
            "whose truth lies within the posterior's ±1σ: mean ± standard deviation over the draws, and in brackets "
            "the mean's standard error; one draw's share is nearly all-or-nothing because its errors are a few "
            "correlated modes, so the mean over draws is what is calibrated):",
            "",
            "| mock | draws × stars | coverage a | coverage ρ | coverage Φ | ρ coverage per draw | median ρ ratio per draw "
            "| date |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]

        def cell(c: dict, field: str) -> str:
            se = c.get(f"coverage_{field}_se")
            return (f"{c[f'coverage_{field}_mean']:.2f} ± {c[f'coverage_{field}_sd']:.2f}"
                    + (f" ({se:.2f})" if se is not None else ""))

        for c in r["calibration"]:
            per_draw = " ".join(f"{v:.2f}" for v in c.get("coverage_density_per_draw", [])) or "–"
            ratios = " ".join(f"{v:.2f}" for v in c.get("median_density_ratio_per_draw", [])) or "–"
            lines.append(
                f"| {c['mock']} | {c['seeds']} × {c['n_stars']:,} | {cell(c, 'accel')} | {cell(c, 'density')} | "
                f"{cell(c, 'potential')} | {per_draw} | {ratios} | {c.get('date', r['date'])[:10]} |"
            )
    if r.get("trials"):
        lines += [
            "",
            "Measurement log (`--trials`): settings tried on the way to the default, kept or not (scores as above; "
            "the dusty mock with the known ∇ ln S):",
            "",
            "| trial | what | mock | stars | median \\|Δa\\|/\\|a\\| | median \\|Δρ\\|/ρ | median ρ ratio | coverage a "
            "| coverage ρ | coverage a, ρ over star draws | fit wall s | date |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for t in r["trials"]:
            lines.append(
                f"| {t['trial']} | {t['description']} | {t['mock']} | {t['n_stars']:,} | "
                f"{t['median_rel_error_accel']:.3f} | {t['median_rel_error_density']:.3f} | "
                f"{t['median_density_ratio']:.3f} | {t['coverage_accel']:.2f} | {t['coverage_density']:.2f} | "
                f"{_calibration_cell(t.get('calibration'))} | {t['fit_wall_s']} | {t['date'][:10]} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from .report import record

    record("weak", run(sys.argv[1:]))
