"""The published diagnostics on cubes built from analytic fields with known answers (`dpotcube diagnose`)."""

from __future__ import annotations

import json

import astropy.units as u
import fsspec
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dpotcube.cli import app
from dpotcube.constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3
from dpotcube.diagnostics import (
    FILES,
    PlummerGradients,
    fit_gnfw,
    gnfw_density,
    lim_axes,
    local_density,
    north_south,
    parse_acceleration,
    residual_at_sun,
    solar_acceleration,
)
from dpotcube.diagnostics.gnfw import PUBLISHED_PRIORS, gnfw_diagnostic
from dpotcube.diagnostics.kernel import Kernel
from dpotcube.diagnostics.mcmc import sample_stretch
from dpotcube.diagnostics.solar import ball_points
from dpotcube.errors import DataError
from dpotcube.sources.mocks import PlummerTruth

from .handmade import OBSERVER, handmade_cube

TRUTH = PlummerTruth(mass_msun=1e11, scale_radius_kpc=4.0, observer=OBSERVER, volume_radius_kpc=3.0, n_stars=1000)
MEDIAN_SCALE = 1.01  # members are the field × (1, 1.01, 1.02): their median is member 1
GNFW = (0.3, 5.0, 1.2)  # ρ₀ (M☉ pc⁻³), r_s (kpc), β


def plummer_cube(centre=(0.0, 0.0, 0.0), **kwargs):
    c = np.asarray(centre)
    return handmade_cube(
        lambda p: np.asarray(TRUTH.potential(p - c), np.float64),
        lambda p: np.asarray(TRUTH.acceleration(p - c), np.float64),
        lambda p: np.asarray(TRUTH.density(p - c), np.float64) * MSUN_PER_KPC3_TO_MSUN_PER_PC3,
        **kwargs,
    )


@pytest.fixture(scope="module")
def plummer():
    return plummer_cube()


def test_solar_acceleration_is_the_ball_average_of_the_plummer_truth_in_every_unit_and_axis(plummer):
    result = solar_acceleration(plummer)
    truth = np.asarray(TRUTH.acceleration(ball_points(plummer)), np.float64).mean(axis=0)
    np.testing.assert_allclose(result["members_kms2_per_kpc"][0], truth, rtol=0, atol=2e-4 * np.linalg.norm(truth))
    median = np.array([result["galactocentric_kms2_per_kpc"][c]["median"] for c in "xyz"])
    np.testing.assert_allclose(median, MEDIAN_SCALE * truth, atol=2e-4 * np.linalg.norm(truth))
    si = (median * u.km**2 / u.s**2 / u.kpc).to_value(u.m / u.s**2) / 1e-10  # astropy's conversion, not our constant
    got = np.array([result["galactocentric_1e-10_m_s2"][c]["median"] for c in "xyz"])
    np.testing.assert_allclose(got, si, rtol=1e-4, atol=1e-6)
    lim = np.array([result["lim2025_axes_1e-10_m_s2"][c]["median"] for c in "xyz"])
    np.testing.assert_allclose(lim, [-si[0], -si[1], si[2]], rtol=1e-4, atol=1e-6)  # Sun on +x, rotation to −y
    assert lim[0] < 0 and 1.4 < abs(lim[0]) < 1.7, "towards the centre, ~1.5e-10 m/s² for this Plummer sphere"
    assert result["galactocentric_kms2_per_kpc"]["x"]["p16"] < median[0] < result["galactocentric_kms2_per_kpc"]["x"]["p84"]


def test_lim_axes_put_the_sun_on_plus_x_and_rotation_towards_minus_y():
    axes = lim_axes(np.asarray(OBSERVER))
    np.testing.assert_allclose(axes @ np.asarray(OBSERVER), [np.hypot(*OBSERVER[:2]), 0, OBSERVER[2]], atol=1e-12)
    rotation_at_sun = np.array([0.0, 1.0, 0.0])  # astropy: the disk rotates towards +y at the Sun
    np.testing.assert_allclose(axes @ rotation_at_sun, [0, -1, 0], atol=1e-12)


def test_local_density_at_the_sun_and_on_the_arc_equals_the_truth(plummer):
    kernel = Kernel()
    offsets, weights = kernel.offsets()

    def truth_kernel(centre: np.ndarray) -> float:
        return float(np.asarray(TRUTH.density(centre + offsets)) @ weights) * MSUN_PER_KPC3_TO_MSUN_PER_PC3

    result = local_density(plummer, kernel)
    sun = result["sun"]["density"]
    rho_sun = truth_kernel(np.asarray(OBSERVER))
    assert sun["kernel"]["median"] == pytest.approx(MEDIAN_SCALE * rho_sun, rel=2e-3)
    assert sun["kernel"]["median_GeV_cm3"] == pytest.approx(37.97 * sun["kernel"]["median"], rel=1e-9)
    point = float(TRUTH.density(np.asarray(OBSERVER))) * MSUN_PER_KPC3_TO_MSUN_PER_PC3
    assert sun["point"]["median"] == pytest.approx(MEDIAN_SCALE * point, rel=2e-3)
    assert abs(sun["kernel"]["median"] / sun["point"]["median"] - 1) > 5e-3, "the kernel average is not the point value"

    points = result["arc"]["points"]
    assert len(points) >= 3 and result["dark_matter_field"] == "density" and result["note"]
    centres = np.array([p["xyz_kpc"] for p in points])
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), np.linalg.norm(OBSERVER), rtol=1e-9)  # r = r⊙
    scaled = centres / np.asarray(kernel.h)
    gaps = np.linalg.norm(scaled[:, None] - scaled[None], axis=-1)[np.triu_indices(len(points), 1)]
    assert gaps.min() >= 2 * kernel.cut, "independent points: no two kernels overlap"
    truth = np.array([truth_kernel(c) for c in centres])
    np.testing.assert_allclose([p["density"]["median"] for p in points], MEDIAN_SCALE * truth, rtol=2e-3)
    w = 1 / (0.05 * MEDIAN_SCALE * truth) ** 2  # the 5% floor sets every σ here
    mean = result["arc"]["weighted_mean"]["density"]
    assert mean["members"][0] == pytest.approx(truth @ w / w.sum(), rel=2e-3)


def test_north_south_differences_vanish_for_plummer_and_match_a_tilted_field(plummer):
    symmetric = north_south(plummer)
    for curve in ("radial_lines", "azimuthal_arcs", "polar_arc"):
        assert symmetric[curve]["n_points"] > 5
        assert max(symmetric[curve]["max_abs_median"].values()) < 1e-3, curve

    centre = np.array([0.0, 0.3, 0.5])  # above the plane and off the Sun's meridian: breaks both symmetries
    tilted = north_south(plummer_cube(centre))
    line = tilted["radial_lines"]["curves"]
    r = np.asarray(line["r_kpc"])
    R = np.sqrt(r**2 - 1.5**2)
    north, south = (np.stack([-R, 0 * R, np.full_like(R, z)], axis=-1) for z in (1.5, -1.5))  # φ⊙ = π
    a_n, a_s = (np.asarray(TRUTH.acceleration(p - centre), np.float64) for p in (north, south))
    norm = 0.5 * (np.linalg.norm(a_n, axis=1) + np.linalg.norm(a_s, axis=1))
    delta_r = (np.sum(a_n * north, 1) - np.sum(a_s * south, 1)) / r / norm
    np.testing.assert_allclose(line["delta_r"]["median"], delta_r, atol=2e-3)
    theta_hat = lambda p: np.stack([p[:, 0] * p[:, 2], p[:, 1] * p[:, 2], -R**2], -1) / (R * r)[:, None]  # noqa: E731
    delta_theta = (np.sum(a_n * theta_hat(north), 1) + np.sum(a_s * theta_hat(south), 1)) / norm
    np.testing.assert_allclose(line["delta_theta"]["median"], delta_theta, atol=2e-3)
    a_phi = -a_n[:, 1] / np.linalg.norm(a_n, axis=1)  # φ̂ = (0, −1, 0) on this line
    np.testing.assert_allclose(line["a_phi_over_a_north"]["median"], a_phi, atol=2e-3)
    for curve in ("radial_lines", "azimuthal_arcs", "polar_arc"):
        largest = tilted[curve]["max_abs_median"]
        assert largest["delta_r"] > 0.02 and largest["delta_theta"] > 0.05 and largest["a_phi_over_a_north"] > 0.02


def test_dlnf_dt_vanishes_for_the_true_acceleration_and_not_for_a_wrong_one(plummer):
    sun = np.asarray(OBSERVER)
    a_true = np.asarray(TRUTH.acceleration(sun), np.float64)
    a_cube = np.array([solar_acceleration(plummer)["members_kms2_per_kpc"][0]]).ravel()
    accelerations = {"true": a_true, "cube": a_cube, "20% too strong": 1.2 * a_true, "flipped": -a_true}
    info, samples = residual_at_sun(PlummerGradients(TRUTH), sun, accelerations, n_velocities=20_000, seed=1)
    by = info["by_acceleration"]
    assert info["streaming_rms"] > 10, "the streaming term alone is far from zero"
    assert by["true"]["relative_rms"] < 1e-4 and abs(by["true"]["mean"]) < 1e-3
    assert by["cube"]["relative_rms"] < 2e-3, "the cube's ball-averaged a⊙ closes the CBE almost as well"
    assert by["20% too strong"]["relative_rms"] == pytest.approx(0.2, rel=0.02)  # ∝ the error in a
    assert by["flipped"]["relative_rms"] > 1.5
    assert all(len(v) == 20_000 and np.isfinite(v).all() for v in samples.values())


def test_stretch_sampler_recovers_a_correlated_gaussian():
    cov = np.array([[1.0, 0.8], [0.8, 2.0]])
    precision = np.linalg.inv(cov)
    log_prob = lambda x: -0.5 * np.einsum("wi,ij,wj->w", x - 3, precision, x - 3)  # noqa: E731
    start = 3 + 0.1 * np.random.default_rng(0).standard_normal((16, 2))
    chain, _, acceptance = sample_stretch(log_prob, start, 3000, seed=0)
    samples = chain[500:].reshape(-1, 2)
    np.testing.assert_allclose(samples.mean(0), [3, 3], atol=0.1)
    np.testing.assert_allclose(np.cov(samples.T), cov, atol=0.2)
    assert 0.2 < acceptance < 0.9


def test_gnfw_priors_are_the_published_ones():
    theta = np.array([[0.4, 5, 2], [-0.1, 5, 2], [2.1, 5, 2], [0.4, 0, 2], [0.4, 20.5, 2], [0.4, 5, -0.1], [0.4, 5, 3]])
    lp = PUBLISHED_PRIORS.log_prior(theta)
    assert lp[0] == 0.0 and np.all(np.isneginf(lp[1:]))
    assert PUBLISHED_PRIORS.log_prior(np.array([[1.2, 19.9, 2.0]]))[0] == pytest.approx(-0.5 * (0.8 / 0.8) ** 2)


def test_gnfw_fit_recovers_its_parameters_from_exact_profile_points():
    r = np.linspace(4, 12, 9)
    rho = gnfw_density(r, *GNFW)
    fit = fit_gnfw(r, rho, 0.03 * rho, n_steps=3000, burn=1000, seed=0)
    for value, (name, post) in zip(GNFW, fit["posterior"].items()):
        assert post["p16"] <= value <= post["p84"], (name, post)
    assert fit["chi2_max_posterior"] < 0.5 and 0.15 < fit["sampler"]["acceptance"] < 0.6
    wrong = fit_gnfw(r, 2 * rho, 0.03 * rho, n_steps=1500, burn=500, seed=0)["posterior"]["rho0_msun_pc3"]
    assert wrong["p16"] > GNFW[0], "data twice as dense must move ρ₀ up"


def test_gnfw_fit_on_a_cube_with_a_gnfw_dark_matter_density():
    def rho_dm(p):
        return gnfw_density(np.linalg.norm(p, axis=-1), *GNFW)

    ds = handmade_cube(lambda p: 0 * p[..., 0], lambda p: 0 * p, lambda p: rho_dm(p) + 0.05, density_dm=rho_dm,
                       half_width=4.5, volume_radius=4.0)
    fit, data = gnfw_diagnostic(ds, seed=0, n_steps=3000)
    assert fit["field"] == "density_dm" and fit["note"] is None and fit["n_data"] >= 5
    r = np.asarray(data["r_kpc"])
    assert r.max() - r.min() > 3, "the lines at z = ±1.5 kpc span a range of r"
    for value, (name, post) in zip((MEDIAN_SCALE * GNFW[0], *GNFW[1:]), fit["posterior"].items()):
        assert post["p16"] <= value <= post["p84"], (name, post)
    draws = np.asarray(fit["draws"])
    at_sun = gnfw_density(np.linalg.norm(OBSERVER), draws[:, 0], draws[:, 1], draws[:, 2])
    assert np.median(at_sun) == pytest.approx(MEDIAN_SCALE * rho_dm(np.asarray(OBSERVER)), rel=0.03)


def test_parse_acceleration_units_axes_and_errors():
    a = parse_acceleration("-2.32, 0.04, -0.14", "1e-10 m s-2", "lim2025", np.asarray(OBSERVER))
    si = (a * u.km**2 / u.s**2 / u.kpc).to_value(u.m / u.s**2) / 1e-10
    np.testing.assert_allclose(si, [2.32, -0.04, -0.14], rtol=1e-4)  # (−x, −y, z) back to astropy's axes
    np.testing.assert_allclose(parse_acceleration("4700,0,-12"), [4700, 0, -12])
    for text, units, axes, words in [
        ("1,2", "km2 s-2 kpc-1", "galactocentric", "three finite numbers"),
        ("1,x,3", "km2 s-2 kpc-1", "galactocentric", "three finite numbers"),
        ("1,2,nan", "km2 s-2 kpc-1", "galactocentric", "three finite numbers"),
        ("1,2,3", "m/s2", "galactocentric", "--accel-units"),
        ("1,2,3", "km2 s-2 kpc-1", "icrs", "--accel-axes"),
    ]:
        with pytest.raises(DataError, match=words):
            parse_acceleration(text, units, axes)


def mock_store(tmp_path):
    ds = plummer_cube(spacing=0.5)
    ds.attrs |= {"data_source": "plummer", "recipe": yaml.safe_dump(
        {"name": "handmade", "data": {"source": "plummer", "plummer": {"mass_msun": 1e11, "scale_radius_kpc": 4.0}}})}
    store = tmp_path / "mock.zarr"
    ds.to_zarr(store, zarr_format=3, consolidated=True)
    return store


def test_diagnose_command_writes_json_markdown_and_plots(tmp_path):
    store = mock_store(tmp_path)
    args = ["diagnose", str(store), "--velocities", "5000", "--accel", "-1.6,0,0", "--accel-units", "1e-10 m s-2",
            "--accel-axes", "lim2025"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = tmp_path / "mock.diagnostics"  # beside the cube
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    report = json.loads((out / "diagnostics.json").read_text())
    assert report["dlnf_dt"]["source"].startswith("Plummer mock")
    user = report["dlnf_dt"]["by_acceleration"]["user-given"]
    assert user["acceleration_kms2_per_kpc"][0] == pytest.approx(1.6e-10 / 3.2408e-14, rel=1e-4)
    assert report["dlnf_dt"]["by_acceleration"]["cube a⊙ (member median)"]["relative_rms"] < 0.05
    assert report["gnfw"]["skipped"] and "density_dm" in report["gnfw"]["note"]
    text = (out / "diagnostics.md").read_text()
    for heading in ("## Solar acceleration", "## Local density", "## North–south", "## ∂ ln f/∂t", "## Generalized NFW"):
        assert heading in text
    assert "−1.94 ± 0.22" in text and "user-given" in text
    for name in FILES[2:]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_diagnose_to_a_url_without_a_density_model_skips_the_residual_with_a_note(tmp_path):
    ds = plummer_cube(spacing=0.5)
    store = tmp_path / "real.zarr"
    ds.to_zarr(store, zarr_format=3, consolidated=True)
    result = CliRunner().invoke(app, ["diagnose", str(store), "--out", "memory://diag/real"])
    assert result.exit_code == 0, result.output
    assert "--build" in result.output
    fs = fsspec.filesystem("memory")
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls("/diag/real", detail=False)) == sorted(FILES[:-1])
    report = json.loads(fs.cat("/diag/real/diagnostics.json"))
    assert "skipped" in report["dlnf_dt"] and "--build" in report["dlnf_dt"]["skipped"]


def test_diagnose_bad_inputs_are_clear_errors(tmp_path):
    store = mock_store(tmp_path)
    bad = CliRunner().invoke(app, ["diagnose", str(store), "--accel", "1,2"])
    assert bad.exit_code == 2 and "three finite numbers" in bad.output and "Traceback" not in bad.output
    not_build = CliRunner().invoke(app, ["diagnose", str(store), "--build", str(tmp_path)])
    assert not_build.exit_code == 2 and "not a dpotcube build folder" in not_build.output


@pytest.mark.parametrize("spacing", [1.0, 2.0])
def test_diagnostics_on_a_coarse_grid_skip_what_does_not_fit_and_say_why(spacing, tmp_path):
    """A 1-kpc grid holds too few independent kernel centres for the fit; a 2-kpc grid not even the 100 pc ball."""
    from dpotcube.diagnostics import run_diagnostics

    coarse = plummer_cube(spacing=spacing, half_width=3.0)
    result = run_diagnostics(coarse, tmp_path, n_velocities=1000, mcmc_steps=100)
    assert "independent point(s) fit in the volume" in result["gnfw"]["skipped"]
    assert result["local_density"]["arc"]["n_points"] < 4
    if spacing == 2.0:
        assert not result["local_density"]["sun_kernel_complete"]
        assert "not inside the cube's volume" in result["solar_acceleration"]["skipped"]
        assert any(n.startswith("a⊙ skipped") for n in result["notes"])
    else:
        assert result["solar_acceleration"]["galactocentric_kms2_per_kpc"]["x"]["median"] > 0  # towards the centre
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES[:-1])
    assert "Skipped:" in (tmp_path / "diagnostics.md").read_text()


def test_diagnostics_of_a_cube_without_density_skip_the_density_parts(plummer, tmp_path):
    """`pointwise` with `density: false` writes a only: a⊙ and the symmetry checks still run."""
    from dpotcube.diagnostics import run_diagnostics

    result = run_diagnostics(plummer.drop_vars("density"), tmp_path, n_velocities=1000, mcmc_steps=100)
    assert "no density" in result["local_density"]["skipped"] and "no density" in result["gnfw"]["skipped"]
    assert result["solar_acceleration"]["galactocentric_kms2_per_kpc"]["x"]["median"] > 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(result["files"]) == ["diagnostics.json", "diagnostics.md", "diagnostics.north-south.png"]
