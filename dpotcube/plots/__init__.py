"""Quicklook figures of a cube: written beside every cube by `dpotcube build`, and by `dpotcube plot`.

Each figure is a function of the cube returning a matplotlib `Figure` (no pyplot state), so
notebooks can call them directly.
"""

from .arcs import polar_arc_density_figure
from .lines import north_south_figure
from .meridional import meridional_acceleration_figure
from .midplane import ReferencePotential, midplane_potential_figure
from .plane import plane_figure
from .profiles import kz_figure, surface_density_figure, vcirc_figure
from .quicklook import QUICKLOOKS, Quicklook, copy_quicklooks, truth_from_attrs, write_quicklooks
from .selection import selection_plane_figure
from .sky import efficiency_sky_figure

__all__ = [
    "QUICKLOOKS", "Quicklook", "ReferencePotential", "copy_quicklooks", "efficiency_sky_figure",
    "meridional_acceleration_figure", "midplane_potential_figure", "north_south_figure", "plane_figure",
    "polar_arc_density_figure", "selection_plane_figure", "truth_from_attrs", "write_quicklooks",
    "kz_figure", "surface_density_figure", "vcirc_figure",
]
