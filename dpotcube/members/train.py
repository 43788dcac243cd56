"""Fit one ensemble member into its own folder: its stars, then the one fit sequence (`plan.fit`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..methods import FitFiles, get_method
from ..plan.fit import fit_stages
from ..plan.layout import BuildLayout
from ..recipe import Recipe
from ..sources import PhaseSpaceTable
from ..sources.chunks import open_stars
from .plan import Member
from .resample import bootstrap_stars, noisy_stars, perturbed_frame, stars_in_frame


def member_stars(member: Member, recipe: Recipe, stars: PhaseSpaceTable) -> PhaseSpaceTable:
    """The stars `member` is fitted to."""
    if member.kind == "bootstrap":
        return bootstrap_stars(stars, member.seed)
    if member.kind == "noise":
        return noisy_stars(stars, member.seed)
    if member.kind == "frame":
        frame = perturbed_frame(recipe.data.frame, recipe.ensemble.frame_errors, member.seed)
        return stars_in_frame(stars, recipe.data.frame, frame)
    return stars


def member_files(member: Member, recipe: Recipe, build_dir: Path, folder: Path | None = None) -> FitFiles:
    """Where `member`'s models are (or will be) once it has run: in its folder (or `folder`), flows shared with
    the nominal build where the member shares them."""
    nominal = BuildLayout(Path(build_dir))
    shared = nominal if member.shares_flows(recipe) else None
    return BuildLayout(folder or member.folder(build_dir)).fit_files(recipe, get_method(recipe.fields.method), shared)


def train_member(member: Member, recipe: Recipe, build_dir: Path) -> Path:
    """Fit `member` into `build_dir/members/<kind>_<index>/` and return that folder.

    Written to a `.partial` folder first and renamed when complete, so a killed member leaves no
    folder that looks finished. Runs in the build's process or on a `dask.distributed` worker.
    """
    folder = member.folder(build_dir)
    work = folder.with_name(folder.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    path = BuildLayout(Path(build_dir)).stars
    if member.kind == "seed":  # the nominal stars: in chunks when the table is larger than `memory.chunk_stars`
        stars = open_stars(path, recipe.memory.chunk_stars)
    else:  # resampled, redrawn or moved: held whole
        stars = member_stars(member, recipe, PhaseSpaceTable.load(path))
    files = member_files(member, recipe, build_dir, folder=work)
    method = get_method(recipe.fields.method)
    shared = member.shares_flows(recipe)
    for stage in fit_stages(recipe, method, stars, files, member.stage_seeds(), fit_flows=not shared,
                            label=f"{member.stage} "):
        stage.action()
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)
    return folder
