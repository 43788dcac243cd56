"""n(x) models' ∇ ln n and ∇² ln n errors on exact Plummer stars, and the ρ error that ∇ ln n alone makes.

    python -m benchmarks run curvature [--stars N ...] [--models NAME ...] [--no-density]

Why the curvature: `vanilla`'s CBE reads ∇ ln n through v·∇ ln n, so an error δ in ∇ ln n moves a by about σ²δ, and
ρ = −∇·a/(4πG) by about σ²∇·δ: ρ reads the *curvature* ∇² ln n, not only the gradient. On the Plummer mock at the
observer σ²|∇² ln n| is twice 4πGρ, so ρ's relative error is about twice ∇² ln n's. A smooth 1% scale error in ∇ ln n
(a curvature error of 1%) moves ρ by about 1%; a 1.8% gradient error whose curvature is 16% off moves it by 19%.

For each star count the mock's stars are drawn exactly from its DF (seed 22); each n(x) model (`MODELS`) is fitted on
them, timed, and scored at 20,000 other stars (seed 99): median |Δ∇ ln n|/|∇ ln n| and median |Δ∇² ln n|/|∇² ln n|.
At the quickstart's 10⁶ stars each model's ∇ ln n is then swapped into the budget benchmark's exact problem (`vanilla`
fields on 16,384 × 8 exact collocation points) under each `fields.residual_form`: the ρ that n(x) alone costs. The
`exact × 1.01` row is the control: the true ∇ ln n scaled by 1.01. Cases not run keep their results.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import shlex
import sys
import time

import numpy as np

from .report import REPO, environment, provenance_line

TITLE = "Curvature of the tracer density n(x)"
RESULTS = REPO / "benchmarks" / "results" / "curvature.json"
MODELS: dict[str, tuple[str, dict]] = {  # name: (description, `density.position` keys of `type: legendre`)
    "legendre": ("Legendre alone, degree by held-out likelihood (the default before the reference)",
                 {"reference": "none", "degree_selection": "held_out"}),
    "legendre-bic": ("Legendre alone, degree by BIC", {"reference": "none", "degree_selection": "bic"}),
    "reference-held-out": ("reference + Legendre, degree by held-out likelihood",
                           {"reference": "spherical", "degree_selection": "held_out"}),
    "reference": ("reference + Legendre, degree by BIC (the default)", {"reference": "spherical",
                                                                        "degree_selection": "bic"}),
}
STARS = (200_000, 1_000_000)
DENSITY_STARS = 1_000_000  # the quickstart's: where ∇ ln n is swapped into the exact problem
FORMS = ("ln_f", "acceleration")
TEST_STARS = 20_000


def fit_and_score(model: str, truth, stars: np.ndarray, test: np.ndarray) -> tuple[object, dict]:
    """Fit `model` on `stars` (exact, of `truth`); its errors at the `test` stars: (model, record)."""
    import jax.numpy as jnp

    from dpotcube.density.base import grad_log_n, laplacian_log_n
    from dpotcube.density.registry import fit_density
    from dpotcube.recipe import PositionLegendreSpec

    start = time.perf_counter()
    fitted, _ = fit_density(stars, PositionLegendreSpec(**MODELS[model][1]), 0,
                            ball=(np.asarray(truth.observer), truth.volume_radius_kpc))
    seconds = time.perf_counter() - start
    x = jnp.asarray(test, jnp.float32)
    gradient, true_gradient = np.asarray(grad_log_n(fitted, x)), np.asarray(truth.grad_log_tracer_density(x))
    true_laplacian = np.asarray(truth.laplacian_log_tracer_density(x))
    curvature_error = (np.asarray(laplacian_log_n(fitted, x)) - true_laplacian) / np.abs(true_laplacian)
    return fitted, {
        "degree": fitted.degree,
        "fit_seconds": round(seconds, 1),
        "grad_log_n_median_rel_error": round(float(np.median(
            np.linalg.norm(gradient - true_gradient, axis=1) / np.linalg.norm(true_gradient, axis=1))), 4),
        "laplacian_log_n_median_rel_error": round(float(np.median(np.abs(curvature_error))), 4),
        "laplacian_log_n_median_signed_error": round(float(np.median(curvature_error)), 4),
    }


def _exact_stars(n_stars: int, seed: int):
    """(truth, positions `(n_stars, 3)`) of the default Plummer mock, drawn exactly from its DF."""
    from dpotcube.recipe import DataSpec
    from dpotcube.sources.load import plummer_truth
    from dpotcube.sources.mocks import sample_plummer

    truth = plummer_truth(DataSpec(n_stars=n_stars))
    return truth, np.asarray(sample_plummer(truth, seed)[0])


@functools.cache
def _exact_problem(form: str):
    """The budget's exact problem under `fields.residual_form=form` (built once per form; every row swaps only
    ∇ ln n into it): (recipe, truth, stars, points, grid)."""
    from .budget import POSITIONS as BUDGET_POSITIONS
    from .solver import exact_problem, grid_in_volume

    recipe, truth, stars, points = exact_problem(
        "vanilla", ["data.n_stars=200000", "fields.method=vanilla", f"fields.residual_form={form}"], BUDGET_POSITIONS)
    return recipe, truth, stars, points, grid_in_volume(truth, recipe.cube.spacing_kpc)


def density_error(grad_log_n, form: str) -> dict:
    """`vanilla` on the budget's exact problem with ∇ ln n replaced by `grad_log_n(x, true ∇ ln n)`: its scores."""
    from .solver import score, train_on

    recipe, truth, stars, points, grid = _exact_problem(form)
    points = dataclasses.replace(points, grad_log_n=np.asarray(grad_log_n(points.x, points.grad_log_n)))
    model, wall, _ = train_on(points, stars, recipe)
    return {"wall_seconds": round(wall, 1), "scores": score(model, truth, grid)}


def run(argv: list[str]) -> dict:
    from dpotcube.density.base import grad_log_n

    parser = argparse.ArgumentParser(prog="python -m benchmarks run curvature", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stars", nargs="+", type=int, default=list(STARS))
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--no-density", action="store_true", help="score the fits only, not the ρ they give")
    args = parser.parse_args(argv)
    env = environment()
    command = "python -m benchmarks run curvature " + shlex.join(argv)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"fits": {}, "density": {}}
    fits, density = previous["fits"], previous["density"]
    stamp = {"command": command, "date": env["date"]}
    _, test = _exact_stars(TEST_STARS, 99)
    for n_stars in args.stars:
        truth, stars = _exact_stars(n_stars, 22)
        for name in args.models:
            fitted, record = fit_and_score(name, truth, stars, test)
            fits.setdefault(str(n_stars), {})[name] = {**record, **stamp}
            print(n_stars, name, json.dumps(record), flush=True)
            if n_stars == DENSITY_STARS and not args.no_density:
                for form in FORMS:
                    cell = density_error(lambda x, _: grad_log_n(fitted, x), form)
                    density.setdefault(name, {})[form] = {**cell, **stamp}
                    print(name, form, cell["scores"]["median_rel_error_density"], flush=True)
    if not args.no_density:
        for form in FORMS:
            density.setdefault("exact × 1.01", {})[form] = {**density_error(lambda _, true: 1.01 * true, form), **stamp}
    return {"command": command, **env, "fits": {n: fits[n] for n in sorted(fits, key=int)},
            "density": {name: density[name] for name in [*MODELS, "exact × 1.01"] if name in density}}


def markdown(r: dict) -> str:
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        "",
        ("n(x) models fitted on exact Plummer stars, scored at 20,000 others: median relative error of ∇ ln n and of "
         "∇² ln n (signed median in brackets), the degree chosen and the fit's wall time. `ρ from ∇ ln n`: `vanilla` "
         "on the budget benchmark's exact points with only ∇ ln n taken from the model fitted on 10⁶ stars, median "
         "|Δρ|/ρ under `ln_f` / `acceleration`. The `reference` is ln(1 + r/s) about the Galactic centre for s = 2, 8, "
         "32 kpc: a shape family the mock's n ∝ (1 + r²/b²)^{−5/2}, b = 4 kpc, is not in."),
        "",
        "| n(x) model | stars | degree | ∇ ln n | ∇² ln n | fit (s) | ρ from ∇ ln n |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n_stars, models in r["fits"].items():
        for name, c in models.items():
            cells = r["density"].get(name, {}) if int(n_stars) == DENSITY_STARS else {}
            rho = " / ".join(f"{cells[f]['scores']['median_rel_error_density']:.3f}" if f in cells else "–"
                             for f in FORMS) if cells else ""
            lines.append(
                f"| {MODELS[name][0]} | {int(n_stars):,} | {c['degree']} | {c['grad_log_n_median_rel_error']:.4f} | "
                f"{c['laplacian_log_n_median_rel_error']:.3f} ({c['laplacian_log_n_median_signed_error']:+.3f}) | "
                f"{c['fit_seconds']:.0f} | {rho} |")
    control = r["density"].get("exact × 1.01")
    if control:
        rho = " / ".join(f"{control[f]['scores']['median_rel_error_density']:.3f}" for f in FORMS if f in control)
        lines.append(f"| control: the true ∇ ln n × 1.01 | – | – | 0.0100 | 0.010 (+0.010) | – | {rho} |")
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    from .__main__ import main

    main(["run", "curvature", *sys.argv[1:]])
