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
        """The n(x) model's density as `tracer_density` where it is the true tracers': with 1/S weights, or for the
        built-in mock seen without `data.observation` (every star in the volume is in the sample)."""
        data, position = inputs.recipe.data, inputs.recipe.density.position
        if position.selection_weights:
            total = float(np.sum(inputs.stars.inverse_selection_weights(position.max_weight)))
            how = "n(x) model weighted by 1/S"
        elif data.every_star_seen:
            total, how = float(len(inputs.stars)), "n(x) model of a complete sample"
        else:
            return ds
        return with_flow_tracer_density(ds, inputs, total, divide_by_efficiency=False, how=how)
