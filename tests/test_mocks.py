"""The Plummer sampler and its analytic truth; the CBE of the exact f pins the signs."""

import jax
import jax.numpy as jnp
import numpy as np

from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN as G
from dpotcube.fields.cbe import stationary_residual
from dpotcube.frames import solar_position_kpc
from dpotcube.recipe import FrameSpec


def test_solar_position_matches_astropy_convention():
    sun = solar_position_kpc(FrameSpec())
    theta = np.arcsin(0.0208 / 8.122)
    np.testing.assert_allclose(sun, [-8.122 * np.cos(theta), 0.0, 0.0208], atol=1e-6)


def test_stars_inside_volume_and_galaxy_like(stars, truth):
    assert len(stars) == truth.n_stars
    assert np.all(np.linalg.norm(stars.positions - stars.observer, axis=1) < stars.volume_radius_kpc)
    v_circ = np.sqrt(np.linalg.norm(truth.acceleration(stars.observer)) * np.linalg.norm(stars.observer))
    assert 100 < v_circ < 250


def test_radial_distribution_follows_density(stars, truth):
    """Counts in shells around the centre, within the volume, follow n(x) integrated by Monte Carlo."""
    rng = np.random.default_rng(7)
    probe = stars.observer + truth.volume_radius_kpc * rng.uniform(0, 1, (400_000, 1)) ** (1 / 3) * _unit(rng, 400_000)
    weights = np.asarray(truth.tracer_density(probe)) * (4 / 3 * np.pi * truth.volume_radius_kpc**3) / len(probe)
    edges = np.linspace(5.2, 11.0, 9)
    observed, _ = np.histogram(np.linalg.norm(stars.positions, axis=1), edges)
    expected, _ = np.histogram(np.linalg.norm(probe, axis=1), edges, weights=weights)
    keep = expected > 200
    chi = (observed[keep] - expected[keep]) / np.sqrt(expected[keep])
    assert np.all(np.abs(chi) < 4.5), chi


def test_velocity_dispersion_matches_jeans(stars, truth):
    """Isotropic Plummer: ⟨v²⟩ = 3σ² = Ψ/2 at every radius."""
    r = np.linalg.norm(stars.positions, axis=1)
    edges = np.quantile(r, np.linspace(0, 1, 6))
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (r >= lo) & (r < hi)
        mean_v2 = np.mean(np.sum(stars.velocities[sel] ** 2, axis=1))
        expected = np.mean(np.asarray(truth.relative_potential(stars.positions[sel]))) / 2
        assert abs(mean_v2 / expected - 1) < 0.03


def test_truth_fields_are_consistent(truth, stars):
    x = jnp.asarray(stars.positions[:200])
    np.testing.assert_allclose(-jax.vmap(jax.grad(truth.potential))(x), truth.acceleration(x), rtol=1e-6)
    lap = jax.vmap(lambda p: jnp.trace(jax.hessian(truth.potential)(p)))(x)
    np.testing.assert_allclose(lap / (4 * np.pi * G), truth.density(x), rtol=1e-5)
    assert np.all(np.sum(truth.acceleration(x) * x, axis=1) < 0), "a must point to the centre"


def test_grad_log_p_matches_autodiff(truth, stars):
    x, v = jnp.asarray(stars.positions[:200]), jnp.asarray(stars.velocities[:200])

    def log_p(xi, vi):
        return truth.log_df(xi, vi) - jnp.log(truth.tracer_density(xi))

    gx, gv = jax.vmap(jax.grad(log_p, argnums=(0, 1)))(x, v)
    tx, tv = truth.grad_log_p(x, v)
    np.testing.assert_allclose(gx, tx, rtol=1e-3, atol=1e-5)  # float32
    np.testing.assert_allclose(gv, tv, rtol=1e-3, atol=1e-7)


def test_cbe_residual_of_exact_df_vanishes_and_pins_signs(truth, stars):
    x, v = jnp.asarray(stars.positions[:2000]), jnp.asarray(stars.velocities[:2000])
    gx_f = jax.vmap(jax.grad(truth.log_df, argnums=0))(x, v)
    gv_f = jax.vmap(jax.grad(truth.log_df, argnums=1))(x, v)
    grad_phi = -truth.acceleration(x)
    residual = jax.vmap(stationary_residual)(v, gx_f, gv_f, grad_phi)
    scale = np.median(np.abs(np.sum(v * gx_f, axis=1)))
    assert np.max(np.abs(residual)) < 1e-9 * scale * 1e6
    flipped = jax.vmap(stationary_residual)(v, gx_f, gv_f, -grad_phi)
    assert np.median(np.abs(flipped)) > 0.5 * scale


def _unit(rng, n):
    vec = rng.normal(size=(n, 3))
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)
