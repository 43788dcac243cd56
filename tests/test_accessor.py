"""`ds.dpot`: components and summaries checked on analytic fields."""

import astropy.units as u
import numpy as np
import pytest
import xarray as xr

import dpotcube  # noqa: F401  (registers the accessor)


def analytic_cube(truth, accel_fn, n_members: int = 5, seed: int = 0) -> xr.Dataset:
    x = np.linspace(-10.0, -6.0, 9)
    y = np.linspace(-2.0, 2.0, 7)
    z = np.linspace(-1.5, 1.5, 5)
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    a = accel_fn(np.stack([X, Y, Z], axis=-1))
    scatter = 1 + 0.01 * np.random.default_rng(seed).normal(size=(n_members, 1, 1, 1)) if n_members > 1 else np.ones((1, 1, 1, 1))
    dims = ("member", "x", "y", "z")
    data = {f"accel_{c}": (dims, scatter * a[..., i], {"units": "km2 s-2 kpc-1"}) for i, c in enumerate("xyz")}
    return xr.Dataset(data, coords={"x": x, "y": y, "z": z, "member": np.arange(n_members)})


def test_plummer_acceleration_is_radial_and_inward(truth):
    ds = analytic_cube(truth, lambda p: np.asarray(truth.acceleration(p)), n_members=1)
    sph, cyl = ds.dpot.spherical(), ds.dpot.cylindrical()
    a = np.asarray(truth.acceleration(np.stack(np.meshgrid(ds.x, ds.y, ds.z, indexing="ij"), axis=-1)))
    np.testing.assert_allclose(sph.accel_r[0], -np.linalg.norm(a, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(sph.accel_theta[0], 0, atol=1e-3 * np.abs(a).max())
    np.testing.assert_allclose(cyl.accel_phi[0], 0, atol=1e-3 * np.abs(a).max())
    assert np.all(cyl.accel_R < 0) and cyl.accel_R.attrs["units"] == "km2 s-2 kpc-1"
    np.testing.assert_allclose(np.hypot(cyl.accel_R, cyl.accel_z), np.hypot(sph.accel_r, sph.accel_theta), rtol=1e-5)


def test_azimuthal_sign_follows_increasing_phi(truth):
    ds = analytic_cube(truth, lambda p: np.stack([-p[..., 1], p[..., 0], 0 * p[..., 2]], axis=-1), n_members=1)
    np.testing.assert_allclose(ds.dpot.cylindrical().accel_phi[0], ds.dpot.R.broadcast_like(ds.accel_x[0]), rtol=1e-6)
    assert float(ds.dpot.phi.sel(x=-8.0, y=0.0, method="nearest")) == pytest.approx(np.pi)


def test_coordinates(truth):
    ds = analytic_cube(truth, lambda p: np.asarray(truth.acceleration(p)))
    point = dict(x=-8.0, y=1.0 / 3 * 2, z=0.75)
    sel = {k: ds[k].sel({k: v}, method="nearest") for k, v in point.items()}
    x, y, z = (float(sel[k]) for k in "xyz")
    assert float(ds.dpot.r.sel(**point, method="nearest")) == pytest.approx(np.sqrt(x * x + y * y + z * z))
    assert float(ds.dpot.theta.sel(**point, method="nearest")) == pytest.approx(np.arccos(z / np.sqrt(x * x + y * y + z * z)))


def test_member_summary_matches_numpy_percentiles(truth):
    ds = analytic_cube(truth, lambda p: np.asarray(truth.acceleration(p)), n_members=7)
    summary = ds.chunk({"member": 1}).dpot.summary("accel_x")
    values = ds.accel_x.values
    np.testing.assert_allclose(summary["median"], np.median(values, axis=0), rtol=1e-6)
    np.testing.assert_allclose(summary.p16, np.percentile(values, 16, axis=0), rtol=1e-6)
    np.testing.assert_allclose(summary.p84, np.percentile(values, 84, axis=0), rtol=1e-6)
    assert summary["median"].attrs["units"] == "km2 s-2 kpc-1"
    q = ds.dpot.quantity("accel_x")
    assert q.unit == u.Unit("km2 s-2 kpc-1") and q.to(u.m / u.s**2).unit == u.m / u.s**2
