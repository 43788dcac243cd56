"""`pointwise` (Buckley et al. 2023; Lim et al. 2025): a by least squares at every grid point, ρ from its
smoothed divergence; no networks, no collocation."""

from __future__ import annotations

import dask.array as da

from ..cube.variables import CubeVariables
from ..pointwise.evaluate import PointwiseFiles, pointwise_blocks, pointwise_fields
from ..recipe import FieldsSpec, Recipe
from .base import CubeInputs, Method


class Pointwise(Method):
    """Reads the p(v|x) and n(x) flows on the grid itself (settings under `fields.pointwise`)."""

    name = "pointwise"
    citations = ("Buckley et al. 2023", "Lim, Putney, Buckley & Shih, JCAP 2025")
    needs_position_flow = True
    exact_tolerance = (1e-3, None)  # ρ is the kernel-smoothed estimate: tests/test_pointwise.py checks it against the kernel-averaged truth

    def cube_variables(self, fields: FieldsSpec) -> CubeVariables:
        return pointwise_fields(fields.pointwise)

    def cube_blocks(self, inputs: CubeInputs) -> da.Array:
        combine = inputs.recipe.density.ensemble.combine
        flows = [PointwiseFiles(m.velocity, m.position, combine) for m in inputs.members]
        return pointwise_blocks(flows, inputs.grid, inputs.recipe.fields.pointwise, inputs.seed)

    def cube_sections(self, recipe: Recipe) -> list:
        return [recipe.fields.pointwise]
