"""Which members an ensemble has, in cube order, and the seed and folder of each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..recipe import Recipe

MemberKind = Literal["seed", "bootstrap", "noise", "frame"]
KINDS: tuple[MemberKind, ...] = ("seed", "bootstrap", "noise", "frame")


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
        return 1_000_003 * (1 + KINDS.index(self.kind)) + 10_007 * self.index + 1000 * self.recipe_seed

    def folder(self, build_dir: Path) -> Path:
        return build_dir / "members" / f"{self.kind}_{self.index}"

    def shares_flows(self, recipe: Recipe) -> bool:
        """A seed member on the nominal flows (pointwise has no network seed: its seed members refit flows)."""
        return self.kind == "seed" and recipe.ensemble.share_flows and recipe.fields.method != "pointwise"


def plan_members(recipe: Recipe) -> list[Member]:
    """Every member after the nominal one, in cube order: seed 1.., bootstrap 0.., noise 0.., frame 0.."""
    spec = recipe.ensemble
    counts = {"seed": spec.seed - 1, "bootstrap": spec.bootstrap, "noise": spec.noise, "frame": spec.frame}
    first = {"seed": 1}
    return [
        Member(kind, first.get(kind, 0) + i, recipe.seed) for kind in KINDS for i in range(counts[kind])
    ]
