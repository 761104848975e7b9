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


# --- the sampler library ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, spec",
    [
        ("euler", flow.SamplerSpec("euler")),
        ("heun:2", flow.SamplerSpec("heun", 2)),
        ("euler:1,0.5,0.25,0.05,0", flow.SamplerSpec("euler", grid=(1.0, 0.5, 0.25, 0.05, 0.0))),
        ("sde:10:1.8", flow.SamplerSpec("sde", 10, alpha_max=1.8)),
        ("sde::1.5", flow.SamplerSpec("sde")),  # the method's steps, alpha_max given
    ],
)
def test_sampler_text_round_trips(text, spec):
    assert flow.parse_sampler(text) == spec
    assert flow.parse_sampler(spec.describe()) == spec
    assert hash(spec) == hash(flow.parse_sampler(text))  # usable as a static jit argument


@pytest.mark.parametrize(
    "text, message",
    [
        ("dopri5:4", "solver 'dopri5' is unknown"),
        ("euler:0", r"integer in \[1, 1000\]"),
        ("euler:-1", r"integer in \[1, 1000\]"),
        ("euler:99999999999", r"integer in \[1, 1000\], got 99999999999"),
        ("euler:" + ",".join(str(1 - k / 1001) for k in range(1002)), "at most 1000"),
        ("euler:four", "invalid literal"),
        ("euler:1,0.5,0.7,0", "strictly decreasing"),
        ("euler:0.5,0", "from 1 to 0"),
        ("heun:2:1.5", "solver:steps:alpha_max"),
        ("sde:4:2.5", "alpha_max"),
    ],
)
def test_bad_sampler_text_is_one_line_naming_it(text, message):
    with pytest.raises(ValueError, match=message) as error:
        flow.parse_sampler(text)
    assert str(error.value).startswith(f"sampler {text!r}") and "\n" not in str(error.value)


def test_sampler_flags_keep_the_default_solver_for_steps():
    default = flow.SamplerSpec("heun", 4)
    assert flow.sampler_from_flags(default, None, None) is None
    assert flow.sampler_from_flags(default, None, 2) == flow.SamplerSpec("heun", 2)
    assert flow.sampler_from_flags(default, "euler:3", None) == flow.SamplerSpec("euler", 3)
    for steps in (0, -1):
        with pytest.raises(ValueError, match=f"--steps {steps}"):
            flow.sampler_from_flags(default, None, steps)
    with pytest.raises(ValueError, match="not both"):
        flow.sampler_from_flags(default, "euler:3", 2)


def _state_velocity(x, t):
    """A velocity that depends on the state and the per-sample time: v = -x t + sin(3 t)."""
    t = t.reshape(t.shape + (1,) * (x.ndim - t.ndim))
    return -x * t + jnp.sin(3.0 * t)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_per_sample_grids_equal_one_integration_per_sample(method):
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4))
    grids = jnp.stack([flow.time_grid(3), UNEVEN, flow.time_grid(3, (0.5, 0.05))])
    batched = flow.integrate(_state_velocity, x, grids, method)
    for i in range(3):
        alone = flow.integrate(_state_velocity, x[i : i + 1], grids[i], method)
        np.testing.assert_allclose(batched[i], alone[0], rtol=1e-6, atol=1e-6)


def test_trajectory_starts_at_the_input_and_ends_at_the_result():
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 3))
    end, states = flow.integrate(_state_velocity, x, UNEVEN, "heun", return_trajectory=True)
    assert states.shape == (4, 2, 3)
    np.testing.assert_array_equal(states[0], x)
    np.testing.assert_array_equal(states[-1], end)
    np.testing.assert_array_equal(end, flow.integrate(_state_velocity, x, UNEVEN, "heun"))


@pytest.mark.parametrize("k", [1, 2, 5])
def test_masked_rollout_equals_the_k_step_integration_and_has_a_finite_gradient(k):
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 3))
    expected = flow.integrate(_state_velocity, x, flow.time_grid(k), "heun")
    rolled = jax.jit(lambda x, k: flow.rollout(_state_velocity, x, k, max_steps=6, method="heun"))(
        x, k
    )
    np.testing.assert_allclose(rolled, expected, rtol=1e-6, atol=1e-6)
    # Per-sample step counts: each row equals its own K-step integration.
    ks = jnp.array([k, 6])
    per_sample = flow.rollout(_state_velocity, x, ks, max_steps=6)
    np.testing.assert_allclose(
        per_sample[1], flow.integrate(_state_velocity, x, flow.time_grid(6))[1], rtol=1e-6
    )
    grad = jax.grad(lambda x: jnp.sum(flow.rollout(_state_velocity, x, k, max_steps=6) ** 2))(x)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("grid", [flow.time_grid(1), flow.time_grid(4), UNEVEN])
def test_cumulative_velocity_with_the_exact_g_lands_on_the_data(method, grid):
    """IR-Flow: x_t = t y + (1 - t) x, G(x_t, t) = x_t - x; every solver and grid reaches x,
    and nothing is evaluated where it would divide by t = 0 (a NaN would show)."""
    data = jnp.array([[0.2, 0.9], [0.5, 0.1]])
    degraded = jnp.array([[0.8, 0.3], [0.0, 1.0]])
    cumulative = lambda x_t, t: x_t - data
    result = flow.integrate(cumulative, degraded, grid, method, parametrization="cumulative")
    np.testing.assert_allclose(result, data, rtol=1e-5, atol=1e-6)
    grad = jax.grad(
        lambda y: jnp.sum(flow.integrate(cumulative, y, grid, method, parametrization="cumulative"))
    )(degraded)
    assert np.all(np.isfinite(grad))


def test_sde_step_keeps_the_interpolant_marginal():
    """Point-mass data z = 0: the state at t is N(0, t^2) and the exact velocity is x / t.
    After one stochastic step to t - dt the mean and std match N(0, (t - dt)^2) within 3 SE."""
    t, t_next, n = 0.8, 0.5, 200_000
    x = t * jax.random.normal(jax.random.PRNGKey(3), (n, 1))
    velocity = lambda x, t: x / t.reshape(-1, 1)
    out = flow.integrate(
        velocity, x, jnp.array([t, t_next]), "sde", rng=jax.random.PRNGKey(4), alpha_max=1.9
    )
    out = np.asarray(out[:, 0], np.float64)
    std_error = t_next / np.sqrt(n)
    assert abs(out.mean()) < 3 * std_error
    assert abs(out.std() - t_next) < 3 * t_next / np.sqrt(2 * n)
    with pytest.raises(ValueError, match="needs an rng"):
        flow.integrate(velocity, x, jnp.array([t, t_next]), "sde")


def test_two_step_costs_by_hand_and_zero_on_a_straight_path():
    """A 2-step reference trajectory (grid 1, 0.5, 0) with one interior point, velocity v = 2x:
    cost(1 -> 0.5) = |(X0 - X1) / 0.5 - v(X0)|, cost(0.5 -> 0) = |(X1 - X2) / 0.5 - v(X1)|."""
    network = lambda x, t: 2.0 * x
    grid = jnp.array([1.0, 0.5, 0.0])
    trajectory = jnp.array([[[1.0, 2.0]], [[0.0, 1.0]], [[0.5, 0.5]]])  # (3, B=1, 2)
    problem = flow.FlowProblem(network, trajectory[0])
    first = np.linalg.norm((np.array([1.0, 2.0]) - [0.0, 1.0]) / 0.5 - 2 * np.array([1.0, 2.0]))
    second = np.linalg.norm((np.array([0.0, 1.0]) - [0.5, 0.5]) / 0.5 - 2 * np.array([0.0, 1.0]))
    np.testing.assert_allclose(flow.two_step_costs(problem, trajectory, grid), [[first + second]])
    # Weighted by the jump lengths (0.75 and 0.25 on the grid 1, 0.25, 0): the distances between
    # where each jump lands and the trajectory.
    x0, x1, x2 = np.array([1.0, 2.0]), np.array([0.0, 1.0]), np.array([0.5, 0.5])
    landing_error = np.linalg.norm(x1 - (x0 - 0.75 * 2 * x0))
    landing_error += np.linalg.norm(x2 - (x1 - 0.25 * 2 * x1))
    np.testing.assert_allclose(
        flow.two_step_costs(problem, trajectory, jnp.array([1.0, 0.25, 0.0]), "displacement"),
        [[landing_error]],
        rtol=1e-6,
    )
    # On a straight path (constant velocity), every two-jump schedule costs nothing.
    constant = flow.FlowProblem(lambda x, t: jnp.ones_like(x), jnp.zeros((2, 3)))
    fine = flow.time_grid(8)
    _, path = flow.integrate(constant.network_fn, constant.start, fine, return_trajectory=True)
    np.testing.assert_allclose(flow.two_step_costs(constant, path, fine), 0.0, atol=1e-5)
