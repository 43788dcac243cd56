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
