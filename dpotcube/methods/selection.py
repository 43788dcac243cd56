"""`selection` (ClearPotential: Putney et al.): Φ and a dust/selection efficiency ε(x) from the observed flows."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import xarray as xr
from jaxtyping import Array, Float

from ..cube.variables import EFFICIENCY, CubeVariables
from ..errors import RecipeError
from ..fields.model import CBEFields
from ..recipe import FieldsSpec, Recipe
from .base import CubeInputs, FieldMethod, with_flow_tracer_density


class Selection(FieldMethod):
    """Eq. (2): ∇ ln n = ∇ ln n_obs (the observed n(x) flow) − ∇ ln ε; λ_ε⟨(ln ε)²⟩ pulls ε to 1."""

    name = "selection"
    citations = ("Putney et al., arXiv:2412.14236 (ClearPotential)", "Putney et al., arXiv:2512.09989")
    needs_position_flow = True
    second_network = "efficiency"
    networks_label = "Φ, ε"
    exact_tolerance = (0.06, 0.40)

    def check(self, recipe: Recipe) -> None:
        super().check(recipe)
        if recipe.density.position.selection_weights:
            raise RecipeError(
                "`fields.method: selection` learns ε(x) from the observed density: set "
                "`density.position.selection_weights: false` (weights 1/S are for `vanilla`)."
            )

    def grad_log_n(self, model: CBEFields, x: Float[Array, "3"], grad_log_n_flow: Float[Array, "3"]) -> Float[Array, "3"]:
        return grad_log_n_flow - jax.grad(model.log_efficiency)(x)

    def extra_loss(
        self, model: CBEFields, spec: FieldsSpec, x: Float[Array, "n 3"], uniform: Float[Array, "n 3"]
    ) -> Float[Array, ""]:
        return spec.efficiency_weight * jnp.mean(jax.vmap(model.log_efficiency)(x) ** 2)

    def extra_values(self, model: CBEFields, points: Float[Array, "n 3"]) -> list[Float[Array, " n"]]:
        return [jax.vmap(model.efficiency)(points)]

    def extra_variables(self) -> CubeVariables:
        return {"efficiency": EFFICIENCY}

    def finish_cube(self, ds: xr.Dataset, inputs: CubeInputs) -> xr.Dataset:
        """The true tracer density: the observed n(x) flows (× the star count) divided by ε."""
        return with_flow_tracer_density(ds, inputs, len(inputs.stars), divide_by_efficiency=True,
                                        how="n(x) model of the observed stars divided by efficiency")
