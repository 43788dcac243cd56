"""A stage, declared: its name, what it reads, the recipe part and seed it depends on, what it writes, its action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    """One resumable step of a build.

    `inputs`: the stages whose outputs it reads (their checksums enter its key); `section`: the recipe part
    (or parts) whose change reruns it; `output`: the file or folder it writes (checksummed in the manifest);
    `files`: input files outside the build whose change reruns it (a user's table, downloaded Gaia chunks).
    """

    name: str
    inputs: tuple[str, ...]
    section: object
    seed: int | None
    output: Path
    action: Callable[[], None]
    files: tuple[Path, ...] = field(default=())
