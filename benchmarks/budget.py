"""ρ's error budget: how much of a build's ρ error each density model's gradient makes, swapped into exact points.

    python -m benchmarks run budget [--mock plummer|plummer-om] [--build DIR] [--forms ln_f acceleration]
                                    [--rows ROW ...] [--keep-end-to-end]

`vanilla` fields (the quickstart's settings) are trained on exact collocation points, as in the solver benchmark
(16,384 positions × 8 velocities drawn from the Plummer mock's DF, exact ∇ ln p and ∇ ln n), with some of the exact
gradients replaced by those of a quickstart build's density models at the same points: ∇ₓ ln p and ∇ᵥ ln p from its
p(v|x) model, ∇ ln n from its n(x) model. `∇ₓ ln p shuffled` adds the model's ∇ₓ ln p errors at other points (the
same errors, without their correlation in x and v): what it leaves is what sampling-like noise alone would do. Every
row is trained under each `fields.residual_form` asked for, and the build's own cube is remade with each (its flows
and collocation points kept), so the table holds the end-to-end figure beside its budget. The build is `--build`
(a quickstart build folder, reused) or a fresh one of the quickstart recipe. Rows not run keep their results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

from .report import REPO, environment, provenance_line

TITLE = "Error budget of the density: which gradient limits it"
RESULTS = REPO / "benchmarks" / "results" / "budget.json"
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
FORMS = ("ln_f", "acceleration")
ROWS: dict[str, tuple[str, ...]] = {  # row: the exact gradients replaced by the build's models'
    "exact": (),
    "∇ₓ ln p": ("x",),
    "∇ₓ ln p shuffled": ("x shuffled",),
    "∇ᵥ ln p": ("v",),
    "∇ ln n": ("n",),
    "∇ₓ, ∇ᵥ ln p": ("x", "v"),
    "∇ₓ ln p, ∇ ln n": ("x", "n"),
    "all three": ("x", "v", "n"),
}
POSITIONS = 16384
MOCKS: dict[str, tuple[str, tuple[str, ...]]] = {  # name: (description, the recipe overrides that make it)
    "plummer": ("Plummer, isotropic", ()),
    "plummer-om": ("Plummer, Osipkov–Merritt r_a = 6 kpc", ("data.plummer.anisotropy_radius_kpc=6.0",)),
}
SHELLS = ((0.0, 1.5), (2.5, 3.0))  # kpc from the observer: the ratio near the centre and near the volume's edge


def model_gradients(build: Path, x: np.ndarray, v: np.ndarray, chunk: int = 8192) -> dict[str, np.ndarray]:
    """∇ₓ ln p, ∇ᵥ ln p (the build's p(v|x) models, combined as in the build) and ∇ ln n at `(x, v)`."""
    from dpotcube.density.ensemble import FlowEnsemble
    from dpotcube.density.registry import load_density

    velocity = FlowEnsemble(tuple(load_density(p) for p in sorted((build / "flows").glob("velocity_flow_*.eqx"))))
    position = FlowEnsemble(tuple(load_density(p) for p in sorted((build / "flows").glob("position_flow_*.eqx"))))
    parts = [velocity.grad_log_p(x[i:i + chunk], v[i:i + chunk]) for i in range(0, len(x), chunk)]
    return {"x": np.concatenate([np.asarray(p[0]) for p in parts]),
            "v": np.concatenate([np.asarray(p[1]) for p in parts]),
            "n": np.concatenate([np.asarray(position.grad_log_n(x[i:i + chunk])) for i in range(0, len(x), chunk)])}


def swapped(points, models: dict[str, np.ndarray], swaps: tuple[str, ...], seed: int):
    """`points` with the gradients `swaps` names taken from `models` (`x shuffled`: the model's ∇ₓ errors permuted)."""
    replace = {}
    if "x" in swaps:
        replace["grad_x_log_p"] = models["x"]
    if "x shuffled" in swaps:
        errors = models["x"] - points.grad_x_log_p
        replace["grad_x_log_p"] = points.grad_x_log_p + errors[np.random.default_rng(seed).permutation(len(errors))]
    if "v" in swaps:
        replace["grad_v_log_p"] = models["v"]
    if "n" in swaps:
        replace["grad_log_n"] = models["n"]
    return dataclasses.replace(points, **replace)


def end_to_end(build: Path, mock: str, form: str) -> dict:
    """The build of the quickstart on `mock` remade with `fields.residual_form=form` (stars, flows and collocation
    points kept when already made): its scores."""
    from .accuracy import ONE_BUILD
    from .builds import measured_build

    _, record = measured_build(QUICKSTART, [*MOCKS[mock][1], *ONE_BUILD, f"fields.residual_form={form}",
                                            "diagnostics.enabled=false",
                                            f"publish.catalog={build.parent / 'catalog' / 'catalog.yaml'}"],
                               build, force=False)
    return {"wall_seconds": record["wall_seconds"], "scores": record["scores"]}


def run(argv: list[str]) -> dict:
    from .solver import exact_problem, grid_in_volume, score, train_on

    parser = argparse.ArgumentParser(prog="python -m benchmarks run budget", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mock", choices=list(MOCKS), default="plummer")
    parser.add_argument("--build", type=Path, help="a quickstart build folder of that mock (default: build one)")
    parser.add_argument("--forms", nargs="+", choices=FORMS, default=list(FORMS))
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--keep-end-to-end", action="store_true",
                        help="keep the recorded end-to-end row (same build) instead of remaking the cube")
    args = parser.parse_args(argv)
    if args.keep_end_to_end and args.build is None:
        parser.error("--keep-end-to-end needs --build: the build whose recorded end-to-end row is kept")
    env = environment()
    build = args.build or Path(tempfile.mkdtemp(prefix="budget_")) / "build"
    command = "python -m benchmarks run budget " + shlex.join(argv)
    mocks = _previous_mocks()  # rows not run keep theirs, each cell with the command that made it
    results = mocks.get(args.mock, {}).get("rows", {})
    if not args.keep_end_to_end:
        results["end to end"] = {form: {**end_to_end(build, args.mock, form), "command": command,
                                        "date": env["date"]} for form in args.forms}
    for form in args.forms:
        recipe, truth, stars, points = exact_problem("vanilla", [*MOCKS[args.mock][1], "data.n_stars=200000",
                                                                 "fields.method=vanilla", f"fields.residual_form={form}"],
                                                     POSITIONS)
        models = model_gradients(build, points.x, points.v)
        grid = grid_in_volume(truth, recipe.cube.spacing_kpc)
        for row in args.rows:
            model, wall, _ = train_on(swapped(points, models, ROWS[row], seed=5), stars, recipe)
            scores = score(model, truth, grid, SHELLS)
            shells = {f"{lo:g}-{hi:g}": scores.pop(f"median_density_ratio_d{lo:g}-{hi:g}") for lo, hi in SHELLS}
            results.setdefault(row, {})[form] = {"wall_seconds": round(wall, 1), "scores": scores,
                                                 "shell_density_ratio": shells, "command": command, "date": env["date"]}
            print(row, form, results[row][form]["scores"]["median_rel_error_density"], flush=True)
    errors = {name: _gradient_error(models[name], points, name) for name in ("x", "v", "n")}
    order = ["end to end", *ROWS]
    entry = {"build": str(build), "model_gradient_errors": errors,
             "rows": {row: results[row] for row in order if row in results}}
    return {"command": command, **env, "mocks": recorded_with(args.mock, entry)}


def recorded_with(mock: str, entry: dict) -> dict[str, dict]:
    """The recorded results by mock, read now (a run on another mock side by side keeps its rows), `mock`'s
    replaced by `entry`."""
    mocks = {**_previous_mocks(), mock: entry}
    return {name: mocks[name] for name in MOCKS if name in mocks}


def _previous_mocks() -> dict[str, dict]:
    """The recorded results by mock (a file from before `--mock` holds the isotropic mock's alone)."""
    if not RESULTS.exists():
        return {}
    previous = json.loads(RESULTS.read_text())
    if "mocks" in previous:
        return previous["mocks"]
    stamp = {"command": previous["command"], "date": previous["date"]}  # cells recorded before cells carried it
    rows = {row: {form: {**stamp, **cell} for form, cell in cells.items()} for row, cells in previous["rows"].items()}
    return {"plummer": {"build": previous["build"], "model_gradient_errors": previous["model_gradient_errors"],
                        "rows": rows}}


def _gradient_error(estimate: np.ndarray, points, name: str) -> float:
    truth = {"x": points.grad_x_log_p, "v": points.grad_v_log_p, "n": points.grad_log_n}[name]
    return float(np.median(np.linalg.norm(estimate - truth, axis=1) / np.linalg.norm(truth, axis=1)))


def markdown(r: dict) -> str:
    mocks = r["mocks"] if "mocks" in r else {"plummer": r}  # a file from before `--mock`
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r) + " Each row was made by the command named under its table.",
        ("`vanilla` fields on exact collocation points of the mock with the named gradients taken from a "
         "quickstart build's density models on that mock (its p(v|x) MAF and Legendre n(x)); `end to end` is that "
         "build's own cube remade with each residual form. Each cell: median |Δρ|/ρ, median |Δa|/|a|, and ρ/ρ_true "
         "within 1.5 kpc of the observer / 2.5–3 kpc from it (`fields.residual_form`: `ln_f` the CBE as written, "
         "`acceleration` each residual divided by |∇ᵥ ln f|)."),
        "",
    ]
    for mock, result in mocks.items():
        lines += _mock_table(MOCKS[mock][0], result, r)
    return "\n".join(lines)


def _mock_table(description: str, result: dict, r: dict) -> list[str]:
    forms = [f for f in FORMS if f in result["rows"]["end to end"]]
    e = result["model_gradient_errors"]
    lines = [
        f"### {description}",
        "",
        (f"Median relative errors of the models' gradients at these points: ∇ₓ ln p {e['x']:.3f}, ∇ᵥ ln p "
         f"{e['v']:.3f}, ∇ ln n {e['n']:.4f}."),
        "",
        "| gradients from the models | " + " | ".join(f"`{f}`" for f in forms) + " |",
        "| --- |" + " --- |" * len(forms),
    ]
    for row, cells in result["rows"].items():
        out = []
        for form in forms:
            c = cells.get(form)
            if c is None:
                out.append("–")
                continue
            s = c["scores"]
            shells = c.get("shell_density_ratio")
            tail = "" if shells is None else " · " + " / ".join(f"{v:.2f}" for v in shells.values())
            out.append(f"{s['median_rel_error_density']:.3f}, {s['median_rel_error_accel']:.4f}{tail}")
        lines.append(f"| {row} | " + " | ".join(out) + " |")
    made: dict[tuple[str, str], list[str]] = {}
    for row, cells in result["rows"].items():
        for cell in cells.values():
            key = (cell.get("command", r["command"]), cell.get("date", r["date"])[:10])
            if row not in made.setdefault(key, []):
                made[key].append(row)
    lines += ["", *(f"Rows {'; '.join(rows)}: `{command}`, {date}." for (command, date), rows in made.items()), ""]
    return lines


if __name__ == "__main__":
    from .__main__ import main

    main(["run", "budget", *sys.argv[1:]])
