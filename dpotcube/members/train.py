"""Fit one ensemble member into its own folder: its stars, flows, collocation points and fields."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..recipe import Recipe
from ..sources import PhaseSpaceTable
from ..stages import collocate_file, fit_fields_file, fit_flow_file, flow_seeds
from .plan import Member
from .resample import bootstrap_stars, noisy_stars, perturbed_frame, stars_in_frame


@dataclass(frozen=True)
class NominalFiles:
    """The nominal build's files that members start from or share."""

    stars: Path
    velocity: tuple[Path, ...]
    position: tuple[Path, ...]
    collocation: Path


@dataclass(frozen=True)
class MemberFiles:
    """What a finished member folder holds; `fields` is None for `pointwise`, flows are the nominal's when shared."""

    velocity: tuple[Path, ...]
    position: tuple[Path, ...]
    fields: Path | None


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


def member_files(member: Member, recipe: Recipe, build_dir: Path, nominal: NominalFiles) -> MemberFiles:
    """Where `member`'s flows and fields are (or will be) once it has run."""
    return _files_in(member.folder(build_dir), member, recipe, nominal)


def _files_in(folder: Path, member: Member, recipe: Recipe, nominal: NominalFiles) -> MemberFiles:
    if member.shares_flows(recipe):
        velocity, position = nominal.velocity, nominal.position
    else:
        velocity = tuple(folder / "flows" / p.name for p in nominal.velocity)
        position = tuple(folder / "flows" / p.name for p in nominal.position)
    fields = None if recipe.fields.method == "pointwise" else folder / "fields.eqx"
    return MemberFiles(velocity, position, fields)


def train_member(member: Member, recipe: Recipe, build_dir: Path, nominal: NominalFiles) -> Path:
    """Fit `member` into `build_dir/members/<kind>_<index>/` and return that folder.

    Written to a `.partial` folder first and renamed when complete, so a killed member leaves no
    folder that looks finished. Runs in the build's process or on a `dask.distributed` worker.
    """
    folder = member.folder(build_dir)
    work = folder.with_name(folder.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    stars = member_stars(member, recipe, PhaseSpaceTable.load(nominal.stars))
    density, seed = recipe.density, member.seed
    files = _files_in(work, member, recipe, nominal)
    velocity, position, collocation = files.velocity, files.position, nominal.collocation
    if not member.shares_flows(recipe):
        for kind, spec, paths in (("velocity", density.velocity, velocity), ("position", density.position, position)):
            for k, path in enumerate(paths):
                flow_seed, split_seed = flow_seeds(seed, k, kind, density.ensemble.resplit)
                fit_flow_file(f"{member.stage} {path.stem}", kind, spec, flow_seed, split_seed, stars, path)
        collocation = work / "collocation.npz"
        if recipe.fields.method != "pointwise":
            collocate_file(density, stars, velocity, position, seed + 2, collocation)
    if recipe.fields.method != "pointwise":
        fit_fields_file(collocation, stars, recipe.fields, seed + 3, work / "fields.eqx")
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)
    return folder
