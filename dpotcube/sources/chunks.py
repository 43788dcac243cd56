"""A saved star table (`stars.parquet`) read a chunk of rows at a time, for the stages that must not hold it whole.

A build whose table has more stars than `memory.chunk_stars` gets a `StarChunks` instead of a `PhaseSpaceTable`:
the same header (observer, volume, source, provenance, length), and rows only chunk by chunk. The flows train on
it epoch by epoch (`density.maf`), the collocation stage draws its star positions from it (`star_positions`);
a table that fits is loaded whole, as before, and the stages run exactly as they did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from jaxtyping import Float, Int

from .base import _COLUMNS, _SELECTION, PhaseSpaceTable

POSITIONS, VELOCITIES = _COLUMNS[:3], _COLUMNS[3:]


@dataclass(frozen=True)
class StarChunks:
    """The stars of `path`, `rows` at a time: chunk i holds rows [i·rows, (i+1)·rows) of the file."""

    path: Path
    rows: int

    @cached_property
    def _parquet(self):
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.path)

    @cached_property
    def _header(self) -> dict:
        attrs = (self._parquet.schema_arrow.metadata or {}).get(b"PANDAS_ATTRS", b"{}")  # pandas' `frame.attrs`
        return json.loads(json.loads(attrs)["dpotcube"])

    @cached_property
    def _group_starts(self) -> Int[np.ndarray, " groups_plus_one"]:
        metadata = self._parquet.metadata
        sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
        return np.concatenate([[0], np.cumsum(sizes)])

    def __len__(self) -> int:
        return int(self._parquet.metadata.num_rows)

    @property
    def n_chunks(self) -> int:
        return -(-len(self) // self.rows)

    @property
    def observer(self) -> Float[np.ndarray, "3"]:
        return np.asarray(self._header["observer"], np.float64)

    @property
    def volume_radius_kpc(self) -> float:
        return float(self._header["volume_radius_kpc"])

    @property
    def data_source(self) -> str:
        return self._header["data_source"]

    @property
    def meta(self) -> dict:
        return self._header["meta"]

    @property
    def has_selection(self) -> bool:
        return _SELECTION in self._parquet.schema_arrow.names

    @property
    def has_covariances(self) -> bool:
        """Whether the table has measurement errors (never held whole here: `noise` members read the table)."""
        return any(name.startswith("cov_") for name in self._parquet.schema_arrow.names)

    def bounds(self, chunk: int) -> tuple[int, int]:
        return chunk * self.rows, min((chunk + 1) * self.rows, len(self))

    def read(self, chunk: int, columns: list[str]) -> Float[np.ndarray, "rows k"]:
        """Columns `columns` of chunk `chunk` as float64, reading only the row groups it overlaps."""
        start, stop = self.bounds(chunk)
        first = int(np.searchsorted(self._group_starts, start, side="right")) - 1
        last = int(np.searchsorted(self._group_starts, stop, side="left"))
        table = self._parquet.read_row_groups(list(range(first, last)), columns=columns)
        offset = start - int(self._group_starts[first])
        return np.column_stack([table.column(c).to_numpy() for c in columns])[offset : offset + stop - start].astype(
            np.float64, copy=False)

    def positions(self, chunk: int) -> Float[np.ndarray, "rows 3"]:
        return self.read(chunk, POSITIONS)

    def velocities(self, chunk: int) -> Float[np.ndarray, "rows 3"]:
        return self.read(chunk, VELOCITIES)

    def inverse_selection_weights(self, max_weight: float, chunk: int | None = None) -> Float[np.ndarray, " rows"]:
        """1/S clipped at `max_weight`, of one chunk, or of every star (8 bytes a star) when `chunk` is None."""
        if chunk is None:
            return np.concatenate([self.inverse_selection_weights(max_weight, i) for i in range(self.n_chunks)])
        return np.minimum(1 / self.read(chunk, [_SELECTION])[:, 0], max_weight)


def open_stars(path: Path, chunk_stars: int) -> PhaseSpaceTable | StarChunks:
    """The saved table whole if it has at most `chunk_stars` stars, else read in chunks of that many."""
    chunks = StarChunks(Path(path), chunk_stars)
    return PhaseSpaceTable.load(path) if len(chunks) <= chunk_stars else chunks


def star_positions(
    stars: Float[np.ndarray, "n 3"] | PhaseSpaceTable | StarChunks,
    n: int,
    rng: np.random.Generator,
    inner_ball: tuple[Float[np.ndarray, "3"], float] | None = None,
) -> Float[np.ndarray, "n 3"]:
    """`n` star positions drawn by `rng` (with replacement only if fewer stars are eligible), from the stars
    inside `inner_ball` (centre, radius) when given. Chunked tables give the same draws as whole ones."""
    if not isinstance(stars, StarChunks):
        chosen = stars.positions if isinstance(stars, PhaseSpaceTable) else stars
        if inner_ball is not None:
            chosen = chosen[_inside(chosen, inner_ball)]
        return chosen[rng.choice(len(chosen), n, replace=n > len(chosen))]
    counts = [int(_inside(stars.positions(i), inner_ball).sum()) for i in range(stars.n_chunks)]
    total = sum(counts)
    pick = rng.choice(total, n, replace=n > total)
    out = np.empty((n, 3), np.float64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for i in range(stars.n_chunks):
        wanted = np.flatnonzero((pick >= starts[i]) & (pick < starts[i + 1]))
        if wanted.size:
            positions = stars.positions(i)
            eligible = positions[_inside(positions, inner_ball)]
            out[wanted] = eligible[pick[wanted] - starts[i]]
    return out


def _inside(positions: Float[np.ndarray, "n 3"], ball: tuple[Float[np.ndarray, "3"], float] | None) -> np.ndarray:
    if ball is None:
        return np.ones(len(positions), bool)
    centre, radius = ball
    return np.linalg.norm(positions - centre, axis=1) < radius


@dataclass(frozen=True)
class FlowSample:
    """What one flow is fitted to, chunk by chunk: its targets' columns, its conditions' (None: unconditional) and
    the 1/S weights clipped at `max_weight` (None: unweighted)."""

    stars: StarChunks
    targets: tuple[str, ...]
    conditions: tuple[str, ...] | None = None
    max_weight: float | None = None

    def __len__(self) -> int:
        return len(self.stars)

    @property
    def n_chunks(self) -> int:
        return self.stars.n_chunks

    def read(self, chunk: int) -> tuple[Float[np.ndarray, "rows 3"], Float[np.ndarray, "rows 3"] | None,
                                        Float[np.ndarray, " rows"] | None]:
        """(targets, conditions, weights) of chunk `chunk`."""
        targets = self.stars.read(chunk, list(self.targets))
        conditions = None if self.conditions is None else self.stars.read(chunk, list(self.conditions))
        weights = None if self.max_weight is None else self.stars.inverse_selection_weights(self.max_weight, chunk)
        return targets, conditions, weights
