"""End to end: recipe → build → Zarr cube → Intake catalog, checked against the cube contract (CUBE_SPEC v1)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import intake
import numpy as np
import pytest
import xarray as xr
import yaml
from typer.testing import CliRunner

from dpotcube.cli import app
from dpotcube.constants import CUBE_VERSION
from dpotcube.diagnostics import FILES

from .conftest import REPO
from .helpers import invoke_build, run_build

REQUIRED_ATTRS = [
    "dpotcube_cube_version", "dpotcube_version", "created", "method", "recipe", "recipe_sha256", "data_source",
    "n_tracers", "galcen_distance_kpc", "z_sun_kpc", "galcen_v_sun_kms", "observer_position_kpc",
    "volume_radius_kpc", "potential_reference_point", "G_kpc_km2_s2_per_msun",
]
UNITS = {
    "potential": "km2 s-2", "accel_x": "km2 s-2 kpc-1", "accel_y": "km2 s-2 kpc-1", "accel_z": "km2 s-2 kpc-1",
    "density": "solMass pc-3", "tracer_density": "kpc-3", "density_dm": "solMass pc-3",
}


def write_table_recipe(tmp_path: Path, table_path: Path) -> Path:
    raw = yaml.safe_load(_table_recipe(".parquet", {}))
    raw["data"]["table"]["path"] = str(table_path)
    recipe = tmp_path / "table_recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    return recipe


def test_cube_follows_contract(tiny_build):
    tmp_path, catalog, _ = tiny_build
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny.zarr")
    for name, units in UNITS.items():
        var = ds[name]
        assert var.dims == ("member", "x", "y", "z") and var.dtype == np.float32
        assert var.attrs["units"] == units and var.attrs["long_name"]
        u.Unit(units)
    assert ds.in_volume.dims == ("x", "y", "z") and ds.in_volume.dtype == bool
    assert list(ds.member_kind.values) == ["seed"]
    for coord in "xyz":
        assert ds[coord].attrs["units"] == "kpc"
    missing = [a for a in REQUIRED_ATTRS if a not in ds.attrs]
    assert not missing
    assert ds.attrs["dpotcube_cube_version"] == CUBE_VERSION and ds.attrs["method"] == "conditional"
    assert ds.attrs["n_tracers"] == 4000 and "name: tiny" in ds.attrs["recipe"]
    ref = ds.attrs["potential_reference_point"]
    at_ref = ds.potential.isel(member=0).sel(x=ref[0], y=ref[1], z=ref[2], method="nearest")
    assert abs(float(at_ref)) < 1e-3 * float(np.abs(ds.potential).max())
    assert ds.potential.data.numblocks[1:] == (2, 2, 2), "cube is chunked"
    inside = ds.in_volume.values
    assert 0.3 < inside.mean() < 0.7  # a sphere fills π/6 of its cube


def test_cube_baryons_follow_contract(tiny_build):
    """`density_baryon` (x, y, z) is the nominal MWPotential2014 bulge + disk; per member m,
    `density_dm` + ρ_baryon(draw m) == `density`, with draw 0 the nominal model."""
    from dpotcube.baryons import MWPotential2014

    _, catalog, _ = tiny_build
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny.zarr")
    rho_b = ds.density_baryon
    assert rho_b.dims == ("x", "y", "z") and rho_b.dtype == np.float32 and rho_b.attrs["long_name"]
    assert rho_b.attrs["units"] == "solMass pc-3" and rho_b.data.numblocks == (2, 2, 2)
    assert ds.attrs["baryon_model"].startswith("MWPotential2014 bulge+disk (Bovy 2015), ro=8 kpc, vo=220 km/s, 20%")
    sun = rho_b.sel(x=-8.122, y=0.0, z=0.0208, method="nearest")
    assert 0.07 < float(sun) < 0.11  # 0.0899 at the Sun, within one grid step
    drawn = json.loads(ds.attrs["baryon_parameters"])
    assert drawn["names"] == list(MWPotential2014.parameter_names) and len(drawn["members"]) == ds.sizes["member"]
    np.testing.assert_allclose(drawn["members"][0], MWPotential2014.nominal)
    points = np.stack(np.meshgrid(ds.x, ds.y, ds.z, indexing="ij"), axis=-1).astype(np.float32)
    rho, dm = ds.density.values, ds.density_dm.values
    np.testing.assert_allclose(dm[0] + rho_b.values, rho[0], rtol=1e-6, atol=1e-6)
    for m, params in enumerate(drawn["members"]):
        expected = np.asarray(MWPotential2014.density_baryon(points, np.asarray(params)))
        np.testing.assert_allclose(dm[m] + expected, rho[m], rtol=1e-5, atol=1e-6)
    meta = intake.open_catalog(str(catalog)).entries["tiny"].metadata
    assert {"density_baryon", "density_dm"} <= set(meta["fields"]) and meta["units"]["density_dm"] == "solMass pc-3"
    assert meta["baryon_model"] == ds.attrs["baryon_model"]


def test_intake_and_xarray_give_the_same_dataset(tiny_build):
    _, catalog, _ = tiny_build
    cat = intake.open_catalog(str(catalog))
    from_intake = cat.tiny.read()
    direct = xr.open_zarr(catalog.parent / "cubes" / "tiny.zarr")
    xr.testing.assert_identical(from_intake.load(), direct.load())
    meta = cat.entries["tiny"].metadata
    assert meta["method"] == "conditional" and meta["n_tracers"] == 4000 and meta["units"]["density"] == "solMass pc-3"
    assert "{CATALOG_DIR}" in catalog.read_text()


def test_catalog_folder_can_move(tiny_build, tmp_path):
    _, catalog, _ = tiny_build
    import shutil

    moved = tmp_path / "elsewhere"
    shutil.copytree(catalog.parent, moved)
    ds = intake.open_catalog(str(moved / "catalog.yaml")).tiny.read()
    assert "potential" in ds


def test_rebuild_skips_finished_stages(tiny_build):
    tmp_path, _, _ = tiny_build
    before = json.loads((tmp_path / "build" / "manifest.json").read_text())
    _, result = run_build(tmp_path, REPO / "recipes" / "tiny.yaml")
    after = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert result.output.count("up to date, skipped") == 5
    assert before == after


def copy_of_tiny_build(tiny_build, tmp_path: Path) -> Path:
    """The shared tiny build folder and catalog copied into `tmp_path`, for tests that build again."""
    built, _, _ = tiny_build
    for name in ("build", "catalog"):
        shutil.copytree(built / name, tmp_path / name)
    return tmp_path / "catalog" / "catalog.yaml"


def test_changed_section_reruns_from_that_stage(tiny_build, tmp_path):
    copy_of_tiny_build(tiny_build, tmp_path)
    _, result = run_build(tmp_path, REPO / "recipes" / "tiny.yaml", "--set", "cube.spacing_kpc=0.75",
                          "--set", "diagnostics.enabled=false")
    assert result.output.count("up to date, skipped") == 4  # stars, flow, collocation, fields


def test_no_baryon_model_writes_neither_variable(tiny_build, tmp_path):
    catalog = copy_of_tiny_build(tiny_build, tmp_path)
    _, result = run_build(tmp_path, REPO / "recipes" / "tiny.yaml", "--set", "cube.spacing_kpc=0.75",
                          "--set", "cube.baryon_model=none", "--set", "diagnostics.enabled=false")
    assert result.output.count("up to date, skipped") == 4  # only the cube stage reruns
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny.zarr")
    assert "density" in ds and "density_baryon" not in ds and "density_dm" not in ds
    assert "baryon_model" not in ds.attrs
    meta = intake.open_catalog(str(catalog)).entries["tiny"].metadata
    assert "density_dm" not in meta["fields"] and "baryon_model" not in meta


def test_catalog_list(tiny_build):
    _, catalog, _ = tiny_build
    result = CliRunner().invoke(app, ["catalog", "list", "--catalog", str(catalog)])
    assert result.exit_code == 0 and "tiny" in result.output and "conditional" in result.output


def test_open_cube_by_name_and_path(tiny_build):
    from dpotcube import open_cube

    _, catalog, _ = tiny_build
    by_name = open_cube("tiny", catalog=catalog)
    by_path = open_cube(catalog.parent / "cubes" / "tiny.zarr")
    xr.testing.assert_identical(by_name.load(), by_path.load())


QUICKLOOKS = ["tiny.png", "tiny.accel-Rz.png", "tiny.polar-arc.png", "tiny.north-south.png", "tiny.midplane-potential.png",
              "tiny.vcirc.png", "tiny.kz.png", "tiny.surface-density.png"]


def test_quicklook_written_beside_cube(tiny_build):
    _, catalog, _ = tiny_build
    written = sorted(p.name for p in (catalog.parent / "cubes").glob("tiny.*png"))
    assert written == sorted(QUICKLOOKS)  # no ε panel: the conditional method learns no efficiency
    for name in written:
        data = (catalog.parent / "cubes" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_diagnostics_written_in_the_build_and_beside_the_cube(tiny_build):
    tmp_path, catalog, _ = tiny_build
    for folder in (tmp_path / "build" / "diagnostics", catalog.parent / "cubes" / "tiny.diagnostics"):
        assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    report = json.loads((catalog.parent / "cubes" / "tiny.diagnostics" / "diagnostics.json").read_text())
    residual = report["dlnf_dt"]
    assert residual["n_velocities"] == 20_000 and "velocity_flow" not in residual["source"]
    assert residual["source"].startswith("build ") and "fields.eqx" in residual["source"]  # the build's own model
    assert report["local_density"]["dark_matter_field"] == "density_dm"


def test_plot_command_on_a_built_cube(tiny_build, tmp_path):
    _, catalog, _ = tiny_build
    result = CliRunner().invoke(app, ["plot", "tiny", "--catalog", str(catalog), "--out", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == sorted(QUICKLOOKS)
    for name in QUICKLOOKS:
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.parametrize("suffix", [".parquet", ".ecsv"])
def test_build_from_user_table(tmp_path, stars, suffix):
    """The same build from a table of Galactocentric columns with the user's own names (and units)."""
    from astropy.table import Table

    names = {"x": "X_GC", "y": "Y_GC", "z": "Z_GC", "vx": "VX", "vy": "VY", "vz": "VZ"}
    table = Table({names[c]: stars.positions[:3000, i] for i, c in enumerate("xyz")})
    for i, c in enumerate(["vx", "vy", "vz"]):
        table[names[c]] = stars.velocities[:3000, i]
    if suffix == ".ecsv":  # with units: positions in pc, converted by astropy
        for c in "xyz":
            table[names[c]] = (table[names[c]] * 1000) * u.pc
    table.write(tmp_path / f"stars{suffix}")
    recipe_path = tmp_path / "table.yaml"
    recipe_path.write_text(_table_recipe(suffix, names))
    catalog, _ = run_build(tmp_path, recipe_path)
    ds = xr.open_zarr(catalog.parent / "cubes" / "tiny_table.zarr")
    assert ds.attrs["data_source"] == "table" and ds.attrs["n_tracers"] == 3000


def _table_recipe(suffix: str, names: dict) -> str:
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["name"] = "tiny_table"
    raw["data"] = {"source": "table", "volume_radius_kpc": 3.0, "table": {"path": f"stars{suffix}", "columns": names}}
    return yaml.safe_dump(raw)


def test_readme_quickstart_command_on_a_tiny_override(tmp_path):
    """README's first command, `dpotcube build recipes/quickstart.yaml`, shrunk by overrides to run in seconds."""
    shrink = [
        "data.n_stars=3000", "density.velocity.max_epochs=2", "density.velocity.flow_layers=2",
        "density.velocity.nn_width=16",
        "density.position.quadrature_points=16384", "density.position.max_degree=2",
        "density.collocation.n_positions=512", "fields.steps=50", "fields.potential.width=16",
        "cube.spacing_kpc=0.75",
    ]
    cmd = [sys.executable, "-m", "dpotcube", "build", str(REPO / "recipes" / "quickstart.yaml")]
    for item in shrink:
        cmd += ["--set", item]
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "catalog" / "cubes" / "quickstart.zarr" / "zarr.json").exists()
    assert (tmp_path / "builds" / "quickstart" / "manifest.json").exists()
    assert "median_rel_error_accel" in done.stderr
    cube = xr.open_zarr(tmp_path / "catalog" / "cubes" / "quickstart.zarr")
    assert cube.sizes["member"] == 4 and set(cube["member_kind"].values) == {"seed"}  # the default's ±σ


def test_missing_table_is_a_clear_error_and_changes_nothing(tiny_build, tmp_path):
    _, catalog, _ = tiny_build
    before = catalog.read_text()
    result = invoke_build(tmp_path, write_table_recipe(tmp_path, tmp_path / "nowhere.parquet"), catalog)
    assert result.exit_code == 2
    assert "does not exist" in result.output and "data.table.path" in result.output
    assert "Traceback" not in result.output
    assert catalog.read_text() == before


def test_table_missing_columns_names_them(tmp_path, stars):
    import pandas as pd

    pd.DataFrame({"x": stars.positions[:500, 0], "y": stars.positions[:500, 1]}).to_csv(tmp_path / "s.csv", index=False)
    result = invoke_build(tmp_path, write_table_recipe(tmp_path, tmp_path / "s.csv"), tmp_path / "c.yaml")
    assert result.exit_code == 2
    assert "lacks z (column `z`), vx (column `vx`)" in result.output and "data.table.columns" in result.output


def test_flow_ensemble_with_density_flow_builds_member_by_member(tmp_path):
    """K = 2 members of p(v|x) and of n(x): one stage per member, collocation from n(x) with ∇ ln n stored."""
    ensemble = ["--set", "density.ensemble.members=2", "--set", "density.ensemble.combine=robust_mean",
                "--set", "density.position={flow_layers: 2, nn_width: 16, max_epochs: 2, batch_size: 256}",
                "--set", "density.collocation.positions=flow", "--set", "cube.spacing_kpc=1.0"]
    _, result = run_build(tmp_path, REPO / "recipes" / "tiny.yaml", *ensemble)
    flows = sorted(p.name for p in (tmp_path / "build" / "flows").glob("*.eqx"))
    assert flows == ["position_flow_0.eqx", "position_flow_1.eqx", "velocity_flow_0.eqx", "velocity_flow_1.eqx"]
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert {"velocity_flow_1", "position_flow_1", "collocation"} <= set(manifest)
    with np.load(tmp_path / "build" / "collocation.npz") as points:
        assert points["grad_log_n"].shape == points["x"].shape
        assert np.all(np.linalg.norm(points["x"] - np.array([-8.122, 0, 0.0208]), axis=1) < 3.0)
    _, again = run_build(tmp_path, REPO / "recipes" / "tiny.yaml", *ensemble)
    assert again.output.count("up to date, skipped") == 8  # stars, 4 flows, collocation, fields, cube


@pytest.mark.parametrize("store", ["memory://dpotcube-test/cubes", "file"])
def test_cube_published_to_an_fsspec_store(tiny_build, tmp_path, store):
    """`publish.store` puts the cube on any fsspec filesystem; intake and open_cube read it back unchanged."""
    from dpotcube.catalog import open_cube

    build_dir, _, _ = tiny_build
    url = f"file://{tmp_path / 'remote'}" if store == "file" else store
    catalog = tmp_path / "catalog.yaml"
    result = invoke_build(build_dir, REPO / "recipes" / "tiny.yaml", catalog, "--set", f"publish.store={url}")
    assert result.exit_code == 0, result.output
    assert "stars: up to date" in result.output  # only the cube attributes (the recipe text) changed
    assert f"{url}/tiny.zarr" in catalog.read_text()
    entry = intake.open_catalog(str(catalog)).tiny
    local = xr.open_zarr(build_dir / "build" / "cube.zarr")
    xr.testing.assert_identical(entry.read().load(), local.load())
    xr.testing.assert_identical(open_cube(f"{url}/tiny.zarr").load(), local.load())
    if store == "file":
        assert (tmp_path / "remote" / "tiny.png").stat().st_size > 1000
