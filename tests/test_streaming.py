"""A star table larger than `memory.chunk_stars`: read in chunks, flows trained and collocation positions drawn
from the chunks, and the build's stages wired to them; a table that fits is loaded whole as before."""

from __future__ import annotations

import numpy as np
import pytest

from dpotcube.density.maf import fit_flow
from dpotcube.recipe import FlowSpec, PositionFlowSpec
from dpotcube.sources import PhaseSpaceTable
from dpotcube.sources.chunks import POSITIONS, VELOCITIES, FlowSample, StarChunks, open_stars, star_positions

CHUNK = 700  # rows per chunk: the 2,000-star table below spans three chunks


@pytest.fixture(scope="module")
def saved(stars, tmp_path_factory):
    """The first 2,000 stars of the session's mock, with S(x), saved as a build saves them."""
    rows = slice(0, 2000)
    selection = np.random.default_rng(1).uniform(0.2, 1.0, 2000)
    table = PhaseSpaceTable(stars.positions[rows], stars.velocities[rows], stars.observer, stars.volume_radius_kpc,
                            stars.data_source, {"note": "test"}, selection=selection)
    path = tmp_path_factory.mktemp("streaming") / "stars.parquet"
    table.save(path)
    return table, path


def test_a_table_larger_than_a_chunk_is_read_in_chunks_with_every_row_once(saved):
    table, path = saved
    chunks = open_stars(path, CHUNK)
    assert isinstance(chunks, StarChunks) and len(chunks) == 2000 and chunks.n_chunks == 3
    assert isinstance(open_stars(path, 2000), PhaseSpaceTable)  # fits: whole, as before
    np.testing.assert_array_equal(np.concatenate([chunks.positions(i) for i in range(3)]), table.positions)
    np.testing.assert_array_equal(np.concatenate([chunks.velocities(i) for i in range(3)]), table.velocities)
    np.testing.assert_array_equal(chunks.inverse_selection_weights(3.0), table.inverse_selection_weights(3.0))
    np.testing.assert_array_equal(chunks.observer, table.observer)
    assert chunks.volume_radius_kpc == table.volume_radius_kpc and chunks.meta == {"note": "test"}
    assert not chunks.has_covariances and chunks.has_selection


@pytest.mark.parametrize("inner", [False, True])
def test_collocation_positions_from_chunks_are_the_whole_tables_draws(saved, inner):
    table, path = saved
    ball = (table.observer, 0.8 * table.volume_radius_kpc) if inner else None
    whole = star_positions(table, 500, np.random.default_rng(5), ball)
    chunked = star_positions(StarChunks(path, CHUNK), 500, np.random.default_rng(5), ball)
    np.testing.assert_array_equal(chunked, whole)
    if inner:
        assert np.all(np.linalg.norm(whole - table.observer, axis=1) < ball[1])


def test_a_flow_trains_on_the_chunks(saved):
    """Standardised by the whole table's mean and spread; the training loss falls over the epochs."""
    table, path = saved
    spec = FlowSpec(flow_layers=2, nn_width=16, max_epochs=4, batch_size=128, patience=10, learning_rate=1e-2)
    flow, history = fit_flow(FlowSample(StarChunks(path, CHUNK), VELOCITIES, POSITIONS), spec, seed=0)
    np.testing.assert_allclose(flow.loc, table.velocities.mean(0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(flow.scale, table.velocities.std(0), rtol=1e-5)
    np.testing.assert_allclose(flow.cond_loc, table.positions.mean(0), rtol=1e-5, atol=1e-5)
    assert flow.conditional and len(history["train"]) == 4 and np.all(np.isfinite(history["val"]))
    assert history["train"][-1] < history["train"][0]
    draws = np.asarray(flow.sample(__import__("jax").random.key(0), 2000, table.positions))
    assert abs(draws.std() / table.velocities.std() - 1) < 0.3  # km/s, not standardised units


@pytest.mark.parametrize("condition", ["none", "dispersions"])
def test_a_framed_flow_trains_on_the_chunks(saved, condition):
    """The velocity frame is fitted on stars from every chunk; the flow then sees frame velocities (mean ~0,
    spread ~1) and its condition, and its draws are back in km/s."""
    table, path = saved
    spec = FlowSpec(flow_layers=2, nn_width=16, max_epochs=2, batch_size=128, frame="galactocentric",
                    frame_condition=condition)
    flow, history = fit_flow(FlowSample(StarChunks(path, CHUNK), VELOCITIES, POSITIONS), spec, seed=0)
    assert flow.frame is not None and flow.condition_kind == condition and np.all(np.isfinite(history["val"]))
    if condition == "dispersions":  # standardised by the whole table's ln σ
        log_sigma = np.asarray(flow.frame.log_dispersions(np.asarray(table.positions, np.float32)))
        np.testing.assert_allclose(flow.cond_loc, log_sigma.mean(0), rtol=1e-4)
    np.testing.assert_allclose(flow.loc, 0.0, atol=0.05)
    np.testing.assert_allclose(flow.scale, 1.0, atol=0.05)
    draws = np.asarray(flow.sample(__import__("jax").random.key(0), 2000, table.positions))
    assert abs(draws.std() / table.velocities.std() - 1) < 0.3


def test_a_weighted_position_flow_on_the_ball_trains_on_the_chunks(saved):
    table, path = saved
    spec = PositionFlowSpec(flow_layers=2, nn_width=16, max_epochs=2, batch_size=128, selection_weights=True)
    sample = FlowSample(StarChunks(path, CHUNK), POSITIONS, None, spec.max_weight)
    flow, history = fit_flow(sample, spec, seed=1, ball=(table.observer, table.volume_radius_kpc))
    assert not flow.conditional and flow.support is not None and np.all(np.isfinite(history["val"]))
    inside = np.asarray(flow.sample(__import__("jax").random.key(1), 500))
    assert np.all(np.linalg.norm(inside - table.observer, axis=1) < table.volume_radius_kpc)


def test_the_fit_stages_stream_a_table_larger_than_a_chunk(saved, tmp_path):
    """The flow and collocation stages of a build on a chunked table: they run, and the flows' keys carry the chunk."""
    from dpotcube.methods import get_method
    from dpotcube.plan import BuildLayout, fit_stages
    from dpotcube.recipe import recipe_from_dict

    _, path = saved
    recipe = recipe_from_dict({
        "name": "streamed", "memory": {"chunk_stars": CHUNK},
        "density": {"velocity": {"flow_layers": 2, "nn_width": 8, "max_epochs": 2, "batch_size": 128},
                    "position": {"flow_layers": 2, "nn_width": 8, "max_epochs": 2, "batch_size": 128},
                    "collocation": {"n_positions": 64, "velocities_per_position": 2}},
    })
    method = get_method("conditional")
    stars = open_stars(path, recipe.memory.chunk_stars)
    files = BuildLayout(tmp_path).fit_files(recipe, method)
    stages = fit_stages(recipe, method, stars, files, {"flow": 0, "collocation": 1, "fields": 2})
    for stage in stages[:3]:  # velocity flow, position flow, collocation
        stage.action()
    assert [s.name for s in stages[:3]] == ["velocity_flow_0", "position_flow_0", "collocation"]
    assert stages[0].section[-1] == CHUNK
    from dpotcube.density.collocation import CollocationPoints

    points = CollocationPoints.load(files.collocation)
    assert len(points) == 128 and points.grad_log_n is not None and np.all(np.isfinite(points.grad_v_log_p))


def test_a_density_model_that_cannot_stream_is_refused_with_the_fix(saved, monkeypatch):
    import dataclasses

    from dpotcube.density import registry
    from dpotcube.errors import RecipeError

    _, path = saved
    monkeypatch.setitem(registry.DENSITY_MODELS, "maf", dataclasses.replace(registry.DENSITY_MODELS["maf"], streams=False))
    with pytest.raises(RecipeError, match="memory.chunk_stars"):
        registry.fit_density(FlowSample(StarChunks(path, CHUNK), VELOCITIES, POSITIONS), FlowSpec(), 0)
