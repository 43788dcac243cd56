"""The field solver alone: every network method trained on the exact analytic gradients of a Plummer mock.

    python -m benchmarks run solver [--methods M ...] [--mock plummer|plummer-om] [--variants V ...]
                                    [--positions N] [--set key=value ...]

No flows: the collocation points carry velocities drawn exactly from the mock's DF and its exact ∇ ln p
(and ∇ ln n for `vanilla`/`selection`), at the quickstart's budget (16,384 positions × 8 velocities) unless
`--positions` says otherwise. Each (method, variant) trains the quickstart's fields with the variant's
`fields.*` overrides (then those of `--set`) and is scored on the quickstart's cube grid (0.2 kpc) inside the
volume against the analytic truth, with the accuracy benchmark's score keys plus 90th percentiles. `kept` marks
the variant `KEPT` (a `--label`led pilot never is). Rows not run keep their previous results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .report import REPO, environment, provenance_line

TITLE = "Field solver on exact gradients"
RESULTS = REPO / "benchmarks" / "results" / "solver.json"
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
MOCKS = {"plummer": (), "plummer-om": ("data.plummer.anisotropy_radius_kpc=6.0",), "dusty": ("data.observation={}",)}
"""Recipe overrides of each mock: every star in the volume seen (isotropic, Osipkov–Merritt), or the isotropic mock
seen through the default dusty magnitude limit (`data.observation`, its S(x) known)."""
METHODS = ("vanilla", "conditional", "selection", "conditional+pattern")


def _polished(steps: int, sampling: str, validation: int, by_position: bool, reference: str) -> tuple[str, ...]:
    """`fields.*` overrides of a solver variant: Adam, then `steps` L-BFGS iterations on 4,096 points (positions
    `by_position`) drawn by `sampling`, `validation` held out (patience 4), under a `reference` potential."""
    held_out = ("fields.polish_patience=4",) if validation else ()
    return (f"fields.polish_steps={steps}", "fields.polish_points=4096", "fields.polish_laplacian_points=512",
            f"fields.polish_sampling={sampling}", f"fields.polish_validation_points={validation}", *held_out,
            f"fields.polish_by_position={str(by_position).lower()}", f"fields.potential_reference={reference}")


VARIANTS: dict[str, tuple[str, ...]] = {  # name: `fields.*` overrides on the quickstart recipe (then --set ones)
    "adam": ("fields.polish_steps=0",),  # the kept solver's Adam stage (and its reference) alone
    "adam+lbfgs": _polished(1500, "stars", 0, False, "none"),
    "adam+lbfgs-volume": _polished(3000, "volume", 0, False, "none"),
    "adam+lbfgs-volume-heldout": _polished(3000, "volume", 16384, False, "none"),
    "adam+lbfgs-position": _polished(3000, "volume", 16384, True, "none"),
    "ref+adam+lbfgs-volume-heldout": _polished(3000, "volume", 16384, False, "cored-log"),
    "ref+adam+lbfgs-position": _polished(3000, "volume", 16384, True, "cored-log"),
}
KEPT = "ref+adam+lbfgs-position"
"""The variant kept: the recipes' default (the cored-log reference under Φ, the polish by whole positions on a
volume-spread set with the held-out stop; without the stop the polish hurts on a flow's gradients: docs/methods.md)."""
N_STARS = 200_000  # stars drawn to pick the collocation positions from (n's normalisation uses this count)


def exact_points(truth, positions: np.ndarray, per_position: int, method: str, seed: int):
    """Collocation points with velocities drawn exactly from the DF, exact ∇ ln p, and exact ∇ ln n: of the true
    tracers for `vanilla` (a 1/S-weighted n(x) flow at its best), of the observed stars for `selection`
    (∇ ln n + ∇ ln S; a position-only selection leaves p(v|x) alone)."""
    from dpotcube.density.collocation import CollocationPoints
    from dpotcube.sources.mocks import draw_velocities
    from dpotcube.sources.selection import grad_log_selection_of

    rng = np.random.default_rng(seed)
    x = np.repeat(positions, per_position, axis=0)
    v = draw_velocities(truth, x, rng)
    gx, gv = truth.grad_log_p(x, v)
    gn = None
    if not method.startswith("conditional"):
        gn = np.asarray(truth.grad_log_tracer_density(positions))
        if method.startswith("selection") and truth.selection is not None:
            gn = gn + grad_log_selection_of(truth.selection, positions)
        gn = np.repeat(gn, per_position, axis=0)
    arrays = [np.asarray(a, np.float32) for a in (x, v, gx, gv)]
    return CollocationPoints(*arrays, grad_log_n=None if gn is None else np.asarray(gn, np.float32))


def grid_in_volume(truth, spacing: float) -> np.ndarray:
    """The cube grid (centred on the observer, half-width the volume radius) inside the volume, `(n, 3)`."""
    r = truth.volume_radius_kpc
    axis = np.arange(-r, r + 1e-9, spacing)
    g = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    g = g[np.linalg.norm(g, axis=1) < r]
    return g + np.asarray(truth.observer)


def score(model, truth, pts: np.ndarray, shells: tuple[tuple[float, float], ...] = ()) -> dict:
    """The accuracy benchmark's score keys (plus 90th percentiles) of `model` at `pts`; with `shells` (kpc from the
    observer, `(lo, hi)`), also the median ρ/ρ_true in each, as `median_density_ratio_d{lo}-{hi}`."""
    from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN as G
    from dpotcube.fields.forward import value_grad_laplacian
    from dpotcube.sources.selection import selection_of

    x = jnp.asarray(pts, jnp.float32)
    _, grad, lap = eqx.filter_jit(jax.vmap(value_grad_laplacian, in_axes=(None, 0)))(model.potential, x)
    accel, rho = -np.asarray(grad, np.float64), np.asarray(lap, np.float64) / (4 * np.pi * G)
    true_accel = np.asarray(truth.acceleration(pts))
    accel_err = np.linalg.norm(accel - true_accel, axis=1) / np.linalg.norm(true_accel, axis=1)
    rho_ratio = rho / np.asarray(truth.density(pts))
    rho_err = np.abs(rho_ratio - 1)
    s = {"n_points": len(pts), "median_rel_error_accel": np.median(accel_err),
         "p90_rel_error_accel": np.percentile(accel_err, 90), "median_rel_error_density": np.median(rho_err),
         "p90_rel_error_density": np.percentile(rho_err, 90), "median_density_ratio": np.median(rho_ratio),
         "share_density_within_10pct": np.mean(rho_err < 0.1)}
    distance = np.linalg.norm(pts - np.asarray(truth.observer), axis=1)
    for lo, hi in shells:
        s[f"median_density_ratio_d{lo:g}-{hi:g}"] = np.median(rho_ratio[(distance >= lo) & (distance < hi)])
    if model.log_density is not None:
        n_ratio = np.asarray(jax.vmap(model.tracer_density)(x), np.float64) / np.asarray(truth.tracer_density(pts))
        s["median_rel_error_tracer_density"] = np.median(np.abs(n_ratio - 1))
        s["median_shape_error_tracer_density"] = np.median(np.abs(n_ratio / np.median(n_ratio) - 1))
    if model.efficiency_logit is not None:  # truth: ε = 1 without a selection, ε ∝ S(x) with one (shape only)
        eps = np.asarray(jax.vmap(model.efficiency)(x), np.float64)
        if truth.selection is not None:
            eps = eps / selection_of(truth.selection, pts)
        s["median_rel_error_efficiency"] = np.median(np.abs(eps - 1))
        s["median_shape_error_efficiency"] = np.median(np.abs(eps / np.median(eps) - 1))
    if model.pattern_speed is not None:
        s["pattern_speed_kms_per_kpc"] = float(model.pattern_speed)  # truth: 0
    return {k: (int(v) if k == "n_points" else float(v)) for k, v in s.items()}


def exact_problem(method: str, overrides: list[str], positions: int, seed: int = 0):
    """The quickstart recipe with `overrides`, its mock's truth and stars, and `positions` exact collocation
    positions (with the recipe's velocities per position) for `method`: (recipe, truth, stars, points)."""
    from dpotcube.recipe import load_recipe
    from dpotcube.sources.load import load_stars, plummer_truth

    recipe, _ = load_recipe(QUICKSTART, overrides)
    truth = plummer_truth(recipe.data)
    stars = load_stars(recipe.data, seed=seed)
    chosen = np.random.default_rng(seed + 1).choice(len(stars), positions, replace=False)
    points = exact_points(truth, stars.positions[chosen], recipe.density.collocation.velocities_per_position,
                          method, seed + 2)
    return recipe, truth, stars, points


def train_on(points, stars, recipe, seed: int = 0):
    """Train the recipe's fields on `points`: (model, wall seconds, loss history)."""
    from dpotcube.fields.train import train_fields
    from dpotcube.methods import get_method

    start = time.perf_counter()
    model, _, history = train_fields(points, stars.observer, stars.volume_radius_kpc, len(stars), recipe.fields,
                                     seed=seed + 3, method=get_method(recipe.fields.method))
    jax.block_until_ready(model)
    return model, time.perf_counter() - start, history


def train_row(method: str, mock: str, variant: str, positions: int, extra: list[str], seed: int = 0):
    """Train one row's fields: (model, truth, recipe, overrides, wall seconds, loss history)."""
    base, pattern = method.split("+")[0], method.endswith("+pattern")
    overrides = [*MOCKS[mock], f"data.n_stars={N_STARS}", f"fields.method={base}", *VARIANTS[variant], *extra]
    if pattern:
        overrides.append("fields.pattern_speed=true")
    recipe, truth, stars, points = exact_problem(method, overrides, positions, seed)
    model, wall, history = train_on(points, stars, recipe, seed)
    return model, truth, recipe, overrides, wall, history


def run_row(method: str, mock: str, variant: str, positions: int, extra: list[str], seed: int = 0) -> dict:
    model, truth, recipe, overrides, wall, history = train_row(method, mock, variant, positions, extra, seed)
    scores = score(model, truth, grid_in_volume(truth, recipe.cube.spacing_kpc))
    return {"method": method, "mock": mock, "variant": variant, "kept": variant == KEPT, "positions": positions,
            "overrides": overrides[1 + len(MOCKS[mock]):], "wall_seconds": round(wall, 1),
            "final_loss": history.get("polish_loss", history["loss"])[-1], "scores": scores}


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run solver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["vanilla", "conditional"])
    parser.add_argument("--mock", choices=sorted(MOCKS), default="plummer")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["adam", KEPT])
    parser.add_argument("--positions", type=int, default=16384, help="collocation positions (8 velocities each)")
    parser.add_argument("--label", default="", help="suffix of the variant name (pilot runs)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="a recipe override")
    args = parser.parse_args(argv)
    env = environment()
    rows: dict[tuple[str, str, str], dict] = {}
    command = "python -m benchmarks run solver " + " ".join(argv)
    for method in args.methods:
        for variant in args.variants:
            row = run_row(method, args.mock, variant, args.positions, args.overrides)
            row["variant"] += args.label
            row |= {"command": command, "date": env["date"]}
            rows[(method, args.mock, row["variant"])] = row
            print(json.dumps(row), flush=True)
    previous = json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []  # read last: runs may overlap
    merged = list(({(r["method"], r["mock"], r["variant"]): r for r in previous} | rows).values())
    for row in merged:  # `kept` follows KEPT, also in rows made before it changed
        row["kept"] = row["variant"] == KEPT
    return {"command": command, **env, "rows": merged}


def markdown(r: dict) -> str:
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r) + " Each row was made by its own command on its own date.",
        ("Fields trained on the mock's exact ∇ ln p (and ∇ ln n), scored on the quickstart's cube grid inside the "
         "volume. Goals (issue 18): median |Δρ|/ρ ≤ 0.03 with ≥ 95% within 10%, median |Δa|/|a| ≤ 0.005, "
         "n shape within 1% (`conditional`). Wall time: training only, one pinned core of a shared 2-core machine."),
        "",
        ("| method | mock | variant | kept | positions | \\|Δa\\|/\\|a\\| median / p90 | \\|Δρ\\|/ρ median / p90 | "
         "share \\|Δρ\\|/ρ < 10% | ρ/ρ_true | n shape | Ω_p | wall time |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in sorted(r["rows"], key=lambda w: (w["mock"], w["method"], w["variant"])):
        s = row["scores"]
        n = s.get("median_shape_error_tracer_density")
        omega = s.get("pattern_speed_kms_per_kpc")
        lines.append(
            f"| {row['method']} | {row['mock']} | {row['variant']} | {'yes' if row['kept'] else 'no'} | "
            f"{row['positions']:,} | {s['median_rel_error_accel']:.4f} / {s['p90_rel_error_accel']:.4f} | "
            f"{s['median_rel_error_density']:.3f} / {s['p90_rel_error_density']:.3f} | "
            f"{s['share_density_within_10pct']:.3f} | {s['median_density_ratio']:.3f} | "
            f"{'–' if n is None else format(n, '.4f')} | {'–' if omega is None else format(omega, '.2f')} | "
            f"{row['wall_seconds']:.0f} s |"
        )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    from .__main__ import main

    main(["run", "solver", *sys.argv[1:]])
