"""`conditional` (Kalda & Green, conditional Deep Potential): Φ and the true tracer density n(x) from p(v|x) alone."""

from __future__ import annotations

import jax
from jaxtyping import Array, Float

from ..cube.variables import TRACER_DENSITY, CubeVariables
from ..fields.losses import position_log_likelihood
from ..fields.model import CBEFields
from ..recipe import FieldsSpec
from .base import FieldMethod


class Conditional(FieldMethod):
    """Eq. (3): ∇ ln n is the ln n network's gradient; an optional weak tie of n to the star counts."""

    name = "conditional"
    citations = ("Kalda & Green, conditional Deep Potential: 'Determining the Milky Way gravitational potential without "
                 "selection functions'",)
    second_network = "log_density"
    networks_label = "Φ, ln n"
    exact_tolerance = (0.05, 0.35)

    def grad_log_n(self, model: CBEFields, x: Float[Array, "3"], grad_log_n_flow: Float[Array, "3"]) -> Float[Array, "3"]:
        return jax.grad(model.log_density)(x)

    def extra_loss(
        self, model: CBEFields, spec: FieldsSpec, x: Float[Array, "n 3"], uniform: Float[Array, "n 3"]
    ) -> Float[Array, ""] | None:
        if spec.density_tie_weight <= 0:
            return None
        # collocation positions are star positions: their likelihood under n, against uniform points in the volume
        tie = position_log_likelihood(jax.vmap(model.log_density)(x), jax.vmap(model.log_density)(uniform))
        return spec.density_tie_weight * tie

    def extra_values(self, model: CBEFields, points: Float[Array, "n 3"]) -> list[Float[Array, " n"]]:
        return [jax.vmap(model.tracer_density)(points)]

    def extra_variables(self) -> CubeVariables:
        return {"tracer_density": TRACER_DENSITY}
