"""Cost at scale: every build stage's time per unit of work and peak memory against stars, cube edge and members.

    python -m benchmarks run scaling [--stars 1e5,3e5,1e6,3e6] [--edges 32,64,128,256] [--members 1,2,4,8]

(a) Stars: one real `dpotcube build` of benchmarks/recipes/scaling.yaml (small networks, 4 epochs, 150 field
    steps, a 31³ cube) per table size, each in a fresh process, from a Galactocentric Parquet table of that many
    Plummer stars. Per stage: CPU seconds (all threads: on a shared machine CPU time is least disturbed) per
    unit of work (the stars stage per table, each flow per epoch, the collocation stage per stage, the fields per step, the cube, diagnostics and publish per stage) and the stage's
    own peak resident memory (the high-water mark is reset as each stage starts, Linux `clear_refs`). Epochs and
    steps are timed by a probe around the one training loop: the median of the calls after the first (which
    compiles). Exponents α (cost ∝ N^α) are least-squares slopes in log–log.
(b) Cube: the cube stage alone (freshly initialised field networks of the recipe's size, as in cube-throughput)
    at each edge with one member, and at each member count at a 128³ edge; seconds and peak RSS, each in a fresh
    process. Exponents against points per member and against members.
(c) One more build at the smallest table with the Gaia recipe's networks (recipes/gaia-dr3-rc-4kpc.yaml), which
    scales the small networks' per-epoch and per-step costs, and a 128³ cube with its field networks.
(d) A projection of a Gaia-size build (6 × 10⁶ stars, 8 seed members sharing one flow fit, a 256³ cube, the Gaia
    recipe's networks, epochs and steps) on this machine, from (a)–(c); and, when
    benchmarks/results/device.json exists, the GPU hook (`gpu_projection`).

Writes benchmarks/results/scaling.json, docs/figures/scaling.png and the scaling section of docs/benchmarks.md.
The machine is shared: times carry that noise; the exponents are fitted over a factor 30 in stars.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .memory import StageMemory, peak_mb, reset_peak, resident_mb
from .report import REPO, environment, provenance_line

TITLE = "Cost at scale"
RESULTS = REPO / "benchmarks" / "results" / "scaling.json"
FIGURE = REPO / "docs" / "figures" / "scaling.png"
RECIPE = REPO / "benchmarks" / "recipes" / "scaling.yaml"
GAIA_RECIPE = REPO / "recipes" / "gaia-dr3-rc-4kpc.yaml"
STARS = (100_000, 300_000, 1_000_000, 3_000_000)
EDGES = (32, 64, 128, 256)
MEMBERS = (1, 2, 4, 8)
MEMBER_EDGE = 128  # the members sweep and the Gaia networks' cube: large enough that evaluation, not overhead, counts
STREAM_CHUNKS = 3  # the largest table is also built streamed, in this many chunks
STREAMED_STAGES = ("velocity_flow", "position_flow", "collocation")  # hold one chunk when the table is streamed
MACHINE_GB = 24
SMALL_FIELD_NET = {"width": 16, "depth": 2, "activation": "silu"}  # the scaling recipe's field networks
GAIA = {"stars": 6_000_000, "volume_radius_kpc": 3.5, "members": 8, "edge": 256}
STAGES = ("stars", "velocity_flow", "position_flow", "collocation", "fields", "cube", "diagnostics", "publish")
UNITS = {"stars": "table", "velocity_flow": "epoch", "position_flow": "epoch", "collocation": "stage",
         "fields": "step", "cube": "stage", "diagnostics": "stage", "publish": "stage"}
INDEPENDENT_OF_STARS = {
    "fields": "a step draws a fixed batch of collocation points (`fields.batch_size`): no star is read",
    "cube": "evaluates the field networks on the grid (`cube.spacing_kpc`, members): no star is read",
    "diagnostics": "read the cube and the flows at fixed numbers of points (`diagnostics.*`): no star is read",
    "publish": "copies the cube: no star is read",
    "collocation": "draws `collocation.n_positions` star positions (an O(N) pass, then fixed-size flow work)",
}
"""Stages whose work is set by recipe sizes, not by the number of stars: their α is near 0, not 1."""


# ----------------------------------------------------------------------------------------------- children


def write_table(path: Path, n_stars: int, seed: int = 0) -> None:
    """A Galactocentric Parquet table of `n_stars` Plummer stars inside the scaling recipe's volume."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dpotcube.recipe import load_recipe
    from dpotcube.sources.load import plummer_truth
    from dpotcube.sources.mocks import sample_plummer

    recipe, _ = load_recipe(RECIPE, ["data.source=plummer", f"data.n_stars={n_stars}"])
    positions, velocities = sample_plummer(plummer_truth(recipe.data), seed)
    columns = {name: values for name, values in zip(("x", "y", "z"), positions.T)}
    columns |= {name: values for name, values in zip(("vx", "vy", "vz"), velocities.T)}
    pq.write_table(pa.table(columns), path)


class TrainingProbe:
    """Wraps the one training loop (`dpotcube.training.train_loop`, as the flows and fields import it) to time each
    jitted call: per call the CPU time (all threads) and the wall time from its start to the next one's (the loop
    reads its metrics in between, which waits for the call to finish)."""

    def __init__(self) -> None:
        self.runs: list[dict] = []

    def install(self) -> None:
        import dpotcube.density.maf as maf
        import dpotcube.fields.train as fields_train

        for module in (maf, fields_train):
            module.train_loop = self._wrap(module.train_loop)

    def _wrap(self, loop):
        def timed(run_call, params, opt_state, keys, label, units_per_call=1, *rest, **options):
            stamps: list[tuple[float, float]] = []

            def call(*args):
                stamps.append((time.perf_counter(), time.process_time()))
                return run_call(*args)

            out = loop(call, params, opt_state, keys, label, units_per_call, *rest, **options)
            stamps.append((time.perf_counter(), time.process_time()))
            wall, cpu = np.diff(np.array(stamps), axis=0).T
            self.runs.append({"label": label, "units_per_call": units_per_call, "seconds": cpu.tolist(),
                              "wall_seconds": wall.tolist()})
            return out

        return timed

    def per_unit(self, label_start: str, clock: str = "seconds") -> float | None:
        """Median CPU (or wall) seconds per unit (epoch, step) of the calls after the first, of the run whose label
        starts so."""
        for run in self.runs:
            if run["label"].startswith(label_start) and len(run[clock]) > 1:
                return float(np.median(run[clock][1:]) / run["units_per_call"])
        return None


def timed_stage_memory(stage_memory: StageMemory, seconds: dict[str, float]):
    """A stage monitor that records each stage's peak (via `stage_memory`) and its CPU seconds (all threads)."""
    from contextlib import contextmanager

    @contextmanager
    def monitor(stage: str):
        started = time.process_time()
        with stage_memory(stage):
            yield
        seconds[stage] = time.process_time() - started  # CPU seconds, all threads: robust to a shared machine

    return monitor


def build_child(table: Path, folder: Path, overrides: list[str]) -> dict:
    """One build of the scaling recipe on `table` in this (fresh) process: per-stage seconds, units and peak RSS."""
    import dpotcube
    import dpotcube.pipeline as pipeline
    from dpotcube.recipe import load_recipe

    probe = TrainingProbe()
    probe.install()
    memory, seconds = StageMemory(), {}
    monitor = timed_stage_memory(memory, seconds)
    for name in ("finish", "publish"):  # not manifest stages: wrapped here, with the same monitor
        original = getattr(pipeline, name)
        setattr(pipeline, name, lambda *a, _f=original, _n=name: _run_in(monitor, "diagnostics" if _n == "finish" else _n, _f, a))
    sets = [f"data.table.path={table}", f"publish.catalog={folder / 'catalog' / 'catalog.yaml'}", *overrides]
    recipe, text = load_recipe(RECIPE, sets)
    baseline = resident_mb()
    dpotcube.build(recipe, text, folder / "build", force=True, stage_monitor=monitor)
    stars_meta = json.loads((folder / "build" / "manifest.json").read_text())
    n_stars = int(_n_stars(folder / "build" / "stars.parquet"))
    per_unit = {
        "stars": seconds["stars"],
        "velocity_flow": probe.per_unit("p(v|x)"),
        "position_flow": probe.per_unit("n(x)"),
        "collocation": seconds["collocation"],
        "fields": probe.per_unit("fields"),
        "cube": seconds["cube"],
        "diagnostics": seconds["diagnostics"],
        "publish": seconds["publish"],
    }
    peaks = {"velocity_flow": memory.peaks_mb.get("velocity_flow_0"), "position_flow": memory.peaks_mb.get("position_flow_0"),
             **{s: memory.peaks_mb.get(s) for s in ("stars", "collocation", "fields", "cube", "diagnostics", "publish")}}
    del stars_meta
    wall = {"velocity_flow": probe.per_unit("p(v|x)", "wall_seconds"), "position_flow": probe.per_unit("n(x)", "wall_seconds"),
            "fields": probe.per_unit("fields", "wall_seconds")}
    return {"n_stars": n_stars, "seconds_per_unit": {k: _round(v) for k, v in per_unit.items()},
            "wall_seconds_per_unit": {k: _round(v) for k, v in wall.items()},
            "stage_seconds": {k: round(v, 2) for k, v in seconds.items()}, "peak_rss_mb": peaks,
            "rss_after_imports_mb": round(baseline, 1), "training_calls": probe.runs}


def _run_in(monitor, stage: str, function, args):
    with monitor(stage):
        return function(*args)


def _n_stars(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")


def cube_child(folder: Path, edge: int, members: int, net: dict) -> dict:
    """The cube stage alone for `members` fresh field networks at an `edge`³ grid, in this (fresh) process."""
    from .cube_throughput import cube_grid, fresh_models, write_members

    paths = fresh_models(folder / "models", members, net)
    before = resident_mb()
    reset_peak()
    started, wall = time.process_time(), time.perf_counter()
    write_members(paths, cube_grid(edge), folder / "cube.zarr")
    seconds, wall = time.process_time() - started, time.perf_counter() - wall
    peak = peak_mb()
    started = time.process_time()
    shutil.copytree(folder / "cube.zarr", folder / "published.zarr")  # what publishing the cube copies
    copy_seconds = time.process_time() - started
    shutil.rmtree(folder, ignore_errors=True)
    return {"edge": edge, "members": members, "net": net, "seconds": round(seconds, 2), "wall_seconds": round(wall, 2), "copy_seconds": round(copy_seconds, 3),
            "peak_rss_mb": round(peak, 1),
            "rss_before_mb": round(before, 1)}


def _child(argv: list[str], folder: Path, timeout: float = 1800) -> dict:
    """Run `python -m benchmarks.scaling ARGV` in a fresh process; its last stdout line is its JSON result."""
    cmd = [sys.executable, "-m", "benchmarks.scaling", *argv]
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------- the run


def fit_exponent(x: list[float], y: list[float | None]) -> float | None:
    """Least-squares slope of log y against log x (points with no y left out); None with fewer than two."""
    pairs = [(a, b) for a, b in zip(x, y) if b is not None and b > 0]
    if len(pairs) < 2:
        return None
    lx, ly = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    return round(float(np.polyfit(lx, ly, 1)[0]), 3)


def largest_table(stars: dict, machine_gb: float) -> dict:
    """The most stars a `machine_gb` machine can build from, from a straight-line fit of each stage's peak RSS
    against stars (MB = a + b·N): held whole, every stage counts; streamed (`memory.chunk_stars`), the flows and
    collocation hold one chunk, so the other stages set the limit."""
    sizes = sorted(stars, key=int)
    ns = np.array([stars[k]["n_stars"] for k in sizes], float)
    fits = {}
    for stage in STAGES:
        peaks = [stars[k]["peak_rss_mb"][stage] for k in sizes]
        if None not in peaks and len(ns) > 1:
            slope, intercept = np.polyfit(ns, peaks, 1)
            fits[stage] = (max(float(slope), 1e-12), float(intercept))
    budget = machine_gb * 1024

    def limit(stages: list[str]) -> dict:
        worst = min(stages, key=lambda s: (budget - fits[s][1]) / fits[s][0])
        slope, intercept = fits[worst]
        return {"stars": int(float(f"{(budget - intercept) / slope:.2g}")), "limited_by": worst}

    return {
        "machine_gb": machine_gb,
        "bytes_per_star": {s: round(f[0] * 2**20) for s, f in fits.items()},
        "held_whole": limit(list(fits)),
        "streamed": limit([s for s in fits if s not in STREAMED_STAGES]),
    }


def gaia_overrides() -> list[str]:
    """The Gaia recipe's network sizes as `--set` overrides of the scaling recipe (its flows' and fields' nets)."""
    from dpotcube.recipe import load_recipe

    gaia, _ = load_recipe(GAIA_RECIPE)
    v, f = gaia.density.velocity, gaia.fields
    out = [f"density.velocity.{k}={getattr(v, k)}" for k in ("flow_layers", "nn_width", "nn_depth", "batch_size")]
    out += [f"density.position.{k}={getattr(v, k)}" for k in ("flow_layers", "nn_width", "nn_depth", "batch_size")]
    for net in ("potential", "log_density"):
        spec = getattr(f, net)
        out.append(f"fields.{net}={{width: {spec.width}, depth: {spec.depth}, activation: {spec.activation}}}")
    out += [f"fields.batch_size={f.batch_size}", f"fields.laplacian_batch={f.laplacian_batch}", "fields.steps=100"]
    return out


def gaia_settings() -> dict:
    from dpotcube.recipe import load_recipe

    gaia, _ = load_recipe(GAIA_RECIPE)
    net = gaia.fields.potential
    return {"flow_epochs": gaia.density.velocity.max_epochs, "field_steps": gaia.fields.steps,
            "field_net": {"width": net.width, "depth": net.depth, "activation": net.activation},
            "position_flow": gaia.density.position is not None}


def project_gaia(stars: dict, cube: dict, nets: dict, settings: dict) -> dict:
    """Seconds of a Gaia-size build on this CPU, from the measured costs.

    Stages that read every star extend the largest table's cost per unit by their exponent to 6 × 10⁶ stars; the
    others take their median cost. Network costs scale by the Gaia-net / small-net ratio measured at the
    smallest table (the cube's at 128³); the cube starts from the largest measured edge (one member) and takes
    members^α_members; publishing adds the copy of the cube's bytes to its fixed cost.
    """
    sizes = sorted(stars, key=int)
    top = stars[sizes[-1]]
    n_top, n = top["n_stars"], GAIA["stars"]
    exponents = {s: fit_exponent([stars[k]["n_stars"] for k in sizes], [stars[k]["seconds_per_unit"][s] for k in sizes])
                 for s in STAGES}

    def at_gaia(stage: str) -> float:
        """Stages that read every star: the largest table's cost extended by α; the others (`INDEPENDENT_OF_STARS`)
        cost the same at any N: the median over the tables (the machine is shared)."""
        if stage in INDEPENDENT_OF_STARS:
            return float(np.median([stars[k]["seconds_per_unit"][stage] for k in sizes]))
        return top["seconds_per_unit"][stage] * (n / n_top) ** max(exponents[stage] or 0.0, 0.0)

    small, big = nets["small"]["seconds_per_unit"], nets["gaia_nets"]["seconds_per_unit"]
    net_factor = {s: big[s] / small[s] for s in ("velocity_flow", "fields") if small.get(s) and big.get(s)}
    epochs, steps, members = settings["flow_epochs"], settings["field_steps"], GAIA["members"]
    flows = at_gaia("velocity_flow") * net_factor.get("velocity_flow", 1.0) * epochs
    if settings["position_flow"]:
        flows += at_gaia("position_flow") * net_factor.get("velocity_flow", 1.0) * epochs
    fields = at_gaia("fields") * net_factor.get("fields", 1.0) * steps
    largest = max(cube["by_edge"], key=lambda c: c["edge"])  # one member, the small field networks
    small64 = next(c for c in cube["by_members"] if c["members"] == 1)  # at MEMBER_EDGE
    edge_ratio = (GAIA["edge"] / largest["edge"]) ** 3  # 1 when the largest measured edge is the Gaia build's
    net_factor["cube"] = nets["gaia_cube"]["seconds"] / small64["seconds"]
    cube_seconds = (largest["seconds"] * edge_ratio ** (cube["alpha_points"] or 1.0) * net_factor["cube"]
                    * members ** (cube["alpha_members"] or 1.0))
    copy_seconds = largest.get("copy_seconds", 0.0) * edge_ratio * members  # publish copies the cube's bytes
    parts = {
        "stars": at_gaia("stars"),
        "flows (one fit, shared by the seed members)": flows,
        "collocation": at_gaia("collocation"),
        f"fields ({members} members × {steps} steps)": fields * members,
        f"cube ({GAIA['edge']}³ × {members})": cube_seconds,
        "diagnostics": top["seconds_per_unit"]["diagnostics"],
        "publish": at_gaia("publish") + copy_seconds,
    }
    total = sum(parts.values())
    return {
        "build": GAIA | {"flow_epochs": epochs, "field_steps": steps, "field_net": settings["field_net"]},
        "net_factor": {k: round(v, 2) for k, v in net_factor.items()},
        "seconds": {k: round(v, 1) for k, v in parts.items()},
        "total_hours": round(total / 3600, 2),
        "own_flows_per_member_hours": round((total + (members - 1) * flows) / 3600, 2),
        "gpu_projection": gpu_projection(total, parts),
    }


# each part of the CPU projection → the `device` benchmark's part whose GPU/CPU speed-up it takes
GPU_PARTS = {"flows": "maf_epoch", "fields": "fields", "cube": "cube"}


def gpu_projection(cpu_total_s: float, parts: dict[str, float]) -> dict | None:
    """The same build on the GPU measured by the `device` benchmark (benchmarks/results/device.json), if it ran one.

    Each part's CPU seconds divided by the device run's GPU/CPU speed-up of the matching part (`GPU_PARTS`; other
    parts unchanged). An upper bound: the speed-ups are against that machine's 16-core CPU's wall time, applied
    here to this machine's CPU seconds summed over threads.
    """
    path = REPO / "benchmarks" / "results" / "device.json"
    if not path.exists():
        return None
    device = json.loads(path.read_text())
    speedup = device.get("speedup_gpu_over_cpu") or {}
    if not device.get("gpu") or not speedup:
        return {"note": "benchmarks/results/device.json holds no GPU run; no GPU figure projected"}
    seconds = {}
    for part, value in parts.items():
        factor = next((float(speedup[GPU_PARTS[key]]) for key in GPU_PARTS
                       if part.startswith(key) and GPU_PARTS[key] in speedup), 1.0)
        seconds[part] = round(value / factor, 1)
    return {"device": device["gpu"], "speedups": {k: speedup.get(v) for k, v in GPU_PARTS.items()},
            "seconds": seconds, "total_hours": round(sum(seconds.values()) / 3600, 2),
            "what": "upper bound: GPU/CPU speed-ups of the device run (against its 16-core CPU) applied to "
                    "this machine's CPU seconds"}


def run_all(folder: Path, stars: tuple[int, ...], edges: tuple[int, ...], members: tuple[int, ...]) -> dict:
    results: dict[str, dict] = {}
    for n in stars:
        table = folder / f"stars_{n}.parquet"
        write_table(table, n)
        results[str(n)] = _child(["--build", str(table), str(folder / f"build_{n}")], folder / f"build_{n}")
        shutil.rmtree(folder / f"build_{n}", ignore_errors=True)
        print("stars", n, json.dumps({k: v for k, v in results[str(n)].items() if k != "training_calls"}), flush=True)
    largest = stars[-1]
    streamed = _child(["--build", str(folder / f"stars_{largest}.parquet"), str(folder / "streamed"),
                       f"memory.chunk_stars={max(largest // STREAM_CHUNKS, 200)}"], folder / "streamed")
    streamed.pop("training_calls", None)
    print("streamed", json.dumps(streamed), flush=True)
    small_table = folder / f"stars_{stars[0]}.parquet"
    nets = {"small": results[str(stars[0])]}
    nets["gaia_nets"] = _child(["--build", str(small_table), str(folder / "gaia_nets"), *gaia_overrides()],
                               folder / "gaia_nets")
    settings = gaia_settings()
    nets["gaia_cube"] = _child(["--cube", str(MEMBER_EDGE), "1", json.dumps(settings["field_net"]), str(folder / "c")],
                               folder / "c")
    print("nets", json.dumps({k: v.get("seconds_per_unit", v) for k, v in nets.items()}), flush=True)
    for n in stars:
        (folder / f"stars_{n}.parquet").unlink(missing_ok=True)
    by_edge = [_child(["--cube", str(e), "1", json.dumps(SMALL_FIELD_NET), str(folder / "c")], folder / "c") for e in edges]
    by_members = [_child(["--cube", str(MEMBER_EDGE), str(m), json.dumps(SMALL_FIELD_NET), str(folder / "c")], folder / "c")
                  for m in members]
    print("cube", json.dumps({"edges": by_edge, "members": by_members}), flush=True)
    cube = {"by_edge": by_edge, "by_members": by_members,
            "alpha_points": fit_exponent([c["edge"] ** 3 for c in by_edge], [c["seconds"] for c in by_edge]),
            "alpha_members": fit_exponent([c["members"] for c in by_members], [c["seconds"] for c in by_members]),
            "peak_rss_alpha_points": fit_exponent([c["edge"] ** 3 for c in by_edge], [c["peak_rss_mb"] for c in by_edge])}
    ns = [results[str(n)]["n_stars"] for n in stars]
    exponents = {s: fit_exponent(ns, [results[str(n)]["seconds_per_unit"][s] for n in stars]) for s in STAGES}
    memory_exponents = {s: fit_exponent(ns, [results[str(n)]["peak_rss_mb"][s] for n in stars]) for s in STAGES}
    for r in results.values():
        r.pop("training_calls", None)
    ratio = None
    if "1000000" in results and "3000000" in results:
        peak = {n: max(v for v in results[n]["peak_rss_mb"].values() if v is not None) for n in ("1000000", "3000000")}
        ratio = round(peak["3000000"] / peak["1000000"], 3)
    nets_out = {k: (v["seconds_per_unit"] if "seconds_per_unit" in v else v) for k, v in nets.items()}
    return {
        "stars": results, "cube": cube, "exponents": exponents, "peak_rss_exponents": memory_exponents,
        "peak_rss_ratio_3e6_over_1e6": ratio, "independent_of_stars": INDEPENDENT_OF_STARS,
        "streamed": streamed | {"chunk_stars": max(largest // STREAM_CHUNKS, 200)},
        "largest_table": largest_table(results, MACHINE_GB),
        "nets": nets_out, "gaia_projection": project_gaia(results, cube, nets, gaia_settings()),
        "units": UNITS,
    }


# ----------------------------------------------------------------------------------------------- outputs


def plot(r: dict, path: Path = FIGURE) -> None:
    """Log–log: seconds per unit and peak RSS of each stage against stars; the cube against points and members."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(r["stars"], key=int)
    ns = np.array([r["stars"][k]["n_stars"] for k in sizes], float)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for stage in STAGES:
        t = [r["stars"][k]["seconds_per_unit"][stage] for k in sizes]
        m = [r["stars"][k]["peak_rss_mb"][stage] for k in sizes]
        label = f"{stage} (per {UNITS[stage]}), α = {r['exponents'][stage]}"
        axes[0].loglog(ns, [np.nan if v is None else v for v in t], "o-", label=label)
        axes[1].loglog(ns, [np.nan if v is None else v for v in m], "o-", label=stage)
    guide = ns / ns[0]
    first = r["stars"][sizes[0]]["seconds_per_unit"]["velocity_flow"] or 1.0
    axes[0].loglog(ns, first * guide, "k:", label="∝ N")
    axes[0].set(xlabel="stars N", ylabel="CPU seconds per unit of work", title="cost per unit against stars")
    axes[1].set(xlabel="stars N", ylabel="stage peak RSS (MB)", title="peak resident memory against stars")
    cube = r["cube"]
    points = [c["edge"] ** 3 for c in cube["by_edge"]]
    axes[2].loglog(points, [c["seconds"] for c in cube["by_edge"]], "o-",
                   label=f"cube, 1 member, edge {'–'.join(str(c['edge']) for c in cube['by_edge'])} (α = {cube['alpha_points']})")
    mpoints = [MEMBER_EDGE**3 * c["members"] for c in cube["by_members"]]
    axes[2].loglog(mpoints, [c["seconds"] for c in cube["by_members"]], "s-",
                   label=f"cube {MEMBER_EDGE}³, members {'–'.join(str(c['members']) for c in cube['by_members'])} "
                   f"(α = {cube['alpha_members']})")
    axes[2].set(xlabel="grid points × members", ylabel="CPU seconds", title="cube stage")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("dpotcube cost at scale (small networks; " + r["machine"] + ")")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:.3g}{unit}"


def markdown(r: dict) -> str:
    sizes = sorted(r["stars"], key=int)
    head = " | ".join(f"{int(k):.0e}".replace("e+0", "×10^") for k in sizes)
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        "A real build of `benchmarks/recipes/scaling.yaml` (small networks) per table size, each in a fresh "
        "process; each stage's CPU seconds (all threads) per unit of work (an epoch's and a step's: the median of "
        "the training calls after the first, which compiles) and its own peak RSS. The machine (2 cores) was "
        "shared with other jobs (load average ≈ 10): CPU time is what that disturbs least; wall times are in the "
        "JSON.",
        "",
        f"| stage (unit) | {head} | α (time ∝ N^α) | peak RSS, MB | α (peak RSS) |",
        "| --- | " + " | ".join("---" for _ in sizes) + " | --- | --- | --- |",
    ]
    for stage in STAGES:
        times = " | ".join(_fmt(r["stars"][k]["seconds_per_unit"][stage], " s") for k in sizes)
        peaks = " · ".join(_fmt(r["stars"][k]["peak_rss_mb"][stage]) for k in sizes)
        lines.append(f"| {stage} (per {UNITS[stage]}) | {times} | {_fmt(r['exponents'][stage])} | {peaks} | "
                     f"{_fmt(r['peak_rss_exponents'][stage])} |")
    over = [s for s, a in r["exponents"].items() if a is not None and a > 1.2]
    lines += [
        "",
        f"Peak RSS of the whole build at 3 × 10⁶ stars over that at 10⁶: **{_fmt(r['peak_rss_ratio_3e6_over_1e6'])}** "
        "(goal ≤ 2). Every α ≤ 1.2 (none above linear): "
        f"**{'yes' if not over else 'no: ' + ', '.join(over)}**. Near 0 rather than 1, by design: "
        + "; ".join(f"{s} — {why}" for s, why in r["independent_of_stars"].items()) + ".",
        "",
        *_streamed_lines(r),
        "",
        "| cube stage | " + " | ".join(f"{c['edge']}³ × {c['members']}" for c in r["cube"]["by_edge"] + r["cube"]["by_members"]) + " |",
        "| --- | " + " | ".join("---" for _ in r["cube"]["by_edge"] + r["cube"]["by_members"]) + " |",
        "| CPU seconds | " + " | ".join(_fmt(c["seconds"]) for c in r["cube"]["by_edge"] + r["cube"]["by_members"]) + " |",
        "| peak RSS, MB | " + " | ".join(_fmt(c["peak_rss_mb"]) for c in r["cube"]["by_edge"] + r["cube"]["by_members"]) + " |",
        "",
        f"Cube: time ∝ points^{_fmt(r['cube']['alpha_points'])}, ∝ members^{_fmt(r['cube']['alpha_members'])}; "
        f"peak RSS ∝ points^{_fmt(r['cube']['peak_rss_alpha_points'])} (written chunk by chunk).",
        "",
    ]
    g = r["gaia_projection"]
    b = g["build"]
    lines += [
        f"Projection of a Gaia-size build on this CPU: {b['stars']:.0e} stars within {b['volume_radius_kpc']} kpc, "
        f"{b['members']} seed members (one shared flow fit), a {b['edge']}³ cube, the Gaia recipe's networks, "
        f"{b['flow_epochs']} flow epochs and {b['field_steps']} field steps (network cost factors measured: "
        + ", ".join(f"{k} × {v}" for k, v in g["net_factor"].items()) + "):",
        "",
        "| part | projected |",
        "| --- | --- |",
        *(f"| {part} | {seconds / 3600:.2f} CPU h |" for part, seconds in g["seconds"].items()),
        f"| **total** | **{g['total_hours']:.1f} CPU hours** ({g['own_flows_per_member_hours']:.1f} if every member "
        "fits its own flows); on 2 idle cores, between half that and that in wall time |",
        "",
        *_gpu_lines(gpu_projection(g["total_hours"] * 3600, g["seconds"])),
        "",
        f"![Cost at scale](figures/{FIGURE.name})",
        "",
    ]
    return "\n".join(lines)


def _gpu_lines(gpu: dict | None) -> list[str]:
    """The GPU figure, drawn from the current benchmarks/results/device.json (the device benchmark's own record)."""
    if gpu is None or "seconds" not in gpu:
        return ["GPU: no GPU run in `benchmarks/results/device.json` yet (`python -m benchmarks run device` on a GPU)."]
    parts = ", ".join(f"{part} {seconds / 60:.1f} min" for part, seconds in gpu["seconds"].items())
    return [f"On one {gpu['device']} (the device benchmark's speed-ups: "
            + ", ".join(f"{k} × {v}" for k, v in gpu["speedups"].items()) + f"): **at most {gpu['total_hours']:.2f} h** "
            f"({parts}); an {gpu['what']}."]


def _streamed_lines(r: dict) -> list[str]:
    s, big = r["streamed"], r["stars"][max(r["stars"], key=int)]
    ratio = {k: s["seconds_per_unit"][k] / big["seconds_per_unit"][k] for k in STREAMED_STAGES
             if s["seconds_per_unit"].get(k) and big["seconds_per_unit"].get(k)}
    t = r["largest_table"]
    per_star = ", ".join(f"{k} {v}" for k, v in t["bytes_per_star"].items())
    return [
        f"The same {s['n_stars']:,} stars streamed (`memory.chunk_stars: {s['chunk_stars']:,}`): stage peaks "
        + ", ".join(f"{k} {_fmt(v)}" for k, v in s["peak_rss_mb"].items())
        + " MB (whole: " + ", ".join(f"{k} {_fmt(v)}" for k, v in big["peak_rss_mb"].items()) + " MB); time per unit "
        "streamed / whole: " + ", ".join(f"{k} {v:.2f}" for k, v in ratio.items()) + ".",
        "",
        f"Largest table a {t['machine_gb']} GB machine builds from (each stage's peak fitted as a + b·N; b in bytes "
        f"per star: {per_star}): held whole about **{t['held_whole']['stars']:.2g}** stars (limited by "
        f"{t['held_whole']['limited_by']}); streamed about **{t['streamed']['stars']:.2g}** (limited by "
        f"{t['streamed']['limited_by']}; the stars stage reads and cuts the table whole, and the later stages' fits "
        "include the table they hold when it is not streamed, so this is a lower bound).",
    ]


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stars", default=",".join(str(n) for n in STARS), help="Table sizes, comma-separated.")
    parser.add_argument("--edges", default=",".join(map(str, EDGES)), help="Cube edges (one member).")
    parser.add_argument("--members", default=",".join(map(str, MEMBERS)), help=f"Members (at a {MEMBER_EDGE}³ cube).")
    args = parser.parse_args(argv)
    stars = tuple(int(float(s)) for s in args.stars.split(","))
    edges, members = (tuple(int(s) for s in a.split(",")) for a in (args.edges, args.members))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scaling_") as tmp:
        measured = run_all(Path(tmp), stars, edges, members)
    command = " ".join(["python -m benchmarks run scaling", *argv])
    result = {"command": command, **environment(), "wall_minutes": round((time.perf_counter() - started) / 60, 1),
              **measured}
    plot(result)
    return result


def main(argv: list[str]) -> None:
    """`python -m benchmarks.scaling --build TABLE FOLDER [OVERRIDES…]` or `--cube EDGE MEMBERS NET FOLDER`: the
    children of `run`, each printing its JSON result as its last line."""
    if argv[:1] == ["--build"]:
        print(json.dumps(build_child(Path(argv[1]), Path(argv[2]), argv[3:])))
    elif argv[:1] == ["--cube"]:
        print(json.dumps(cube_child(Path(argv[4]), int(argv[1]), int(argv[2]), json.loads(argv[3]))))
    else:
        from .__main__ import main as benchmarks_main

        benchmarks_main(["run", "scaling", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
