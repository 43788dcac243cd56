"""Helpers shared by test modules (test modules never import each other)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from dpotcube.cli import app
from dpotcube.recipe import DataSpec, ObservationSpec
from dpotcube.sources.load import load_stars, plummer_truth

from .conftest import exact_collocation


def invoke_build(tmp_path: Path, recipe: Path, catalog: Path, *extra: str):
    """`dpotcube build RECIPE --out TMP/build --set publish.catalog=CATALOG [extra]` in-process; the click result."""
    args = ["build", str(recipe), "--out", str(tmp_path / "build"), "--set", f"publish.catalog={catalog}", *extra]
    return CliRunner().invoke(app, args)


def run_build(tmp_path: Path, recipe: Path, *extra: str):
    """`invoke_build` into `TMP/catalog/catalog.yaml`, asserting success; (catalog, result)."""
    catalog = tmp_path / "catalog" / "catalog.yaml"
    result = invoke_build(tmp_path, recipe, catalog, *extra)
    assert result.exit_code == 0, result.output
    return catalog, result


def observed_collocation(observation: ObservationSpec | None, n_positions: int, seed: int):
    """Exact collocation on a Plummer mock seen through `observation`: (points, truth, stars, ∇ ln S per point).

    Positions are observed stars; ∇ₓ ln p, ∇ᵥ ln p are exact (a position-only selection leaves p(v|x)
    alone); `grad_log_n` is ∇ ln n_obs = ∇ ln n + ∇ ln S, what an unweighted n(x) flow would give.
    """
    data = DataSpec(n_stars=max(n_positions, 2000), observation=observation)
    truth, stars = plummer_truth(data), load_stars(data, seed=seed)
    positions = stars.positions[:n_positions]
    points = exact_collocation(truth, positions, velocities_per_position=4, seed=seed + 1)
    grad_log_s = np.asarray(truth.selection.grad_log_selection(positions))
    grad_log_obs = np.asarray(truth.grad_log_tracer_density(positions)) + grad_log_s
    points = dataclasses.replace(points, grad_log_n=np.repeat(grad_log_obs, 4, axis=0).astype(np.float32))
    return points, truth, stars, np.repeat(grad_log_s, 4, axis=0)
