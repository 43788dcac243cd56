"""The one fit sequence of a cube member — its flows, collocation points and fields — as declared stages.

The nominal build runs each stage through the manifest runner; an ensemble member runs the same stages in
its own folder and is recorded as one stage (`members/`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

from ..density.collocation import draw_collocation
from ..density.ensemble import FlowEnsemble
from ..density.registry import fit_density, load_density, save_density
from ..methods import FitFiles, Method
from ..recipe import DensitySpec, PositionModelSpec, Recipe, VelocityModelSpec
from ..sources import PhaseSpaceTable
from ..sources.chunks import POSITIONS, VELOCITIES, FlowSample, StarChunks
from .layout import BuildLayout
from .seeds import flow_seeds
from .stages import Stage


def fit_stages(
    recipe: Recipe,
    method: Method,
    stars: PhaseSpaceTable | StarChunks,
    files: FitFiles,
    seeds: dict[str, int],
    fit_flows: bool = True,
    label: str = "",
) -> list[Stage]:
    """The stages that fit one member into `files`: its flows (unless `fit_flows` is false: they are shared),
    then, for a method that trains fields, collocation points and fields.

    `seeds`: the member's seeds of stages `flow`, `collocation` and `fields` (`plan.seeds.stage_seed`);
    `label` prefixes the progress bars (a member's name). Stars in chunks (a table larger than
    `memory.chunk_stars`) stream through the flows, whose keys then include the chunk size.
    """
    streamed = [stars.rows] if isinstance(stars, StarChunks) else []
    density, stages, flow_names = recipe.density, [], []
    if fit_flows and method.fits_flows:
        for kind, paths in (("velocity", files.velocity), ("position", files.position)):
            spec = getattr(density, kind)
            for k, path in enumerate(paths):
                name = BuildLayout.flow_stage(kind, k)
                init_seed, split_seed = flow_seeds(seeds["flow"], k, kind, density.ensemble.resplit)
                fit = functools.partial(fit_flow_file, f"{label}{name}", kind, spec, init_seed, split_seed, stars, path)
                stages.append(Stage(name, ("stars",), [spec, init_seed, split_seed, *streamed], None, path, fit))
                flow_names.append(name)
    if method.uses_collocation and fit_flows:
        collocate = functools.partial(collocate_file, density, stars, files.velocity, files.position,
                                      seeds["collocation"], files.collocation)
        section = [density.collocation, density.ensemble.combine]
        stages.append(Stage("collocation", tuple(flow_names), section, seeds["collocation"], files.collocation,
                            collocate))
    if method.fits_fields:
        fit = functools.partial(method.fit_fields, recipe, stars, files, seeds["fields"])
        inputs = ("collocation",) if method.uses_collocation else ("stars",)
        stages.append(Stage("fields", inputs, recipe.fields, seeds["fields"], files.fields, fit))
    return stages


def fit_flow_file(
    stage: str,
    kind: str,
    spec: VelocityModelSpec | PositionModelSpec,
    seed: int,
    split_seed: int,
    stars: PhaseSpaceTable | StarChunks,
    path: Path,
) -> None:
    """Fit one flow of a density ensemble (of the model `spec.type` names): p(v|x), or n(x) (weighted by 1/S
    when asked) with the ball's edge.

    `stage` labels the progress bar; the loss history goes beside `path`.
    """
    chunked = isinstance(stars, StarChunks)
    if kind == "velocity":
        targets, conditions = (FlowSample(stars, VELOCITIES, POSITIONS), None) if chunked else (stars.velocities, stars.positions)
        flow, history = fit_density(targets, spec, seed, conditions=conditions, split_seed=split_seed,
                                 label=f"p(v|x) {stage}")
    else:
        ball = (stars.observer, stars.volume_radius_kpc) if spec.support == "ball" else None
        max_weight = spec.max_weight if spec.selection_weights else None
        if chunked:
            targets, weights = FlowSample(stars, POSITIONS, None, max_weight), None
        else:
            targets = stars.positions
            weights = None if max_weight is None else stars.inverse_selection_weights(max_weight)
        flow, history = fit_density(targets, spec, seed, weights=weights, ball=ball, split_seed=split_seed,
                                 label=f"n(x) {stage}")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_density(path, flow, spec)
    BuildLayout.history(path).write_text(json.dumps(history))


def flow_ensemble(paths: Sequence[Path], density: DensitySpec) -> FlowEnsemble | None:
    return FlowEnsemble(tuple(load_density(p) for p in paths), density.ensemble.combine) if paths else None


def collocate_file(
    density: DensitySpec, stars: PhaseSpaceTable | StarChunks, velocity: Sequence[Path], position: Sequence[Path], seed: int,
    path: Path,
) -> None:
    """Draw the collocation points from the flows in `velocity` (and `position`) and save them to `path`."""
    inner_ball = None
    if density.position is not None and density.position.support == "ball":
        inner_ball = (stars.observer, stars.volume_radius_kpc - density.collocation.edge_margin_kpc)
    points = draw_collocation(
        flow_ensemble(velocity, density), stars, density.collocation, seed,
        flow_ensemble(position, density), inner_ball,
    )
    points.save(path)
