"""A released cube used as a downstream astronomer would: query at sky positions, the published Φ network,
orbits through galpy and gala, the command line; on the session's tiny build."""

import json
import subprocess
import sys
import warnings

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import Galactic, SkyCoord

import dpotcube
from dpotcube.lookup import OutsideVolumeWarning, SingleMemberWarning

from .conftest import REPO

INTERPOLATION_TOLERANCE = 0.02
"""Grid interpolation error allowed, as a fraction of a field's range in the volume (docs/released.md: the tiny
recipe's 0.5 kpc grid measures at most 0.45% for Φ, 0.93% for a_x (0.2% for a_y, a_z), 0.73% for ρ; a_x, along the
Galactic centre's direction, carries the curvature of the cored-log reference under Φ)."""


@pytest.fixture(scope="module")
def released(tiny_build):
    _, catalog, _ = tiny_build
    ds = dpotcube.open_cube("tiny", catalog=catalog)
    return catalog, ds, dpotcube.potential("tiny", catalog=catalog)


def _inside(ds, n, fraction=0.8, seed=0):
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3))
    radius = fraction * ds.attrs["volume_radius_kpc"]
    d *= radius * rng.uniform(size=(n, 1)) ** (1 / 3) / np.linalg.norm(d, axis=1, keepdims=True)
    return np.asarray(ds.attrs["observer_position_kpc"]) + d


def _quiet_query(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingleMemberWarning)
        return dpotcube.query(*args, **kwargs)


def test_query_at_grid_points_returns_the_grid(released):
    _, ds, _ = released
    X, Y, Z = np.meshgrid(ds.x[1:-1], ds.y[1:-1], ds.z[1:-1], indexing="ij")
    points = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=-1)
    keep = ds.in_volume.compute().sel(x=xr.DataArray(points[:, 0]), y=xr.DataArray(points[:, 1]), z=xr.DataArray(points[:, 2]))
    points = points[keep.values][:50]
    got = _quiet_query(ds, points * u.kpc, interval="members")
    want = ds.potential.isel(member=0).sel(x=xr.DataArray(points[:, 0]), y=xr.DataArray(points[:, 1]),
                                           z=xr.DataArray(points[:, 2]))
    ok = np.isfinite(got.potential.values[0])  # NaN at nodes next to the volume's edge: all 8 corners must be inside
    assert ok.sum() > 10
    np.testing.assert_allclose(got.potential.values[0][ok], want.values[ok], rtol=1e-5, atol=1e-3)


def test_query_agrees_with_the_network_within_the_interpolation_error(released):
    _, ds, pot = released
    x = _inside(ds, 300)
    got = _quiet_query(ds, x * u.kpc)
    phi, grad, lap = pot.evaluate(x)
    density = pot.density(x)
    ok = got.in_volume.values
    assert ok.mean() > 0.8
    for name, exact in (("potential", phi), ("accel_x", -grad[:, 0]), ("accel_z", -grad[:, 2]), ("density", density)):
        error = np.abs(got[name].values[ok] - exact[ok])
        assert error.max() < INTERPOLATION_TOLERANCE * np.ptp(exact[ok]), name
    assert got.potential.attrs["units"] == "km2 s-2"


def test_query_by_skycoord_in_any_frame(released):
    _, ds, _ = released
    icrs = SkyCoord(ra=[10.0, 120.0, 250.0] * u.deg, dec=[41.0, -5.0, 20.0] * u.deg, distance=[0.5, 1.0, 6.0] * u.kpc)
    with pytest.warns(OutsideVolumeWarning, match="1 of 3 points"):
        by_icrs = _quiet_query(ds, icrs)
    with pytest.warns(OutsideVolumeWarning):
        by_galactic = _quiet_query(ds, icrs.transform_to(Galactic()))
    xr.testing.assert_allclose(by_icrs, by_galactic)
    assert list(by_icrs.in_volume.values) == [True, True, False]
    assert np.isnan(by_icrs.density.values[2])
    # the Sun's own position: the observer
    sun = SkyCoord(l=0 * u.deg, b=0 * u.deg, distance=1e-6 * u.kpc, frame="galactic")
    at_sun = _quiet_query(ds, sun)
    np.testing.assert_allclose([at_sun[c].values[0] for c in "xyz"], ds.attrs["observer_position_kpc"], atol=1e-5)
    with pytest.raises(dpotcube.errors.DataError, match="no distances"):
        dpotcube.query(ds, SkyCoord(ra=[1] * u.deg, dec=[2] * u.deg))


def test_query_quantities_are_masked_outside_and_one_member_warns(released):
    _, ds, _ = released
    points = np.array([ds.attrs["observer_position_kpc"], [0.0, 0.0, 0.0]]) * u.kpc
    with pytest.warns(SingleMemberWarning), pytest.warns(OutsideVolumeWarning, match="1 of 2"):
        out = dpotcube.query(ds, points, quantities=["potential", "accel_x"], output="quantity")
    assert set(out) == {"potential", "potential_p16", "potential_p84", "accel_x", "accel_x_p16", "accel_x_p84"}
    assert out["accel_x"].unit == u.Unit("km2 s-2 kpc-1")
    assert list(out["potential"].mask) == [False, True]
    assert abs(out["potential"][0].unmasked.value) < 1.0  # Φ = 0 at the reference point, the observer
    via_accessor = ds.dpot.query(points[:1], quantities="density", interval="members")
    assert via_accessor.density.dims == ("member", "points")


def test_published_fields_spec_and_exact_network(released, tiny_build):
    catalog, ds, pot = released
    spec = json.loads((catalog.parent / "cubes" / "tiny.fields" / "spec.json").read_text())
    assert spec["units"]["potential"] == "km2 s-2" and spec["method"] == "conditional"
    assert [m["kind"] for m in spec["members"]] == list(ds.member_kind.values)
    assert spec["architecture"]["potential"]["width"] == 16
    # exact inside: the cube's grid values are the network's, in float32
    grid = ds.isel(member=0).where(ds.in_volume).to_dataframe()[["potential", "accel_x", "density"]].dropna()
    points = np.array(grid.index.to_list())[::7]
    phi, grad, _ = pot.evaluate(points)
    np.testing.assert_allclose(phi, grid.potential.values[::7], atol=1e-4 * np.ptp(grid.potential))
    np.testing.assert_allclose(-grad[:, 0], grid.accel_x.values[::7], atol=1e-4 * np.ptp(grid.accel_x))
    np.testing.assert_allclose(pot.density(points), grid.density.values[::7], atol=1e-3 * np.ptp(grid.density))
    assert set(pot.region(points)) == {0}
    # a JAX function: autodiff of the call equals the vectorised gradient
    import jax

    np.testing.assert_allclose(np.asarray(jax.grad(pot)(np.float32(points[0]))), grad[0], rtol=1e-3)


def test_extension_is_continuous_and_never_nan(released):
    _, ds, pot = released
    o = np.asarray(pot.observer)
    direction = np.array([0.3, -0.8, 0.52]) / np.linalg.norm([0.3, -0.8, 0.52])
    s = np.linspace(0.5, 20.0, 2000)
    phi, grad, lap = pot.evaluate(o + np.outer(s * pot.radius, direction))
    assert np.isfinite(phi).all() and np.isfinite(grad).all() and np.isfinite(lap).all()
    assert set(np.unique(pot.region(o + np.outer(s * pot.radius, direction)))) == {0, 1, 2}
    from dpotcube.learned import BLEND_WIDTH

    for edge in (1.0, 1.0 + BLEND_WIDTH):  # Φ, ∇Φ and ∇²Φ continuous across both edges of the blending shell
        eps = 1e-7
        two = o + np.outer(np.array([edge - eps, edge + eps]) * pot.radius, direction)
        phi, grad, lap = pot.evaluate(two)
        assert abs(phi[1] - phi[0]) < 1e-3 and np.abs(grad[1] - grad[0]).max() < 1e-3
        assert abs(lap[1] - lap[0]) < 1e-3 * (1 + abs(lap[0]))
    far = np.array([[50.0, 40.0, -30.0]])
    np.testing.assert_allclose(pot.potential(far), pot.extension(far[0]), rtol=1e-6)  # region 2: the extension only


def test_galpy_and_gala_forces_equal_the_network_and_each_other(released):
    from galpy.potential import (
        evaluateDensities,
        evaluatephitorques,
        evaluatePotentials,
        evaluateRforces,
        evaluatezforces,
    )

    _, ds, pot = released
    rng = np.random.default_rng(3)
    x = np.concatenate([_inside(ds, 20), rng.uniform(-30, 30, size=(10, 3))])  # inside and far outside
    phi, grad, lap = pot.evaluate(x)
    a = -grad
    galpy_pot, gala_pot = dpotcube.to_galpy(pot), dpotcube.to_gala(pot)
    # galpy's frame is left-handed: x_galpy = −x
    R, phi_g = np.hypot(x[:, 0], x[:, 1]), np.arctan2(x[:, 1], -x[:, 0])
    kw = {"phi": phi_g * u.rad, "quantity": True}
    accel = u.km**2 / u.s**2 / u.kpc
    f_R = evaluateRforces(galpy_pot, R * u.kpc, x[:, 2] * u.kpc, **kw).to_value(accel)
    f_z = evaluatezforces(galpy_pot, R * u.kpc, x[:, 2] * u.kpc, **kw).to_value(accel)
    torque = evaluatephitorques(galpy_pot, R * u.kpc, x[:, 2] * u.kpc, **kw).to_value(u.km**2 / u.s**2)
    a_galpy = np.stack([-(f_R * np.cos(phi_g) - torque / R * np.sin(phi_g)),
                        f_R * np.sin(phi_g) + torque / R * np.cos(phi_g), f_z], axis=-1)
    np.testing.assert_allclose(a_galpy, a, rtol=1e-8, atol=1e-8 * np.abs(a).max())
    phi_galpy = evaluatePotentials(galpy_pot, R * u.kpc, x[:, 2] * u.kpc, **kw).to_value(u.km**2 / u.s**2)
    np.testing.assert_allclose(phi_galpy, phi, rtol=1e-8, atol=1e-6)
    rho_galpy = evaluateDensities(galpy_pot, R * u.kpc, x[:, 2] * u.kpc, **kw).to_value(u.Msun / u.pc**3)
    np.testing.assert_allclose(rho_galpy, pot.density(x), rtol=1e-6, atol=1e-12)

    a_gala = gala_pot.acceleration(x.T * u.kpc).to_value(accel).T
    np.testing.assert_allclose(a_gala, a, rtol=1e-8, atol=1e-8 * np.abs(a).max())
    np.testing.assert_allclose(a_gala, a_galpy, rtol=1e-8, atol=1e-8 * np.abs(a).max())
    np.testing.assert_allclose(gala_pot.energy(x.T * u.kpc).to_value(u.km**2 / u.s**2), phi, rtol=1e-8, atol=1e-6)
    rho_gala = gala_pot.density(x.T * u.kpc).to_value(u.Msun / u.pc**3)
    np.testing.assert_allclose(rho_gala, pot.density(x), rtol=1e-6, atol=1e-12)


def test_suns_orbit_conserves_energy_in_galpy_and_gala(released):
    import gala.dynamics as gd
    import gala.integrate as gi
    import gala.potential as gp
    from galpy.orbit import Orbit

    _, ds, pot = released
    x0, v0 = np.asarray(pot.observer), np.asarray(ds.attrs["galcen_v_sun_kms"])
    galpy_pot = dpotcube.to_galpy(pot)
    from dpotcube.adapters import galpy_coordinates

    o = Orbit(galpy_coordinates(x0 + [0.0, 0.3, 0.0], v0), ro=galpy_pot._ro, vo=galpy_pot._vo)  # off the x axis
    ts = np.linspace(0, 0.2, 201) * u.Gyr
    o.integrate(ts, galpy_pot, method="dop853")
    # Φ = 0 at the observer, so E itself may lie near zero: drifts are relative to the kinetic energy ½|v₀|²
    kinetic = 0.5 * float(np.sum(v0**2))
    energy = o.E(ts, pot=galpy_pot, quantity=True).to_value(u.km**2 / u.s**2)
    assert np.isfinite(energy).all() and np.max(np.abs(energy - energy[0])) < 1e-6 * kinetic

    w0 = gd.PhaseSpacePosition(pos=(x0 + [0.0, 0.3, 0.0]) * u.kpc, vel=v0 * u.km / u.s)
    orbit = gp.Hamiltonian(dpotcube.to_gala(pot)).integrate_orbit(w0, dt=1 * u.Myr, n_steps=200,
                                                                  Integrator=gi.DOPRI853Integrator,
                                                                  Integrator_kwargs={"rtol": 1e-10, "atol": 1e-10})
    e = orbit.energy().to_value(u.km**2 / u.s**2)
    assert np.isfinite(e).all() and np.max(np.abs(e - e[0])) < 1e-6 * kinetic
    xyz_galpy = np.stack([-o.x(ts), o.y(ts), o.z(ts)], axis=-1)
    np.testing.assert_allclose(orbit.xyz.T.to_value(u.kpc), xyz_galpy, atol=1e-4)  # the same orbit


def test_pointwise_cube_has_no_network():
    ds = xr.Dataset(attrs={"method": "pointwise"})
    with pytest.raises(dpotcube.errors.DataError, match="pointwise"):
        dpotcube.potential(ds)


def test_query_command(released, tmp_path):
    from typer.testing import CliRunner

    from dpotcube.cli import app

    catalog, _, _ = released
    runner = CliRunner()
    done = runner.invoke(app, ["query", "tiny", "--catalog", str(catalog), "--ra", "10", "--dec", "41",
                               "--distance", "0.5", "-q", "potential"])
    assert done.exit_code == 0, done.output
    assert "potential_p16" in done.output and "km2 / s2" in done.output
    table = tmp_path / "stars.csv"
    table.write_text("ra,dec,distance\n10,41,0.5\n250,20,6.0\n")
    out = tmp_path / "result.ecsv"
    done = runner.invoke(app, ["query", "tiny", "--catalog", str(catalog), "--table", str(table), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "1 of 2 points" in " ".join(done.output.split())
    from astropy.table import Table

    rows = Table.read(out)
    assert len(rows) == 2 and rows["density"].unit == u.Unit("solMass pc-3") and list(rows["in_volume"]) == [True, False]
    assert runner.invoke(app, ["--version"]).output.strip() == f"dpotcube {dpotcube.__version__}"


def test_reading_and_querying_do_not_import_jax(released):
    catalog, _, _ = released
    code = (
        "import sys, warnings; warnings.simplefilter('ignore'); import astropy.units as u, dpotcube; "
        f"ds = dpotcube.open_cube('tiny', catalog={str(catalog)!r}); "
        "dpotcube.query(ds, [[-8.0, 0.0, 0.0]] * u.kpc); ds.dpot.vcirc(); ds.dpot.kz(); ds.dpot.surface_density(); "
        "import dpotcube.cli; from dpotcube.plots import plane_figure, vcirc_figure; plane_figure(ds); vcirc_figure(ds); "
        "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith('jax.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_cf_attributes_and_catalog_release_metadata(released):
    import cf_xarray  # noqa: F401  (registers ds.cf)

    from dpotcube.catalog import list_entries

    catalog, ds, _ = released
    assert ds.attrs["Conventions"].startswith("CF-")
    assert ds.cf.axes == {"X": ["x"], "Y": ["y"], "Z": ["z"]}
    assert ds.cf["X"].name == "x" and ds.cf["Z"].attrs["positive"] == "up"
    for name in [*ds.data_vars, *ds.coords]:
        attrs = ds[name].attrs
        assert "long_name" in attrs, name
        if name not in ("member_kind",):
            assert "units" in attrs, name
    meta = list_entries(catalog)["tiny"]
    assert meta["license"] == ds.attrs["license"] and "conditional" in meta["description"]
    assert any("Kalda & Green" in c for c in meta["citation"]) and meta["recipe_sha256"] == ds.attrs["recipe_sha256"]
    assert meta["created"] == ds.attrs["created"]


def test_diagnose_gives_the_builds_numbers_by_default(tiny_build, tmp_path):
    from typer.testing import CliRunner

    from dpotcube.cli import app

    root, catalog, _ = tiny_build
    out = tmp_path / "again"
    done = CliRunner().invoke(app, ["diagnose", "tiny", "--catalog", str(catalog), "--build", str(root / "build"),
                                    "--out", str(out)])
    assert done.exit_code == 0, done.output
    built = json.loads(next((root / "build" / "diagnostics").glob("*.json")).read_text())
    again = json.loads(next(out.glob("*.json")).read_text())

    def numbers(tree, path=""):
        if isinstance(tree, dict):
            return {k: v for key, value in tree.items() for k, v in numbers(value, f"{path}/{key}").items()}
        if isinstance(tree, list):
            return {k: v for i, value in enumerate(tree) for k, v in numbers(value, f"{path}/{i}").items()}
        return {path: tree} if isinstance(tree, float) else {}

    a, b = numbers(built), numbers(again)
    assert a.keys() == b.keys() and len(a) > 100
    np.testing.assert_allclose([b[k] for k in a], list(a.values()), rtol=1e-9)  # threads may sum in another order


@pytest.fixture()
def http_catalog(tiny_build):
    """The tiny build's catalog folder served by `python -m http.server` on 127.0.0.1: its base URL."""
    import socket
    import time
    import urllib.request

    _, catalog, _ = tiny_build
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                               str(catalog.parent)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/catalog.yaml", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_released_catalog_opens_over_http(http_catalog, released):
    import intake

    _, local, local_pot = released
    by_intake = intake.open_catalog(f"{http_catalog}/catalog.yaml")["tiny"].read()
    by_url = dpotcube.open_cube(f"{http_catalog}/catalog.yaml#tiny")
    assert by_url.potential.chunks is not None  # lazy: dask arrays, read chunk by chunk when sliced
    piece = by_url.density.isel(member=0, x=slice(4, 8)).sel(z=0.0, method="nearest")
    here = local.density.isel(member=0, x=slice(4, 8)).sel(z=0.0, method="nearest")
    xr.testing.assert_identical(piece.compute(), here.compute())
    xr.testing.assert_identical(by_intake.isel(x=5).compute(), local.isel(x=5).compute())
    remote_pot = dpotcube.potential(by_url)  # the published fields, downloaded and checksum-verified
    x = _inside(local, 5)
    np.testing.assert_allclose(remote_pot.potential(x), local_pot.potential(x), rtol=1e-12)


def test_extension_recovers_the_plummer_sphere_from_a_network_on_exact_gradients(exact_fields, truth, stars):
    """The Plummer extension fitted to a Φ network trained on the mock's exact gradients (the shared `exact_fields`
    fixture) is the mock's own sphere: M and b within 5%, and far outside the volume its force within 3%."""
    from dpotcube.learned import LearnedPotential

    model, _, _ = exact_fields
    pot = LearnedPotential(model.potential, stars.observer, stars.observer, stars.volume_radius_kpc)
    assert pot.extension.mass_msun == pytest.approx(truth.mass_msun, rel=0.05)
    assert pot.extension.scale_radius_kpc == pytest.approx(truth.scale_radius_kpc, rel=0.05)
    far = np.array([[-12.0, 0.0, 0.0], [5.0, 5.0, 5.0], [-20.0, 3.0, 1.0], [2.0, -1.0, 0.5]])
    assert set(pot.region(far)) == {2}
    a, a_true = pot.acceleration(far), np.asarray(truth.acceleration(far), np.float64)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), np.linalg.norm(a_true, axis=1), rtol=0.03)
    cosine = np.sum(a * a_true, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(a_true, axis=1)
    assert np.all(cosine > 0.999)
