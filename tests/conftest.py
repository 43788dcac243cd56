"""Shared fixtures: a small Plummer mock, small flows fitted on it, a field model trained on its exact gradients, and a tiny build."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Before JAX is imported: every worker and every build subprocess shares one compilation cache, so the
# many small builds of the suite compile each program once (dpotcube.compile_cache keeps this directory).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "dpotcube-tests-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
if "jax" in sys.modules:  # a plugin imported it first: its config has already read the environment
    import jax

    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

import numpy as np
import pytest

from dpotcube.density.collocation import CollocationPoints
from dpotcube.recipe import DataSpec, FieldsSpec, FlowSpec, PositionFlowSpec
from dpotcube.sources.load import load_stars, plummer_truth
from dpotcube.sources.mocks import PlummerTruth, _speed_fractions, _unit_vectors

REPO = Path(__file__).resolve().parents[1]

FLOW_VELOCITY = FlowSpec(flow_layers=3, nn_width=32, max_epochs=8, batch_size=256)
FLOW_POSITION = PositionFlowSpec(flow_layers=3, nn_width=32, max_epochs=8, batch_size=256)
"""Small flows: fitted once per session (the fit's cost is mostly compilation, not epochs)."""


@pytest.fixture(scope="session")
def data_spec() -> DataSpec:
    return DataSpec(n_stars=20_000)


@pytest.fixture(scope="session")
def truth(data_spec) -> PlummerTruth:
    return plummer_truth(data_spec)


@pytest.fixture(scope="session")
def stars(data_spec):
    return load_stars(data_spec, seed=0)


@pytest.fixture(scope="session")
def velocity_flow_fit(stars):
    """p(v|x) fitted on the mock with `FLOW_VELOCITY`: (flow, history)."""
    from dpotcube.density.maf import fit_flow

    return fit_flow(stars.velocities, FLOW_VELOCITY, seed=0, conditions=stars.positions)


@pytest.fixture(scope="session")
def position_flow_fit(stars):
    """n(x) fitted on the mock with `FLOW_POSITION` (ball support): (flow, history)."""
    from dpotcube.density.maf import fit_flow

    return fit_flow(stars.positions, FLOW_POSITION, seed=0, ball=(stars.observer, stars.volume_radius_kpc))


def exact_collocation(truth: PlummerTruth, positions: np.ndarray, velocities_per_position: int, seed: int) -> CollocationPoints:
    """Collocation points with velocities drawn from the exact DF and exact ∇ ln p (no flow error)."""
    rng = np.random.default_rng(seed)
    x = np.repeat(positions, velocities_per_position, axis=0)
    v_esc = np.sqrt(2 * np.asarray(truth.relative_potential(x)))
    v = (v_esc * _speed_fractions(rng, len(x)))[:, None] * _unit_vectors(rng, len(x))
    gx, gv = truth.grad_log_p(x, v)
    return CollocationPoints(*(np.asarray(a, np.float32) for a in (x, v, gx, gv)))


@pytest.fixture(scope="session")
def exact_fields(truth, stars):
    """Conditional fields trained on exact Plummer gradients: the solver without flow error."""
    from dpotcube.fields.train import train_fields
    from dpotcube.methods import get_method

    positions = stars.positions[np.random.default_rng(1).choice(len(stars), 8192, replace=False)]
    points = exact_collocation(truth, positions, velocities_per_position=4, seed=2)
    spec = FieldsSpec(potential={"width": 64, "depth": 3}, log_density={"width": 64, "depth": 3}, steps=2500,
                      polish_steps=600, polish_points=2048, polish_laplacian_points=256, polish_sampling="volume",
                      polish_validation_points=0, polish_by_position=True, potential_reference="cored-log")
    model, hyper, history = train_fields(points, stars.observer, stars.volume_radius_kpc, len(stars), spec, seed=3,
                                           method=get_method(spec.method))
    return model, hyper, history


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory):
    """`recipes/tiny.yaml` built once per session, as `dpotcube build RECIPE --out DIR/build --set
    publish.catalog=DIR/catalog/catalog.yaml` does, with each stage's wall time and peak memory measured.

    Returns (DIR, the catalog, the measurement of `benchmarks.builds.measured_build`).
    """
    from benchmarks.builds import measured_build

    tmp_path = tmp_path_factory.mktemp("tiny")
    catalog = tmp_path / "catalog" / "catalog.yaml"
    _, measured = measured_build(REPO / "recipes" / "tiny.yaml", [f"publish.catalog={catalog}"], tmp_path / "build")
    return tmp_path, catalog, measured
