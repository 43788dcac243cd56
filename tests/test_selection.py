"""The observed Plummer mocks: dust field, selection function S(x), sampling through S, and their recipe keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from dpotcube.errors import RecipeError
from dpotcube.geometry import uniform_in_ball
from dpotcube.plots.selection import selection_plane_figure
from dpotcube.recipe import DataSpec, recipe_from_dict
from dpotcube.sources.base import PhaseSpaceTable
from dpotcube.sources.dust import DustField, correlation
from dpotcube.sources.load import load_stars, observation_truth, plummer_truth
from dpotcube.sources.mocks import _positions_in_volume
from dpotcube.sources.selection import grad_log_selection_of, selection_of

OBSERVER = (-8.122, 0.0, 0.0208)
DUST = {"mean_extinction_mag_per_kpc": 0.5, "log_sigma": 1.0, "spectral_index": 3.0, "min_scale_kpc": 0.25,
        "max_scale_kpc": 6.0, "n_modes": 256, "quadrature_nodes": 64}


def _dust(seed=0, **changes) -> DustField:
    return DustField.from_seed(seed, OBSERVER, **{**DUST, **changes})


def _points(n, seed=1, radius=3.0):
    return uniform_in_ball(np.random.default_rng(seed), n, np.asarray(OBSERVER), radius)


@pytest.fixture(scope="module")
def dusty_data():
    return DataSpec(n_stars=12_000, observation={"dust": {"n_modes": 128}})


@pytest.fixture(scope="module")
def dusty(dusty_data):
    return load_stars(dusty_data, seed=5), plummer_truth(dusty_data)


def test_selection_in_unit_interval_and_one_at_observer():
    truth = observation_truth(DataSpec(observation={}))
    pts = np.vstack([_points(4000), np.asarray(OBSERVER)[None]])
    s = selection_of(truth, pts)
    assert np.all((s > 0) & (s <= 1)), (s.min(), s.max())
    assert s[-1] == pytest.approx(1.0, abs=1e-6)
    assert 0.3 < s.mean() < 0.6 and np.mean(s > 0.1) > 0.8, "defaults: mean S and coverage as documented"
    grad = truth.grad_log_selection(jnp.asarray(OBSERVER)[None])
    assert np.all(np.isfinite(grad)) and np.all(np.abs(grad) < 1e-3)


def test_dust_free_selection_is_the_normal_cdf_of_distance():
    spec = DataSpec(observation={"dust": None, "magnitude_limit": 13.0, "absolute_magnitude_mean": 0.5,
                                 "absolute_magnitude_sigma": 0.8})
    truth = observation_truth(spec)
    pts = _points(3000)
    d = np.linalg.norm(pts - np.asarray(OBSERVER), axis=1)
    expected = norm.cdf((13.0 - 5 * np.log10(d * 1000 / 10) - 0.5) / 0.8)
    np.testing.assert_allclose(selection_of(truth, pts), expected, rtol=1e-4, atol=1e-6)
    # Same distance, other direction: same S; farther: smaller S.
    direction = np.random.default_rng(2).normal(size=(50, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    for r in (0.5, 1.5, 2.9):
        s = selection_of(truth, np.asarray(OBSERVER) + r * direction)
        assert np.ptp(s) < 1e-4  # float32 positions
    radial = selection_of(truth, np.asarray(OBSERVER) + np.linspace(0.01, 3, 200)[:, None] * direction[0])
    assert np.all(np.diff(radial) <= 0) and np.all(np.diff(radial[radial < 0.99]) < 0)


def test_line_of_sight_quadrature_converges():
    pts = _points(100)
    offset = pts - np.asarray(OBSERVER)
    x = np.vstack([pts, np.asarray(OBSERVER) + 3.0 * offset / np.linalg.norm(offset, axis=1, keepdims=True)])
    with jax.enable_x64(True):
        reference, default, coarse = (np.asarray(jax.jit(_dust(quadrature_nodes=q).extinction)(jnp.asarray(x)))
                                      for q in (256, 64, 16))
    assert np.max(np.abs(default - reference)) < 1e-3
    assert np.max(np.abs(coarse - reference)) > 1e-2, "16 nodes should visibly miss 0.25-kpc structure"
    assert 0.2 < np.median(reference[100:]) < 3.0, "a few tenths to a few mag at 3 kpc"


def test_extinction_is_the_integral_of_the_density():
    """A along one line of sight against a fine trapezoid sum of α(x)."""
    dust = _dust()
    end = np.asarray(OBSERVER) + np.array([1.5, -2.0, 0.7])
    s = np.linspace(0.0, 1.0, 20001)
    alpha = np.asarray(jax.jit(dust.extinction_density)(jnp.asarray(np.asarray(OBSERVER) + s[:, None] * (end - OBSERVER))))
    trapezoid = np.linalg.norm(end - OBSERVER) * np.sum((alpha[1:] + alpha[:-1]) / 2 * np.diff(s))
    assert float(dust.extinction(jnp.asarray(end))) == pytest.approx(trapezoid, rel=2e-4)


def test_grad_log_selection_matches_finite_differences():
    truth = observation_truth(DataSpec(observation={}))
    with jax.enable_x64(True):
        x = jnp.asarray(np.vstack([_points(20, seed=3), np.asarray(OBSERVER) + [0.02, 0.01, -0.01]]))
        grad = np.asarray(truth.grad_log_selection(x))
        log_s, h = jax.jit(truth.log_selection), 1e-5
        fd = np.stack([np.asarray(log_s(x + h * e) - log_s(x - h * e)) / (2 * h) for e in jnp.eye(3)], axis=1)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(grad)) > 0.1, "the test points must see a gradient"


def test_weak_methods_central_difference_grad_log_selection_matches_autodiff():
    """`grad_log_selection_of` (what `fields.weak.known_selection: gradient` feeds the weak fit) against the
    dusty selection's reverse-mode gradient: same sign, same units (kpc⁻¹)."""
    truth = observation_truth(DataSpec(observation={}))
    x = np.vstack([_points(20, seed=4), np.asarray(OBSERVER) + [0.02, 0.01, -0.01]])
    exact = np.asarray(truth.grad_log_selection(jnp.asarray(x, jnp.float32)))
    central = grad_log_selection_of(truth, x)
    assert central.shape == (len(x), 3) and np.max(np.abs(exact)) > 0.1
    np.testing.assert_allclose(central, exact, rtol=2e-2, atol=2e-3 * np.max(np.abs(exact)))


def test_field_variance_and_correlation_scales():
    dust = _dust(log_sigma=0.7)
    box = np.asarray(OBSERVER) + np.random.default_rng(4).uniform(-30, 30, (30_000, 3))
    contrast = jax.jit(dust.log_density_contrast)
    delta = np.asarray(contrast(jnp.asarray(box)))
    assert abs(delta.mean()) < 0.03
    assert delta.var() == pytest.approx(0.7**2, rel=0.05)
    alpha = np.asarray(jax.jit(dust.extinction_density)(jnp.asarray(box)))
    assert alpha.mean() == pytest.approx(0.5, rel=0.06), "mean extinction density α₀"
    rng = np.random.default_rng(5)
    step = rng.normal(size=(len(box), 3))
    step /= np.linalg.norm(step, axis=1, keepdims=True)
    measured = []
    separations = np.array([0.02, 0.1, 0.25, 1.0, 6.0])
    for r in separations:
        shifted = np.asarray(contrast(jnp.asarray(box + r * step)))
        measured.append(np.mean(delta * shifted) / 0.7**2)
    np.testing.assert_allclose(measured, correlation(dust, separations), atol=0.04)
    assert measured[0] > 0.95, "smooth below the 0.25 kpc cutoff"
    assert measured[-1] < 0.15, "uncorrelated beyond max_scale"
    k = np.geomspace(2 * np.pi / 6.0, 2 * np.pi / 0.25, 4001)  # ensemble: sinc(kr) over p(k) ∝ k² P(k) = 1/k
    ensemble = [np.trapezoid(np.sinc(k * r / np.pi) / k, k) / np.log(24.0) for r in separations]
    np.testing.assert_allclose(correlation(dust, separations), ensemble, atol=0.03)


def test_dust_is_reproducible_from_seed():
    pts = jnp.asarray(_points(200))
    a = np.asarray(jax.jit(_dust(seed=3).extinction)(pts))
    np.testing.assert_array_equal(a, np.asarray(jax.jit(_dust(seed=3).extinction)(pts)))
    b = np.asarray(jax.jit(_dust(seed=4).extinction)(pts))
    assert np.corrcoef(a, b)[0, 1] < 0.9 and np.max(np.abs(a - b)) > 0.3


def test_dust_free_counts_in_distance_shells_and_normalisation():
    data = DataSpec(n_stars=20_000, observation={"dust": None})
    stars, truth = load_stars(data, seed=2), plummer_truth(data)
    assert len(stars) == 20_000 and np.all((stars.selection > 0) & (stars.selection <= 1))
    probe = _points(400_000, seed=6)
    volume = 4 / 3 * np.pi * 27
    n_obs = np.asarray(truth.observed_density(probe)) * volume / len(probe)
    assert n_obs.sum() == pytest.approx(20_000, rel=0.01), "∫ S n dV is the observed count"
    assert np.sum(np.asarray(truth.tracer_density(probe)) * volume / len(probe)) == pytest.approx(
        truth.expected_true_stars, rel=0.01)
    edges = np.linspace(0, 3, 11)
    observed, _ = np.histogram(np.linalg.norm(stars.positions - stars.observer, axis=1), edges)
    expected, _ = np.histogram(np.linalg.norm(probe - stars.observer, axis=1), edges, weights=n_obs)
    chi = (observed - expected) / np.sqrt(expected)
    assert np.all(np.abs(chi) < 4.5), chi
    n_true, p = stars.meta["n_true_stars_drawn"], truth.selected_fraction
    assert abs(n_true - truth.expected_true_stars) < 4 * np.sqrt(20_000 * (1 - p)) / p


def test_observed_draw_holds_bounded_rounds(monkeypatch):
    """Rounds of radii stay under the cap (a 4 × 10⁶-star draw once held 43 GB), and the capped rounds still
    draw the expected number of true stars."""
    from dpotcube.sources import mocks

    rounds = []
    original = mocks._positions_in_volume
    monkeypatch.setattr(mocks, "MAX_RADII_PER_DRAW", 1 << 15)
    monkeypatch.setattr(mocks, "_positions_in_volume", lambda rng, t, n: rounds.append(n) or original(rng, t, n))
    data = DataSpec(n_stars=5_000, observation={"dust": None})
    truth = plummer_truth(data)
    _, _, _, n_true = mocks.sample_observed_plummer(truth, seed=4)
    assert len(rounds) > 3 and max(rounds) == 1 << 15
    p = truth.selected_fraction
    assert abs(n_true - truth.expected_true_stars) < 4 * np.sqrt(5_000 * (1 - p)) / p


def test_dusty_counts_in_shells_and_sky_patches(dusty):
    stars, truth = dusty
    rng = np.random.default_rng(8)
    true_draws = np.concatenate([_positions_in_volume(rng, truth, 2**18) for _ in range(6)])[:32_000]
    s = selection_of(truth.selection, true_draws)
    assert stars.meta["acceptance_fraction"] == pytest.approx(truth.selected_fraction, rel=0.05)

    def cells(x):
        offset = x - stars.observer
        d = np.linalg.norm(offset, axis=1)
        lon = np.arctan2(offset[:, 1], offset[:, 0])
        sin_b = offset[:, 2] / d
        return (np.digitize(d, [1.5, 2.3]) * 4 + np.digitize(sin_b, [-0.5, 0, 0.5])) * 6 + np.digitize(
            lon, np.linspace(-np.pi, np.pi, 7)[1:-1])

    observed = np.bincount(cells(stars.positions), minlength=72)
    expected = np.bincount(cells(true_draws), weights=s, minlength=72) * len(stars) / s.sum()
    keep = expected > 50
    chi = (observed[keep] - expected[keep]) / np.sqrt(expected[keep])
    assert keep.sum() > 50 and np.all(np.abs(chi) < 4.5), chi
    unselected = np.bincount(cells(true_draws), minlength=72) * len(stars) / len(true_draws)
    assert np.max(np.abs(observed[keep] - unselected[keep]) / np.sqrt(unselected[keep])) > 8, "dust must show"


def test_selection_leaves_velocities_alone(dusty):
    """Isotropic Plummer: ⟨v²⟩ = Ψ/2 in every radial bin, for the observed stars too."""
    stars, truth = dusty
    r = np.linalg.norm(stars.positions, axis=1)
    edges = np.quantile(r, np.linspace(0, 1, 5))
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (r >= lo) & (r < hi)
        mean_v2 = np.mean(np.sum(stars.velocities[sel] ** 2, axis=1))
        expected = np.mean(np.asarray(truth.relative_potential(stars.positions[sel]))) / 2
        assert abs(mean_v2 / expected - 1) < 0.04


def test_observed_table_keeps_selection_and_provenance(dusty, tmp_path):
    stars, truth = dusty
    np.testing.assert_allclose(stars.selection, selection_of(truth.selection, stars.positions), rtol=1e-5)
    stars.save(tmp_path / "stars.parquet")
    back = PhaseSpaceTable.load(tmp_path / "stars.parquet")
    np.testing.assert_array_equal(back.selection, stars.selection)
    assert back.meta["observation"]["dust"]["min_scale_kpc"] == 0.25
    assert back.meta["n_true_stars_drawn"] > len(stars)


def test_selection_plane_figure(dusty, truth):
    _, dusty_truth = dusty
    fig = selection_plane_figure(dusty_truth, n_grid=21)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == [
        "extinction A from the observer", "selection function S", "observed tracer density S n"]
    assert selection_plane_figure(truth) is None


def test_truth_without_observation_is_unchanged(data_spec, truth):
    assert truth.selection is None and truth.selected_fraction == 1.0
    x = _points(100)
    np.testing.assert_allclose(truth.observed_density(x), truth.tracer_density(x))
    assert truth.expected_true_stars == data_spec.n_stars


def test_recipe_keys_and_errors():
    base = {"name": "mock", "data": {"observation": {"dust": {"min_scale_kpc": 0.3}}}}
    recipe = recipe_from_dict(base)
    assert recipe.data.observation.dust.min_scale_kpc == 0.3 and recipe.data.observation.magnitude_limit == 13.5
    assert recipe_from_dict({"name": "m", "data": {"observation": {"dust": None}}}).data.observation.dust is None
    weighted = {**base, "density": {"position": {"selection_weights": True}}}
    assert recipe_from_dict(weighted).density.position.selection_weights
    with pytest.raises(RecipeError, match="needs each star's S"):
        recipe_from_dict({"name": "m", "density": {"position": {"selection_weights": True}}})
    cases = [
        ({"source": "table", "table": {"path": "x.parquet"}, "observation": {}}, "needs `data.source: plummer`"),
        ({"observation": {"dust": {"quadrature_nodes": 20}}}, "set it to at least 60"),
        ({"observation": {"dust": {"min_scale_kpc": 7.0}}}, "must be smaller than `max_scale_kpc`"),
        ({"observation": {"absolute_magnitude_sigma": 0}}, "absolute_magnitude_sigma"),
        ({"observation": {"dust": {"n_mode": 64}}}, "did you mean `n_modes`"),
    ]
    for data, message in cases:
        with pytest.raises(RecipeError, match=message.replace("(", r"\(")):
            recipe_from_dict({"name": "m", "data": data})
