"""Every path inside a build folder, in one object: the nominal build and each member's folder alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..methods import FitFiles, Method
from ..recipe import Recipe
from ..sources.load import GAIA_CACHE

FLOW_KINDS = ("velocity", "position")
"""p(v|x) flows, then n(x) flows (`density.velocity`, `density.position`)."""


@dataclass(frozen=True)
class BuildLayout:
    """The files of one build folder `root`; a member's folder (`member_layout`) holds the same names."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def stars(self) -> Path:
        return self.root / "stars.parquet"

    @property
    def gaia_cache(self) -> Path:
        return self.root / GAIA_CACHE

    @property
    def collocation(self) -> Path:
        return self.root / "collocation.npz"

    @property
    def fields(self) -> Path:
        return self.root / "fields.eqx"

    @property
    def cube(self) -> Path:
        return self.root / "cube.zarr"

    @property
    def scores(self) -> Path:
        return self.root / "scores.json"

    @property
    def diagnostics(self) -> Path:
        return self.root / "diagnostics"

    quicklook_stem = "quicklook"
    """Quicklook PNGs are `<root>/quicklook*.png`."""

    @staticmethod
    def flow_stage(kind: str, index: int) -> str:
        """The stage (and file stem) of flow `index` of `kind` (`velocity` or `position`)."""
        return f"{kind}_flow_{index}"

    def flow(self, kind: str, index: int) -> Path:
        return self.root / "flows" / f"{self.flow_stage(kind, index)}.eqx"

    @staticmethod
    def history(model: Path) -> Path:
        """The loss history saved beside a trained model."""
        return model.with_name(f"{model.stem}_history.json")

    def member_folder(self, kind: str, index: int) -> Path:
        return self.root / "members" / f"{kind}_{index}"

    def flows_on_disk(self, kind: str) -> list[Path]:
        """The flows of `kind` this folder holds, by index (for reading a finished build without its recipe)."""
        found = (self.root / "flows").glob(f"{kind}_flow_*.eqx")
        return sorted(found, key=lambda path: int(path.stem.rsplit("_", 1)[-1]))

    @classmethod
    def flow_stages(cls, recipe: Recipe, method: Method) -> list[str]:
        """The flow stages of a build of `recipe` by `method`: p(v|x) flows, then n(x) flows (none if it fits none)."""
        if not method.fits_flows:
            return []
        counts = cls._flow_counts(recipe)
        return [cls.flow_stage(kind, k) for kind in FLOW_KINDS for k in range(counts[kind])]

    @staticmethod
    def _flow_counts(recipe: Recipe) -> dict[str, int]:
        density = recipe.density
        return {kind: density.ensemble.members if getattr(density, kind) is not None else 0 for kind in FLOW_KINDS}

    def fit_files(self, recipe: Recipe, method: Method, flows_from: BuildLayout | None = None) -> FitFiles:
        """Where a member fitted in this folder keeps its models; `flows_from` another folder's flows when shared."""
        flows, counts = flows_from or self, self._flow_counts(recipe)
        if not method.fits_flows:
            counts = dict.fromkeys(counts, 0)
        velocity, position = (tuple(flows.flow(kind, k) for k in range(counts[kind])) for kind in FLOW_KINDS)
        collocation = flows.collocation if method.uses_collocation else None
        return FitFiles(velocity, position, collocation, self.fields if method.fits_fields else None)
