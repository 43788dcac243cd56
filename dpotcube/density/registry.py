"""Every density model, by the recipe's `type:` value; one fit, one save and one load for all of them.

Adding a density model: a module with a `DensityModel` subclass, its fit and its loading skeleton, its recipe
spec (with `type: Literal["<name>"]`, and its n(x) variant with `_PositionKeys`) in `recipe.py`, tagged into
`VelocityModelSpec` and `PositionModelSpec` there, and one entry in `DENSITY_MODELS` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RecipeError
from ..serialise import load_model, save_model
from ..sources.chunks import FlowSample
from .base import DensityModel
from .cfm import cfm_hyperparameters, cfm_skeleton, fit_cfm
from .legendre import fit_legendre, legendre_hyperparameters, legendre_skeleton
from .maf import fit_flow, flow_hyperparameters, flow_skeleton


@dataclass(frozen=True)
class DensityModelType:
    """A registered density model: its file `kind`, fit, loading skeleton and the hyperparameters that rebuild it."""

    kind: str
    fit: Callable[..., tuple[DensityModel, dict[str, list[float]]]]
    skeleton: Callable[..., DensityModel]
    hyperparameters: Callable[[Any, DensityModel], dict]
    streams: bool = False  # its fit also takes a `FlowSample` (a table read in chunks, `memory.chunk_stars`)


DENSITY_MODELS: dict[str, DensityModelType] = {
    "maf": DensityModelType(
        "density_flow", fit_flow, flow_skeleton,
        lambda spec, model: flow_hyperparameters(spec, model.conditional, model.support is not None, model.frame),
        streams=True,
    ),
    "cfm": DensityModelType(
        "cfm_density", fit_cfm, cfm_skeleton,
        lambda spec, model: cfm_hyperparameters(spec, model.conditional, model.ball),
    ),
    "legendre": DensityModelType("legendre_density", fit_legendre, legendre_skeleton, legendre_hyperparameters),
}
"""Density models by `type` (`density.velocity.type`, `density.position.type`)."""


def fit_density(targets, spec, seed: int, **options) -> tuple[DensityModel, dict[str, list[float]]]:
    """Fit the model `spec.type` names: p(targets | conditions) or, without conditions, n(targets).

    `options`: `conditions`, `weights`, `ball`, `split_seed`, `label` (see `maf.fit_flow`).
    """
    model = DENSITY_MODELS[spec.type]
    if isinstance(targets, FlowSample) and not model.streams:
        raise RecipeError(
            f"Density model `type: {spec.type}` trains on a table held whole, but this one has {len(targets):,} stars, "
            f"more than `memory.chunk_stars` ({targets.stars.rows:,}). Raise `memory.chunk_stars` above the table's "
            "size, or use `type: maf`, which trains on the table chunk by chunk."
        )
    return model.fit(targets, spec, seed, **options)


def save_density(path: Path, model: DensityModel, spec) -> None:
    """Save through the one serialisation path, with the hyperparameters that rebuild the model."""
    entry = DENSITY_MODELS[spec.type]
    save_model(path, model, entry.kind, entry.hyperparameters(spec, model))


def load_density(path: Path) -> DensityModel:
    model, _ = load_model(path, {entry.kind: entry.skeleton for entry in DENSITY_MODELS.values()})
    return model
