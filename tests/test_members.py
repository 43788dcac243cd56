"""Uncertainty-ensemble members: resampled stars, other solar frames, member stages that resume, coverage."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

import dpotcube.pipeline as pipeline
from dpotcube.constants import MSUN_PER_KPC3_TO_MSUN_PER_PC3
from dpotcube.errors import RecipeError
from dpotcube.frames import solar_position_kpc
from dpotcube.members import bootstrap_stars, noisy_stars, perturbed_frame, plan_members, stars_in_frame
from dpotcube.recipe import FrameErrorSpec, FrameSpec, load_recipe
from dpotcube.sources import PhaseSpaceTable
from dpotcube.sources.mocks import PlummerTruth
from dpotcube.truth import calibrated_coverage, coverage_against_truth

from .conftest import REPO
from .handmade import OBSERVER
from .helpers import invoke_build, run_build

NO_DIAGNOSTICS = ("--set", "diagnostics.enabled=false")


def stars(n: int = 2000, covariances: np.ndarray | None = None) -> PhaseSpaceTable:
    rng = np.random.default_rng(1)
    observer = solar_position_kpc(FrameSpec())
    positions = observer + rng.uniform(-1, 1, (n, 3))
    velocities = rng.normal([0, 230, 0], 30, (n, 3))
    return PhaseSpaceTable(positions, velocities, observer, 3.0, "test", {}, covariances=covariances,
                           selection=rng.uniform(0.5, 1, n))


def test_bootstrap_draws_with_replacement_reproducibly():
    original = stars()
    a, b = bootstrap_stars(original, 7), bootstrap_stars(original, 7)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert len(a) == len(original) and len(np.unique(a.positions[:, 0])) < 0.7 * len(original)  # ~63% distinct
    row = np.flatnonzero(original.positions[:, 0] == a.positions[0, 0])[0]  # rows travel whole, S included
    np.testing.assert_array_equal(original.velocities[row], a.velocities[0])
    assert original.selection[row] == a.selection[0]
    assert not np.array_equal(a.positions, bootstrap_stars(original, 8).positions)


def test_noise_redraws_each_star_from_its_covariance_and_needs_errors():
    sigma = np.array([0.01, 0.02, 0.03, 1.0, 2.0, 3.0])
    cov = np.broadcast_to(np.diag(sigma**2), (20_000, 6, 6)).copy()
    cov[:, 3, 4] = cov[:, 4, 3] = 0.5 * sigma[3] * sigma[4]  # a correlation survives the draw
    original = stars(20_000, cov)
    noisy = noisy_stars(original, 3)
    assert len(noisy) == len(original)  # 0.5 kpc from the edge at most 0.03 kpc of scatter: nobody leaves
    delta = np.hstack([noisy.positions - original.positions, noisy.velocities - original.velocities])
    np.testing.assert_allclose(delta.std(axis=0), sigma, rtol=0.03)
    assert np.corrcoef(delta[:, 3], delta[:, 4])[0, 1] == pytest.approx(0.5, abs=0.03)
    with pytest.raises(RecipeError, match="ensemble.noise"):
        noisy_stars(stars(), 3)


def test_noise_members_of_a_galactocentric_table_use_its_error_columns(tmp_path):
    """`x_error` … `vz_error` (with units: pc and m/s here) become each star's diagonal covariance in kpc, km/s."""
    import astropy.units as u
    from astropy.table import Table

    from dpotcube.members import member_stars
    from dpotcube.recipe import recipe_from_dict
    from dpotcube.sources import load_stars

    n, observer = 20_000, solar_position_kpc(FrameSpec())
    rng = np.random.default_rng(4)
    positions, velocities = observer + rng.uniform(-1, 1, (n, 3)), rng.normal([0, 230, 0], 30, (n, 3))
    sigma = np.array([0.02, 0.01, 0.005, 2.0, 1.0, 4.0])  # kpc, km/s
    table = Table({name: values for name, values in zip(("x", "y", "z", "vx", "vy", "vz"),
                                                           np.hstack([positions, velocities]).T)})
    for i, name in enumerate(("x", "y", "z")):
        table[f"{name}_error"] = np.full(n, sigma[i] * 1000) * u.pc
        table[f"v{name}_error"] = np.full(n, sigma[3 + i] * 1000) * u.m / u.s
    table.write(tmp_path / "stars.ecsv")
    recipe = recipe_from_dict({"name": "t", "ensemble": {"noise": 1}, "data": {
        "source": "table", "volume_radius_kpc": 3.0, "table": {"path": str(tmp_path / "stars.ecsv")}}})
    loaded = load_stars(recipe.data, seed=0)
    np.testing.assert_allclose(loaded.covariances, np.broadcast_to(np.diag(sigma**2), (n, 6, 6)), rtol=1e-12)
    member = plan_members(recipe)[0]
    assert member.kind == "noise"
    drawn = member_stars(member, recipe, loaded)
    delta = np.hstack([drawn.positions - loaded.positions, drawn.velocities - loaded.velocities])
    np.testing.assert_allclose(delta.std(axis=0), sigma, rtol=0.03)


def test_a_frame_member_moves_the_galaxy_not_what_the_sun_sees():
    nominal = FrameSpec()
    original = stars()
    same = stars_in_frame(original, nominal, nominal)
    np.testing.assert_allclose(same.positions, original.positions, atol=1e-9)
    np.testing.assert_allclose(same.velocities, original.velocities, atol=1e-7)

    member = FrameSpec(galcen_distance_kpc=8.3, z_sun_kpc=0.025, galcen_v_sun_kms=(11.0, 250.0, 7.0))
    moved = stars_in_frame(original, nominal, member)
    np.testing.assert_allclose(moved.observer, solar_position_kpc(member))
    assert moved.observer[0] == pytest.approx(-np.sqrt(8.3**2 - 0.025**2), abs=1e-9)
    seen_before = np.linalg.norm(original.positions - original.observer, axis=1)
    np.testing.assert_allclose(np.linalg.norm(moved.positions - moved.observer, axis=1), seen_before, rtol=1e-9)
    relative = lambda t, v_sun: np.linalg.norm(t.velocities - np.asarray(v_sun), axis=1)  # noqa: E731
    np.testing.assert_allclose(relative(moved, member.galcen_v_sun_kms), relative(original, nominal.galcen_v_sun_kms),
                               rtol=1e-9)


def test_perturbed_frames_scatter_by_the_stated_errors():
    errors = FrameErrorSpec()
    frames = [perturbed_frame(FrameSpec(), errors, seed) for seed in range(2000)]
    assert np.std([f.galcen_distance_kpc for f in frames]) == pytest.approx(errors.galcen_distance_kpc, rel=0.06)
    v = np.array([f.galcen_v_sun_kms for f in frames])
    np.testing.assert_allclose(v.std(axis=0), errors.galcen_v_sun_kms, rtol=0.06)
    np.testing.assert_allclose(v.mean(axis=0), FrameSpec().galcen_v_sun_kms, atol=0.2)


def test_plan_orders_kinds_and_keeps_seeds_when_members_are_added():
    recipe, _ = load_recipe(REPO / "recipes" / "tiny.yaml", ["ensemble.seed=3", "ensemble.bootstrap=2"])
    plan = plan_members(recipe)
    assert [m.stage for m in plan] == ["member_seed_1", "member_seed_2", "member_bootstrap_0", "member_bootstrap_1"]
    more, _ = load_recipe(REPO / "recipes" / "tiny.yaml", ["ensemble.seed=3", "ensemble.bootstrap=2", "ensemble.frame=1"])
    assert [m.seed for m in plan_members(more)][:4] == [m.seed for m in plan]
    assert len({m.seed for m in plan_members(more)}) == 5


def test_calibrated_coverage_and_coverage_of_an_exchangeable_ensemble(tmp_path):
    assert calibrated_coverage(1) == 0
    assert 0.40 < calibrated_coverage(4) < calibrated_coverage(16) < calibrated_coverage(200) < 0.69

    truth = PlummerTruth(mass_msun=1e11, scale_radius_kpc=4.0, observer=OBSERVER, volume_radius_kpc=3.0, n_stars=10)
    axis = np.arange(-3.0, 3.01, 0.5)
    x, y, z = (c + axis for c in OBSERVER)
    pts = np.stack(np.meshgrid(x, y, z, indexing="ij"), axis=-1)
    exact = {
        "potential": np.asarray(truth.potential(pts)) - float(truth.potential(np.asarray(OBSERVER))),
        "density": np.asarray(truth.density(pts)) * MSUN_PER_KPC3_TO_MSUN_PER_PC3,
        **{f"accel_{c}": np.asarray(truth.acceleration(pts))[..., i] for i, c in enumerate("xyz")},
    }
    rng, members = np.random.default_rng(0), 8
    data = {}
    for name, value in exact.items():  # members = truth + σ (e_m − e_0): the truth is one more draw around c
        sigma = 0.05 * np.abs(value) + 1e-3
        e = rng.standard_normal((members + 1, *value.shape))
        data[name] = (("member", "x", "y", "z"), (value + sigma * (e[1:] - e[0])).astype(np.float32))
    ds = xr.Dataset(data, coords={"x": x, "y": y, "z": z, "member": np.arange(members),
                                  "member_kind": ("member", np.array(["seed"] * 4 + ["bootstrap"] * 4, dtype=object))})
    ds.to_zarr(tmp_path / "c.zarr")
    coverage = coverage_against_truth(tmp_path / "c.zarr", truth)
    assert coverage["n_members"] == members and coverage["calibrated"] == calibrated_coverage(members)
    for name in ("accel", "density", "potential"):
        assert coverage[name] == pytest.approx(coverage["calibrated"], abs=0.05), name
    seeds = coverage_against_truth(tmp_path / "c.zarr", truth, kinds=["seed"])
    assert seeds["n_members"] == 4 and seeds["accel"] == pytest.approx(calibrated_coverage(4), abs=0.05)
    overconfident = ds.assign({n: ds[n] * 0 + exact[n] * 1.2 + 1e-2 * ds[n] for n in ("density",)})
    overconfident.to_zarr(tmp_path / "o.zarr")
    assert coverage_against_truth(tmp_path / "o.zarr", truth)["density"] < 0.1  # biased, narrow: caught


def test_members_are_stages_a_failed_member_resumes_and_added_members_keep_finished_ones(tiny_build, tmp_path,
                                                                                         monkeypatch):
    built, catalog_before, _ = tiny_build
    shutil.copytree(built / "build", tmp_path / "build")
    shutil.copytree(built / "catalog", tmp_path / "catalog")
    catalog = tmp_path / "catalog" / "catalog.yaml"
    published = xr.open_zarr(tmp_path / "catalog" / "cubes" / "tiny.zarr").load()
    real = pipeline.train_member

    def killed_at_bootstrap(member, *args):
        if member.kind == "bootstrap":
            raise KeyboardInterrupt  # as if the build were killed while fitting this member
        return real(member, *args)

    monkeypatch.setattr(pipeline, "train_member", killed_at_bootstrap)
    ensemble = ("--set", "ensemble.seed=2", "--set", "ensemble.bootstrap=1", *NO_DIAGNOSTICS)
    result = invoke_build(tmp_path, REPO / "recipes" / "tiny.yaml", catalog, *ensemble)
    assert result.exit_code != 0
    assert (tmp_path / "build" / "members" / "seed_1" / "fields.eqx").is_file()
    assert not (tmp_path / "build" / "members" / "bootstrap_0").exists()
    xr.testing.assert_identical(xr.open_zarr(tmp_path / "catalog" / "cubes" / "tiny.zarr").load(), published)

    monkeypatch.setattr(pipeline, "train_member", real)
    _, result = run_build(tmp_path, REPO / "recipes" / "tiny.yaml", *ensemble, "--set", "ensemble.frame=1")
    assert "member_seed_1: up to date, skipped" in result.output
    assert "member_bootstrap_0 …" in result.output and "member_frame_0 …" in result.output
    ds = xr.open_zarr(tmp_path / "catalog" / "cubes" / "tiny.zarr")
    assert ds["member_kind"].values.tolist() == ["seed", "seed", "bootstrap", "frame"]
    accel = ds["accel_x"].where(ds["in_volume"]).load()
    spread = accel.std("member").median().item()
    assert 0 < spread < np.abs(accel).median().item()  # members differ, by less than the field itself
    summary = ds.dpot.summary("density")
    assert bool((summary["p16"] <= summary["median"]).all()) and bool((summary["median"] <= summary["p84"]).all())
    assert catalog_before.is_file()  # the fixture's own build is untouched


def test_shared_flow_members_on_dask_distributed_workers(tiny_build, tmp_path):
    built, _, _ = tiny_build
    shutil.copytree(built / "build", tmp_path / "build")
    _, result = run_build(tmp_path, REPO / "recipes" / "tiny.yaml", "--set", "ensemble.seed=2", "--workers", "1",
                          *NO_DIAGNOSTICS)
    assert "members … 1 on dask.distributed LocalCluster with 1 workers" in result.output
    assert "member_seed_1 done" in result.output
    member = tmp_path / "build" / "members" / "seed_1"
    assert sorted(p.name for p in member.iterdir()) == ["fields.eqx", "fields_history.json"]  # flows shared
    ds = xr.open_zarr(tmp_path / "catalog" / "cubes" / "tiny.zarr")
    assert ds.sizes["member"] == 2 and not np.allclose(ds["potential"][0], ds["potential"][1])
