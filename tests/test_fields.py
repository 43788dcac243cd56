"""The field solver on exact analytic gradients, the networks' derivatives, and save/load."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpotcube.activations import ACTIVATIONS, gint
from dpotcube.constants import G_KPC_KM2_S2_PER_MSUN as G
from dpotcube.fields.forward import value_grad_laplacian
from dpotcube.fields.model import load_fields, save_fields
from dpotcube.fields.nets import ScalarField, laplacian, laplacian_jacfwd


def test_gint_is_smooth_and_monotone():
    x = jnp.linspace(-4, 4, 801)
    dg = jax.vmap(jax.grad(gint))(x)
    assert np.all(dg > 0)
    np.testing.assert_allclose(gint(jnp.array(8.0)), 8.0 - 1 / np.sqrt(2 * np.pi), rtol=1e-6)  # → x − 1/√(2π)
    np.testing.assert_allclose(dg, 0.5 * (1 + jax.scipy.special.erf(x / np.sqrt(2))), atol=1e-6)


def test_laplacian_matches_finite_differences():
    field = ScalarField(16, 2, "silu", (-8.0, 0.0, 0.0), 3.0, 1.0, key=jax.random.key(1))
    x = jnp.array([-7.5, 0.4, 0.3])
    h = 5e-2
    fd = sum(field(x + h * e) - 2 * field(x) + field(x - h * e) for e in jnp.eye(3)) / h**2
    np.testing.assert_allclose(laplacian(field, x), fd, rtol=2e-2)


def _random_field(
    activation: str, width: int, depth: int, seed: int, body: str = "mlp"
) -> tuple[ScalarField, jnp.ndarray]:
    """A freshly initialised field around an off-centre `loc`, and 64 points within twice its length scale."""
    k_net, k_x = jax.random.split(jax.random.key(seed))
    field = ScalarField(width, depth, activation, (-8.2, 0.3, 0.02), 2.5, 1.7e4, body=body, key=k_net)
    x = field.loc + 5.0 * jax.random.uniform(k_x, (64, 3), minval=-1, maxval=1)
    return field, x


def _assert_close(actual, expected):
    """1e-5 relative, on the scale of the field (pointwise where the values are not near zero)."""
    expected = np.asarray(expected, np.float64)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize(("width", "depth", "body"), [(8, 1, "mlp"), (32, 3, "mlp"), (100, 5, "mlp"), (32, 4, "resnet")])
def test_forward_mode_matches_autodiff(activation, width, depth, body):
    """Φ, ∇Φ and ∇²Φ from the forward pass equal the network, jax.grad and trace(jacfwd(grad))."""
    field, x = _random_field(activation, width, depth, seed=depth, body=body)
    value, grad, lap = jax.vmap(value_grad_laplacian, in_axes=(None, 0))(field, x)
    _assert_close(value, jax.vmap(field)(x))
    _assert_close(grad, jax.vmap(jax.grad(field))(x))
    reference = jax.vmap(laplacian_jacfwd, in_axes=(None, 0))(field, x)
    _assert_close(lap, reference)
    _assert_close(jax.vmap(laplacian, in_axes=(None, 0))(field, x), reference)


def test_reference_under_the_network_matches_autodiff_and_the_cored_log_density():
    """Φ = Φ_ref + network: the forward pass's Φ, ∇Φ, ∇²Φ equal autodiff of the sum, and the reference alone has
    the cored logarithmic potential's density v₀²(3r_c² + r²)/(4πG(r² + r_c²)²)."""
    field = ScalarField(32, 3, "silu", (-8.2, 0.3, 0.02), 2.5, 1.7e4, reference="cored-log", key=jax.random.key(3))
    field = eqx.tree_at(lambda f: (f.reference.log_v0_sq, f.reference.log_core_sq), field,
                        (jnp.asarray(0.3), jnp.asarray(-0.5)))
    x = field.loc + 5.0 * jax.random.uniform(jax.random.key(4), (64, 3), minval=-1, maxval=1)
    value, grad, lap = jax.vmap(value_grad_laplacian, in_axes=(None, 0))(field, x)
    _assert_close(value, jax.vmap(field)(x))
    _assert_close(grad, jax.vmap(jax.grad(field))(x))
    _assert_close(lap, jax.vmap(laplacian_jacfwd, in_axes=(None, 0))(field, x))
    v0_sq, core_sq = 1.7e4 * np.exp(0.3), 2.5**2 * np.exp(-0.5)
    r2 = np.sum(np.asarray(x, np.float64) ** 2, axis=1)
    ref_lap = jax.vmap(lambda p: field.reference.value_grad_laplacian(p)[2])(x)
    np.testing.assert_allclose(ref_lap, v0_sq * (3 * core_sq + r2) / (r2 + core_sq) ** 2, rtol=1e-5)


def test_forward_mode_parameter_gradients_match_autodiff():
    """Training differentiates the penalty through the forward pass: its parameter gradients match the reference."""
    field, x = _random_field("silu", 32, 3, seed=7)

    def penalty(f, lap_fn):
        return jnp.mean(jnp.maximum(0.0, -jax.vmap(lap_fn, in_axes=(None, 0))(f, x)))

    forward = eqx.filter_grad(lambda f: penalty(f, laplacian))(field)
    reference = eqx.filter_grad(lambda f: penalty(f, laplacian_jacfwd))(field)
    for a, b in zip(jax.tree_util.tree_leaves(forward), jax.tree_util.tree_leaves(reference)):
        _assert_close(a, b)


def test_solver_recovers_plummer_on_exact_gradients(exact_fields, truth, stars):
    """Without flow error the conditional solver (the default cored-log reference under Φ), polished by L-BFGS by
    position, recovers a within 0.3%, ρ within 5%, n within 0.1% (medians).

    Measured (one seed, this fixture, 8,192 positions × 4 velocities): Adam alone a 1.13%, ρ 15.5%, n 0.29% (fails
    every bound; without the reference a 1.35%, ρ 19.5%, n 0.36%); with the fixture's 600 iterations on 2,048
    volume-spread positions × 4 velocities a 0.14%, ρ 2.9%, n 0.04% (before the reference and the polish by
    position: 600 on 2,048 points, a 0.48%, ρ 9.5%, n 0.11%). benchmarks/solver.py: ρ 1.6% at the quickstart's
    budget.
    """
    model, _, history = exact_fields
    assert history["loss"][-1] < 1e-3 * history["loss"][0]
    assert history["polish_loss"][-1] < history["loss"][-1]
    x = jnp.asarray(stars.positions[:4000], jnp.float32)
    accel = -jax.vmap(jax.grad(model.potential))(x)
    true_accel = truth.acceleration(x)
    assert np.median(np.linalg.norm(accel - true_accel, axis=1) / np.linalg.norm(true_accel, axis=1)) < 0.003
    rho = jax.vmap(laplacian, in_axes=(None, 0))(model.potential, x) / (4 * np.pi * G)
    assert np.median(np.abs(rho / truth.density(x) - 1)) < 0.05
    n = jax.vmap(model.tracer_density)(x)
    assert np.median(np.abs(n / truth.tracer_density(x) - 1)) < 0.001


def test_fields_save_load_round_trip(exact_fields, tmp_path):
    model, hyper, _ = exact_fields
    save_fields(tmp_path / "f.eqx", model, hyper)
    loaded = load_fields(tmp_path / "f.eqx")
    x = jnp.array([-8.0, 0.5, 0.2])
    assert loaded.potential(x) == model.potential(x)
    assert loaded.tracer_density(x) == model.tracer_density(x)


def test_position_likelihood_prefers_the_true_density_slope():
    """The weak tie of n to the star counts is lowest for the ln n that generated the stars."""
    from dpotcube.fields.losses import position_log_likelihood

    rng = np.random.default_rng(0)
    uniform = rng.uniform(-1, 1, 200_000)
    stars = uniform[rng.uniform(0, 1, uniform.size) < np.exp(0.8 * uniform) / np.exp(0.8)]  # n ∝ e^{0.8 x}
    probe = rng.uniform(-1, 1, 100_000)
    losses = {slope: float(position_log_likelihood(jnp.asarray(slope * stars), jnp.asarray(slope * probe))) for slope in (0.0, 0.4, 0.8, 1.2)}
    assert min(losses, key=losses.get) == 0.8
