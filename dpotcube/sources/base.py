"""`PhaseSpaceTable`: Galactocentric positions and velocities of the tracer stars."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from jaxtyping import Float

from .astrometry import pack_covariance, unpack_covariance

_COLUMNS = ["x", "y", "z", "vx", "vy", "vz"]
_SELECTION = "selection"  # the column of S(x) in a saved table


@dataclass(frozen=True)
class PhaseSpaceTable:
    """Tracer stars in the Galactocentric frame (kpc, km/s) and the volume they cover.

    `positions` and `velocities` have shape `(n_stars, 3)`; `observer` has shape `(3,)`. `covariances`,
    where the source has measurement errors, has shape `(n_stars, 6, 6)` over (x, y, z, vx, vy, vz) in kpc
    and km/s; it is saved as 21 columns `cov_<a>_<b>` (a ≤ b) beside the stars. `selection`, where known,
    is each star's selection probability S(x), shape `(n_stars,)`.
    """

    positions: Float[np.ndarray, "n 3"]
    velocities: Float[np.ndarray, "n 3"]
    observer: Float[np.ndarray, "3"]
    volume_radius_kpc: float
    data_source: str
    meta: dict = field(default_factory=dict)
    covariances: Float[np.ndarray, "n 6 6"] | None = None
    selection: Float[np.ndarray, " n"] | None = None

    def __len__(self) -> int:
        return len(self.positions)

    def inverse_selection_weights(self, max_weight: float) -> Float[np.ndarray, " n"]:
        """1/S per star, clipped at `max_weight` (recipes that ask for them are checked to carry S)."""
        return np.minimum(1 / self.selection, max_weight)

    def save(self, path: Path) -> None:
        """Write as Parquet, with the volume and provenance in the file's key-value metadata."""
        frame = pd.DataFrame(np.hstack([self.positions, self.velocities]), columns=_COLUMNS)
        if self.covariances is not None:
            frame = pd.concat([frame, pd.DataFrame(pack_covariance(self.covariances))], axis=1)
        if self.selection is not None:
            frame[_SELECTION] = self.selection
        header = {
            "observer": self.observer.tolist(),
            "volume_radius_kpc": self.volume_radius_kpc,
            "data_source": self.data_source,
            "meta": self.meta,
        }
        frame.attrs["dpotcube"] = json.dumps(header)
        frame.to_parquet(path, index=False)

    @classmethod
    def load(cls, path: Path) -> PhaseSpaceTable:
        frame = pd.read_parquet(path)
        header = json.loads(frame.attrs["dpotcube"])
        values = frame[_COLUMNS].to_numpy(np.float64)
        packed = {name: frame[name].to_numpy(np.float64) for name in frame.columns if name.startswith("cov_")}
        return cls(
            positions=values[:, :3],
            velocities=values[:, 3:],
            observer=np.asarray(header["observer"], np.float64),
            volume_radius_kpc=float(header["volume_radius_kpc"]),
            data_source=header["data_source"],
            meta=header["meta"],
            covariances=unpack_covariance(packed) if packed else None,
            selection=frame[_SELECTION].to_numpy(np.float64) if _SELECTION in frame.columns else None,
        )
