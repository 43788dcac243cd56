"""The published lines and arcs (`ds.dpot.radial_line`, `azimuthal_arc`, `polar_arc`) on analytic fields."""

import numpy as np
import pytest
import xarray as xr

import dpotcube  # noqa: F401  (registers the accessor)
from dpotcube.errors import DataError

from .handmade import OBSERVER, VOLUME_RADIUS, handmade_cube, multilinear, multilinear_accel

R_SUN = float(np.linalg.norm(OBSERVER))
SPACING = 0.25


@pytest.fixture(scope="module")
def cube() -> xr.Dataset:
    return handmade_cube(multilinear, multilinear_accel, spacing=SPACING)


def points_of(curve: xr.Dataset) -> np.ndarray:
    return np.stack([curve[c].values for c in "xyz"], axis=-1)


def check_values_and_mask(curve: xr.Dataset) -> None:
    """Fields equal the analytic ones (member k scaled by 1 + 0.01 k) where valid; NaN exactly where not."""
    pts = points_of(curve)
    distance = np.linalg.norm(pts - np.asarray(OBSERVER), axis=1)
    valid = curve.in_volume.values
    assert np.all(valid[distance + SPACING * np.sqrt(3) < VOLUME_RADIUS]), "points well inside must be valid"
    assert not np.any(valid[distance > VOLUME_RADIUS]), "points outside the volume must be NaN"
    assert valid.sum() > 5
    scale = 1 + 0.01 * curve.member.values[:, None]
    np.testing.assert_allclose(curve.potential.values[:, valid], scale * multilinear(pts[valid]), rtol=1e-5)
    a = multilinear_accel(pts[valid])
    for i, c in enumerate("xyz"):
        np.testing.assert_allclose(curve[f"accel_{c}"].values[:, valid], scale * a[:, i], rtol=1e-5, atol=1e-5)
    for name in ("potential", "accel_x", "density"):
        assert np.all(np.isnan(curve[name].values[:, ~valid]))
        assert curve[name].dims[0] == "member" and curve[name].dtype == np.float32
        assert curve[name].attrs["units"] == cube_units[name]


cube_units = {"potential": "km2 s-2", "accel_x": "km2 s-2 kpc-1", "density": "solMass pc-3"}


@pytest.mark.parametrize("z", [1.5, -1.5])
def test_radial_line_geometry_and_values(cube, z):
    line = cube.dpot.radial_line(z)
    assert line.potential.dims == ("member", "R") and line.R.attrs["units"] == "kpc"
    np.testing.assert_allclose(line.z, z)
    np.testing.assert_allclose(line.y, 0, atol=1e-12)
    np.testing.assert_allclose(line.x, -line.R)  # the Sun is at φ = π: the line runs along −x
    np.testing.assert_allclose(line.r, np.hypot(line.R, z))
    assert np.any(np.isclose(line.R, np.hypot(*OBSERVER[:2])))  # passes through (x⊙, 0, z)
    assert np.all(np.diff(line.R) == pytest.approx(SPACING / 2))
    check_values_and_mask(line)
    at_sun = line.potential.isel(member=0).sel(R=np.hypot(*OBSERVER[:2]), method="nearest")
    assert float(at_sun) == pytest.approx(3 * OBSERVER[0] + 5 * z, rel=1e-6)  # Φ = 3x − 2y + 5z + ½xyz, y = 0


@pytest.mark.parametrize("z", [1.5, -1.5])
def test_azimuthal_arc_keeps_r_sun(cube, z):
    arc = cube.dpot.azimuthal_arc(z)
    pts = points_of(arc)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), R_SUN, rtol=1e-12)
    np.testing.assert_allclose(arc.z, z)
    at_zero = arc.sel(dphi=0.0, method="nearest")
    assert float(at_zero.dphi) == 0.0
    assert float(at_zero.x) == pytest.approx(-7.982, abs=1e-3) and float(at_zero.y) == pytest.approx(0, abs=1e-12)
    assert np.all(arc.y.values[arc.dphi.values > 0] < 0)  # positive φ − φ⊙ is towards −y, as the paper's ϕ
    np.testing.assert_allclose(arc.arc_length, np.sqrt(R_SUN**2 - z**2) * arc.dphi)
    check_values_and_mask(arc)


def test_polar_arc_geometry(cube):
    arc = cube.dpot.polar_arc()
    pts = points_of(arc)
    r = np.linalg.norm(pts, axis=1)
    np.testing.assert_allclose(r, R_SUN, rtol=1e-12)
    np.testing.assert_allclose(arc.s, R_SUN * (np.pi / 2 - np.arccos(pts[:, 2] / r)), atol=1e-12)
    np.testing.assert_allclose(arc.theta, np.arccos(pts[:, 2] / r), atol=1e-12)
    np.testing.assert_allclose(arc.y, 0, atol=1e-12)
    midplane = arc.sel(s=0.0)
    assert float(midplane.z) == 0.0 and float(midplane.x) == pytest.approx(-R_SUN)
    assert np.all(arc.z.values[arc.s.values > 0] > 0)  # s > 0 is north
    assert arc.s.min() < -2 and arc.s.max() > 2  # spans the volume
    check_values_and_mask(arc)


def test_polar_arc_passes_through_the_observer(cube):
    s_sun = R_SUN * np.arcsin(OBSERVER[2] / R_SUN)
    at_sun = cube.dpot.polar_arc(s=np.array([s_sun]))
    np.testing.assert_allclose(points_of(at_sun)[0], OBSERVER, atol=1e-12)
    assert float(at_sun.potential[0, 0]) == pytest.approx(float(multilinear(np.asarray(OBSERVER))), rel=1e-6)


def test_polar_arc_of_another_radius_and_azimuth(cube):
    r_arc = R_SUN - 1.5
    arc = cube.dpot.polar_arc(dphi=0.2, r_kpc=r_arc, s=np.array([-1.0, 0.0, 1.0]))
    pts = points_of(arc)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), r_arc, rtol=1e-12)
    np.testing.assert_allclose(np.arctan2(pts[:, 1], pts[:, 0]), np.pi + 0.2 - 2 * np.pi)
    np.testing.assert_allclose(arc.theta, np.pi / 2 - np.array([-1.0, 0.0, 1.0]) / R_SUN)  # s = r⊙(π/2 − θ)


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # member quantiles at the NaN ends
def test_components_along_curves():
    """A harmonic field a = −k x: a_r = −k r, a_θ = 0 on the polar arc; a_R = −k R, a_z = −k z, a_φ = 0 on a line."""
    k = 2.0
    cube = handmade_cube(lambda p: 0.5 * k * np.sum(p**2, -1), lambda p: -k * p, n_members=1)
    arc = cube.dpot.polar_arc()
    valid = arc.in_volume.values
    sph = arc.dpot.spherical()
    np.testing.assert_allclose(sph.accel_r[0, valid], -k * R_SUN, rtol=1e-5)
    np.testing.assert_allclose(sph.accel_theta[0, valid], 0, atol=1e-4)
    line = cube.dpot.radial_line(-1.5)
    valid = line.in_volume.values
    cyl = line.dpot.cylindrical()
    np.testing.assert_allclose(cyl.accel_R[0, valid], -k * line.R[valid], rtol=1e-5)
    np.testing.assert_allclose(cyl.accel_z[0, valid], k * 1.5, rtol=1e-5)
    np.testing.assert_allclose(cyl.accel_phi[0, valid], 0, atol=1e-4)
    assert line.dpot.summary("density")["median"].dims == ("R",)


def test_lazy_cube_gives_the_same_curve(cube):
    lazy = cube.chunk({"member": 1, "x": 8, "y": 8, "z": 8})
    eager, from_lazy = cube.dpot.polar_arc(), lazy.dpot.polar_arc()
    assert from_lazy.potential.chunks is not None
    xr.testing.assert_allclose(eager.load(), from_lazy.load())


def test_fields_without_member_dim_and_masks(cube):
    with_baryons = cube.assign(density_baryon=cube.density.isel(member=0, drop=True) * 0.5)
    line = with_baryons.dpot.radial_line(1.5)
    assert line.density_baryon.dims == ("R",) and line.in_volume.dtype == bool
    valid = line.in_volume.values
    np.testing.assert_allclose(line.density_baryon[valid], 0.025, rtol=1e-6)
    no_mask = cube.drop_vars("in_volume").dpot.radial_line(1.5)
    assert no_mask.in_volume.all() and np.isfinite(no_mask.potential).all()  # the grid's box is all there is


def test_missing_observer_is_a_clear_error(cube):
    bare = cube.copy()
    bare.attrs = {}
    with pytest.raises(DataError, match="observer_position_kpc"):
        bare.dpot.polar_arc()
