"""Baryon models: MWPotential2014 against galpy itself, Poisson consistency, and the parameter draws."""

from typing import get_args

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpotcube.baryons import BARYON_MODELS, MWPotential2014, bulge_density, bulge_potential
from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN as G
from dpotcube.errors import RecipeError
from dpotcube.recipe import CubeSpec, recipe_from_dict

galpy_potential = pytest.importorskip("galpy.potential")
conversion = pytest.importorskip("galpy.util.conversion")
RO, VO = 8.0, 220.0
KPC3_TO_PC3 = 1e-9


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    """Positions from the inner Galaxy to the outer disk, in and off the plane (kpc)."""
    rng = np.random.default_rng(0)
    R = rng.uniform(0.3, 25, 200)
    phi = rng.uniform(-np.pi, np.pi, 200)
    z = rng.uniform(-4, 4, 200)
    return np.stack([R * np.cos(phi), R * np.sin(phi), z], axis=1)


def galpy_components():
    bulge, disk, halo = galpy_potential.MWPotential2014
    return bulge, disk, halo


def galpy_density(pots, xyz: np.ndarray) -> np.ndarray:
    """galpy's density in M☉ pc⁻³ (natural units converted with ro = 8 kpc, vo = 220 km/s)."""
    R, z = np.hypot(xyz[:, 0], xyz[:, 1]) / RO, xyz[:, 2] / RO
    return sum(p.dens(R, z) for p in pots) * conversion.dens_in_msolpc3(VO, RO)


def test_bulge_and_disk_density_match_galpy(points):
    bulge, disk, _ = galpy_components()
    np.testing.assert_allclose(MWPotential2014.density_baryon(points), galpy_density([bulge, disk], points), rtol=5e-6)


def test_halo_density_matches_galpy(points):
    _, _, halo = galpy_components()
    np.testing.assert_allclose(MWPotential2014.density_halo(points), galpy_density([halo], points), rtol=5e-6)


def test_potential_and_forces_match_galpy(points):
    """Φ agrees up to a constant: galpy's bulge potential is not zero at infinity, ours is."""
    R, z = np.hypot(points[:, 0], points[:, 1]) / RO, points[:, 2] / RO
    theirs = galpy_potential.evaluatePotentials(galpy_potential.MWPotential2014, R, z) * VO**2
    ours = np.asarray(MWPotential2014.potential(points), np.float64)
    offset = theirs - ours
    assert np.ptp(offset) < 1e-5 * np.abs(theirs).max()
    bulge = galpy_components()[0]
    assert offset.mean() == pytest.approx(bulge(1e6, 0) * VO**2, rel=1e-5)  # galpy's Φ_bulge(∞)
    accel = -jax.vmap(jax.grad(MWPotential2014.potential))(jnp.asarray(points))
    accel_R = (accel[:, 0] * points[:, 0] + accel[:, 1] * points[:, 1]) / np.hypot(points[:, 0], points[:, 1])
    force_unit = VO**2 / RO
    pots = galpy_potential.MWPotential2014
    np.testing.assert_allclose(accel_R, galpy_potential.evaluateRforces(pots, R, z) * force_unit, rtol=1e-4)
    np.testing.assert_allclose(accel[:, 2], galpy_potential.evaluatezforces(pots, R, z) * force_unit,
                               rtol=1e-4, atol=1e-4 * force_unit)


def test_published_local_baryon_density():
    """Bulge + disk at z = 0: 0.0936 M☉ pc⁻³ at R = ro = 8 kpc, 0.0899 at the Sun's R = 8.122 kpc."""
    assert float(MWPotential2014.density_baryon(np.array([-8.0, 0.0, 0.0]))) == pytest.approx(0.0936, abs=5e-5)
    assert float(MWPotential2014.density_baryon(np.array([-8.122, 0.0, 0.0]))) == pytest.approx(0.0899, abs=5e-5)


def test_normalize_fractions_of_the_rotation_curve():
    """The published scaling: radial forces at R = ro, z = 0 are 0.05, 0.6, 0.35 of vo²/ro (vc(ro) = vo)."""
    accel = -jax.grad(MWPotential2014.potential)(jnp.array([RO, 0.0, 0.0]))
    assert float(-accel[0]) == pytest.approx(VO**2 / RO, rel=1e-5)


def laplacian(f, x):
    return jnp.trace(jax.hessian(f)(x))


def test_poisson_bulge_disk_halo(points):
    """∇²Φ / (4πG) by autodiff equals the bulge + disk + halo density."""
    lap = jax.vmap(lambda x: laplacian(MWPotential2014.potential, x))(jnp.asarray(points))
    density = MWPotential2014.density_baryon(points) + MWPotential2014.density_halo(points)
    np.testing.assert_allclose(lap / (4 * np.pi * G) * KPC3_TO_PC3, density, rtol=1e-4)


@pytest.mark.parametrize("alpha", [1.2, 2.0, 2.5])
def test_poisson_bulge_any_slope(alpha):
    """The bulge potential's closed form holds for draws of α on both sides of 2, and at 2."""
    with jax.enable_x64(True):
        r = jnp.array([0.3, 1.0, 2.5, 4.0])
        x = jnp.stack([r, jnp.zeros_like(r), jnp.zeros_like(r)], axis=1)
        def phi(p):
            return bulge_potential(jnp.linalg.norm(p), 5e9, alpha, 1.9)

        lap = jax.vmap(lambda p: laplacian(phi, p))(x)
        np.testing.assert_allclose(lap / (4 * np.pi * G), bulge_density(r, 5e9, alpha, 1.9), rtol=1e-8)


def test_draws_mean_spread_and_reproducibility():
    draws = MWPotential2014.draw_parameters(20_000, 0.2, seed=1)
    nominal = np.asarray(MWPotential2014.nominal)
    assert draws.shape == (20_000, len(MWPotential2014.parameter_names))
    np.testing.assert_allclose(draws.mean(axis=0), nominal, rtol=0.01)
    disk_mass = MWPotential2014.parameter_names.index("disk_mass_msun")
    assert draws[:, disk_mass].std() / nominal[disk_mass] == pytest.approx(0.2, abs=0.005)
    assert np.all(draws > 0)
    assert draws[:, MWPotential2014.parameter_names.index("bulge_alpha")].max() <= 2.9
    np.testing.assert_array_equal(draws, MWPotential2014.draw_parameters(20_000, 0.2, seed=1))
    assert not np.array_equal(draws, MWPotential2014.draw_parameters(20_000, 0.2, seed=2))
    np.testing.assert_allclose(MWPotential2014.draw_parameters(3, 0.0, seed=1), np.tile(nominal, (3, 1)))
    assert MWPotential2014.draw_parameters(100, 0.5, seed=0).std(axis=0)[disk_mass] > 0.3 * nominal[disk_mass]


def test_density_samples_follow_the_draws(points):
    samples = MWPotential2014.density_baryon_samples(points[:10], n=5, seed=3, relative_error=0.2)
    assert samples.shape == (5, 10)
    draw = MWPotential2014.draw_parameters(5, 0.2, seed=3)[4]
    np.testing.assert_allclose(samples[4], MWPotential2014.density_baryon(points[:10], draw), rtol=1e-6)
    spread = np.asarray(MWPotential2014.density_baryon_samples(points[:1], n=2000, seed=0))
    assert 0.1 < spread.std() / spread.mean() < 0.6  # 20% on every parameter, in a non-linear density


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"Expected positions of shape \(..., 3\); got \(4,\)"):
        MWPotential2014.density_baryon(np.zeros(4))
    with pytest.raises(ValueError, match=r"Expected parameters of shape \(8,\); got \(3,\)"):
        MWPotential2014.density_baryon(np.zeros(3), np.ones(3))


def test_recipe_names_every_model():
    assert set(get_args(CubeSpec.model_fields["baryon_model"].annotation)) == {*BARYON_MODELS, "none"}


def test_unknown_model_is_a_recipe_error():
    with pytest.raises(RecipeError, match=r"\[recipe -> cube -> baryon_model\].*'mwpotential2014' or 'none'"):
        recipe_from_dict({"name": "a", "cube": {"baryon_model": "mckee2015"}})
    with pytest.raises(RecipeError, match=r"\[recipe -> cube -> baryon_relative_error\]"):
        recipe_from_dict({"name": "a", "cube": {"baryon_relative_error": -0.1}})


def test_add_baryons_lazily_for_every_member():
    """Three members: member m subtracts draw m (member 0 the nominal model), block by block, reproducibly."""
    import json

    import dask.array as da
    import xarray as xr

    from dpotcube.cube.grid import make_grid
    from dpotcube.cube.store import add_baryons

    grid = make_grid(CubeSpec(spacing_kpc=1.0, chunk=4), np.array([-8.122, 0.0, 0.0208]), 3.0)
    density = da.full((3, *grid.shape), 0.1, chunks=(1, *grid.chunks), dtype=np.float32)
    ds = xr.Dataset({"density": (("member", "x", "y", "z"), density)}, coords={"x": grid.x, "y": grid.y, "z": grid.z})
    out = add_baryons(ds, grid, "mwpotential2014", 0.2, seed=7)
    assert isinstance(out.density_dm.data, da.Array) and out.density_dm.data.chunksize == (1, 4, 4, 4)
    assert out.density_dm.dtype == np.float32 and out.density_baryon.dims == ("x", "y", "z")
    assert "20% parameter errors" in out.attrs["baryon_model"] and "baryon_model" not in ds.attrs
    members = np.asarray(json.loads(out.attrs["baryon_parameters"])["members"])
    points = np.stack(np.meshgrid(grid.x, grid.y, grid.z, indexing="ij"), axis=-1).astype(np.float32)
    dm = out.density_dm.values
    for m in range(3):
        np.testing.assert_allclose(0.1 - dm[m], MWPotential2014.density_baryon(points, members[m]), atol=1e-7)
    np.testing.assert_allclose(members[0], MWPotential2014.nominal)
    np.testing.assert_allclose(members[1:], MWPotential2014.draw_parameters(2, 0.2, seed=7))
    np.testing.assert_allclose(0.1 - dm[0], out.density_baryon.values, atol=1e-7)
    assert np.ptp(dm[:, 3, 3, 3]) > 1e-3  # the members differ
    np.testing.assert_array_equal(dm, add_baryons(ds, grid, "mwpotential2014", 0.2, seed=7).density_dm.values)
