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
    from benchmarks.accuracy import DEFAULT_CASES, markdown

    scores = {"median_rel_error_accel": 0.0449, "median_rel_error_density": 0.487, "median_density_ratio": 0.806,
              "median_rel_error_tracer_density": 0.021, "median_abs_error_potential_kms2": 99.0}
    first, *rest = DEFAULT_CASES
    case = {"method": "conditional", "mock": "Plummer, isotropic", "n_stars": 1_000_000, "wall_seconds": 211,
            "command": "python -m benchmarks run accuracy --cases x", "date": "2026-11-21T13:40:32+00:00", "scores": scores}
    r = {"command": "c", "date": "d", "machine": "m", "device": "cpu", "versions": {"dpotcube": "0", "jax": "0", "python": "3"},
         "cases": {first: case}}
    text = markdown(r)
    assert "| conditional | Plummer, isotropic | 1,000,000 | 0.045 | 0.487 | 0.806 | 0.021 | 99 | 211 s |" in text
    assert all(f"`{name}`" in text.split("Not run yet:")[1] for name in rest)
    assert "4M" not in text  # the paper-scale mocks are run only when named


def test_methods_merge_keeps_earlier_pairs_with_a_note_and_replaces_rerun_ones():
    from benchmarks.methods import merge_rows, method_recipe
    from dpotcube.recipe import recipe_from_dict

    earlier = {"date": "2026-11-21", "n_stars": 200, "rows": [
        {"mock": "dusty", "method": "conditional", "scores": {"a": 1}},
        {"mock": "dusty", "method": "pointwise", "scores": {"a": 2}, "note": "old"},
    ]}
    rows = merge_rows(earlier, [{"mock": "dusty", "method": "pointwise", "n_stars": 200, "scores": {"a": 3}}])
    assert [(r["method"], r["scores"]["a"], r.get("note")) for r in rows] == [
        ("conditional", 1, "run of 2026-11-21"), ("pointwise", 3, None)]
    # another star count is another row: both kept, the smaller count first
    rows = merge_rows(earlier, [{"mock": "dusty", "method": "conditional", "n_stars": 1000, "scores": {"a": 4}}])
    assert [(r["method"], r["n_stars"], r["scores"]["a"]) for r in rows] == [
        ("conditional", 200, 1), ("pointwise", 200, 2), ("conditional", 1000, 4)]
    recipe = recipe_from_dict(method_recipe("m", "dusty", "pointwise", 1000, 10, 1))  # a valid recipe
    assert recipe.fields.method == "pointwise" and recipe.density.position.selection_weights


def test_accuracy_cases_cover_every_method_on_every_mock_and_share_flows_per_mock():
    from benchmarks.accuracy import CASES, METHODS, MOCKS
    from benchmarks.report import REPO
    from dpotcube.recipe import load_recipe

    assert set(CASES) == {f"{method}/{mock}" for method in METHODS for mock in MOCKS}
    specs, own_flow = {}, {"vanilla+no-frame", "vanilla+frame-alone"}  # rows that compare p(v|x) models
    for name, (method, mock, recipe, overrides) in CASES.items():
        parsed, _ = load_recipe(REPO / recipe, list(overrides))
        assert parsed.fields.method == method.split("+")[0]
        assert parsed.ensemble.seed == 1  # one build per case, whatever members the quickstart carries
        if method not in own_flow:
            specs.setdefault(mock, set()).add((parsed.density.velocity.model_dump_json(),
                                               parsed.data.model_dump_json()))
    assert all(len(shared) == 1 for shared in specs.values())  # one p(v|x) flow and one star set per mock
    for method in own_flow:  # each differs from the shared flow in its velocity frame alone
        parsed, _ = load_recipe(REPO / CASES[f"{method}/plummer"][2], list(CASES[f"{method}/plummer"][3]))
        shared, _ = load_recipe(REPO / CASES["vanilla/plummer"][2], list(CASES["vanilla/plummer"][3]))
        differs = {k for k, v in parsed.density.velocity.model_dump().items() if v != getattr(shared.density.velocity, k)}
        assert differs and differs <= {"frame", "frame_condition"}, differs


def test_device_check_runs_tiny_on_the_cpu_and_says_so(tmp_path):
    """The device check at toy size without a GPU: CPU only, said plainly; every part recorded with its keys; the
    JSON written to `--out`; the table drawn from it. Timings are not checked."""
    import json

    from benchmarks.device import markdown, run

    out = tmp_path / "device.json"
    result = run(["--n-stars", "8000", "--cpu-flow-batches", "2", "--field-steps", "50", "--cube-edge", "8",
                  "--members", "1", "--laplacian-points", "2048", "--parts", "maf_epoch,cfm_epoch,cube,laplacian",
                  "--out", str(out)])
    assert result.pop("_results_file") == str(out), "`--out` elsewhere: `benchmarks run` leaves device.json alone"
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["gpu"] is None and result["note"] == "no GPU visible: CPU only"
    assert set(result["jax_devices"]) == {"cpu"} and result["speedup_gpu_over_cpu"] == {}
    assert result["projection"] is None and result["cpu_count"] >= 1
    parts = result["parts"]
    assert set(parts) == {"maf_epoch", "cfm_epoch", "cube", "laplacian"} and all(set(p) == {"cpu"} for p in parts.values())
    assert "error" not in parts["cfm_epoch"]["cpu"] and parts["cfm_epoch"]["cpu"]["epoch_s"] > 0
    maf = parts["maf_epoch"]["cpu"]
    assert "error" not in maf and maf["scaled_from_batches"] == 2 and maf["batches_per_epoch"] == 3
    assert {"compile_s", "epoch_s", "first_epoch_s"} <= set(maf)
    assert parts["cube"]["cpu"]["edge"] == 8 and parts["cube"]["cpu"]["points_per_s"] > 0
    assert set(parts["laplacian"]["cpu"]["by_batch"]) == {"1024", "65536"}
    assert "no GPU visible: CPU only" in markdown(result)


def test_device_check_records_a_failing_whole_build_and_draws_builds(tmp_path):
    """(5) `--builds`: a build that fails is recorded with its error and the run goes on; a measured build's
    record becomes a row of the table."""
    from benchmarks.device import markdown, run

    result = run(["--parts", "laplacian", "--laplacian-points", "1024", "--n-stars", "4000",
                  "--builds", str(tmp_path / "missing.yaml"), "--build-set", "seed=1", "--out", str(tmp_path / "d.json")])
    failed = result["builds"]["missing"]
    assert failed["device"] == "cpu" and "missing.yaml" in failed["error"] and failed["overrides"] == ["seed=1"]
    assert "--build-set seed=1" in result["command"]
    result["builds"]["quickstart"] = {"device": "gpu", "recipe": "recipes/quickstart.yaml", "overrides": [],
                                      "wall_seconds": 61.0, "stage_seconds": {"stars": 9.0, "fields": 5.0},
                                      "scores": {"median_rel_error_accel": 0.044, "median_rel_error_density": 0.46}}
    table = markdown(result)
    assert "| quickstart | gpu | 61 s | stars 9 s, fields 5 s | 0.044 | 0.460 |" in table
    assert "| missing (`seed=1`) | cpu | error |" in table


def test_device_check_speedups_and_projection_from_both_backends():
    from benchmarks.device import projection, speedups

    parts = {"fields": {"cpu": {"steps_s": 10.0}, "gpu": {"steps_s": 2.0}},
             "cube": {"cpu": {"seconds": 4.0}, "gpu": {"error": "boom"}}}
    assert speedups(parts) == {"fields": 5.0}
    projected = projection({"fields": 5.0, "maf_epoch": 10.0})
    assert projected is not None and "PROJECTION" in projected["what"]
    quick = projected["quickstart_stage_seconds"]
    assert projected["projected_gpu_stage_seconds"]["fields"] == round(quick["fields"] / 5, 1)
    assert projected["projected_gpu_stage_seconds"]["cube"] == round(quick["cube"], 1)  # no speed-up measured


def test_device_check_skips_parts_past_its_time_limit(tmp_path):
    from benchmarks.device import run

    result = run(["--n-stars", "3000", "--parts", "laplacian", "--time-limit", "0", "--out", str(tmp_path / "d.json")])
    assert "skipped" in result["parts"]["laplacian"]["cpu"] and (tmp_path / "d.json").exists()
def _scaling_result(alpha: float = 1.0) -> dict:
    """A scaling result of the benchmark's shape, with costs ∝ N^alpha and peaks a + b·N (no real builds)."""
    from benchmarks.scaling import GAIA, STAGES, UNITS

    sizes = (100_000, 300_000, 1_000_000, 3_000_000)
    stars = {str(n): {"n_stars": n, "seconds_per_unit": {s: 1e-6 * n**alpha for s in STAGES},
                      "peak_rss_mb": {s: 400 + 100e-6 * n for s in STAGES}} for n in sizes}
    cube = {"by_edge": [{"edge": e, "members": 1, "seconds": 1e-5 * e**3, "peak_rss_mb": 500} for e in (32, 64)],
            "by_members": [{"edge": 64, "members": m, "seconds": 2.0 * m, "peak_rss_mb": 500} for m in (1, 2)],
            "alpha_points": 1.0, "alpha_members": 1.0, "peak_rss_alpha_points": 0.0}
    nets = {"small": stars["100000"], "gaia_nets": {"seconds_per_unit": {s: 3e-6 * 1e5 for s in STAGES}},
            "gaia_cube": {"seconds": 4.0}}
    return {"stars": stars, "cube": cube, "nets": nets, "units": UNITS, "gaia": GAIA}


def test_scaling_exponents_projection_and_limits_from_a_result(tmp_path):
    """The fitted α recovers the power law it is given; the projection and the 24 GB limit follow from the fits."""
    from benchmarks.scaling import STAGES, fit_exponent, largest_table, markdown, plot, project_gaia

    for alpha in (0.0, 1.0, 2.0):
        r = _scaling_result(alpha)
        ns = [v["n_stars"] for v in r["stars"].values()]
        assert fit_exponent(ns, [v["seconds_per_unit"]["stars"] for v in r["stars"].values()]) == alpha
    assert fit_exponent([1, 2], [None, 3.0]) is None
    r = _scaling_result(1.0)
    limits = largest_table(r["stars"], 24)
    assert limits["bytes_per_star"]["stars"] == 105  # 100 MB per 10⁶ stars
    assert limits["held_whole"]["stars"] == int(float(f"{(24 * 1024 - 400) / 100e-6:.2g}"))
    assert limits["streamed"]["limited_by"] not in ("velocity_flow", "position_flow", "collocation")
    settings = {"flow_epochs": 10, "field_steps": 100, "field_net": {"width": 8}, "position_flow": False}
    projection = project_gaia(r["stars"], r["cube"], r["nets"], settings)
    assert projection["net_factor"]["velocity_flow"] == 3.0
    # the flows at 6 × 10⁶ stars: 3 s/epoch at 3 × 10⁶, ×2 stars, ×3 networks, 10 epochs
    assert projection["seconds"]["flows (one fit, shared by the seed members)"] == 180.0
    r |= {"command": "test", "date": "today", "machine": "m", "device": "cpu",
          "versions": {"dpotcube": "0", "jax": "0", "python": "3"}, "gaia_projection": projection,
          "exponents": {s: 1.0 for s in STAGES}, "peak_rss_exponents": {s: 0.5 for s in STAGES},
          "peak_rss_ratio_3e6_over_1e6": 1.4, "independent_of_stars": {"fields": "no star is read"},
          "streamed": {**r["stars"]["3000000"], "chunk_stars": 1_000_000}, "largest_table": limits}
    text = markdown(r)
    assert "| velocity_flow (per epoch) |" in text and "**1.4**" in text and ("GPU: " in text or "On one " in text)
    plot(r, tmp_path / "scaling.png")
    assert (tmp_path / "scaling.png").stat().st_size > 10_000


def test_scaling_cube_child_at_toy_size(tmp_path):
    from benchmarks.scaling import cube_child

    out = cube_child(tmp_path / "c", 8, 2, {"width": 8, "depth": 2, "activation": "tanh"})
    assert out["edge"] == 8 and out["members"] == 2 and out["peak_rss_mb"] >= out["rss_before_mb"] > 0


def test_budget_swaps_the_named_gradients_and_shuffles_errors_without_changing_them():
    import numpy as np

    from benchmarks.budget import swapped
    from dpotcube.density.collocation import CollocationPoints

    rng = np.random.default_rng(0)
    exact = CollocationPoints(*(rng.normal(size=(200, 3)) for _ in range(4)), grad_log_n=rng.normal(size=(200, 3)))
    models = {name: rng.normal(size=(200, 3)) for name in ("x", "v", "n")}
    both = swapped(exact, models, ("x", "n"), seed=1)
    assert both.grad_x_log_p is models["x"] and both.grad_log_n is models["n"]
    assert both.grad_v_log_p is exact.grad_v_log_p
    shuffled = swapped(exact, models, ("x shuffled",), seed=1)
    errors, moved = models["x"] - exact.grad_x_log_p, shuffled.grad_x_log_p - exact.grad_x_log_p
    assert not np.allclose(moved, errors)  # not where they were ...
    np.testing.assert_allclose(np.sort(moved, axis=0), np.sort(errors, axis=0))  # ... but the same errors


def test_budget_reads_a_file_from_before_mocks_as_the_isotropic_mocks_with_its_command(tmp_path, monkeypatch):
    import json

    import benchmarks.budget as budget

    old = {"command": "python -m benchmarks run budget", "date": "2026-12-05T05:33:27+00:00", "build": "b",
           "model_gradient_errors": {"x": 0.1, "v": 0.05, "n": 0.02},
           "rows": {"end to end": {"ln_f": {"scores": {"median_rel_error_density": 0.18}}}}}
    monkeypatch.setattr(budget, "RESULTS", tmp_path / "budget.json")
    budget.RESULTS.write_text(json.dumps(old))
    cell = budget._previous_mocks()["plummer"]["rows"]["end to end"]["ln_f"]
    assert cell["command"] == old["command"] and cell["date"] == old["date"] and cell["scores"] == {
        "median_rel_error_density": 0.18}


def test_curvature_table_puts_the_density_cells_on_the_quickstarts_star_count_and_the_control_last():
    from benchmarks.curvature import DENSITY_STARS, markdown

    fit = {"degree": 1, "fit_seconds": 16.0, "grad_log_n_median_rel_error": 0.0045,
           "laplacian_log_n_median_rel_error": 0.0399, "laplacian_log_n_median_signed_error": 0.0031}
    cell = {"scores": {"median_rel_error_density": 0.086}}
    result = {"command": "python -m benchmarks run curvature", "date": "2026-12-05", "machine": "m", "device": "cpu",
              "versions": {"dpotcube": "0", "jax": "0", "python": "3"},
              "fits": {"200000": {"reference": fit}, str(DENSITY_STARS): {"reference": fit}},
              "density": {"reference": {"ln_f": cell, "acceleration": {"scores": {"median_rel_error_density": 0.126}}},
                          "exact × 1.01": {"ln_f": cell, "acceleration": cell}}}
    rows = [line for line in markdown(result).splitlines() if line.startswith("| reference")]
    assert rows[0].endswith("| 200,000 | 1 | 0.0045 | 0.040 (+0.003) | 16 |  |")
    assert rows[1].endswith("| 1,000,000 | 1 | 0.0045 | 0.040 (+0.003) | 16 | 0.086 / 0.126 |")
    assert markdown(result).splitlines()[-1].startswith("| control: the true ∇ ln n × 1.01 |")


def test_budget_run_on_one_mock_keeps_rows_another_run_wrote_meanwhile(tmp_path, monkeypatch):
    import json

    import benchmarks.budget as budget

    monkeypatch.setattr(budget, "RESULTS", tmp_path / "budget.json")
    (tmp_path / "budget.json").write_text(json.dumps({"mocks": {"plummer-om": {"rows": "written meanwhile"}}}))
    mocks = budget.recorded_with("plummer", {"rows": "this run"})
    assert mocks == {"plummer": {"rows": "this run"}, "plummer-om": {"rows": "written meanwhile"}}


def test_seeds_run_of_one_variant_keeps_the_other_variants_rows():
    from benchmarks.seeds import merge_mocks

    previous = {"plummer": {"frame": "old", "no-frame": "kept"}, "plummer-om": {"frame": "kept too"}}
    merged = merge_mocks(previous, {"plummer": {"frame": "new"}})
    assert merged == {"plummer": {"frame": "new", "no-frame": "kept"}, "plummer-om": {"frame": "kept too"}}


def test_seeds_table_shows_every_seed_and_the_mean_per_variant():
    from benchmarks.seeds import markdown, summary

    builds = [{"seed": 0, "accel": 0.009, "density": 0.068}, {"seed": 1, "accel": 0.0086, "density": 0.151}]
    assert summary(builds) == {"density": {"mean": 0.1095, "min": 0.068, "max": 0.151},
                               "accel": {"mean": 0.0088, "min": 0.0086, "max": 0.009}}
    result = {"command": "python -m benchmarks run seeds", "date": "2026-12-05", "machine": "m", "device": "cpu",
              "versions": {"dpotcube": "0", "jax": "0", "python": "3"},
              "mocks": {"plummer": {"frame": {"builds": builds, **summary(builds)}}}}
    row = next(line for line in markdown(result).splitlines() if line.startswith("| frame |"))
    assert row == "| frame | 0.068 · 0.0090 | 0.151 · 0.0086 | 0.110 · 0.0088 | 0.068–0.151 |"
