"""v_c(R), K_z(z) and Σ(|z| < z_max) from the accessor, against the analytic Plummer sphere."""

import numpy as np
import pytest
import xarray as xr

import dpotcube  # noqa: F401  (registers ds.dpot)
from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN


@pytest.fixture(scope="module")
def plummer_cube(truth):
    """The analytic Plummer a and ρ on a 0.1 kpc grid around the observer, 5 members scattered by ±1%."""
    o = np.asarray(truth.observer)
    x, y, z = (np.arange(c - 3.0, c + 3.0001, 0.1) for c in o)
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    p = np.stack([X, Y, Z], axis=-1)
    a = np.asarray(truth.acceleration(p), np.float64)
    rho = np.asarray(truth.density(p), np.float64) * 1e-9  # M☉ kpc⁻³ → M☉ pc⁻³
    scale = (1 + 0.01 * np.linspace(-1, 1, 5))[:, None, None, None]
    dims = ("member", "x", "y", "z")
    data = {f"accel_{c}": (dims, scale * a[..., i], {"units": "km2 s-2 kpc-1"}) for i, c in enumerate("xyz")}
    data["density"] = (dims, scale * rho, {"units": "solMass pc-3"})
    data["in_volume"] = (("x", "y", "z"), np.linalg.norm(p - o, axis=-1) < 3.0)
    return xr.Dataset(data, coords={"x": x, "y": y, "z": z, "member": np.arange(5)},
                      attrs={"observer_position_kpc": list(o), "volume_radius_kpc": 3.0})


def _plummer_vc(truth, R):
    gm, b = G_KPC_KM2_S2_PER_MSUN * truth.mass_msun, truth.scale_radius_kpc
    return np.sqrt(gm * R**2 / (R**2 + b**2) ** 1.5)


def test_vcirc_is_the_plummer_curve_with_its_member_range(plummer_cube, truth):
    R = np.linspace(6.0, 10.0, 9)
    out = plummer_cube.dpot.vcirc(R)
    np.testing.assert_allclose(out.vcirc, _plummer_vc(truth, R), rtol=1e-3)
    assert out.vcirc.attrs["units"] == "km s-1"
    assert np.all(out.vcirc_p16 < out.vcirc) and np.all(out.vcirc < out.vcirc_p84)
    np.testing.assert_allclose(out.vcirc_p84 / out.vcirc_p16, np.sqrt(1.0068 / 0.9932), rtol=2e-3)  # √ of ±0.68%
    assert np.isnan(plummer_cube.dpot.vcirc([12.0]).vcirc).all()  # outside the volume


def test_kz_is_the_plummer_vertical_force(plummer_cube, truth):
    z = np.linspace(-1.5, 1.5, 7)
    out = plummer_cube.dpot.kz(z)
    o = np.asarray(truth.observer)
    points = np.stack([np.full_like(z, o[0]), np.full_like(z, o[1]), z], axis=-1)
    want = np.asarray(truth.acceleration(points))[:, 2]
    np.testing.assert_allclose(out.kz, want, rtol=1e-3, atol=1e-2)
    assert np.all(np.sign(out.kz.values[z > 0]) == -1)  # towards the plane
    np.testing.assert_allclose(out.kz_2piG, np.abs(want) / (2 * np.pi * G_KPC_KM2_S2_PER_MSUN) * 1e-6, rtol=1e-3,
                               atol=1e-3)


def test_surface_density_integrates_the_plummer_density(plummer_cube, truth):
    out = plummer_cube.dpot.surface_density(z_max=1.1)
    o = np.asarray(truth.observer)
    z = np.linspace(-1.1, 1.1, 20001)
    rho = np.asarray(truth.density(np.stack([np.full_like(z, o[0]), np.full_like(z, o[1]), z], -1))) * 1e-9
    want = np.trapezoid(rho, z) * 1000  # M☉ pc⁻²
    np.testing.assert_allclose(float(out.surface_density), want, rtol=2e-3)
    assert out.surface_density.attrs["units"] == "solMass pc-2"
    assert float(out.surface_density_p16) < float(out.surface_density) < float(out.surface_density_p84)
