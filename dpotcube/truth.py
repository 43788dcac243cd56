"""Scores of a cube against an analytic mock's truth, inside the tracer volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3
from .sources.mocks import PlummerTruth


def score_against_truth(cube_path: Path, truth: PlummerTruth, max_points: int = 100_000, seed: int = 0) -> dict[str, float]:
    """Median relative errors of a, ρ, n and Φ (those the cube holds) at (up to `max_points`) random in-volume grid points.

    Reads only the sampled points, so memory does not grow with the cube.
    """
    ds = xr.open_zarr(cube_path)
    rng = np.random.default_rng(seed)
    shape = (ds.sizes["x"], ds.sizes["y"], ds.sizes["z"])
    idx = np.unique(np.stack([rng.integers(0, n, 2 * max_points) for n in shape], axis=1), axis=0)
    pts = np.stack([ds[c].values[idx[:, i]] for i, c in enumerate("xyz")], axis=1)
    inside = np.linalg.norm(pts - np.asarray(truth.observer), axis=1) < truth.volume_radius_kpc
    idx, pts = idx[inside][:max_points], pts[inside][:max_points]

    def at_points(name: str) -> np.ndarray:
        return np.asarray(ds[name].isel(member=0).data.vindex[idx[:, 0], idx[:, 1], idx[:, 2]].compute(), np.float64)

    accel = np.stack([at_points(f"accel_{c}") for c in "xyz"], axis=1)
    true_accel = np.asarray(truth.acceleration(pts))
    true_rho = np.asarray(truth.density(pts)) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
    accel_err = np.linalg.norm(accel - true_accel, axis=1) / np.linalg.norm(true_accel, axis=1)
    scores = {"n_points": int(len(pts)), "median_rel_error_accel": float(np.median(accel_err))}
    if "density" in ds:
        rho_ratio = at_points("density") / true_rho
        scores["median_rel_error_density"] = float(np.median(np.abs(rho_ratio - 1)))
        scores["median_density_ratio"] = float(np.median(rho_ratio))
    if "potential" in ds:  # the `pointwise` method has no Φ
        reference = np.asarray(truth.observer)
        true_phi = np.asarray(truth.potential(pts)) - float(truth.potential(reference))
        scores["median_abs_error_potential_kms2"] = float(np.median(np.abs(at_points("potential") - true_phi)))
        scores["potential_range_kms2"] = float(np.ptp(true_phi))
    if "tracer_density" in ds:
        true_n = np.asarray(truth.tracer_density(pts))
        scores["median_rel_error_tracer_density"] = float(np.median(np.abs(at_points("tracer_density") - true_n) / true_n))
    return scores
