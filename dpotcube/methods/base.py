"""The abstract CBE method: what it trains, its residual and loss terms, ∇ ln n as it models it, the stages it
needs, the recipe it accepts and how its cube is evaluated.

Every method is one module beside this one and one line in `methods/__init__.py`; nothing outside
`methods/` asks for a method by name.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import dask.array as da
import equinox as eqx
import jax
import xarray as xr
from jaxtyping import Array, Float

from ..cube.evaluate import field_blocks, flow_density_blocks
from ..cube.grid import Grid
from ..cube.store import add_flow_tracer_density
from ..cube.variables import POTENTIAL_VARIABLES, CubeVariables
from ..density.collocation import CollocationPoints
from ..errors import RecipeError
from ..fields.cbe import rotation_term, stationary_residual
from ..fields.model import CBEFields, load_fields, save_fields
from ..fields.train import train_fields
from ..recipe import FieldsSpec, Recipe
from ..sources import PhaseSpaceTable


@dataclass(frozen=True)
class FitFiles:
    """Where one cube member's fitted models are: its p(v|x) and n(x) flows, collocation points and fields.

    `collocation` and `fields` are None for a method that trains no fields.
    """

    velocity: tuple[Path, ...]
    position: tuple[Path, ...]
    collocation: Path | None
    fields: Path | None


@dataclass(frozen=True)
class CubeInputs:
    """What a method needs to evaluate its cube: the recipe, the grid, the nominal stars and every member's files."""

    recipe: Recipe
    grid: Grid
    stars: PhaseSpaceTable
    members: tuple[FitFiles, ...]
    seed: int


class Method(ABC):
    """A CBE method (SCIENCE.md). Subclasses set the class attributes and implement `cube_variables` and `cube_blocks`."""

    name: ClassVar[str]
    """The recipe's `fields.method` value."""
    citations: ClassVar[tuple[str, ...]]
    """The papers to cite for cubes made by the method (cube attribute `references`, catalog `citation`)."""
    needs_position_flow: ClassVar[bool] = False
    """The method reads an n(x) flow (`density.position`)."""
    fits_flows: ClassVar[bool] = True
    """The method reads density models fitted to the stars (stages `velocity_flow_k`, `position_flow_k`)."""
    uses_collocation: ClassVar[bool] = False
    """The method trains on collocation points drawn from the flows (stage `collocation`)."""
    fits_fields: ClassVar[bool] = False
    """The method fits a model of Φ of its own (stage `fields`, file `fields.eqx`; `fit_fields`)."""
    second_network: ClassVar[str | None] = None
    """The network trained beside Φ, as its `fields` recipe key and `CBEFields` attribute (`log_density`, `efficiency`)."""
    networks_label: ClassVar[str] = "Φ"
    """What the fields progress bar says is being trained."""
    exact_tolerance: ClassVar[tuple[float, float | None]]
    """(median |Δa|/|a|, median |Δρ|/ρ) the method reaches on the Plummer mock from exact gradients at the
    contract suite's small budget (tests/test_method_contract.py); None: ρ is checked elsewhere."""

    def check(self, recipe: Recipe) -> None:
        """Refuse a recipe this method cannot run, with the key to change (called by `validate` and `build`)."""
        if self.needs_position_flow and recipe.density.position is None:
            raise RecipeError(
                f"`fields.method: {self.name}` needs the n(x) flow: add a `density.position:` section "
                "(e.g. `position: {flow_layers: 6, nn_width: 64}`), or use `fields.method: conditional`."
            )

    @abstractmethod
    def cube_variables(self, fields: FieldsSpec) -> CubeVariables:
        """The variables the method's blocks hold, in block order."""

    @abstractmethod
    def cube_blocks(self, inputs: CubeInputs) -> da.Array:
        """Lazy `(member, len(cube_variables), nx, ny, nz)` float32 of every member."""

    def finish_cube(self, ds: xr.Dataset, inputs: CubeInputs) -> xr.Dataset:
        """Variables added from outside the blocks (e.g. n from the n(x) flows); by default none."""
        return ds

    def cube_sections(self, recipe: Recipe) -> list[Any]:
        """Recipe sections the cube depends on beyond `cube` (a changed one reruns the cube stage)."""
        return []

    def shares_flows_between_seeds(self) -> bool:
        """Seed members may reuse the nominal flows: their seed then varies the fields' networks."""
        return self.uses_collocation

    def fit_fields(self, recipe: Recipe, stars: PhaseSpaceTable, files: FitFiles, seed: int) -> None:
        """Fit the method's model of Φ into `files.fields` (methods with `fits_fields`)."""
        raise NotImplementedError(f"`{self.name}` fits no model of its own.")

    def fitted_pattern_speed(self, fields: Path) -> float | None:
        """Ω_p (Galactic-rotation sense, km s⁻¹ kpc⁻¹) of the model saved at `fields`, where it fitted one."""
        return None

    def fitted_parameter_count(self, fields: Path) -> int:
        """How many numbers the model saved at `fields` fitted (network weights, or linear coefficients)."""
        return 0

    def extra_member_kinds(self, recipe: Recipe) -> list[str]:
        """Cube members the method adds after the fitted ones (e.g. posterior draws), by kind."""
        return []

    def published_models(self, recipe: Recipe, fitted: list[Path], seed: int, folder: Path) -> list[Path] | None:
        """The saved Φ model of every cube member in cube order, to publish beside the cube (`dpotcube.potential`);
        `fitted`: the fitted members' `fields.eqx`, `seed`: the cube stage's, `folder`: scratch space in the build.
        None: the method has no model of Φ (nothing is published)."""
        return fitted if self.uses_collocation else None


class FieldMethod(Method):
    """A method that trains Φ (and maybe a second network) on the CBE residual at collocation points."""

    uses_collocation = True
    fits_fields = True

    def fit_fields(self, recipe: Recipe, stars: PhaseSpaceTable, files: FitFiles, seed: int) -> None:
        """Train the networks on the collocation points in `files.collocation`; save them and their loss history."""
        model, hyper, history = train_fields(CollocationPoints.load(files.collocation), stars.observer,
                                             stars.volume_radius_kpc, len(stars), recipe.fields, seed, self)
        save_fields(files.fields, model, hyper)
        files.fields.with_name(f"{files.fields.stem}_history.json").write_text(json.dumps(history))

    def fitted_pattern_speed(self, fields: Path) -> float | None:
        speed = load_fields(fields).pattern_speed
        return None if speed is None else float(speed)

    def fitted_parameter_count(self, fields: Path) -> int:
        leaves = jax.tree_util.tree_leaves(eqx.filter(load_fields(fields), eqx.is_inexact_array))
        return int(sum(leaf.size for leaf in leaves))

    def grad_log_n(self, model: CBEFields, x: Float[Array, "3"], grad_log_n_flow: Float[Array, "3"]) -> Float[Array, "3"]:
        """∇ ln n of the true tracers as the method models it (default: the n(x) flow's gradient)."""
        return grad_log_n_flow

    def residual(
        self,
        model: CBEFields,
        x: Float[Array, "3"],
        v: Float[Array, "3"],
        grad_x_log_p: Float[Array, "3"],
        grad_v_log_p: Float[Array, "3"],
        grad_log_n_flow: Float[Array, "3"],
    ) -> Float[Array, ""]:
        """The CBE residual at one collocation point (eqs. 1–3, plus the rotating frame where Ω_p is fitted)."""
        grad_x_log_f = self.grad_log_n(model, x, grad_log_n_flow) + grad_x_log_p
        residual = stationary_residual(v, grad_x_log_f, grad_v_log_p, jax.grad(model.potential)(x))
        if model.pattern_speed is not None:
            residual = residual + model.pattern_speed * rotation_term(x, v, grad_x_log_f, grad_v_log_p)
        return residual

    def extra_loss(
        self, model: CBEFields, spec: FieldsSpec, x: Float[Array, "n 3"], uniform: Float[Array, "n 3"]
    ) -> Float[Array, ""] | None:
        """Loss terms beyond the residual and the negative-density penalty (None: none)."""
        return None

    def extra_values(self, model: CBEFields, points: Float[Array, "n 3"]) -> list[Float[Array, " n"]]:
        """Values written after Φ, a and ρ, in `cube_variables` order."""
        return []

    def extra_variables(self) -> CubeVariables:
        return {}

    def cube_variables(self, fields: FieldsSpec) -> CubeVariables:
        return {**POTENTIAL_VARIABLES, **self.extra_variables()}

    def cube_blocks(self, inputs: CubeInputs) -> da.Array:
        fields = [member.fields for member in inputs.members]
        return field_blocks(fields, inputs.grid, inputs.stars.observer, len(self.cube_variables(inputs.recipe.fields)),
                            self.extra_values)

    def check_collocation(self, has_grad_log_n: bool) -> str | None:
        """Why collocation points without ∇ ln n cannot train this method (None: they can)."""
        if self.needs_position_flow and not has_grad_log_n:
            return (f"`fields.method: {self.name}` needs ∇ ln n at the collocation points, but they were drawn without "
                    "an n(x) flow: add `density.position:` to the recipe.")
        return None


def with_flow_tracer_density(
    ds: xr.Dataset, inputs: CubeInputs, total: float, divide_by_efficiency: bool, how: str
) -> xr.Dataset:
    """`ds` with n(x) from each member's n(x) models (× `total`), divided by ε when asked; shared models once.
    `how`: where n comes from, for the variable's `long_name`."""
    per_flows = {m.position: flow_density_blocks(m.position, inputs.grid, total) for m in inputs.members}
    n_flow = da.stack([per_flows[m.position] for m in inputs.members])
    return add_flow_tracer_density(ds, n_flow, divide_by_efficiency=divide_by_efficiency, how=how)
