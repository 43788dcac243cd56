"""`vanilla` (Deep Potential: Green & Ting 2020; Green et al. 2023): Φ from flows for n(x) and p(v|x)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .base import CubeInputs, FieldMethod, with_flow_tracer_density


class Vanilla(FieldMethod):
    """Eq. (1) with ∇ₓ ln f = ∇ ln n (the n(x) flow) + ∇ₓ ln p; one network, Φ."""

    name = "vanilla"
    citations = ("Green & Ting 2020 (Deep Potential)", "Green et al. 2023, ApJ 942, 26")
    needs_position_flow = True
    exact_tolerance = (0.03, 0.30)

    def finish_cube(self, ds: xr.Dataset, inputs: CubeInputs) -> xr.Dataset:
        """With 1/S-weighted n(x) flows, their density is the true tracers': written as `tracer_density`."""
        position = inputs.recipe.density.position
        if not position.selection_weights:
            return ds
        total = float(np.sum(inputs.stars.inverse_selection_weights(position.max_weight)))
        return with_flow_tracer_density(ds, inputs, total, divide_by_efficiency=False)
