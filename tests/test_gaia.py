"""Gaia DR3 and Gaia-style user tables: astroquery's real TAP path on loopback, cuts, frames, errors, no network."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from astropy.table import Table
from typer.testing import CliRunner

from dpotcube.cli import app
from dpotcube.errors import DataError, RecipeError
from dpotcube.recipe import DataSpec, FrameSpec, GaiaSpec, TableSpec, load_recipe, recipe_from_dict
from dpotcube.sources.astrometry import (
    from_galactocentric,
    galactocentric_covariance,
    observable_covariance,
    to_galactocentric,
)
from dpotcube.sources.base import PhaseSpaceTable
from dpotcube.sources.cuts import absolute_magnitude_limit
from dpotcube.sources.gaia import MANIFEST, adql_query, fetch_gaia
from dpotcube.sources.load import GAIA_CACHE, load_stars, plummer_truth
from dpotcube.sources.mocks import sample_plummer

from .conftest import REPO
from .tap_replay import JOB_ID, N_BAD_PARALLAX, N_FAINT, N_FAST, N_NO_GRVS, TapReplay, mock_gaia_rows, votable_gz

GAIA_RECIPE = REPO / "recipes" / "gaia-dr3-rc-4kpc.yaml"
N_ROWS = 300  # enough that more than the 200-star minimum survive the cuts
N_KEPT = N_ROWS - N_BAD_PARALLAX - N_FAST - N_FAINT - N_NO_GRVS


@pytest.fixture(scope="module")
def served_rows() -> bytes:
    return votable_gz(mock_gaia_rows(N_ROWS))


def gaia_data(url: str, **gaia) -> DataSpec:
    return DataSpec(source="gaia", volume_radius_kpc=4.0, gaia=GaiaSpec(tap_url=url, **{"timeout_s": 5, **gaia}))


# --- the TAP exchange, through astroquery's TapPlus --------------------------------------------------------


def test_fetch_runs_the_async_tap_exchange_and_caches(tmp_path, served_rows):
    with TapReplay(served_rows) as tap:
        data = gaia_data(tap.url)
        files = fetch_gaia(data.gaia, tmp_path / GAIA_CACHE)
    methods_paths = [(m, p) for m, p, _ in tap.requests]
    job = f"/tap-server/tap/async/{JOB_ID}"
    assert methods_paths == [
        ("POST", "/tap-server/tap/async"), ("GET", f"{job}/phase"), ("GET", f"{job}/phase"),
        ("GET", f"{job}/results/result"),
    ]
    form = tap.requests[0][2]
    assert form["REQUEST"] == "doQuery" and form["LANG"] == "ADQL" and form["PHASE"] == "RUN"
    assert form["QUERY"] == adql_query(data.gaia)
    for clause in ("radial_velocity IS NOT NULL", "parallax_over_error > 3.0", "parallax > 0.1", "grvs_mag"):
        assert clause in form["QUERY"]
    parent = Table.read(files[0])
    assert len(parent) == N_ROWS and parent["parallax"].unit == "mas" and np.isnan(parent["grvs_mag"]).sum() == N_NO_GRVS
    manifest = json.loads((tmp_path / GAIA_CACHE / MANIFEST).read_text())
    assert manifest["0"]["rows"] == N_ROWS and len(manifest["0"]["sha256"]) == 64


def test_rebuild_uses_the_cache_and_never_queries(tmp_path, served_rows):
    with TapReplay(served_rows) as tap:
        data = gaia_data(tap.url)
        fetch_gaia(data.gaia, tmp_path / GAIA_CACHE)
    n_requests = len(tap.requests)
    again = fetch_gaia(data.gaia, tmp_path / GAIA_CACHE)  # the server is gone: only the cache can answer
    stars = load_stars(data, seed=0, build_dir=tmp_path)
    assert len(tap.requests) == n_requests and again[0].is_file() and len(stars) == N_KEPT


def test_corrupt_cache_is_fetched_again(tmp_path, served_rows):
    with TapReplay(served_rows) as tap:
        data = gaia_data(tap.url)
        (path,) = fetch_gaia(data.gaia, tmp_path / GAIA_CACHE)
        path.write_bytes(path.read_bytes()[:-100])
        with pytest.raises(DataError, match="fetch-gaia"):
            load_stars(data, seed=0, build_dir=tmp_path)
        fetch_gaia(data.gaia, tmp_path / GAIA_CACHE)
    assert sum(m == "POST" for m, _, _ in tap.requests) == 2
    assert len(load_stars(data, seed=0, build_dir=tmp_path)) == N_KEPT


def test_chunks_split_by_source_id_and_each_is_one_job(tmp_path, served_rows):
    with TapReplay(served_rows) as tap:
        data = gaia_data(tap.url, chunks=3, max_rows=1000)
        files = fetch_gaia(data.gaia, tmp_path / GAIA_CACHE)
    queries = [form["QUERY"] for m, _, form in tap.requests if m == "POST"]
    assert len(files) == 3 and queries == [adql_query(data.gaia, k) for k in range(3)]
    assert all(q.startswith("SELECT TOP 1000 ") and "source_id >= " in q for q in queries)
    assert "source_id >= 0 AND" in queries[0] and f"source_id < {12 * 4**12 * 2**35}" in queries[2]


def test_server_error_is_a_clear_data_error(tmp_path, served_rows):
    with TapReplay(served_rows, mode="error") as tap:
        with pytest.raises(DataError) as err:
            fetch_gaia(gaia_data(tap.url).gaia, tmp_path / GAIA_CACHE)
    message = str(err.value)
    assert "refused the query" in message and "Internal Server Error" in message and tap.url in message
    assert "dpotcube fetch-gaia" in message
    assert not list((tmp_path / GAIA_CACHE).glob("*.parquet")), "nothing cached from a failed job"


def test_timeout_is_a_clear_data_error(tmp_path, served_rows):
    with TapReplay(served_rows, mode="slow", sleep_s=3.0) as tap:
        started = time.monotonic()
        with pytest.raises(DataError) as err:
            fetch_gaia(gaia_data(tap.url, timeout_s=0.5).gaia, tmp_path / GAIA_CACHE)
        elapsed = time.monotonic() - started
    assert elapsed < 2.5, "the client timeout, not the server, ended the wait"
    assert "did not answer in time" in str(err.value) and "data.gaia.timeout_s" in str(err.value)


def test_job_that_never_finishes_hits_max_wait(tmp_path, served_rows):
    with TapReplay(served_rows, mode="stuck") as tap:
        with pytest.raises(DataError, match="max_wait_s"):
            fetch_gaia(gaia_data(tap.url, max_wait_s=1.0).gaia, tmp_path / GAIA_CACHE)


def test_unreachable_service_is_a_clear_data_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="Cannot reach Gaia TAP service"):
        fetch_gaia(gaia_data(f"http://127.0.0.1:{port}/tap-server/tap").gaia, tmp_path / GAIA_CACHE)


def test_fetch_gaia_command(tmp_path, served_rows):
    runner = CliRunner()
    with TapReplay(served_rows) as tap:
        args = ["fetch-gaia", str(GAIA_RECIPE), "--out", str(tmp_path), "--set", f"data.gaia.tap_url={tap.url}",
                "--set", "data.gaia.chunks=1"]
        done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert f"{N_ROWS} rows" in done.output and (tmp_path / GAIA_CACHE / "parent-0000-of-0001.parquet").is_file()
    assert f"cached, {N_ROWS} rows" in runner.invoke(app, args).output
    with TapReplay(served_rows, mode="error") as tap:
        args[-3] = f"data.gaia.tap_url={tap.url}"
        failed = runner.invoke(app, [*args, "--refresh"])
    assert failed.exit_code == 2 and "refused the query" in failed.output and "Traceback" not in failed.output


def test_fetch_gaia_needs_a_gaia_recipe():
    done = CliRunner().invoke(app, ["fetch-gaia", str(REPO / "recipes" / "tiny.yaml")])
    assert done.exit_code == 2 and "fetch-gaia needs `gaia`" in done.output


def test_build_without_download_names_the_command(tmp_path):
    data = DataSpec(source="gaia", volume_radius_kpc=4.0)
    with pytest.raises(DataError, match="dpotcube fetch-gaia RECIPE"):
        load_stars(data, seed=0, build_dir=tmp_path)


# --- cuts and their report ---------------------------------------------------------------------------------


def test_cut_report_counts_each_cut(tmp_path, served_rows):
    with TapReplay(served_rows) as tap:
        data = gaia_data(tap.url)
        fetch_gaia(data.gaia, tmp_path / GAIA_CACHE)
    stars = load_stars(data, seed=0, build_dir=tmp_path)
    removed = {step["cut"].split(" ")[0]: step["removed"] for step in stars.meta["cuts"]}
    assert removed == {"finite": 0, "parallax_over_error": N_BAD_PARALLAX, "|v|": N_FAST, "M_G": N_FAINT + N_NO_GRVS,
                       "d": 0, "inside": 0}
    assert stars.meta["cuts"][-1]["remaining"] == len(stars) == N_KEPT
    assert stars.meta["parent_sample"] and stars.meta["tap_url"] == tap.url
    assert np.all(np.linalg.norm(stars.velocities, axis=1) < 1000)


def test_completeness_limit_is_the_published_one():
    recipe, _ = load_recipe(GAIA_RECIPE)
    cuts = recipe.data.gaia.cuts
    assert absolute_magnitude_limit(cuts, recipe.data.volume_radius_kpc) == pytest.approx(14 - (5 * np.log10(4) + 10))
    assert recipe.data.volume_radius_kpc == 4.0 and cuts.parallax_over_error_min == 3.0 and cuts.max_speed_kms == 1000
    assert recipe.data.gaia.parent_radius_kpc == 10.0 and "parallax > 0.1" in adql_query(recipe.data.gaia, 0)


def test_gaia_table_with_cuts_matches_the_gaia_source(tmp_path, served_rows):
    """A user's own Gaia download (VOTable) with `apply_gaia_cuts` keeps the same stars as `source: gaia`."""
    with TapReplay(served_rows) as tap:
        data = gaia_data(tap.url)
        fetch_gaia(data.gaia, tmp_path / GAIA_CACHE)
    from_service = load_stars(data, seed=0, build_dir=tmp_path)
    mock_gaia_rows(N_ROWS).write(tmp_path / "mine.vot", format="votable")
    table = TableSpec(path=tmp_path / "mine.vot", coordinates="gaia", apply_gaia_cuts=True)
    from_table = load_stars(DataSpec(source="table", volume_radius_kpc=4.0, table=table), seed=0)
    np.testing.assert_allclose(from_table.positions, from_service.positions, rtol=1e-12)
    assert from_table.meta["cuts"] == from_service.meta["cuts"]


# --- frames: the round trip through Gaia observables -------------------------------------------------------


@pytest.fixture(scope="module")
def mock_phase_space():
    frame = FrameSpec(galcen_distance_kpc=8.2, z_sun_kpc=0.025, galcen_v_sun_kms=(11.1, 248.5, 7.25))
    data = DataSpec(n_stars=500, volume_radius_kpc=3.0, frame=frame)
    positions, velocities = sample_plummer(plummer_truth(data), seed=7)
    return frame, positions, velocities


@pytest.mark.parametrize("suffix", [".parquet", ".fits", ".ecsv", ".vot", ".csv"])
def test_round_trip_through_gaia_observables(tmp_path, mock_phase_space, suffix):
    """Galactocentric mock → Gaia columns (astropy) → file → `source: table` gives the mock back to 1e-9."""
    frame, positions, velocities = mock_phase_space
    obs = from_galactocentric(positions, velocities, frame)
    names = {"ra": "RA_ICRS", "dec": "DE_ICRS", "parallax": "Plx", "pmra": "pmRA", "pmdec": "pmDE", "radial_velocity": "RV"}
    table = Table({names[n]: obs[:, i] for i, n in enumerate(names)})
    if suffix == ".ecsv":  # with units the reader converts: parallax in µas, proper motions in arcsec/yr
        import astropy.units as u

        table["Plx"] = (obs[:, 2] * 1000) * u.uarcsec
        table["pmRA"] = (obs[:, 3] / 1000) * u.arcsec / u.yr
    table.write(tmp_path / f"gaia{suffix}", format="votable" if suffix == ".vot" else None)
    spec = TableSpec(path=tmp_path / f"gaia{suffix}", coordinates="gaia", columns=names)
    stars = load_stars(DataSpec(source="table", volume_radius_kpc=3.5, table=spec, frame=frame), seed=0)
    assert len(stars) == len(positions) and stars.covariances is None
    for got, want in ((stars.positions, positions), (stars.velocities, velocities)):
        rel = np.linalg.norm(got - want, axis=1) / np.linalg.norm(want, axis=1)
        assert rel.max() < 1e-9


def test_frame_parameters_move_the_stars(mock_phase_space):
    frame, positions, velocities = mock_phase_space
    obs = from_galactocentric(positions, velocities, frame)
    moved, _ = to_galactocentric(obs, FrameSpec())
    assert np.abs(moved[:, 0] - positions[:, 0]).mean() > 0.05  # 8.2 vs 8.122 kpc


def test_gaia_columns_missing_are_named(tmp_path):
    Table({"ra": [1.0], "dec": [2.0]}).write(tmp_path / "t.fits")
    spec = TableSpec(path=tmp_path / "t.fits", coordinates="gaia")
    with pytest.raises(DataError, match=r"lacks parallax \(column `parallax`\).*data.table.columns"):
        load_stars(DataSpec(source="table", table=spec), seed=0)


def test_column_names_must_fit_the_coordinates():
    with pytest.raises(RecipeError, match="`coordinates: galactocentric` does not use"):
        recipe_from_dict({"name": "t", "data": {"source": "table", "table": {"path": "x.csv", "columns": {"ra": "RA"}}}})
    with pytest.raises(RecipeError, match="needs `coordinates: gaia`"):
        recipe_from_dict({"name": "t", "data": {"source": "table", "table": {"path": "x.csv", "apply_gaia_cuts": True}}})


# --- measurement errors ------------------------------------------------------------------------------------


def test_linearised_covariance_matches_monte_carlo(mock_phase_space):
    frame, positions, velocities = mock_phase_space
    obs = from_galactocentric(positions[:3], velocities[:3], frame)
    errors = np.column_stack([np.full(3, 0.02), np.full(3, 0.02), 0.01 * obs[:, 2], np.full(3, 0.03),
                              np.full(3, 0.04), np.full(3, 1.5)])
    cov_obs = observable_covariance(errors, {(2, 3): np.full(3, 0.4), (3, 4): np.full(3, -0.3)})
    cov = galactocentric_covariance(obs, cov_obs, frame)
    rng = np.random.default_rng(3)
    for k in range(3):
        draws = rng.multivariate_normal(np.zeros(6), cov_obs[k], 100_000)
        perturbed = np.tile(obs[k], (len(draws), 1))
        perturbed[:, 0] += draws[:, 0] / 3.6e6 / np.cos(np.deg2rad(obs[k, 1]))
        perturbed[:, 1] += draws[:, 1] / 3.6e6
        perturbed[:, 2:] += draws[:, 2:]
        mc = np.cov(np.hstack(to_galactocentric(perturbed, frame)).T)
        sigma = np.sqrt(np.diag(cov[k]))
        np.testing.assert_allclose(np.sqrt(np.diag(mc)), sigma, rtol=0.02)
        np.testing.assert_allclose(mc / np.outer(sigma, sigma), cov[k] / np.outer(sigma, sigma), atol=0.02)


def test_covariances_are_saved_with_the_stars(tmp_path, served_rows):
    with TapReplay(served_rows) as tap:
        data = gaia_data(tap.url)
        fetch_gaia(data.gaia, tmp_path / GAIA_CACHE)
    stars = load_stars(data, seed=0, build_dir=tmp_path)
    assert stars.covariances.shape == (N_KEPT, 6, 6)
    sigma = np.sqrt(np.diagonal(stars.covariances, axis1=1, axis2=2))
    np.testing.assert_array_equal(stars.covariances, np.swapaxes(stars.covariances, 1, 2))
    corr = stars.covariances / (sigma[:, :, None] * sigma[:, None, :])
    assert np.linalg.eigvalsh(corr).min() > -1e-9, "positive semi-definite (positions: nearly rank 1, along d)"
    stars.save(tmp_path / "stars.parquet")
    back = PhaseSpaceTable.load(tmp_path / "stars.parquet")
    np.testing.assert_array_equal(back.covariances, stars.covariances)
    assert back.meta["cuts"] == stars.meta["cuts"]
    import pandas as pd

    assert sum(c.startswith("cov_") for c in pd.read_parquet(tmp_path / "stars.parquet").columns) == 21
    velocity_sigma = np.sqrt(np.diagonal(stars.covariances, axis1=1, axis2=2)[:, 3:])
    assert 0.1 < np.median(velocity_sigma) < 50  # km/s from mas/yr errors at kpc distances


# --- the whole build, and no network anywhere else -------------------------------------------------------


def test_build_from_gaia_reports_cuts_in_log_and_cube(tmp_path):
    import xarray as xr

    rows = votable_gz(mock_gaia_rows(400, seed=5))
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["name"] = "tiny_gaia"
    raw["data"] = {"source": "gaia", "volume_radius_kpc": 4.0}
    raw["cube"] = {"spacing_kpc": 1.0, "chunk": 8}
    raw["fields"]["steps"] = 30
    raw["density"]["velocity"]["max_epochs"] = 1
    recipe = tmp_path / "gaia.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    catalog = tmp_path / "catalog" / "catalog.yaml"
    with TapReplay(rows) as tap:
        args = ["build", str(recipe), "--out", str(tmp_path / "build"), "--set", f"publish.catalog={catalog}",
                "--set", f"data.gaia.tap_url={tap.url}"]
        done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "cut parallax_over_error > 3: removed 7" in done.output
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny_gaia.zarr")
    details = json.loads(ds.attrs["data_source_details"])
    assert ds.attrs["data_source"] == "gaia" and details["cuts"][1]["removed"] == N_BAD_PARALLAX
    assert ds.attrs["galcen_distance_kpc"] == 8.122
    rerun = CliRunner().invoke(app, args)  # the server is gone: the cache must answer
    assert rerun.exit_code == 0, rerun.output
    assert "cached, 400 rows" in rerun.output and rerun.output.count("up to date, skipped") == 5


_NO_NETWORK = """
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError("network use in a test that forbids it")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
import dpotcube
from dpotcube.cli import app
for argv in {argvs!r}:
    try:
        app(argv, standalone_mode=False)
    except SystemExit:
        pass
assert "astroquery.gaia" not in sys.modules, "astroquery.gaia contacts the archive when imported"
assert "astroquery" not in sys.modules, sorted(m for m in sys.modules if m.startswith("astroquery"))
assert not attempts, attempts
print("NO-NETWORK-OK")
"""


def test_import_and_non_gaia_commands_make_no_connection(tmp_path):
    argvs = [
        ["validate", str(GAIA_RECIPE)],
        ["validate", str(REPO / "recipes" / "tiny.yaml")],
        ["catalog", "list", "--catalog", str(tmp_path / "none.yaml")],
        ["--help"],
    ]
    code = _NO_NETWORK.format(argvs=argvs)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0 and "NO-NETWORK-OK" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]


def test_the_no_network_guard_catches_astroquery_gaia(tmp_path):
    """The guard above is not vacuous: importing `astroquery.gaia` does try to resolve the archive's host."""
    code = _NO_NETWORK.format(argvs=[]).replace("import dpotcube\n", "import dpotcube\nimport astroquery.gaia\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode != 0 and "NO-NETWORK-OK" not in done.stdout


def test_gaia_cuts_without_parallax_errors_name_the_fix(tmp_path, mock_phase_space):
    frame, positions, velocities = mock_phase_space
    obs = from_galactocentric(positions, velocities, frame)
    Table({n: obs[:, i] for i, n in enumerate(["ra", "dec", "parallax", "pmra", "pmdec", "radial_velocity"])}).write(
        tmp_path / "t.parquet"
    )
    spec = TableSpec(path=tmp_path / "t.parquet", coordinates="gaia", apply_gaia_cuts=True)
    with pytest.raises(DataError, match="need a `parallax_error` column"):
        load_stars(DataSpec(source="table", table=spec, frame=frame), seed=0)
