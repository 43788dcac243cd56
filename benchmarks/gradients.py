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
import os
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
CFM = {"width": 128, "depth": 3, "time_frequencies": 4, "ode_steps": 8, "learning_rate": 2e-3, "condition_noise_kpc": 0.0}
FRAME_DISPERSIONS = {"frame": "galactocentric", "frame_condition": "dispersions"}
MOCK_OVERRIDES = {"plummer": {}, "plummer-om": {"plummer": {"anisotropy_radius_kpc": 6.0}}}
"""`DataSpec` keywords of each mock a case may name (`mock`; default the isotropic Plummer mock)."""
CASES = {  # name: run_case keywords; fewer stars, smaller batches: enough steps
    "50k": {"n_stars": 50_000, "epochs": 40, "members": 1, "batch_size": 512},
    "200k-e20": {"n_stars": 200_000, "epochs": 20, "members": 1, "batch_size": 2048},
    "200k-e40": {"n_stars": 200_000, "epochs": 40, "members": 1, "batch_size": 2048},
    "200k-e20-K4": {"n_stars": 200_000, "epochs": 20, "members": 4, "batch_size": 2048},
    "200k-e40-K4": {"n_stars": 200_000, "epochs": 40, "members": 4, "batch_size": 2048},
    "1M-e16": {"n_stars": 1_000_000, "epochs": 16, "members": 1, "batch_size": 2048},
    # p(v|x) only (no n(x) model fitted), scored at fewer test stars (an ODE solve per gradient)
    "cfm-50k": {"model": "cfm", "n_stars": 50_000, "epochs": 100, "batch_size": 2048, "n_test": 2000},
    "cfm-50k-long": {"model": "cfm", "n_stars": 50_000, "epochs": 300, "batch_size": 2048, "n_test": 2000},
    "cfm-200k": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096, "n_test": 2000},
    "cfm-200k-long": {"model": "cfm", "n_stars": 200_000, "epochs": 150, "batch_size": 4096, "n_test": 2000},
    "cfm-1M": {"model": "cfm", "n_stars": 1_000_000, "epochs": 12, "batch_size": 4096, "n_test": 2000},
    "cfm-1M-long": {"model": "cfm", "n_stars": 1_000_000, "epochs": 200, "batch_size": 4096, "n_test": 2000},
    "cfm-4M": {"model": "cfm", "n_stars": 4_000_000, "epochs": 50, "batch_size": 8192, "n_test": 2000},
    # variants of `cfm-200k`, one change each (`cfm`: settings over `CFM`)
    "cfm-200k-ode16": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096, "n_test": 2000,
                       "cfm": {"ode_steps": 16}},
    "cfm-200k-ode32": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096, "n_test": 2000,
                       "cfm": {"ode_steps": 32}},
    "cfm-200k-xnoise0.1": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096, "n_test": 2000,
                           "cfm": {"condition_noise_kpc": 0.1}},
    "cfm-200k-xnoise0.25": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096, "n_test": 2000,
                            "cfm": {"condition_noise_kpc": 0.25}},
    # issue 19 sweep (density3): variants of `cfm-200k-ode16`; `twin`: a second fit on an independent sample
    "cfm-200k-ode16-twin": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096, "n_test": 2000,
                            "cfm": {"ode_steps": 16}, "twin": True},
    "cfm-200k-w256d4": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096, "n_test": 2000,
                        "cfm": {"ode_steps": 16, "width": 256, "depth": 4}},
    "cfm-200k-w64d2": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096, "n_test": 2000,
                       "cfm": {"ode_steps": 16, "width": 64, "depth": 2}},
    "cfm-200k-ode16-xnoise0.25": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096,
                                  "n_test": 2000, "cfm": {"ode_steps": 16, "condition_noise_kpc": 0.25}},
    "cfm-200k-ode16-xnoise0.25-twin": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096,
                                       "n_test": 2000, "cfm": {"ode_steps": 16, "condition_noise_kpc": 0.25},
                                       "twin": True},
    "cfm-200k-ode16-xnoise0.15": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096,
                                  "n_test": 2000, "cfm": {"ode_steps": 16, "condition_noise_kpc": 0.15}},
    "cfm-200k-ode16-xnoise0.35": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096,
                                  "n_test": 2000, "cfm": {"ode_steps": 16, "condition_noise_kpc": 0.35}},
    "cfm-200k-ode16-xnoise0.5": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096,
                                 "n_test": 2000, "cfm": {"ode_steps": 16, "condition_noise_kpc": 0.5}},
    "cfm-1M-ode16-e30": {"model": "cfm", "n_stars": 1_000_000, "epochs": 30, "batch_size": 4096, "n_test": 2000,
                         "cfm": {"ode_steps": 16}},
    "cfm-1M-ode16-e30-xnoise0.2": {"model": "cfm", "n_stars": 1_000_000, "epochs": 30, "batch_size": 4096,
                                   "n_test": 2000, "cfm": {"ode_steps": 16, "condition_noise_kpc": 0.2}},
    "bagged-maf-200k-K4": {"model": "bagged maf", "n_stars": 200_000, "epochs": 20, "members": 4, "batch_size": 2048},
    "bagged-maf-1M-K4": {"model": "bagged maf", "n_stars": 1_000_000, "epochs": 16, "members": 4, "batch_size": 2048},
    "wide-maf-200k": {"model": "wide maf", "n_stars": 200_000, "epochs": 40, "batch_size": 2048},
    "wide-maf-1M": {"model": "wide maf", "n_stars": 1_000_000, "epochs": 16, "batch_size": 2048},
    # the recipe default (`type: cfm`: 16 steps, 0.25 kpc jitter) for p(v|x), and n(x) by flow matching on the ball
    "cfm-200k-with-n": {"model": "cfm", "n_stars": 200_000, "epochs": 60, "batch_size": 4096, "n_test": 2000,
                        "cfm": {"ode_steps": 16, "condition_noise_kpc": 0.25}, "position": "cfm"},
    # n(x) by the Legendre family at its recipe defaults (radial reference, degree by BIC), beside the MAF p(v|x)
    "legendre-n-200k": {"n_stars": 200_000, "epochs": 20, "batch_size": 2048, "position": "legendre"},
    "legendre-n-1M": {"n_stars": 1_000_000, "epochs": 16, "batch_size": 2048, "position": "legendre"},
    # the MAF with its positions jittered while training (`maf`: settings over `VELOCITY`), n(x) by Legendre
    "maf-200k-xnoise0.3": {"n_stars": 200_000, "epochs": 20, "batch_size": 2048, "position": "legendre",
                           "maf": {"condition_noise_kpc": 0.3}},
    "maf-1M-xnoise0.25": {"n_stars": 1_000_000, "epochs": 16, "batch_size": 2048, "position": "legendre",
                          "maf": {"condition_noise_kpc": 0.25}},
    # the quickstart's flow at the seed paper's star count (the accuracy table's `*/plummer-4M` rows)
    "maf-4M": {"n_stars": 4_000_000, "epochs": 16, "batch_size": 2048, "position": "legendre"},
    # p(v|x) in the velocity frame (`maf`: its keys), the flow conditioned on the frame's ln σ or on nothing; `mock`:
    # the Osipkov–Merritt Plummer mock (r_a = 6 kpc) beside the isotropic one
    "maf-200k-om": {"n_stars": 200_000, "epochs": 20, "batch_size": 2048, "position": "legendre", "mock": "plummer-om"},
    "frame-dispersions-200k": {"n_stars": 200_000, "epochs": 20, "batch_size": 2048, "position": "legendre",
                               "maf": FRAME_DISPERSIONS},
    "frame-dispersions-200k-om": {"n_stars": 200_000, "epochs": 20, "batch_size": 2048, "position": "legendre",
                                  "maf": FRAME_DISPERSIONS, "mock": "plummer-om"},
    "frame-alone-200k": {"n_stars": 200_000, "epochs": 20, "batch_size": 2048, "position": "legendre",
                         "maf": {**FRAME_DISPERSIONS, "frame_condition": "none"}},
    "frame-alone-200k-om": {"n_stars": 200_000, "epochs": 20, "batch_size": 2048, "position": "legendre",
                            "maf": {**FRAME_DISPERSIONS, "frame_condition": "none"}, "mock": "plummer-om"},
    "frame-dispersions-1M": {"n_stars": 1_000_000, "epochs": 16, "batch_size": 2048, "position": "legendre",
                             "maf": FRAME_DISPERSIONS},
    "frame-dispersions-1M-om": {"n_stars": 1_000_000, "epochs": 16, "batch_size": 2048, "position": "legendre",
                                "maf": FRAME_DISPERSIONS, "mock": "plummer-om"},
    "maf-1M-om": {"n_stars": 1_000_000, "epochs": 16, "batch_size": 2048, "position": "legendre", "mock": "plummer-om"},
    "frame-alone-1M": {"n_stars": 1_000_000, "epochs": 16, "batch_size": 2048, "position": "legendre",
                       "maf": {**FRAME_DISPERSIONS, "frame_condition": "none"}},
    "frame-alone-1M-om": {"n_stars": 1_000_000, "epochs": 16, "batch_size": 2048, "position": "legendre",
                          "maf": {**FRAME_DISPERSIONS, "frame_condition": "none"}, "mock": "plummer-om"},
}
WIDE_VELOCITY = {**VELOCITY, "flow_layers": 8, "nn_width": 256}


def _fit_velocity(model: str, velocities, positions, epochs: int, batch_size: int, seed: int, cfm: dict,
                  maf: dict | None = None):
    from dpotcube.density.cfm import fit_cfm
    from dpotcube.density.maf import fit_flow
    from dpotcube.recipe import CFMSpec, FlowSpec

    if model == "cfm":
        spec = CFMSpec(**{**CFM, **cfm}, batch_size=batch_size, max_epochs=epochs, patience=epochs)
        return fit_cfm(velocities, spec, seed, conditions=positions)[0]
    settings = {**(WIDE_VELOCITY if model == "wide maf" else VELOCITY), **(maf or {})}
    return fit_flow(velocities, FlowSpec(**settings, batch_size=batch_size, max_epochs=epochs), seed,
                    conditions=positions)[0]


def _fit_position(kind: str, positions, epochs: int, batch_size: int, seed: int, cfm: dict, ball):
    """n(x) on the observer's ball by `kind`: flow matching with the case's settings (no position jitter: n has
    none) or the Legendre exponential family (its recipe defaults)."""
    from dpotcube.density.registry import fit_density
    from dpotcube.recipe import PositionCFMSpec, PositionLegendreSpec

    if kind == "legendre":
        spec = PositionLegendreSpec()
    else:
        settings = {**CFM, **cfm, "condition_noise_kpc": 0.0}
        spec = PositionCFMSpec(**settings, batch_size=batch_size, max_epochs=epochs, patience=epochs)
    return fit_density(positions, spec, seed, ball=ball)[0]


def _grad_log_p_chunked(models: list, x, v, chunk: int = 1000):
    """Mean over `models` of (∇ₓ ln p, ∇ᵥ ln p), `chunk` points at a time; and seconds per point (compiled)."""
    import jax

    from dpotcube.density.base import grad_log_p as cfm_grad_log_p

    out_x, out_v, seconds = [], [], 0.0
    for model in models:
        cfm_grad_log_p(model, x[:chunk], v[:chunk])[0].block_until_ready()  # compile once, not timed
        started = time.perf_counter()
        parts = [cfm_grad_log_p(model, x[i:i + chunk], v[i:i + chunk]) for i in range(0, len(x), chunk)]
        jax.block_until_ready(parts)
        seconds += time.perf_counter() - started
        out_x.append(jnp.concatenate([p[0] for p in parts]))
        out_v.append(jnp.concatenate([p[1] for p in parts]))
    return jnp.mean(jnp.stack(out_x), 0), jnp.mean(jnp.stack(out_v), 0), seconds / len(x)


def run_case(
    n_stars: int, epochs: int, members: int = 1, batch_size: int = 2048, seed: int = 0, model: str = "maf",
    n_test: int = N_TEST, cfm: dict | None = None, twin: bool = False, position: str | None = None,
    maf: dict | None = None, mock: str = "plummer",
) -> dict:
    """Fit and score one case; returns errors per gradient, wall times per density kind, gradient time per point.

    `model`: `maf` (K flows by seed, gradients combined by the ensemble median, n(x) fitted too), `bagged maf`
    (K flows on bootstrap resamples of the stars, gradients averaged), `wide maf` (8 layers × 256), or `cfm`
    (flow matching, `cfm` its settings over `CFM`); the last three fit p(v|x) only. `maf`: settings over
    `VELOCITY` for the MAF's p(v|x) (`condition_noise_kpc`, the velocity frame). `mock`: a key of `MOCK_OVERRIDES`. `position` (`cfm`
    or `legendre`) fits n(x) by that model instead (one model, not one per member). `twin` (not `maf`): fit
    the same model again on an independent sample of as many stars and record how the ∇ₓ ln p error splits into
    sampling noise and bias (`twin_split`).
    """
    import jax

    from dpotcube.density.ensemble import FlowEnsemble
    from dpotcube.density.maf import fit_flow
    from dpotcube.recipe import DataSpec, PositionFlowSpec
    from dpotcube.sources.load import plummer_truth
    from dpotcube.sources.mocks import sample_plummer

    truth = plummer_truth(DataSpec(n_stars=n_stars, **MOCK_OVERRIDES[mock]))
    positions, velocities = sample_plummer(truth, seed)
    test_x, test_v = (jnp.asarray(a[:n_test], jnp.float32)
                      for a in sample_plummer(plummer_truth(DataSpec(n_stars=N_TEST, **MOCK_OVERRIDES[mock])), 999))
    position_spec = PositionFlowSpec(**POSITION, batch_size=batch_size, max_epochs=epochs)
    ball = (np.asarray(truth.observer), truth.volume_radius_kpc)

    seconds = {"velocity": 0.0, "position": 0.0 if model == "maf" or position else None}
    maf_position = model == "maf" and position is None
    velocity_models, position_flows = [], []
    cpu_seconds = 0.0  # CPU time of the p(v|x) fits: on a shared machine, what one free core would take
    rng = np.random.default_rng(seed + 7)
    for member in range(members):
        rows = rng.integers(0, n_stars, n_stars) if model == "bagged maf" else slice(None)
        started, cpu_started = time.perf_counter(), time.process_time()
        velocity_models.append(_fit_velocity(model, velocities[rows], positions[rows], epochs, batch_size,
                                             seed + 100 * member, cfm or {}, maf))
        seconds["velocity"] += time.perf_counter() - started
        cpu_seconds += time.process_time() - cpu_started
        if maf_position:
            started = time.perf_counter()
            position_flows.append(fit_flow(positions, position_spec, seed + 100 * member + 50, ball=ball)[0])
            seconds["position"] += time.perf_counter() - started

    if model == "maf":
        started = time.perf_counter()
        grad_x, grad_v = FlowEnsemble(tuple(velocity_models)).grad_log_p(test_x, test_v)
        jax.block_until_ready(grad_x)
        per_point = None  # includes compilation; not comparable
        grad_n = FlowEnsemble(tuple(position_flows)).grad_log_n(test_x) if maf_position else None
    else:
        grad_x, grad_v, per_point = _grad_log_p_chunked(velocity_models, test_x, test_v)
        grad_n = None
    if position is not None:
        started = time.perf_counter()
        position_model = _fit_position(position, positions, epochs, batch_size, seed + 50, cfm or {}, ball)
        seconds["position"] += time.perf_counter() - started
        grad_n = FlowEnsemble((position_model,)).grad_log_n(test_x)
    true_x, true_v = truth.grad_log_p(test_x, test_v)
    split = None
    if twin:
        positions_b, velocities_b = sample_plummer(truth, seed + 1)
        twin_model = _fit_velocity(model, velocities_b, positions_b, epochs, batch_size, seed + 1, cfm or {}, maf)
        twin_x = _grad_log_p_chunked([twin_model], test_x, test_v)[0]
        split = sampling_split(grad_x, twin_x, true_x)
    return {
        "model": model,
        **({"mock": mock} if mock != "plummer" else {}),
        **({"position_model": position} if position else {}),
        **({"cfm": cfm} if cfm else {}),
        **({"maf": maf} if maf else {}),
        "n_stars": n_stars,
        "epochs": epochs,
        "members": members,
        "batch_size": batch_size,
        "n_test": n_test,
        "backend": jax.default_backend(),
        "cores": len(os.sched_getaffinity(0)),
        "train_seconds": {k: None if v is None else round(v, 1) for k, v in seconds.items()},
        "train_cpu_seconds_velocity": round(cpu_seconds, 1),
        "grad_seconds_per_point": None if per_point is None else float(f"{per_point:.3g}"),
        "grad_v_log_p": gradient_errors(grad_v, true_v),
        "grad_x_log_p": gradient_errors(grad_x, true_x),
        "grad_log_n": None if grad_n is None else gradient_errors(grad_n, truth.grad_log_tracer_density(test_x)),
        **({"twin_split": split} if split else {}),
    }


def sampling_split(a: jnp.ndarray, b: jnp.ndarray, truth: jnp.ndarray) -> dict[str, float]:
    """Two fits `a`, `b` on independent samples: their errors, that of their mean, and the sampling noise.

    Each fit's error is bias + noise, the noise independent between samples: |a − b|/√2 estimates the noise
    alone, and the mean of the pair halves its variance. All as median |·| / |g|.
    """
    a, b, truth = (np.asarray(q, np.float64) for q in (a, b, truth))
    size = np.linalg.norm(truth, axis=1)

    def median(d):
        return round(float(np.median(np.linalg.norm(d, axis=1) / size)), 4)

    return {"first": median(a - truth), "second": median(b - truth), "mean_of_pair": median((a + b) / 2 - truth),
            "noise": median((a - b) / np.sqrt(2))}


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


def _settings(cfm: dict | None) -> str:
    return "" if not cfm else " (" + ", ".join(f"{k} {v}" for k, v in cfm.items()) + ")"


def _position_model(case: dict) -> str:
    mock = "; Osipkov–Merritt mock" if case.get("mock") == "plummer-om" else ""
    return (f"; n(x) {case['position_model']}" if "position_model" in case else "") + mock


def markdown(r: dict) -> str:
    lines = [
        f"## {TITLE}",
        "",
        provenance_line(r),
        (f"p(v|x): MAF {VELOCITY['flow_layers']} layers × {VELOCITY['nn_width']} × {VELOCITY['nn_depth']}, "
        f"n(x): MAF {POSITION['flow_layers']} × {POSITION['nn_width']} × {POSITION['nn_depth']} on the ball; "
        f"Adam at {VELOCITY['learning_rate']:g}, patience 8 (`maf`: K seeds, median-combined; `bagged maf`: K "
        f"bootstrap resamples, gradients averaged; `wide maf`: {WIDE_VELOCITY['flow_layers']} layers × "
        f"{WIDE_VELOCITY['nn_width']}). `cfm`: flow matching, ResNet {CFM['depth']} blocks × {CFM['width']}, "
        f"{CFM['ode_steps']} Tsit5 steps, AdamW at {CFM['learning_rate']:g}, no position jitter unless said, no early stop (the whole cosine schedule); p(v|x) only. A row whose model names an n(x) model fitted n(x) by it "
        "(`cfm`: flow matching on the ball, no jitter; `legendre`: the Legendre exponential family, its recipe defaults). Scored at "
        f"{N_TEST:,} held-out stars (`cfm`: the first 2,000; true velocities) inside the 3 kpc volume. Each cell: "
        "median |Δg|/|g| · median cosine · median |Δg| / median |g|. Training time is the wall time summed over members, fitted "
        "one after another (in brackets: its CPU time, what one free core would take on this loaded machine); gradient time per point is compiled ∇ₓ and ∇ᵥ together, 1,000 points a call."),
        "",
        ("| case | model | stars | epochs | batch | K | ∇ᵥ ln p | ∇ₓ ln p | ∇ ln n | training p(v\\|x) | training n(x) "
        "| gradient time per point | run on |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in r["cases"].items():
        cells = [
            "–" if c.get(g) is None else
            f"{c[g]['median_rel_error']:.3f} · {c[g]['median_cosine']:.4f} · {c[g]['error_over_scale']:.3f}"
            for g in ("grad_v_log_p", "grad_x_log_p", "grad_log_n")
        ]
        position = c["train_seconds"]["position"]
        per_point = c.get("grad_seconds_per_point")
        run_on = f"{c.get('backend', 'cpu')}, {c.get('cores', 2)} cores"
        cpu = f" (CPU {c['train_cpu_seconds_velocity']:.0f} s)" if "train_cpu_seconds_velocity" in c else ""
        lines.append(
            f"| {name} | {c.get('model', 'maf')}{_settings(c.get('cfm') or c.get('maf'))}{_position_model(c)} | {c['n_stars']:,} | {c['epochs']} | {c.get('batch_size', 2048)} | "
            f"{c['members']} | {' | '.join(cells)} | {c['train_seconds']['velocity']:.0f} s{cpu} | "
            f"{'–' if position is None else f'{position:.0f} s'} | "
            f"{'–' if per_point is None else f'{per_point * 1e3:.2g} ms'} | {run_on} |"
        )
    if any("model" not in c for c in r["cases"].values()):
        lines += ["", "The rows without a gradient time (`50k` … `1M-e16`) are from the first run, "  # noqa: ISC004
                  "`python -m benchmarks.gradients` of 2026-11-21, before cases named their model; the line above the "
                  "table names the last run. The `cfm` rows were run pinned to one core (`taskset -c 0` or `-c 1`) on the "
                  "shared machine: wall times are upper bounds for 2 cores, CPU times what one free core would take."]
    for name, c in r["cases"].items():
        if "twin_split" in c:
            t = c["twin_split"]
            lines += ["", (f"`{name}`, ∇ₓ ln p split by a second fit on an independent sample of {c['n_stars']:,} stars "
                           f"(median |Δg|/|g|): first fit {t['first']:.3f}, second {t['second']:.3f}, their mean "
                           f"{t['mean_of_pair']:.3f}; sampling noise |a − b|/√2: {t['noise']:.3f}. Pure noise would give "
                           "noise ≈ error and the mean ≈ error/√2; pure bias, noise ≈ 0 and the mean ≈ error.")]
    lines += ["", ("Goal (200 k stars, ≤ 10 min of training on 2 cores): ∇ᵥ ln p ≤ 0.05, ∇ₓ ln p and ∇ ln n ≤ 0.10. "
                   "Goal of issue 19: ∇ₓ ln p ≤ 0.10 at 200 k and ≤ 0.06 at 1 M stars, ∇ᵥ ln p ≤ 0.03."), ""]
    return "\n".join(lines)


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run gradients", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    names = parser.parse_args(argv).cases
    new = {}
    for name in names:
        new[name] = run_case(**CASES[name])
        print(name, json.dumps(new[name]), flush=True)
    previous = json.loads(RESULTS.read_text())["cases"] if RESULTS.exists() else {}  # read last: runs side by side
    cases = {**previous, **new}
    command = " ".join(["python -m benchmarks run gradients", *(["--cases", *names] if names != list(CASES) else [])])
    return {"command": command, **environment(), "cases": {k: cases[k] for k in CASES if k in cases}}


if __name__ == "__main__":  # the older spelling, `python -m benchmarks.gradients`
    from .__main__ import main

    main(["run", "gradients", *sys.argv[1:]])
