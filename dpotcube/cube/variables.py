"""Names, units and descriptions of the cube's variables (CUBE_SPEC; docs/cube-format.md): one table for every method."""

from __future__ import annotations

CubeVariables = dict[str, tuple[str, str]]
"""Cube variable name → (units, long_name), in the order a method's blocks stack them."""

POTENTIAL_VARIABLES: CubeVariables = {
    "potential": ("km2 s-2", "gravitational potential, zero at the reference point"),
    "accel_x": ("km2 s-2 kpc-1", "acceleration -dPhi/dx"),
    "accel_y": ("km2 s-2 kpc-1", "acceleration -dPhi/dy"),
    "accel_z": ("km2 s-2 kpc-1", "acceleration -dPhi/dz"),
    "density": ("solMass pc-3", "total mass density laplacian(Phi)/(4 pi G)"),
}
"""Variables every Φ-network method writes first, in `evaluate_points` order."""

TRACER_DENSITY = ("kpc-3", "true (selection-corrected) tracer number density")
EFFICIENCY = ("1", "learned selection/dust efficiency in (0, 1]")

BARYON_VARIABLES: CubeVariables = {
    "density_baryon": ("solMass pc-3", "baryonic mass density subtracted (model in attrs baryon_model, nominal parameters)"),
    "density_dm": ("solMass pc-3", "dark-matter density: density minus the baryon model of the member's parameter draw"),
}
"""Variables written when the recipe names a baryon model."""
