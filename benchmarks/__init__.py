"""Benchmarks: accuracy against analytic truth, wall time and memory. Results in benchmarks/results/ and docs/."""
