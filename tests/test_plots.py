"""Quicklook figures: `dpotcube plot` on hand-made cubes, the ε panel only where ε exists, sky conventions."""

import struct
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from dpotcube.cli import app
from dpotcube.plots import QUICKLOOKS, midplane_potential_figure, truth_from_attrs
from dpotcube.plots.sky import galactic_to_galactocentric

from .handmade import OBSERVER, handmade_cube, multilinear, multilinear_accel

ALWAYS = ["cube.png", "cube.accel-Rz.png", "cube.polar-arc.png", "cube.north-south.png", "cube.midplane-potential.png",
          "cube.vcirc.png", "cube.kz.png", "cube.surface-density.png"]
EFFICIENCY = "cube.efficiency-sky.png"


def harmonic_cube(with_efficiency: bool) -> xr.Dataset:
    ds = handmade_cube(lambda p: np.sum(p**2, -1), lambda p: -2 * p, n_members=3, spacing=0.5)
    if with_efficiency:
        ds["efficiency"] = (ds.density * 0 + 0.7).assign_attrs(units="1", long_name="selection efficiency")
    return ds


def plot(store: Path, out: Path) -> set[str]:
    result = CliRunner().invoke(app, ["plot", str(store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {p.name for p in out.glob("*.png")}


def check_png(path: Path, min_bytes: int = 10_000) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes, path
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert 400 <= width <= 2500 and 300 <= height <= 1500, (path, width, height)


def test_plot_command_writes_every_quicklook_and_efficiency_only_when_present(tmp_path):
    store = tmp_path / "cube.zarr"
    harmonic_cube(with_efficiency=False).to_zarr(store, zarr_format=3, consolidated=True)
    out = tmp_path / "plots"
    assert plot(store, out) == set(ALWAYS)
    for name in ALWAYS:
        check_png(out / name)

    with_eps = tmp_path / "with_eps" / "cube.zarr"
    harmonic_cube(with_efficiency=True).to_zarr(with_eps, zarr_format=3, consolidated=True)
    assert plot(with_eps, out) == {*ALWAYS, EFFICIENCY}
    check_png(out / EFFICIENCY)
    assert plot(store, out) == set(ALWAYS), "a stale ε panel is removed when the cube has no ε"


def test_plot_unknown_cube_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["plot", "nowhere", "--catalog", str(tmp_path / "c.yaml"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "No cube `nowhere`" in result.output and "Traceback" not in result.output


def test_quicklook_names_are_distinct():
    names = [look.filename("e") for look in QUICKLOOKS]
    assert len(set(names)) == len(names) and names[0] == "e.png"


def test_midplane_reference_is_dashed_and_shifted_to_the_reference_point():
    zero_at_observer = lambda p: multilinear(p) - multilinear(np.asarray(OBSERVER))  # noqa: E731
    ds = handmade_cube(zero_at_observer, multilinear_accel, n_members=1, spacing=0.5)
    calls = []

    def reference(p: np.ndarray) -> np.ndarray:
        calls.append(np.shape(p))
        return multilinear(np.asarray(p)) + 1e4  # a different additive constant must not matter

    fig = midplane_potential_figure(ds, reference, "analytic")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()][1] == "analytic"
    assert calls == [(ds.sizes["x"], ds.sizes["y"], 3), (3,)]
    filled, cube_lines, reference_lines = ax.collections
    assert all(dashes is None for _, dashes in cube_lines.get_linestyle()), "the cube's contours are solid"
    assert all(dashes is not None for _, dashes in reference_lines.get_linestyle()), "the reference's are dashed"
    np.testing.assert_array_equal(cube_lines.levels, reference_lines.levels)
    for level, path in zip(reference_lines.levels, reference_lines.get_paths()):
        # Φ is bilinear in the plane, so marching-squares vertices lie exactly on its level sets
        on_plane = np.column_stack([path.vertices, np.zeros(len(path.vertices))])
        np.testing.assert_allclose(zero_at_observer(on_plane), level, atol=1e-6)
    assert sum(len(p.vertices) for p in reference_lines.get_paths()) > 20


def test_galactic_directions_in_the_galactocentric_frame():
    ds = handmade_cube(multilinear, multilinear_accel, n_members=1, spacing=0.5)
    pts = galactic_to_galactocentric(ds, np.array([0.0, 90.0, 0.0]), np.array([0.0, 0.0, 90.0]), 1.0)
    o = np.asarray(OBSERVER)
    np.testing.assert_allclose(pts[0] - o, [1, 0, 0], atol=0.01)  # l = 0: towards the Galactic centre (+x)
    np.testing.assert_allclose(pts[1] - o, [0, 1, 0], atol=0.01)  # l = 90°: the direction of rotation (+y)
    np.testing.assert_allclose(pts[2] - o, [0, 0, 1], atol=0.01)  # b = 90°: the north Galactic pole (+z)


@pytest.mark.parametrize("source, expected", [("handmade", False), ("plummer", True)])
def test_truth_only_for_mock_cubes(source, expected):
    recipe = "name: t\ndata: {source: plummer, n_stars: 1000}\n"
    truth = truth_from_attrs({"data_source": source, "recipe": recipe})
    assert (truth is not None) == expected
    if expected:
        assert truth.mass_msun == 1e11 and truth.n_stars == 1000


def test_polar_arc_draws_dark_matter_only_where_the_cube_has_it():
    from dpotcube.plots import polar_arc_density_figure

    ds = harmonic_cube(with_efficiency=False)

    def labels(cube: xr.Dataset) -> list[str]:
        return [t.get_text() for t in polar_arc_density_figure(cube).axes[0].get_legend().get_texts()]

    assert not any("ρ_DM" in label for label in labels(ds))
    with_dm = ds.assign(density_dm=ds.density * 0.2, density_baryon=ds.density.isel(member=0, drop=True) * 0.8)
    with_dm.attrs["baryon_model"] = "MWPotential2014 bulge+disk (Bovy 2015), long details"
    shown = labels(with_dm)
    expected = {"ρ_DM: median", "ρ_DM: 16–84% over 3 members", "ρ_baryon (MWPotential2014 bulge+disk, nominal)"}
    assert expected <= set(shown)


def test_real_star_cubes_are_drawn_against_mwpotential2014():
    """Without a mock's truth the midplane Φ is compared with galpy's MWPotential2014 (dashed, in the legend)."""
    from dpotcube.plots.quicklook import _midplane

    ax = _midplane(handmade_cube(multilinear, multilinear_accel, n_members=1, spacing=0.5), None).axes[0]
    assert any("MWPotential2014" in t.get_text() for t in ax.get_legend().get_texts())
    assert len(ax.collections) == 3  # filled cube, cube contours, dashed reference contours
