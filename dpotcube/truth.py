"""Scores of a cube against an analytic mock's truth, inside the tracer volume."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from .constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3
from .sources.mocks import PlummerTruth
from .sources.selection import selection_of

WELL_SEEN = 0.1
"""Scores restricted to where tracers remain use points with S(x) above this (the conditional Deep Potential goal)."""


def score_against_truth(
    cube_path: Path,
    truth: PlummerTruth,
    max_points: int = 100_000,
    seed: int = 0,
) -> dict[str, float]:
    """Median relative errors of a, ρ, n, ε and Φ (member medians) at (up to `max_points`) random in-volume grid points.

    When the mock's stars were seen through a selection S(x) (`truth.selection`), the density shares are
    also given where S > `WELL_SEEN`, and ε is scored against S. n and ε are scored by their shape (the ratio to
    truth divided by its median), since neither normalisation is fixed by the CBE; `truth.tracer_density`
    is the density of all (seen and unseen) tracers. Reads only the sampled points, so memory does not
    grow with the cube.
    """
    ds = xr.open_zarr(cube_path)
    idx, pts = _in_volume_points(ds, truth, max_points, seed)

    def at_points(name: str) -> np.ndarray:  # the best estimate: the median over members
        return np.median(_members_at(ds, name, idx), axis=0)

    accel = np.stack([at_points(f"accel_{c}") for c in "xyz"], axis=1)
    true_accel = np.asarray(truth.acceleration(pts))
    true_rho = np.asarray(truth.density(pts)) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
    accel_err = np.linalg.norm(accel - true_accel, axis=1) / np.linalg.norm(true_accel, axis=1)
    scores = {"n_points": int(len(pts)), "median_rel_error_accel": float(np.median(accel_err))}
    rho_err = None
    if "density" in ds:  # `pointwise` may skip it
        rho_ratio = at_points("density") / true_rho
        rho_err = np.abs(rho_ratio - 1)
        scores["median_rel_error_density"] = float(np.median(rho_err))
        scores["median_density_ratio"] = float(np.median(rho_ratio))
        scores["share_density_within_10pct"] = float(np.mean(rho_err < 0.1))
    if "potential" in ds:  # the `pointwise` method has no Φ
        true_phi = np.asarray(truth.potential(pts)) - float(truth.potential(np.asarray(truth.observer)))
        scores["median_abs_error_potential_kms2"] = float(np.median(np.abs(at_points("potential") - true_phi)))
        scores["potential_range_kms2"] = float(np.ptp(true_phi))
    if "tracer_density" in ds:
        true_n = np.asarray(truth.tracer_density(pts))
        n_ratio = at_points("tracer_density") / true_n
        scores["median_rel_error_tracer_density"] = float(np.median(np.abs(n_ratio - 1)))
        scores["median_shape_error_tracer_density"] = float(np.median(np.abs(n_ratio / np.median(n_ratio) - 1)))
    if truth.selection is not None:
        true_s = np.asarray(selection_of(truth.selection, pts), np.float64)
        seen = true_s > WELL_SEEN
        scores["share_well_seen"] = float(np.mean(seen))
        if rho_err is not None:
            scores["median_rel_error_density_well_seen"] = float(np.median(rho_err[seen]))
            scores["share_density_within_10pct_well_seen"] = float(np.mean(rho_err[seen] < 0.1))
        scores["median_rel_error_accel_well_seen"] = float(np.median(accel_err[seen]))
        if "efficiency" in ds:
            eps_ratio = at_points("efficiency") / true_s
            scores["median_rel_error_efficiency"] = float(np.median(np.abs(eps_ratio - 1)))
            scores["median_shape_error_efficiency"] = float(np.median(np.abs(eps_ratio / np.median(eps_ratio) - 1)))
    return scores


def coverage_against_truth(
    cube_path: Path, truth: PlummerTruth, kinds: Sequence[str] | None = None, max_points: int = 100_000, seed: int = 0
) -> dict[str, float]:
    """Share of in-volume points where the truth lies inside the members' 16–84% range, per field.

    `accel` pools the three Cartesian components; `potential` compares Φ − Φ(observer). `kinds` keeps only
    members of those `member_kind`s (default: all). `calibrated` is what an ensemble of as many members
    exchangeable with the truth would give (`calibrated_coverage`).
    """
    ds = xr.open_zarr(cube_path)
    if kinds is not None:
        ds = ds.isel(member=np.flatnonzero(np.isin(ds["member_kind"].values, list(kinds))))
    idx, pts = _in_volume_points(ds, truth, max_points, seed)
    true = {
        "accel": np.asarray(truth.acceleration(pts), np.float64).T,
        "density": np.asarray(truth.density(pts), np.float64) * MSUN_PER_KPC3_TO_MSUN_PER_PC3,
        "potential": np.asarray(truth.potential(pts), np.float64) - float(truth.potential(np.asarray(truth.observer))),
    }
    members = {"accel": np.stack([_members_at(ds, f"accel_{c}", idx) for c in "xyz"], axis=1)}  # (m, 3, n)
    members |= {name: _members_at(ds, name, idx) for name in ("density", "potential") if name in ds}
    out: dict[str, float] = {"n_members": int(ds.sizes["member"]), "n_points": int(len(pts))}
    for name, values in members.items():
        lo, hi = np.percentile(values, [16, 84], axis=0)
        out[name] = float(np.mean((true[name] >= lo) & (true[name] <= hi)))
    out["calibrated"] = calibrated_coverage(ds.sizes["member"])
    return out


def calibrated_coverage(n_members: int, draws: int = 200_000, seed: int = 0) -> float:
    """P(a value exchangeable with `n_members` members lies inside their 16–84% range), by Monte Carlo.

    Below ~0.68 for small ensembles (the empirical range is narrower than the true one); 0 for one member.
    """
    if n_members < 2:
        return 0.0
    sample = np.random.default_rng(seed).standard_normal((draws, n_members + 1))
    lo, hi = np.percentile(sample[:, :-1], [16, 84], axis=1)
    return float(np.mean((sample[:, -1] >= lo) & (sample[:, -1] <= hi)))


def _in_volume_points(
    ds: xr.Dataset, truth: PlummerTruth, max_points: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Grid indices `(n, 3)` and positions `(n, 3)` of up to `max_points` random in-volume grid points."""
    rng = np.random.default_rng(seed)
    shape = (ds.sizes["x"], ds.sizes["y"], ds.sizes["z"])
    idx = np.unique(np.stack([rng.integers(0, n, 2 * max_points) for n in shape], axis=1), axis=0)
    pts = np.stack([ds[c].values[idx[:, i]] for i, c in enumerate("xyz")], axis=1)
    inside = np.linalg.norm(pts - np.asarray(truth.observer), axis=1) < truth.volume_radius_kpc
    return idx[inside][:max_points], pts[inside][:max_points]


def _members_at(ds: xr.Dataset, name: str, idx: np.ndarray) -> np.ndarray:
    """`name` of every member at grid indices `idx`, shape `(members, n)`, float64; reads only those points."""
    data = ds[name].transpose("member", "x", "y", "z").data
    picked = [data[m].vindex[idx[:, 0], idx[:, 1], idx[:, 2]] for m in range(data.shape[0])]
    return np.asarray(da.stack(picked).compute(), np.float64)
