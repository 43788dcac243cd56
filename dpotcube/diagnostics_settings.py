"""The settings `dpotcube build` ran a cube's diagnostics with, recovered from the cube's attributes, so that
`dpotcube diagnose` gives the build's numbers by default."""

from __future__ import annotations

import yaml

DEFAULTS = {"velocities": 1_000_000, "mcmc_steps": 8000, "seed": 0}
"""For a cube without a readable recipe (hand-made, or from another tool)."""


def build_diagnostics_settings(attrs: dict) -> dict:
    """`velocities`, `mcmc_steps` (the recipe's `diagnostics:` section) and `seed` (the build's cube-stage seed)."""
    from .recipe import recipe_from_dict

    try:
        recipe = recipe_from_dict(yaml.safe_load(attrs["recipe"]))
    except Exception:  # noqa: BLE001  (any unreadable recipe: fall back to the documented defaults)
        return dict(DEFAULTS)
    return {
        "velocities": recipe.diagnostics.velocities,
        "mcmc_steps": recipe.diagnostics.mcmc_steps,
        "seed": _cube_stage_seed(recipe.seed),
    }


def _cube_stage_seed(recipe_seed: int) -> int:
    """The seed the build gives its cube stage (and the diagnostics run after it): the build plan's derivation."""
    from .plan.seeds import stage_seed

    return stage_seed(recipe_seed, "cube")
