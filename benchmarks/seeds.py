"""The quickstart over seeds, with and without the velocity frame (and with seed members): how far one build's ρ
and a are from their mean.

    python -m benchmarks run seeds [--seeds 0 1 2] [--variants NAME ...] [--mocks NAME ...] [--scratch DIR]

Each (variant, mock, seed) is a whole build of the quickstart recipe with `seed=k`: new stars, flows, collocation
points and fields. One build's figure is one draw; the accuracy table holds seed 0 alone, so a change smaller than
the spread here cannot be read from it. Builds under `--scratch` (`<variant>/<mock>/seed<k>/build`) are reused
where up to date (the stages key on the recipe's values), so a rerun re-scores them. Writes
`benchmarks/results/seeds.json` and its table in `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import tempfile
from pathlib import Path

from .accuracy import MOCKS, NO_FRAME, ONE_BUILD
from .builds import measured_build
from .report import REPO, environment, provenance_line

TITLE = "The quickstart over seeds: with and without the velocity frame"
RESULTS = REPO / "benchmarks" / "results" / "seeds.json"
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
VARIANTS: dict[str, tuple[str, ...]] = {  # name: overrides of the quickstart recipe
    "frame": ONE_BUILD,  # one build of the quickstart: p(v|x) in the velocity frame, conditioned on its dispersions
    "no-frame": (*NO_FRAME, *ONE_BUILD),  # the quickstart before the frame
    "seed-members": ("ensemble.seed=4",),  # the quickstart: three more fits of the fields on its flows, the median
}
DEFAULT_MOCKS = ("plummer", "plummer-om")


def run_build(variant: str, mock: str, seed: int, scratch: Path) -> dict:
    folder = scratch / variant / mock / f"seed{seed}"
    _, record = measured_build(QUICKSTART, [*MOCKS[mock][1], *VARIANTS[variant], f"seed={seed}",
                                            "diagnostics.enabled=false",
                                            f"publish.catalog={folder / 'catalog' / 'catalog.yaml'}"],
                               folder / "build", force=False)
    s = record["scores"]
    return {"seed": seed, "accel": round(s["median_rel_error_accel"], 4),
            "density": round(s["median_rel_error_density"], 4),
            "velocity_flow_seconds": record["stage_seconds"].get("velocity_flow_0")}


def summary(builds: list[dict]) -> dict:
    """Mean, smallest and largest of ρ's and a's median errors over the seeds."""
    out = {}
    for key in ("density", "accel"):
        values = [b[key] for b in builds]
        out[key] = {"mean": round(statistics.fmean(values), 4), "min": min(values), "max": max(values)}
    return out


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run seeds", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--mocks", nargs="+", choices=list(MOCKS), default=list(DEFAULT_MOCKS))
    parser.add_argument("--scratch", type=Path, help="build folders to reuse (default: a fresh temporary folder)")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="seeds_"))
    results: dict = {}
    for mock in args.mocks:
        for variant in args.variants:
            builds = [run_build(variant, mock, seed, scratch) for seed in args.seeds]
            results.setdefault(mock, {})[variant] = {"builds": builds, **summary(builds)}
            print(mock, variant, results[mock][variant], flush=True)
    previous = json.loads(RESULTS.read_text())["mocks"] if RESULTS.exists() else {}  # read last: runs side by side
    return {"command": "python -m benchmarks run seeds " + shlex.join(argv), **environment(),
            "mocks": merge_mocks(previous, results)}


def merge_mocks(previous: dict, results: dict) -> dict:
    """`previous` mocks and variants with this run's (mock, variant) pairs replaced: a run of one variant keeps the
    others' rows."""
    return {**previous, **{mock: {**previous.get(mock, {}), **variants} for mock, variants in results.items()}}


def markdown(r: dict) -> str:
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        ("The quickstart recipe (10⁶ stars, `vanilla`, n(x) by `legendre`) built whole once per seed (`seed=k`: "
         "stars, flows, collocation and fields all redrawn). `frame`: one build, p(v|x) in the velocity frame, the flow "
         "conditioned on the frame's dispersions; `no-frame`: one build, the plain MAF conditioned on x; "
         "`seed-members`: the quickstart itself, `ensemble.seed: 4` (the frame's build and three more fits of the "
         "fields on its flows and collocation points), scored by the members' median. Each cell: median |Δρ|/ρ · median |Δa|/|a| inside the "
         "volume."),
        "",
    ]
    for mock, variants in sorted(r["mocks"].items(), key=lambda item: list(MOCKS).index(item[0])):
        seeds = [b["seed"] for b in next(iter(variants.values()))["builds"]]
        lines += [f"**{MOCKS[mock][0]}**", "",
                  "| variant | " + " | ".join(f"seed {k}" for k in seeds) + " | mean ρ · a | range of ρ |",
                  "| --- | " + " | ".join("---" for _ in seeds) + " | --- | --- |"]
        for variant, v in variants.items():
            cells = [f"{b['density']:.3f} · {b['accel']:.4f}" for b in v["builds"]]
            lines.append(f"| {variant} | " + " | ".join(cells) + f" | {v['density']['mean']:.3f} · "
                         f"{v['accel']['mean']:.4f} | {v['density']['min']:.3f}–{v['density']['max']:.3f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    from .__main__ import main

    main(["run", "seeds", *__import__("sys").argv[1:]])
