"""Accuracy of the flows' gradients against the analytic Plummer truth, by star count, budget and ensemble size.

    python -m benchmarks run gradients [--cases NAME ...]

For each case: fit K flows for p(v|x) and for n(x) (ball support) on a Plummer mock, then score the
combined ∇ᵥ ln p, ∇ₓ ln p (at held-out stars, with their true velocities) and ∇ ln n against the truth:
median relative error |Δg|/|g|, median cosine, and median |Δg| over median |g| (the error on the scale of
the field: ∇ₓ ln p of an isotropic DF passes through zero inside the bulk of the velocity distribution,
where the pointwise relative error is unbounded). Writes `benchmarks/results/gradients.json` and the
gradients section of `docs/benchmarks.md`; cases not run keep their previous results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax.numpy as jnp
import numpy as np

from .report import REPO, environment, provenance_line

TITLE = "Flow gradients against the Plummer truth"
RESULTS = REPO / "benchmarks" / "results" / "gradients.json"
N_TEST = 20_000

VELOCITY = {"flow_layers": 6, "nn_width": 128, "nn_depth": 2, "learning_rate": 1e-3}
POSITION = {"flow_layers": 6, "nn_width": 64, "nn_depth": 2, "learning_rate": 1e-3}
CASES = {  # name: (stars, epochs per flow, members, batch size); fewer stars, smaller batches: enough steps
    "50k": (50_000, 40, 1, 512),
    "200k-e20": (200_000, 20, 1, 2048),
    "200k-e40": (200_000, 40, 1, 2048),
    "200k-e20-K4": (200_000, 20, 4, 2048),
    "200k-e40-K4": (200_000, 40, 4, 2048),
    "1M-e16": (1_000_000, 16, 1, 2048),
}


def run_case(n_stars: int, epochs: int, members: int, batch_size: int = 2048, seed: int = 0) -> dict:
    """Fit and score one case; returns errors per gradient and wall times per flow kind."""
    from dpotcube.density.ensemble import FlowEnsemble
    from dpotcube.density.maf import fit_flow
    from dpotcube.recipe import DataSpec, FlowSpec, PositionFlowSpec
    from dpotcube.sources.load import plummer_truth
    from dpotcube.sources.mocks import sample_plummer

    truth = plummer_truth(DataSpec(n_stars=n_stars))
    positions, velocities = sample_plummer(truth, seed)
    test_x, test_v = (jnp.asarray(a, jnp.float32) for a in sample_plummer(plummer_truth(DataSpec(n_stars=N_TEST)), 999))
    velocity_spec = FlowSpec(**VELOCITY, batch_size=batch_size, max_epochs=epochs)
    position_spec = PositionFlowSpec(**POSITION, batch_size=batch_size, max_epochs=epochs)
    ball = (np.asarray(truth.observer), truth.volume_radius_kpc)

    seconds = {"velocity": 0.0, "position": 0.0}
    velocity_flows, position_flows = [], []
    for member in range(members):
        started = time.perf_counter()
        velocity_flows.append(fit_flow(velocities, velocity_spec, seed + 100 * member, conditions=positions)[0])
        seconds["velocity"] += time.perf_counter() - started
        started = time.perf_counter()
        position_flows.append(fit_flow(positions, position_spec, seed + 100 * member + 50, ball=ball)[0])
        seconds["position"] += time.perf_counter() - started

    grad_x, grad_v = FlowEnsemble(tuple(velocity_flows)).grad_log_p(test_x, test_v)
    grad_n = FlowEnsemble(tuple(position_flows)).grad_log_n(test_x)
    true_x, true_v = truth.grad_log_p(test_x, test_v)
    return {
        "n_stars": n_stars,
        "epochs": epochs,
        "members": members,
        "batch_size": batch_size,
        "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "grad_v_log_p": gradient_errors(grad_v, true_v),
        "grad_x_log_p": gradient_errors(grad_x, true_x),
        "grad_log_n": gradient_errors(grad_n, truth.grad_log_tracer_density(test_x)),
    }


def gradient_errors(estimate: jnp.ndarray, truth: jnp.ndarray) -> dict[str, float]:
    estimate, truth = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    error = np.linalg.norm(estimate - truth, axis=1)
    size = np.linalg.norm(truth, axis=1)
    cosine = np.sum(estimate * truth, axis=1) / (np.linalg.norm(estimate, axis=1) * size)
    return {
        "median_rel_error": round(float(np.median(error / size)), 4),
        "median_cosine": round(float(np.median(cosine)), 5),
        "error_over_scale": round(float(np.median(error) / np.median(size)), 4),
    }


def markdown(r: dict) -> str:
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        f"p(v|x): MAF {VELOCITY['flow_layers']} layers × {VELOCITY['nn_width']} × {VELOCITY['nn_depth']}, "
        f"n(x): MAF {POSITION['flow_layers']} × {POSITION['nn_width']} × {POSITION['nn_depth']} on the ball; "
        f"Adam at {VELOCITY['learning_rate']:g}, patience 8. Scored at {N_TEST:,} held-out "
        "stars (true velocities) inside the 3 kpc volume. Each cell: median |Δg|/|g| · median cosine · "
        "median |Δg| / median |g|. Training time is the sum over members, flows fitted one after another.",
        "",
        "| case | stars | epochs | batch | K | ∇ᵥ ln p | ∇ₓ ln p | ∇ ln n | training p(v\\|x) | training n(x) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in r["cases"].items():
        cells = [
            f"{c[g]['median_rel_error']:.3f} · {c[g]['median_cosine']:.4f} · {c[g]['error_over_scale']:.3f}"
            for g in ("grad_v_log_p", "grad_x_log_p", "grad_log_n")
        ]
        lines.append(
            f"| {name} | {c['n_stars']:,} | {c['epochs']} | {c.get('batch_size', 2048)} | {c['members']} | {' | '.join(cells)} | "
            f"{c['train_seconds']['velocity']:.0f} s | {c['train_seconds']['position']:.0f} s |"
        )
    lines += ["", "Goal (200 k stars, ≤ 10 min of training on 2 cores): ∇ᵥ ln p ≤ 0.05, ∇ₓ ln p and ∇ ln n ≤ 0.10.", ""]
    return "\n".join(lines)


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run gradients", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    names = parser.parse_args(argv).cases
    previous = json.loads(RESULTS.read_text())["cases"] if RESULTS.exists() else {}
    cases = {**previous}
    for name in names:
        cases[name] = run_case(*CASES[name])
        print(name, json.dumps(cases[name]), flush=True)
    command = " ".join(["python -m benchmarks run gradients", *(["--cases", *names] if names != list(CASES) else [])])
    return {"command": command, **environment(), "cases": {k: cases[k] for k in CASES if k in cases}}


if __name__ == "__main__":  # the older spelling, `python -m benchmarks.gradients`
    from .__main__ import main

    main(["run", "gradients", *sys.argv[1:]])
