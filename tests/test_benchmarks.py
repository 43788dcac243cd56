"""The benchmark code runs (at toy size) and scores against the truth; the real runs live in benchmarks/."""

from benchmarks.gradients import gradient_errors, run_case


def test_gradient_benchmark_case_runs_and_scores():
    case = run_case(n_stars=3000, epochs=2, members=2, batch_size=256)
    for name in ("grad_v_log_p", "grad_x_log_p", "grad_log_n"):
        assert set(case[name]) == {"median_rel_error", "median_cosine", "error_over_scale"}
    assert case["grad_v_log_p"]["median_cosine"] > 0.5  # even two epochs point ∇ᵥ ln p the right way


def test_gradient_errors_are_zero_for_the_truth_and_one_for_zero():
    import numpy as np

    g = np.random.default_rng(0).normal(size=(100, 3))
    assert gradient_errors(g, g)["median_rel_error"] == 0 and gradient_errors(g, g)["median_cosine"] == 1
    assert gradient_errors(0 * g + 1e-30, g)["median_rel_error"] == 1


def test_cube_throughput_benchmark_runs_at_toy_size(tmp_path):
    """Every part of the cube benchmark, on tiny networks and grids; the numbers are not checked, the shapes are."""
    from benchmarks.cube_throughput import (
        kernel_before_after,
        laplacian_speed,
        markdown,
        peak_memory,
        pipeline_throughput,
    )

    tiny = {"width": 8, "depth": 2, "activation": "tanh"}
    laplacian = laplacian_speed(tiny, n_points=2048, repeats=1)
    assert laplacian["max_rel_diff"] < 1e-5 and set(laplacian["points_per_s"]) == {"forward", "jacfwd"}
    kernel = kernel_before_after(tiny, n_points=2048, repeats=1)
    assert kernel["max_rel_diff"] < 1e-5
    pipeline = pipeline_throughput(tmp_path / "pipeline", edge=16, members=2, net=tiny, repeats=1)
    assert pipeline["n_points"] == 2 * 16**3 and pipeline["ratio"] > 0
    memory = {str(edge): peak_memory(tmp_path / "memory", edge, members=2, net=tiny) for edge in (16, 32)}
    assert memory["16"]["peak_rss_mb"] >= memory["16"]["rss_before_write_mb"] > 0
    result = {"command": "test", "date": "today", "machine": "m", "device": "cpu", "repeats": 1,
              "versions": {"dpotcube": "0", "jax": "0", "python": "3"},
              "laplacian": laplacian, "kernel": kernel, "pipeline": pipeline, "memory": memory, "memory_ratio": 1.0}
    assert "| (c) peak RSS ratio 32³ / 16³ | 1.00 | ≤ 1.3 |" in markdown(result)


def test_report_reproduces_the_benchmarks_page():
    """docs/benchmarks.md is exactly what `python -m benchmarks report` draws from benchmarks/results/*.json."""
    from benchmarks.report import DOC, render

    text = DOC.read_text()
    assert render(text) == text, "docs/benchmarks.md is stale: run `python -m benchmarks report`"


def test_every_table_states_its_provenance():
    import json

    from benchmarks.registry import BENCHMARKS, load
    from benchmarks.report import section

    for name in BENCHMARKS:
        if load(name).RESULTS.exists():
            results = json.loads(load(name).RESULTS.read_text())
            text = section(name)
            runs = results["runs"] if isinstance(results.get("runs"), dict) else {name: results}  # ensembles: one per label
            for r in runs.values():
                for fact in (f"Made by `{r['command']}`", r["date"], r["machine"], f"JAX {r['versions']['jax']}"):
                    assert fact in text, (name, fact)


def test_list_names_every_benchmark():
    """Every module in benchmarks/ with a `run` and a `markdown` is registered, and `list` shows each one."""
    import ast
    import subprocess
    import sys

    from benchmarks.registry import BENCHMARKS, load

    from .conftest import REPO

    modules = set()
    for path in (REPO / "benchmarks").glob("*.py"):
        defined = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
        if {"run", "markdown"} <= defined:
            modules.add(f"benchmarks.{path.stem}")
    assert modules == set(BENCHMARKS.values())
    done = subprocess.run([sys.executable, "-m", "benchmarks", "list"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines()]
    assert listed == list(BENCHMARKS)
    for name in BENCHMARKS:
        module = load(name)
        assert module.RESULTS.parent == REPO / "benchmarks" / "results" and callable(module.run)


def test_stage_memory_gives_each_stage_its_own_peak():
    """A stage that touches 300 MB peaks ≥ 250 MB above the baseline; the next stage, allocating nothing, does not."""
    import numpy as np
    import pytest

    from benchmarks.memory import StageMemory, available, resident_mb

    if not available():
        pytest.skip("per-stage peaks need Linux's /proc/self/clear_refs")
    memory = StageMemory()
    baseline = resident_mb()
    with memory("big"):
        block = np.ones(300 * 2**20 // 8)
        del block
    with memory("small"):
        pass
    assert list(memory.peaks_mb) == ["big", "small"]
    assert memory.peaks_mb["big"] > baseline + 250
    assert memory.peaks_mb["small"] < baseline + 100


def test_tiny_build_is_measured_stage_by_stage(tiny_build):
    """The build's stage monitor records every stage's peak memory beside its wall time, and the table shows both."""
    from benchmarks.quickstart import markdown

    *_, measured = tiny_build
    stages = ["stars", "velocity_flow_0", "collocation", "fields", "cube"]
    assert list(measured["stage_seconds"]) == stages and list(measured["stage_peak_rss_mb"]) == stages
    assert all(100 < mb <= measured["peak_rss_mb"] for mb in measured["stage_peak_rss_mb"].values())
    r = {"command": "c", "date": "d", "machine": "m", "device": "cpu", "versions": {"dpotcube": "0", "jax": "0", "python": "3"},
         **measured}
    row = next(line for line in markdown(r).splitlines() if line.startswith("| peak resident memory"))
    assert f"velocity_flow_0 {measured['stage_peak_rss_mb']['velocity_flow_0']:.0f} MB" in row


def test_quickstart_table_shows_the_cold_build_against_the_recorded_433_s():
    """The cold-build row: its wall time, the ratio to the 433 s recorded before, the compilations and the load."""
    from benchmarks.quickstart import RECORDED_COLD_SECONDS, markdown

    scores = {"median_rel_error_accel": 0.044, "median_rel_error_density": 0.465, "median_density_ratio": 0.825,
              "median_rel_error_tracer_density": 0.022, "median_abs_error_potential_kms2": 97.0,
              "potential_range_kms2": 28213.0, "n_points": 14046}
    r = {"command": "c", "date": "d", "machine": "m", "device": "cpu", "versions": {"dpotcube": "0", "jax": "0", "python": "3"},
         "wall_seconds": 290.0, "stage_seconds": {"stars": 5.0}, "peak_rss_mb": 1000.0, "scores": scores,
         "cold_wall_seconds": 290.0, "cold_ratio_to_433": round(290.0 / RECORDED_COLD_SECONDS, 3),
         "cold_cpu_seconds": 450.0, "compilations": {"count": 120, "seconds": 30.0},
         "load_average_before": [0.1, 0.2, 0.3], "load_average_after": [1.9, 1.0, 0.5]}
    row = next(line for line in markdown(r).splitlines() if line.startswith("| cold build"))
    assert "290 s, 0.67 × the 433 s" in row and "120 XLA compilations" in row and "load average 0.1 before" in row
    del r["cold_wall_seconds"]  # results recorded before the cold build: no such row
    assert not any(line.startswith("| cold build") for line in markdown(r).splitlines())


def test_accuracy_table_shows_every_case_and_what_is_missing():
    from benchmarks.accuracy import CASES, markdown

    scores = {"median_rel_error_accel": 0.0449, "median_rel_error_density": 0.487, "median_density_ratio": 0.806,
              "median_rel_error_tracer_density": 0.021, "median_abs_error_potential_kms2": 99.0}
    first, *rest = CASES
    case = {"method": "conditional", "mock": "Plummer, isotropic", "n_stars": 1_000_000, "wall_seconds": 211,
            "command": "python -m benchmarks run accuracy --cases x", "date": "2026-11-21T13:40:32+00:00", "scores": scores}
    r = {"command": "c", "date": "d", "machine": "m", "device": "cpu", "versions": {"dpotcube": "0", "jax": "0", "python": "3"},
         "cases": {first: case}}
    text = markdown(r)
    assert "| conditional | Plummer, isotropic | 1,000,000 | 0.045 | 0.487 | 0.806 | 0.021 | 99 | 211 s |" in text
    assert all(f"`{name}`" in text.split("Not run yet:")[1] for name in rest)


def test_methods_merge_keeps_earlier_pairs_with_a_note_and_replaces_rerun_ones():
    from benchmarks.methods import merge_rows, method_recipe
    from dpotcube.recipe import recipe_from_dict

    earlier = {"date": "2026-11-21", "rows": [
        {"mock": "dusty", "method": "conditional", "scores": {"a": 1}},
        {"mock": "dusty", "method": "pointwise", "scores": {"a": 2}, "note": "old"},
    ]}
    rows = merge_rows(earlier, [{"mock": "dusty", "method": "pointwise", "scores": {"a": 3}}])
    assert [(r["method"], r["scores"]["a"], r.get("note")) for r in rows] == [
        ("conditional", 1, "run of 2026-11-21"), ("pointwise", 3, None)]
    recipe = recipe_from_dict(method_recipe("m", "dusty", "pointwise", 1000, 10, 1))  # a valid recipe
    assert recipe.fields.method == "pointwise" and recipe.density.position.selection_weights


def test_accuracy_cases_cover_every_method_on_every_mock_and_share_flows_per_mock():
    from benchmarks.accuracy import CASES, METHODS, MOCKS
    from benchmarks.report import REPO
    from dpotcube.recipe import load_recipe

    assert set(CASES) == {f"{method}/{mock}" for method in METHODS for mock in MOCKS}
    specs = {}
    for name, (method, mock, recipe, overrides) in CASES.items():
        parsed, _ = load_recipe(REPO / recipe, list(overrides))
        assert parsed.fields.method == method
        specs.setdefault(mock, set()).add((parsed.density.velocity.model_dump_json(), parsed.data.model_dump_json()))
    assert all(len(shared) == 1 for shared in specs.values())  # one p(v|x) flow and one star set per mock
