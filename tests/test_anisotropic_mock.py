"""The Osipkov–Merritt Plummer mock: its f(Q) integrates to ρ, the samples have the analytic β(r) and the
Jeans ⟨v_r²⟩, the exact f satisfies the CBE, and the isotropic mock draws exactly the stars it always did."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial.legendre import leggauss
from scipy.integrate import quad

from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN as G
from dpotcube.errors import RecipeError
from dpotcube.fields.cbe import stationary_residual
from dpotcube.recipe import DataSpec, recipe_from_dict
from dpotcube.sources.load import load_stars, plummer_truth
from dpotcube.sources.mocks import sample_plummer

R_A = 6.0  # kpc: β runs from ≈ 0.4 to ≈ 0.8 across the volume around the Sun (b = 4 kpc)


@pytest.fixture(scope="module")
def om_spec() -> DataSpec:
    return DataSpec(n_stars=20_000, plummer={"anisotropy_radius_kpc": R_A})


@pytest.fixture(scope="module")
def om_truth(om_spec):
    return plummer_truth(om_spec)


@pytest.fixture(scope="module")
def om_stars(om_spec):
    return load_stars(om_spec, seed=0)


def test_isotropic_stars_are_unchanged():
    """The default (no anisotropy radius) draws the very stars it drew before the OM mock existed."""
    x, v = sample_plummer(plummer_truth(DataSpec(n_stars=1000)), 3)
    np.testing.assert_allclose(x[0], [-7.7642113943302435, -0.5522153399820254, -0.828620018805597], rtol=1e-12)
    np.testing.assert_allclose(v[999], [-48.348940283096034, -116.08267780119112, 12.38706784792899], rtol=1e-12)


@pytest.mark.parametrize("r_a", [None, 3.0, R_A])  # 3.0 = 0.75 b: the (1 − α) Q^{7/2} term is negative
def test_df_integrates_to_the_density(r_a):
    """∫ f d³v = ρ(r), by Gauss–Legendre quadrature over speed and the cosine to the radial direction."""
    truth = plummer_truth(DataSpec(plummer={"anisotropy_radius_kpc": r_a}))
    nodes, weights = leggauss(200)
    for r in (0.5, 4.0, 8.0, 20.0):
        x = np.array([r, 0.0, 0.0])
        v_max = np.sqrt(2 * float(truth.relative_potential(x)))
        speed, mu = np.meshgrid((nodes + 1) / 2 * v_max, nodes, indexing="ij")
        w = np.outer(weights * v_max / 2, weights)
        v = np.stack([speed * mu, speed * np.sqrt(1 - mu**2), 0 * speed], axis=-1)
        f = np.asarray(truth.df(np.broadcast_to(x, v.shape), v), np.float64)
        assert 2 * np.pi * np.sum(w * speed**2 * f) / float(truth.density(x)) == pytest.approx(1, abs=2e-5)


def test_negative_df_radius_is_refused_with_the_key_and_the_fix():
    with pytest.raises(RecipeError, match=r"recipe -> data -> plummer.*at least 0.75 × `scale_radius_kpc` \(=3\)"):
        recipe_from_dict({"name": "a", "data": {"plummer": {"anisotropy_radius_kpc": 2.9}}})


def _jeans_sigma_r2(truth, r: np.ndarray) -> np.ndarray:
    """σ_r²(r) of an OM sphere from ρ, Φ and β alone: ρσ_r² = (r² + r_a²)⁻¹ ∫_r^∞ ρ (r'² + r_a²) dΦ/dr' dr'."""
    b, gm, r_a2 = truth.scale_radius_kpc, G * truth.mass_msun, truth.anisotropy_radius_kpc**2

    def rho(s):
        return (1 + s**2 / b**2) ** -2.5

    def integrand(s):
        return rho(s) * (s**2 + r_a2) * gm * s / (s**2 + b**2) ** 1.5

    return np.array([quad(integrand, ri, np.inf, epsrel=1e-10)[0] / ((ri**2 + r_a2) * rho(ri)) for ri in r])


def test_velocity_moments_follow_beta_and_jeans(om_stars, om_truth):
    """Per radial bin: ⟨v_r²⟩ and ⟨v_t²⟩ = 2(1 − β)σ_r² against the Jeans solution, within 4 standard errors."""
    x, v = om_stars.positions, om_stars.velocities
    r = np.linalg.norm(x, axis=1)
    v_r = np.sum(v * x, axis=1) / r
    v_t2 = np.sum(v**2, axis=1) - v_r**2
    grid = np.linspace(r.min(), r.max(), 200)
    sigma_r2 = np.interp(r, grid, _jeans_sigma_r2(om_truth, grid))
    beta = np.asarray(om_truth.anisotropy(x), np.float64)
    np.testing.assert_allclose(beta, r**2 / (r**2 + R_A**2), rtol=1e-5)
    edges = np.quantile(r, np.linspace(0, 1, 7))
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (r >= lo) & (r < hi)
        for sample, expected in ((v_r[sel] ** 2, sigma_r2[sel]), (v_t2[sel], 2 * (1 - beta[sel]) * sigma_r2[sel])):
            error = sample.std() / np.sqrt(sel.sum())
            assert abs(sample.mean() - expected.mean()) < 4 * error, (lo, hi, sample.mean(), expected.mean())
        measured_beta = 1 - v_t2[sel].mean() / (2 * np.mean(v_r[sel] ** 2))
        assert measured_beta == pytest.approx(np.mean(beta[sel]), abs=0.05)  # isotropic would read 0


def test_grad_log_p_matches_autodiff(om_truth, om_stars):
    x, v = jnp.asarray(om_stars.positions[:500]), jnp.asarray(om_stars.velocities[:500])

    def log_p(xi, vi):
        return om_truth.log_df(xi, vi) - jnp.log(om_truth.tracer_density(xi))

    gx, gv = jax.vmap(jax.grad(log_p, argnums=(0, 1)))(x, v)
    tx, tv = om_truth.grad_log_p(x, v)
    np.testing.assert_allclose(tx, gx, rtol=2e-3, atol=2e-4 * float(jnp.median(jnp.abs(gx))))  # float32
    np.testing.assert_allclose(tv, gv, rtol=2e-3, atol=2e-4 * float(jnp.median(jnp.abs(gv))))
    offset = np.asarray(om_truth.log_df(x, v) - jnp.log(om_truth.df(x, v)))
    assert np.ptp(offset) < 1e-4  # ln f up to one constant


def test_cbe_residual_of_exact_anisotropic_df_vanishes_and_pins_signs(om_truth, om_stars):
    x, v = jnp.asarray(om_stars.positions[:2000]), jnp.asarray(om_stars.velocities[:2000])
    gx_p, gv = om_truth.grad_log_p(x, v)
    gx_f = gx_p + om_truth.grad_log_tracer_density(x)
    grad_phi = -om_truth.acceleration(x)
    residual = jax.vmap(stationary_residual)(v, gx_f, gv, grad_phi)
    scale = np.median(np.abs(np.sum(v * gx_f, axis=1)))
    assert np.median(np.abs(residual)) < 1e-5 * scale and np.max(np.abs(residual)) < 1e-3 * scale
    flipped = jax.vmap(stationary_residual)(v, gx_f, gv, -grad_phi)
    assert np.median(np.abs(flipped)) > 0.5 * scale


def test_anisotropic_mock_flows_through_the_stars_stage(om_stars):
    """`load_stars` (the build's stars stage) draws the OM sphere and records r_a; the truth carries it."""
    assert om_stars.meta["anisotropy_radius_kpc"] == R_A and "anisotropy_radius_kpc" not in load_stars(
        DataSpec(n_stars=500), seed=0).meta
    assert np.all(np.linalg.norm(om_stars.positions - om_stars.observer, axis=1) < om_stars.volume_radius_kpc)
