"""Uncertainty ensembles on the Plummer mocks: does the truth lie inside the members' 16–84% range as often as it should?

    python -m benchmarks run ensembles [--mock plummer|dusty] [--label NAME] [--stars N] [--seed-members N]
                                       [--bootstrap N] [--frame N] [--set key=value ...]

One build of `recipes/quickstart.yaml` (with `--stars` stars, on the mock seen whole or through the
dusty observation) and an `ensemble:` of seed members (sharing the nominal flows), bootstrap members and
frame members, each fitted as its own stage. The cube is
scored against the analytic truth: for each set of members (each kind alone, with the nominal seed member,
and all together), the share of in-volume grid points where the truth of a (three components), ρ and
Φ − Φ(⊙) lies inside the members' 16–84% range, beside what a calibrated ensemble of that size gives
(`dpotcube.truth.calibrated_coverage`). Wall time per member kind comes from the manifest; the saving
from sharing flows is the time of a seed member against that of a bootstrap member (which fits its own).
Noise members need measurement errors, which the mock has none of. Each run is kept in
`benchmarks/results/ensembles.json` under its label (default: the mock's name), beside the other labels' runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from .builds import measured_build
from .report import REPO, environment, provenance_line

TITLE = "Uncertainty ensembles on the Plummer mocks (`benchmarks/ensembles.py`)"
RESULTS = REPO / "benchmarks" / "results" / "ensembles.json"
GOAL = 0.1
"""Issue 6: coverage within ±0.1 of calibrated for a and ρ."""

CONDITIONAL = ["fields.method=conditional", "density.position=null"]
"""The quickstart as it was when the recorded rows were made (it has used `vanilla` since 2026-12-05)."""
MOCKS = {"plummer": [], "dusty": ["data.observation={}"]}
"""Recipe overrides of each mock: every star in the volume seen, or the dusty magnitude-limited observation."""
MOCK_WORDS = {"plummer": "Plummer stars, all seen", "dusty": "Plummer stars seen through the dusty mock's selection"}


def member_sets(kinds: list[str]) -> dict[str, list[str]]:
    """The member sets scored: each kind present, with seeds first, and all members."""
    present = list(dict.fromkeys(kinds))
    sets = {kind: [kind] for kind in present}
    if len(present) > 1:
        sets["all"] = present
    return sets


def run_ensembles(mock: str, stars: int, seeds: int, bootstrap: int, frame: int, extra: list[str]) -> dict:
    import xarray as xr

    from dpotcube.recipe import load_recipe
    from dpotcube.sources.load import plummer_truth
    from dpotcube.truth import calibrated_coverage, coverage_against_truth

    overrides = [f"data.n_stars={stars}", f"ensemble.seed={seeds}", f"ensemble.bootstrap={bootstrap}",
                 f"ensemble.frame={frame}", "diagnostics.enabled=false", *CONDITIONAL, *MOCKS[mock], *extra]
    with tempfile.TemporaryDirectory(prefix="ensembles_") as scratch:
        catalog = f"publish.catalog={Path(scratch) / 'catalog' / 'catalog.yaml'}"
        result, measured = measured_build(REPO / "recipes" / "quickstart.yaml", [*overrides, catalog],
                                          Path(scratch) / "build")
        recipe, _ = load_recipe(REPO / "recipes" / "quickstart.yaml", overrides)
        truth = plummer_truth(recipe.data)
        kinds = xr.open_zarr(result.cube_path)["member_kind"].values.tolist()
        coverage = {name: coverage_against_truth(result.cube_path, truth, subset)
                    for name, subset in member_sets(kinds).items()}
    seconds = measured["stage_seconds"]
    nominal = sum(v for k, v in seconds.items() if not k.startswith("member_") and k != "cube")
    per_kind = {kind: [v for k, v in seconds.items() if k.startswith(f"member_{kind}_")] for kind in dict.fromkeys(kinds)}
    per_kind["seed"] = [nominal, *per_kind.get("seed", [])]  # member 0: the nominal build's stages
    return {
        "command": "python -m benchmarks run ensembles " + " ".join(
            [f"--mock {mock} --stars {stars} --seed-members {seeds} --bootstrap {bootstrap} --frame {frame}",
             *(f"--set {o}" for o in extra)]),
        **environment(), "mock": mock, "n_stars": stars, "member_kinds": kinds, "share_flows": recipe.ensemble.share_flows,
        "member_seconds": {kind: [round(s, 1) for s in values] for kind, values in per_kind.items()},
        "wall_seconds": measured["wall_seconds"], "cube_seconds": seconds.get("cube"),
        "scores_of_median": measured["scores"], "coverage": coverage,
        "calibrated_by_size": {str(m): calibrated_coverage(m) for m in sorted({c["n_members"] for c in coverage.values()})},
    }


def markdown(results: dict) -> str:
    """Every recorded run, one table each, under the benchmark's heading."""
    return "\n".join([f"## {TITLE}", "", *(run_markdown(label, r) for label, r in results["runs"].items())])


def run_markdown(label: str, r: dict) -> str:
    def verdict(share: float, calibrated: float) -> str:
        return "within" if abs(share - calibrated) <= GOAL else ("over" if share < calibrated else "under") + "confident"

    lines = [
        f"### {label}",
        "",
        provenance_line(r),
        "",
        f"{r['n_stars']:,} {MOCK_WORDS[r['mock']]}, the quickstart recipe's networks; members: "
        + ", ".join(f"{r['member_kinds'].count(k)} {k}" for k in dict.fromkeys(r["member_kinds"]))
        + " (the seed set includes the nominal build; seed members "
        + ("share the nominal flows" if r["share_flows"] else "fit their own flows, `share_flows: false`")
        + "). Coverage: share of in-volume grid points where the truth "
        "lies inside the members' 16–84% range (a: the three components pooled; Φ − Φ(⊙)); calibrated: what as "
        f"many members exchangeable with the truth give. Goal: within ±{GOAL} of calibrated for a and ρ.",
        "",
        "| members | count | a | ρ | Φ | calibrated | a | ρ |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in r["coverage"].items():
        lines.append(
            f"| {name} | {c['n_members']} | {c['accel']:.2f} | {c.get('density', float('nan')):.2f} | "
            f"{c.get('potential', float('nan')):.2f} | {c['calibrated']:.2f} | {verdict(c['accel'], c['calibrated'])} | "
            f"{verdict(c['density'], c['calibrated']) if 'density' in c else '–'} |"
        )
    s = r["scores_of_median"]
    lines += [
        "",
        f"Member median against truth: \\|Δa\\|/\\|a\\| {s['median_rel_error_accel']:.3f}, \\|Δρ\\|/ρ "
        f"{s['median_rel_error_density']:.3f} (median ρ/ρ_true {s['median_density_ratio']:.2f}).",
        "",
        "| member kind | members | wall time per member (median) |",
        "| --- | --- | --- |",
    ]
    for kind, seconds in r["member_seconds"].items():
        note = ""
        if kind == "seed":  # member 0 is the nominal build, with its flows: not a seed member's cost
            note = f" (members 1–{len(seconds) - 1}; member 0, the nominal build with its flows: {seconds[0]:.0f} s)"
            seconds = seconds[1:] or seconds
        lines.append(f"| {kind} | {len(r['member_seconds'][kind])} | {np.median(seconds):.0f} s{note} |")
    shared, own = r["member_seconds"].get("seed", [])[1:], r["member_seconds"].get("bootstrap", [])
    if shared and own:
        lines += ["", f"Sharing flows: a seed member on the nominal flows takes {np.median(shared):.0f} s, a member "
                  f"fitting its own flows (bootstrap) {np.median(own):.0f} s: {np.median(own) / np.median(shared):.1f}× "
                  "as long."]
    return "\n".join(lines) + "\n"


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run ensembles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mock", choices=list(MOCKS), default="plummer")
    parser.add_argument("--label", help="the run's name in the results (default: the mock's); a run of that name is replaced")
    parser.add_argument("--stars", type=int, default=200_000)
    parser.add_argument("--seed-members", type=int, default=6)
    parser.add_argument("--bootstrap", type=int, default=6)
    parser.add_argument("--frame", type=int, default=4)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override a recipe key")
    args = parser.parse_args(argv)
    result = run_ensembles(args.mock, args.stars, args.seed_members, args.bootstrap, args.frame, args.overrides)
    if args.label:
        result["command"] += f' --label "{args.label}"'
    earlier = json.loads(RESULTS.read_text())["runs"] if RESULTS.is_file() else {}
    return {"runs": earlier | {args.label or args.mock: result}}


if __name__ == "__main__":
    from .__main__ import main

    main(["run", "ensembles", *sys.argv[1:]])
