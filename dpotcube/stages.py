"""The work of each build stage on explicit files, shared by the nominal build and every ensemble member."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .density.collocation import CollocationPoints, draw_collocation
from .density.ensemble import FlowEnsemble
from .density.flows import fit_flow, load_flow, save_flow
from .fields.model import save_fields
from .fields.train import train_fields
from .recipe import DensitySpec, FieldsSpec, FlowSpec, PositionFlowSpec
from .sources import PhaseSpaceTable


def fit_flow_file(
    stage: str, kind: str, spec: FlowSpec, seed: int, split_seed: int, stars: PhaseSpaceTable, path: Path
) -> None:
    """Fit one flow of a density ensemble: p(v|x), or n(x) (weighted by 1/S when asked) with the ball's edge.

    `stage` labels the progress bar; the loss history goes beside `path` as `<stem>_history.json`.
    """
    if kind == "velocity":
        flow, history = fit_flow(stars.velocities, spec, seed, conditions=stars.positions, split_seed=split_seed,
                                 label=f"p(v|x) {stage}")
    else:
        ball = (stars.observer, stars.volume_radius_kpc) if spec.support == "ball" else None
        weights = star_weights(spec, stars) if spec.selection_weights else None
        flow, history = fit_flow(stars.positions, spec, seed, weights=weights, ball=ball, split_seed=split_seed,
                                 label=f"n(x) {stage}")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_flow(path, flow, spec)
    path.with_name(f"{path.stem}_history.json").write_text(json.dumps(history))


def flow_seeds(base: int, index: int, kind: str, resplit: bool) -> tuple[int, int]:
    """(initialisation seed, train/validation split seed) of flow `index` of a density ensemble from `base`."""
    seed = base + 100 * index + (50 if kind == "position" else 0)
    return seed, seed if resplit else base


def star_weights(spec: PositionFlowSpec, stars: PhaseSpaceTable) -> np.ndarray:
    """1/S per star, clipped at `max_weight` (the recipe check ensures a selection column)."""
    return np.minimum(1 / stars.selection, spec.max_weight)


def flow_ensemble(paths: Sequence[Path], density: DensitySpec) -> FlowEnsemble | None:
    return FlowEnsemble(tuple(load_flow(p) for p in paths), density.ensemble.combine) if paths else None


def collocate_file(
    density: DensitySpec, stars: PhaseSpaceTable, velocity: Sequence[Path], position: Sequence[Path], seed: int,
    path: Path,
) -> None:
    """Draw the collocation points from the flows in `velocity` (and `position`) and save them to `path`."""
    inner_ball = None
    if density.position is not None and density.position.support == "ball":
        inner_ball = (stars.observer, stars.volume_radius_kpc - density.collocation.edge_margin_kpc)
    points = draw_collocation(
        flow_ensemble(velocity, density), stars.positions, density.collocation, seed,
        flow_ensemble(position, density), inner_ball,
    )
    points.save(path)


def fit_fields_file(points: Path, stars: PhaseSpaceTable, spec: FieldsSpec, seed: int, path: Path) -> None:
    """Train the field networks on the collocation points in `points`; save them and their loss history."""
    model, hyper, history = train_fields(
        CollocationPoints.load(points), stars.observer, stars.volume_radius_kpc, len(stars), spec, seed
    )
    save_fields(path, model, hyper)
    path.with_name(f"{path.stem}_history.json").write_text(json.dumps(history))
