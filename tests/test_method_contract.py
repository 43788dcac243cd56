"""The contract every registered CBE method keeps (as gala runs one physics suite on every potential).

Each method recovers the Plummer mock from exact gradients within its stated `exact_tolerance`, writes the
cube variables it promises, round-trips save/load, and evaluates a cube block equal to direct evaluation.
`EXACT_CASES` holds one small exact-gradient case per method; a method registered without one fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN as G
from dpotcube.constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3
from dpotcube.cube.evaluate import evaluate_points
from dpotcube.cube.grid import make_grid
from dpotcube.density.flows import save_flow
from dpotcube.fields.model import load_fields, save_fields
from dpotcube.fields.nets import laplacian
from dpotcube.fields.train import train_fields
from dpotcube.methods import METHODS, CubeInputs, FitFiles, Method, get_method
from dpotcube.pointwise import plummer_pointwise
from dpotcube.pointwise.evaluate import PointwiseFiles, evaluate_block, member_setup
from dpotcube.recipe import CubeSpec, ObservationSpec, recipe_from_dict

from .conftest import FLOW_POSITION, FLOW_VELOCITY
from .helpers import observed_collocation

SMALL_NETS = {"potential": {"width": 64, "depth": 3}, "log_density": {"width": 48, "depth": 3},
              "efficiency": {"width": 64, "depth": 3}, "steps": 1200, "batch_size": 1024}


@dataclass(frozen=True)
class ExactCase:
    """A method's model fitted without density-model error, with the truth to score it and test positions."""

    model: Any
    hyperparameters: dict | None
    truth: Any
    stars: Any
    x: np.ndarray
    recipe: Any
    accel: Callable[[np.ndarray], np.ndarray]
    density: Callable[[np.ndarray], np.ndarray] | None


def _field_case(method: str, observation: ObservationSpec, true_tracers: bool) -> ExactCase:
    """Fields of `method` trained on exact gradients of the observed mock.

    `true_tracers`: ∇ ln n of the true tracers (a 1/S-weighted n(x) flow at its best) instead of the observed
    density's; `conditional` ignores ∇ ln n.
    """
    points, truth, stars, grad_log_s = observed_collocation(observation, 2048, seed=4)
    if true_tracers:
        points = dataclasses.replace(points, grad_log_n=(points.grad_log_n - grad_log_s).astype(np.float32))
    recipe = recipe_from_dict({"name": "c", "fields": {"method": method, **SMALL_NETS}, "density": {"position": {}}})
    model, hyper, history = train_fields(points, stars.observer, stars.volume_radius_kpc, len(stars), recipe.fields,
                                     seed=5, method=get_method(method))
    assert history["loss"][-1] < 0.01 * history["loss"][0]
    x = np.asarray(stars.positions[:1500], np.float32)

    def density(pts):
        return jax.vmap(laplacian, in_axes=(None, 0))(model.potential, jnp.asarray(pts)) / (4 * np.pi * G)

    accel = lambda pts: -jax.vmap(jax.grad(model.potential))(jnp.asarray(pts))  # noqa: E731
    return ExactCase(model, hyper, truth, stars, x, recipe, accel, density)


def _pointwise_case() -> ExactCase:
    observation = ObservationSpec()
    _, truth, stars, _ = observed_collocation(observation, 512, seed=4)
    model = plummer_pointwise(truth, 64, "halton", seed=3)
    recipe = recipe_from_dict({"name": "c", "fields": {"method": "pointwise"}, "density": {"position": {}}})
    x = np.asarray(stars.positions[:256], np.float32)
    return ExactCase(model, None, truth, stars, x, recipe, lambda pts: jax.vmap(model)(jnp.asarray(pts)), None)


EXACT_CASES: dict[str, Callable[[], ExactCase]] = {
    "vanilla": lambda: _field_case("vanilla", ObservationSpec(), true_tracers=True),
    "conditional": lambda: _field_case("conditional", ObservationSpec(), true_tracers=False),
    "selection": lambda: _field_case("selection", ObservationSpec(dust=None), true_tracers=False),
    "pointwise": _pointwise_case,
}
"""One exact-gradient case per registered method (the dusty mock; `selection` without dust: docs/methods.md)."""


@pytest.fixture(scope="module", params=sorted(METHODS))
def case(request) -> tuple[Method, ExactCase]:
    if request.param not in EXACT_CASES:
        pytest.fail(f"Method `{request.param}` is registered without an exact case in EXACT_CASES.")
    return METHODS[request.param], EXACT_CASES[request.param]()


def test_every_registered_method_has_an_exact_case():
    assert set(EXACT_CASES) == set(METHODS)


def test_recovers_the_mock_from_exact_gradients(case):
    method, exact = case
    accel_tol, density_tol = method.exact_tolerance
    accel, true_accel = np.asarray(exact.accel(exact.x)), exact.truth.acceleration(exact.x)
    accel_err = np.median(np.linalg.norm(accel - true_accel, axis=1) / np.linalg.norm(true_accel, axis=1))
    assert accel_err < accel_tol
    assert np.mean(np.sum(accel * exact.x, axis=1) < 0) > 0.99  # a points inwards, to the Plummer centre
    if density_tol is not None:
        density_err = np.median(np.abs(np.asarray(exact.density(exact.x)) / exact.truth.density(exact.x) - 1))
        assert density_err < density_tol


def _cube_inputs(method: Method, exact: ExactCase, tmp_path, velocity_flow_fit, position_flow_fit) -> CubeInputs:
    """A small cube's inputs: the case's fields (saved), or briefly fitted flows for a method without fields."""
    recipe = exact.recipe.model_copy(update={"cube": CubeSpec(spacing_kpc=1.0, chunk=4, baryon_model="none")})
    if method.uses_collocation:
        save_fields(tmp_path / "fields.eqx", exact.model, exact.hyperparameters)
        files = FitFiles((), (), None, tmp_path / "fields.eqx")
    else:
        save_flow(tmp_path / "v.eqx", velocity_flow_fit[0], FLOW_VELOCITY)
        save_flow(tmp_path / "n.eqx", position_flow_fit[0], FLOW_POSITION)
        pointwise = recipe.fields.pointwise.model_copy(update={"n_velocities": 16, "density": False})
        recipe = recipe.model_copy(update={"fields": recipe.fields.model_copy(update={"pointwise": pointwise})})
        files = FitFiles((tmp_path / "v.eqx",), (tmp_path / "n.eqx",), None, None)
    grid = make_grid(recipe.cube, exact.stars.observer, exact.stars.volume_radius_kpc)
    return CubeInputs(recipe, grid, exact.stars, (files,), seed=7)


def test_cube_block_holds_the_promised_variables_and_equals_direct_evaluation(
    case, tmp_path, velocity_flow_fit, position_flow_fit
):
    method, exact = case
    inputs = _cube_inputs(method, exact, tmp_path, velocity_flow_fit, position_flow_fit)
    variables = method.cube_variables(inputs.recipe.fields)
    assert variables and all(len(v) == 2 for v in variables.values())  # (units, long_name) each
    blocks = method.cube_blocks(inputs)
    assert blocks.shape == (1, len(variables), *inputs.grid.shape) and blocks.dtype == np.float32
    values = blocks[0].compute().reshape(len(variables), -1)
    points = inputs.grid.points(tuple((0, n) for n in inputs.grid.shape))
    if method.uses_collocation:
        model = load_fields(inputs.members[0].fields)
        direct = evaluate_points(model, jnp.asarray(exact.stars.observer, jnp.float32),
                                 jnp.asarray(points, jnp.float32), method.extra_values)
        assert list(variables)[:5] == ["potential", "accel_x", "accel_y", "accel_z", "density"]
        np.testing.assert_allclose(values, np.asarray(direct), rtol=2e-5, atol=1e-5 * np.abs(direct).max())
    else:
        spec = inputs.recipe.fields.pointwise
        files = inputs.members[0]
        member = PointwiseFiles(files.velocity, files.position, inputs.recipe.density.ensemble.combine)
        model, offsets = member_setup(member, spec, inputs.seed)
        direct = evaluate_block(model, points, spec, offsets, exact.stars.observer, exact.stars.volume_radius_kpc)
        np.testing.assert_allclose(values, direct, rtol=1e-4, atol=1e-4 * np.nanmax(np.abs(direct)))
    inside = np.asarray(inputs.grid.in_volume()).reshape(-1)
    assert np.isfinite(values[:, inside]).all()


def test_saved_model_round_trips(case, tmp_path):
    method, exact = case
    if not method.uses_collocation:
        pytest.skip(f"`{method.name}` trains no model of its own: its flows are checked by the density-model contract")
    save_fields(tmp_path / "f.eqx", exact.model, exact.hyperparameters)
    loaded = load_fields(tmp_path / "f.eqx")
    x = jnp.asarray(exact.x[:64])
    reference = jnp.asarray(exact.stars.observer, jnp.float32)
    np.testing.assert_array_equal(evaluate_points(loaded, reference, x, method.extra_values),
                                  evaluate_points(exact.model, reference, x, method.extra_values))
    assert loaded.method == method.name


def test_density_unit_is_msun_per_pc3(case):
    """ρ in the cube is ∇²Φ/(4πG) in M☉ pc⁻³: the conversion a unit slip would break."""
    method, exact = case
    if not method.uses_collocation:
        pytest.skip("no Φ network")
    x = jnp.asarray(exact.x[:1024])
    cube_rho = np.asarray(evaluate_points(exact.model, x[0], x)[4])
    truth_rho = exact.truth.density(np.asarray(x)) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
    assert np.median(np.abs(cube_rho / truth_rho - 1)) < method.exact_tolerance[1]
