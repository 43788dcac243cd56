"""The contract every registered CBE method keeps (as gala runs one physics suite on every potential).

Each method recovers the Plummer mock from exact gradients within its stated `exact_tolerance`, writes the
cube variables it promises, round-trips save/load, and evaluates a cube block equal to direct evaluation.
`EXACT_CASES` holds one small exact-gradient case per method; a method registered without one fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN as G
from dpotcube.constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3
from dpotcube.cube.evaluate import evaluate_points
from dpotcube.cube.grid import make_grid
from dpotcube.density.registry import save_density
from dpotcube.fields.model import load_fields, save_fields
from dpotcube.fields.nets import laplacian
from dpotcube.fields.train import train_fields
from dpotcube.methods import METHODS, CubeInputs, FitFiles, Method, get_method
from dpotcube.pointwise import plummer_pointwise, pointwise_flows, qmc_normals
from dpotcube.pointwise.evaluate import PointwiseFiles, evaluate_block, member_setup
from dpotcube.recipe import CubeSpec, DataSpec, ObservationSpec, recipe_from_dict
from dpotcube.sources.load import load_stars, plummer_truth
from dpotcube.weak import fit_weak, load_weak, save_weak

from .conftest import FLOW_POSITION, FLOW_VELOCITY
from .helpers import observed_collocation

SMALL_NETS = {"potential": {"width": 64, "depth": 3}, "log_density": {"width": 48, "depth": 3},
              "efficiency": {"width": 64, "depth": 3}, "steps": 1200, "batch_size": 1024,
              "polish_steps": 150, "polish_points": 2048, "polish_laplacian_points": 256,
              "polish_sampling": "stars", "polish_validation_points": 0}


@dataclass(frozen=True)
class ExactCase:
    """A method's model fitted without density-model error, with the truth to score it, test positions, and how
    to save it as a build would (`save(folder, recipe) -> (recipe, FitFiles)`), evaluate the saved files directly
    (`direct(files, recipe, points, seed) -> (f, n)`) and the model in memory the same way (`memory`), and give ρ in the cube's unit (`cube_density`, M☉ pc⁻³)."""

    truth: Any
    stars: Any
    x: np.ndarray
    recipe: Any
    accel: Callable[[np.ndarray], np.ndarray]
    density: Callable[[np.ndarray], np.ndarray] | None
    save: Callable[[Path, Any], tuple[Any, FitFiles]]
    direct: Callable[[FitFiles, Any, np.ndarray, int], np.ndarray]
    memory: Callable[[Any, np.ndarray, int], np.ndarray]
    cube_density: Callable[[np.ndarray], np.ndarray] | None


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
    extra = get_method(method).extra_values
    reference = jnp.asarray(stars.observer, jnp.float32)

    def save(folder: Path, recipe):
        save_fields(folder / "fields.eqx", model, hyper)
        return recipe, FitFiles((), (), None, folder / "fields.eqx")

    def direct(files: FitFiles, recipe, pts: np.ndarray, seed: int) -> np.ndarray:
        return np.asarray(evaluate_points(load_fields(files.fields), reference, jnp.asarray(pts, jnp.float32), extra))

    def memory(recipe, pts: np.ndarray, seed: int) -> np.ndarray:
        return np.asarray(evaluate_points(model, reference, jnp.asarray(pts, jnp.float32), extra))

    def density(pts):
        return jax.vmap(laplacian, in_axes=(None, 0))(model.potential, jnp.asarray(pts)) / (4 * np.pi * G)

    accel = lambda pts: -jax.vmap(jax.grad(model.potential))(jnp.asarray(pts))  # noqa: E731
    cube_density = lambda pts: evaluate_points(model, reference, jnp.asarray(pts))[4]  # noqa: E731
    x = np.asarray(stars.positions[:1500], np.float32)
    return ExactCase(truth, stars, x, recipe, accel, density, save, direct, memory, cube_density)


def _pointwise_case(velocity_flow_fit, position_flow_fit) -> ExactCase:
    """The exact Plummer p(v|x) through the pointwise solver; briefly fitted flows for the cube path."""
    _, truth, stars, _ = observed_collocation(ObservationSpec(), 512, seed=4)
    model = plummer_pointwise(truth, 64, "halton", seed=3)
    recipe = recipe_from_dict({"name": "c", "fields": {"method": "pointwise"}, "density": {"position": {}}})

    def save(folder: Path, recipe):
        save_density(folder / "v.eqx", velocity_flow_fit[0], FLOW_VELOCITY)
        save_density(folder / "n.eqx", position_flow_fit[0], FLOW_POSITION)
        pointwise = recipe.fields.pointwise.model_copy(update={"n_velocities": 16, "density": False})
        recipe = recipe.model_copy(update={"fields": recipe.fields.model_copy(update={"pointwise": pointwise})})
        return recipe, FitFiles((folder / "v.eqx",), (folder / "n.eqx",), None, None)

    def direct(files: FitFiles, recipe, pts: np.ndarray, seed: int) -> np.ndarray:
        spec = recipe.fields.pointwise
        member = PointwiseFiles(files.velocity, files.position, recipe.density.ensemble.combine)
        flows, offsets = member_setup(member, spec, seed)
        return evaluate_block(flows, pts, spec, offsets, stars.observer, stars.volume_radius_kpc)

    def memory(recipe, pts: np.ndarray, seed: int) -> np.ndarray:
        spec = recipe.fields.pointwise
        normals = qmc_normals(spec.n_velocities, spec.qmc, seed)
        flows = pointwise_flows([velocity_flow_fit[0]], [position_flow_fit[0]], normals, spec.max_speed_kms)
        return evaluate_block(flows, pts, spec, None, stars.observer, stars.volume_radius_kpc)

    x = np.asarray(stars.positions[:256], np.float32)
    accel = lambda pts: jax.vmap(model)(jnp.asarray(pts))  # noqa: E731
    return ExactCase(truth, stars, x, recipe, accel, None, save, direct, memory, None)


def _weak_case() -> ExactCase:
    """The weak fit on 200,000 stars of the exact (dust-free) Plummer DF: no gradients at all."""
    data = DataSpec(n_stars=200_000)
    truth, stars = plummer_truth(data), load_stars(data, seed=4)
    recipe = recipe_from_dict({"name": "c", "fields": {"method": "weak", "weak": {
        "potential_degree": 4, "test_degree": 4, "n_members": 2}}})
    model = fit_weak(stars, recipe.fields.weak)

    def save(folder: Path, recipe):
        save_weak(folder / "fields.eqx", model)
        return recipe, FitFiles((), (), None, folder / "fields.eqx")

    def evaluate(fitted, recipe, pts: np.ndarray, seed: int) -> np.ndarray:
        return np.stack([m.fields(pts) for m in (fitted, *fitted.draw(recipe.fields.weak.n_members, seed))])

    def direct(files: FitFiles, recipe, pts: np.ndarray, seed: int) -> np.ndarray:
        return evaluate(load_weak(files.fields), recipe, pts, seed)

    x = np.asarray(stars.positions[:3000])
    density = lambda pts: model.density(pts) / MSUN_PER_KPC3_TO_MSUN_PER_PC3  # noqa: E731
    memory = lambda recipe, pts, seed: evaluate(model, recipe, pts, seed)  # noqa: E731
    return ExactCase(truth, stars, x, recipe, model.acceleration, density, save, direct, memory, model.density)


EXACT_CASES: dict[str, Callable[..., ExactCase]] = {
    "vanilla": lambda *flows: _field_case("vanilla", ObservationSpec(), true_tracers=True),
    "conditional": lambda *flows: _field_case("conditional", ObservationSpec(), true_tracers=False),
    "selection": lambda *flows: _field_case("selection", ObservationSpec(dust=None), true_tracers=False),
    "pointwise": _pointwise_case,
    "weak": lambda *flows: _weak_case(),
}
"""One exact case per registered method, given the session's briefly fitted (velocity, position) flows (the
dusty mock; `selection` without dust: docs/methods.md)."""


@pytest.fixture(scope="module", params=sorted(METHODS))
def case(request, velocity_flow_fit, position_flow_fit) -> tuple[Method, ExactCase]:
    if request.param not in EXACT_CASES:
        pytest.fail(f"Method `{request.param}` is registered without an exact case in EXACT_CASES.")
    return METHODS[request.param], EXACT_CASES[request.param](velocity_flow_fit, position_flow_fit)


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


def test_cube_block_holds_the_promised_variables_and_equals_direct_evaluation(case, tmp_path):
    method, exact = case
    recipe = exact.recipe.model_copy(update={"cube": CubeSpec(spacing_kpc=1.0, chunk=4, baryon_model="none")})
    recipe, files = exact.save(tmp_path, recipe)
    grid = make_grid(recipe.cube, exact.stars.observer, exact.stars.volume_radius_kpc)
    inputs = CubeInputs(recipe, grid, exact.stars, (files,), seed=7)
    variables = method.cube_variables(recipe.fields)
    assert variables and all(len(v) == 2 for v in variables.values())  # (units, long_name) each
    members = 1 + len(method.extra_member_kinds(recipe))
    blocks = method.cube_blocks(inputs)
    assert blocks.shape == (members, len(variables), *grid.shape) and blocks.dtype == np.float32
    values = blocks.compute().reshape(members, len(variables), -1)
    points = grid.points(tuple((0, n) for n in grid.shape))
    direct = np.asarray(exact.direct(files, recipe, points, inputs.seed)).reshape(values.shape)
    np.testing.assert_allclose(values, direct, rtol=1e-4, atol=1e-5 * np.nanmax(np.abs(direct)))
    if "potential" in variables:
        assert list(variables)[:5] == ["potential", "accel_x", "accel_y", "accel_z", "density"]
    inside = np.asarray(grid.in_volume()).reshape(-1)
    assert np.isfinite(values[..., inside]).all()


def test_saved_model_round_trips(case, tmp_path):
    """What a build saves evaluates exactly as the model in memory (for a method without a model: its flows)."""
    method, exact = case
    recipe, files = exact.save(tmp_path, exact.recipe)
    x = np.asarray(exact.x[:64], np.float32)
    np.testing.assert_array_equal(exact.direct(files, recipe, x, 3), exact.memory(recipe, x, 3))


def test_density_unit_is_msun_per_pc3(case):
    """ρ in the cube is ∇²Φ/(4πG) in M☉ pc⁻³: the conversion a unit slip would break."""
    method, exact = case
    if exact.cube_density is None:
        pytest.skip("ρ is the kernel-smoothed estimate: tests/test_pointwise.py checks its units against the truth")
    x = np.asarray(exact.x[:1024], np.float32)
    truth_rho = exact.truth.density(x) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
    assert np.median(np.abs(np.asarray(exact.cube_density(x)) / truth_rho - 1)) < method.exact_tolerance[1]
