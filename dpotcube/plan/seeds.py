"""Every seed of a build, from one derivation over (recipe seed, member, stage).

The numbers reproduce the seeds of the first release bit for bit, so recorded benchmarks and cubes stay
reproducible; the offsets below are that release's, written once here.
"""

from __future__ import annotations

MEMBER_KINDS = ("seed", "bootstrap", "noise", "frame")
"""The kinds of ensemble member, in cube order (member 0, the nominal build, is a `seed` member)."""

STAGE_OFFSETS = {"stars": 0, "flow": 1, "collocation": 2, "fields": 3, "cube": 4}
"""Seed of stage s = member's base seed + STAGE_OFFSETS[s] ..."""

MEMBER_FLOW_OFFSET = 0
"""... except the flows of an ensemble member, which start at its base seed (as in the first release)."""


def member_seed(recipe_seed: int, kind: str = "seed", index: int = 0) -> int:
    """Base seed of member `index` of `kind`: 1000 × recipe seed for the nominal build (seed member 0)."""
    if kind == "seed" and index == 0:
        return 1000 * recipe_seed
    return 1_000_003 * (1 + MEMBER_KINDS.index(kind)) + 10_007 * index + 1000 * recipe_seed


def stage_seed(recipe_seed: int, stage: str, kind: str = "seed", index: int = 0) -> int:
    """Seed of `stage` (a key of `STAGE_OFFSETS`) of member `index` of `kind` (default: the nominal build)."""
    nominal = kind == "seed" and index == 0
    offset = MEMBER_FLOW_OFFSET if stage == "flow" and not nominal else STAGE_OFFSETS[stage]
    return member_seed(recipe_seed, kind, index) + offset


def flow_seeds(flow_stage_seed: int, index: int, kind: str, resplit: bool) -> tuple[int, int]:
    """(initialisation seed, train/validation split seed) of flow `index` of `kind` of a density ensemble."""
    seed = flow_stage_seed + 100 * index + (50 if kind == "position" else 0)
    return seed, seed if resplit else flow_stage_seed
