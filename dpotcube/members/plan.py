"""Which members an ensemble has, in cube order, and the seeds and folder of each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..methods import get_method
from ..plan.layout import BuildLayout
from ..plan.seeds import MEMBER_KINDS, member_seed, stage_seed
from ..recipe import Recipe

MemberKind = Literal["seed", "bootstrap", "noise", "frame"]
KINDS: tuple[MemberKind, ...] = MEMBER_KINDS


@dataclass(frozen=True)
class Member:
    """One extra cube member (member 0, the nominal build, is not one): `kind` and its index within the kind."""

    kind: MemberKind
    index: int
    recipe_seed: int

    @property
    def stage(self) -> str:
        return f"member_{self.kind}_{self.index}"

    @property
    def seed(self) -> int:
        """Base seed of the member's random draws; depends only on (recipe seed, kind, index)."""
        return member_seed(self.recipe_seed, self.kind, self.index)

    def stage_seeds(self) -> dict[str, int]:
        """Seeds of the member's fit stages (`plan.fit.fit_stages`)."""
        return {stage: stage_seed(self.recipe_seed, stage, self.kind, self.index) for stage in ("flow", "collocation", "fields")}

    def folder(self, build_dir: Path) -> Path:
        return BuildLayout(Path(build_dir)).member_folder(self.kind, self.index)

    def shares_flows(self, recipe: Recipe) -> bool:
        """A seed member on the nominal flows (a method without networks has no network seed: its seed members refit flows)."""
        method = get_method(recipe.fields.method)
        return self.kind == "seed" and recipe.ensemble.share_flows and method.shares_flows_between_seeds()


def plan_members(recipe: Recipe) -> list[Member]:
    """Every member after the nominal one, in cube order: seed 1.., bootstrap 0.., noise 0.., frame 0.."""
    spec = recipe.ensemble
    counts = (spec.seed - 1, spec.bootstrap, spec.noise, spec.frame)
    first = (1, 0, 0, 0)
    return [Member(kind, start + i, recipe.seed) for kind, count, start in zip(KINDS, counts, first) for i in range(count)]
