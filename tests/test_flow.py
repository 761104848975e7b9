"""Rectified-flow interpolant, loss and ODE integrators."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from restorect_jax import flow

X1 = jnp.array([[0.3, -1.2], [2.0, 0.5]])
A, B, C, D = 0.7, -1.3, 2.1, 0.9  # polynomial velocity coefficients
UNEVEN = flow.time_grid(3, (0.8, 0.3))


def _integral(coefficients):
    """Exact x(0) - x(1) for dx/dt = sum_k c_k t^k: -sum_k c_k / (k + 1)."""
    return -sum(c / (k + 1) for k, c in enumerate(coefficients))


@pytest.mark.parametrize(
    "method, coefficients",
    [("euler", (A,)), ("heun", (A, B)), ("rk4", (A, B, C, D))],
)
def test_integrator_is_exact_on_its_polynomial_order(method, coefficients):
    velocity = lambda x, t: jnp.full_like(x, sum(c * t**k for k, c in enumerate(coefficients)))
    result = flow.integrate(velocity, X1, UNEVEN, method)
    np.testing.assert_allclose(result, X1 + _integral(coefficients), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method, coefficients", [("euler", (A, B)), ("heun", (A, B, C))])
def test_integrator_is_not_exact_one_order_higher(method, coefficients):
    velocity = lambda x, t: jnp.full_like(x, sum(c * t**k for k, c in enumerate(coefficients)))
    result = flow.integrate(velocity, X1, UNEVEN, method)
    assert np.max(np.abs(result - (X1 + _integral(coefficients)))) > 1e-3


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_jitted_matches_eager_and_traces_once(method):
    velocity = lambda x, t: -x * (1.0 + t)  # depends on x: exercises the stages
    chex.clear_trace_counter()  # the counter is keyed by code location, shared by the params

    @jax.jit
    @chex.assert_max_traces(n=1)
    def solve(x):
        return flow.integrate(velocity, x, flow.time_grid(4), method)

    with jax.disable_jit():
        eager = flow.integrate(velocity, X1, flow.time_grid(4), method)
    np.testing.assert_allclose(solve(X1), eager, rtol=1e-6)
    solve(X1 + 1.0)  # a new value, same shape: no retrace
    # dx/dt = -(1 + t) x from 1 to 0: x(0) = x(1) exp(1.5); RK4 with 4 steps is close.
    if method == "rk4":
        np.testing.assert_allclose(eager, X1 * np.exp(1.5), rtol=1e-3)


def test_integrate_is_differentiable_with_and_without_remat():
    grid = flow.time_grid(4)

    def endpoint(theta, remat):
        return jnp.sum(flow.integrate(lambda x, t: theta * x, X1, grid, "euler", remat=remat))

    # Euler with h = -1/4: x_end = (1 - theta/4)^4 x, so d/dtheta = -(1 - theta/4)^3 sum(x).
    theta = 0.6
    expected = -((1 - theta / 4) ** 3) * float(jnp.sum(X1))
    for remat in (False, True):
        np.testing.assert_allclose(jax.grad(endpoint)(theta, remat), expected, rtol=1e-5)


def test_rectified_flow_loss_is_zero_for_the_true_velocity_of_a_point_target():
    point = jnp.array([0.5, -2.0, 1.0])
    data = jnp.broadcast_to(point, (16, 3))
    noise = jax.random.normal(jax.random.PRNGKey(0), (16, 3))
    t = jax.random.uniform(jax.random.PRNGKey(1), (16,), minval=0.05, maxval=1.0)
    # x_t = (1 - t) z + t e, so e - z = (x_t - z) / t: the exact field of a flow to a point.
    true_velocity = lambda x, t: (x - point) / t[:, None]
    assert float(flow.rectified_flow_loss(true_velocity, data, noise, t)) < 1e-6
    wrong_velocity = lambda x, t: (x - point) / t[:, None] + 0.1
    np.testing.assert_allclose(flow.rectified_flow_loss(wrong_velocity, data, noise, t), 0.01)


def test_interpolant_end_points_and_target():
    data, noise = jnp.zeros((2, 3)), jnp.ones((2, 3))
    np.testing.assert_array_equal(
        flow.interpolate(data, noise, jnp.array([0.0, 1.0])), [[0, 0, 0], [1, 1, 1]]
    )
    np.testing.assert_array_equal(flow.velocity_target(data, noise), noise)


def test_time_sampling_and_grids():
    uniform = flow.sample_time(jax.random.PRNGKey(0), 1000)
    assert 0.0 <= float(uniform.min()) and float(uniform.max()) <= 1.0
    grid_times = flow.sample_time(jax.random.PRNGKey(0), 1000, num_points=5)
    assert set(np.round(np.asarray(grid_times), 6)) == {0.0, 0.25, 0.5, 0.75, 1.0}
    np.testing.assert_allclose(flow.time_grid(2), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(flow.time_grid(4, (0.5, 0.25, 0.05)), [1, 0.5, 0.25, 0.05, 0])
    with pytest.raises(ValueError, match="strictly decreasing"):
        flow.time_grid(3, (0.2, 0.5))
    with pytest.raises(ValueError, match="unknown integrator"):
        flow.integrate(lambda x, t: x, X1, flow.time_grid(2), "midpoint")
