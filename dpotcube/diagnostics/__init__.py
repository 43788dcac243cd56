"""The published diagnostics of a cube (Lim, Putney, Buckley & Shih 2025), one module each:

- `solar`: the acceleration at the Sun averaged over a 100 pc ball;
- `local_density`: ρ and ρ_DM at the Sun and averaged over independent points on r = r⊙;
- `symmetry`: north–south differences of a_r and a_θ, and a_φ/|a|, along the published curves;
- `residual`: the distribution of ∂ ln f/∂t at the Sun (density model from `gradients`);
- `gnfw`: a generalized-NFW fit of ρ_DM(r) with the published priors (sampler in `mcmc`);

and `run_diagnostics`, which writes them all as JSON, Markdown and PNGs.
"""

from .gnfw import PUBLISHED_PRIORS, GNFWPriors, fit_gnfw, gnfw_density
from .gradients import BuildGradients, GradientSource, PlummerGradients, build_gradients
from .local_density import local_density
from .residual import residual_at_sun
from .run import FILES, parse_acceleration, run_diagnostics
from .solar import lim_axes, solar_acceleration
from .symmetry import north_south

__all__ = [
    "FILES", "PUBLISHED_PRIORS", "BuildGradients", "GNFWPriors", "GradientSource", "PlummerGradients",
    "build_gradients", "fit_gnfw", "gnfw_density", "lim_axes", "local_density", "north_south", "parse_acceleration",
    "residual_at_sun", "run_diagnostics", "solar_acceleration",
]
