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
