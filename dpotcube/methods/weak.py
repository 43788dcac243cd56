"""`weak`: Φ from the weak form of the CBE by generalised least squares, no density model (docs/weak.md).

Its cube members after the fitted ones are draws from the posterior of Φ's coefficients
(`member_kind: posterior`), so error bars need no ensemble of trainings.
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np

from ..cube.blocks import member_blocks, on_worker
from ..cube.variables import POTENTIAL_VARIABLES, CubeVariables
from ..errors import RecipeError
from ..recipe import FieldsSpec, Recipe
from ..sources import PhaseSpaceTable
from ..sources.load import observation_truth
from ..sources.selection import grad_log_selection_of
from ..weak import WeakPotential, fit_weak, load_weak, save_weak
from .base import CubeInputs, FitFiles, Method


class Weak(Method):
    """Φ as a Legendre expansion on the volume; moments of the stars against test functions; posterior members."""

    name = "weak"
    citations = ("dpotcube weak-form CBE method (docs/weak.md); no published precedent",)
    fits_flows = False
    fits_fields = True
    exact_tolerance = (0.06, 0.45)  # 200,000 stars of the exact DF, Legendre degree 4 alone: measured a 4.1%, ρ 31%

    def check(self, recipe: Recipe) -> None:
        if recipe.fields.weak.known_selection == "gradient" and observation_truth(recipe.data) is None:
            raise RecipeError(
                "`fields.weak.known_selection: gradient` needs S(x) as a function of position, which only the mock's "
                "`data.observation` gives; for a table's `selection_column` (S at the stars only) set it to `weights` "
                "or `auto`."
            )
        if recipe.ensemble.seed > 1:
            raise RecipeError(
                f"`ensemble.seed: {recipe.ensemble.seed}`: the `weak` fit is deterministic, so seed members would all "
                "be equal. Set `ensemble.seed: 1`; its error bars come from `fields.weak.n_members` posterior draws "
                "(and `ensemble.bootstrap` members resample the stars)."
            )

    def fit_fields(self, recipe: Recipe, stars: PhaseSpaceTable, files: FitFiles, seed: int) -> None:
        if not isinstance(stars, PhaseSpaceTable):  # a table in chunks (`memory.chunk_stars`)
            raise RecipeError(
                f"`fields.method: weak` sums its moments over the stars held whole, but this table has {len(stars):,} "
                f"stars, more than `memory.chunk_stars` ({recipe.memory.chunk_stars:,}). Raise `memory.chunk_stars` "
                "above the table's size (about 50 bytes a star), or use a method that trains on collocation points."
            )
        save_weak(files.fields, fit_weak(stars, recipe.fields.weak, seed, known_grad_log_selection(recipe, stars)))

    def fitted_pattern_speed(self, fields: Path) -> float | None:
        mean = float(load_weak(fields).pattern_speed[0])
        return None if np.isnan(mean) else mean

    def fitted_parameter_count(self, fields: Path) -> int:
        """Φ's coefficients, and Ω_p and ln ε's coefficients where fitted."""
        model = load_weak(fields)
        return len(model.coefficients) + int(not np.isnan(model.pattern_speed[0])) + len(model.selection_coefficients)

    def extra_member_kinds(self, recipe: Recipe) -> list[str]:
        return ["posterior"] * recipe.fields.weak.n_members

    def published_models(self, recipe: Recipe, fitted: list[Path], seed: int, folder: Path) -> list[Path]:
        """The fitted models, then the nominal model's posterior draws (the cube's members, same seed) saved in
        `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        draws = []
        for i in range(recipe.fields.weak.n_members):
            path = folder / f"posterior_{i}.eqx"
            save_weak(path, _member_model(str(fitted[0]), 0, (seed, i)))
            draws.append(path)
        return [*fitted, *draws]

    def cube_variables(self, fields: FieldsSpec) -> CubeVariables:
        return POTENTIAL_VARIABLES

    def cube_blocks(self, inputs: CubeInputs) -> da.Array:
        """Every fitted member's mean model, then the nominal model's posterior draws (seeded by the cube stage)."""
        fitted = [(str(m.fields.resolve()), m.fields.stat().st_mtime_ns, None) for m in inputs.members]
        path, stamp, _ = fitted[0]
        draws = [(path, stamp, (inputs.seed, i)) for i in range(inputs.recipe.fields.weak.n_members)]
        return member_blocks([*fitted, *draws], inputs.grid, len(POTENTIAL_VARIABLES), _evaluate)


def known_grad_log_selection(recipe: Recipe, stars: PhaseSpaceTable) -> np.ndarray | None:
    """∇ ln S at the stars `(n, 3)` when the recipe asks for the gradient form and S is known as a function; else None
    (1/S weights, or no selection)."""
    spec = recipe.fields.weak
    truth = observation_truth(recipe.data)
    if spec.known_selection == "weights" or spec.unknown_selection_degree or truth is None:
        return None
    return grad_log_selection_of(truth, stars.positions)


def _evaluate(member: tuple[str, int, tuple[int, int] | None], points: np.ndarray) -> np.ndarray:
    return on_worker(_member_model, *member).fields(points).astype(np.float32)


def _member_model(path: str, mtime_ns: int, draw: tuple[int, int] | None) -> WeakPotential:
    """The saved model, or posterior draw `draw = (seed, index)` of it."""
    model = load_weak(Path(path))
    if draw is None:
        return model
    seed, index = draw
    return model.draw(index + 1, seed)[index]
