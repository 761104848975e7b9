"""Rectified flows: the interpolant, the velocity target, time sampling and ODE integrators.

Convention (METHODS.md 1.3): data `z` at t = 0, noise (or the degraded end point) `e` at t = 1,
    x_t = (1 - t) z + t e,        dx_t/dt = v* = e - z.
Sampling integrates dx/dt = v_theta(x, t) from t = 1 down to t = 0 over a time grid
1 = t_0 > t_1 > ... > t_N = 0. The network is always evaluated at the true current time.
Every integrator is one `lax.scan` with a static step count, so it traces once per step count
and is differentiable end to end (optionally rematerialising each step).
"""

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp

VelocityFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x, t scalar) -> dx/dt
Method = Literal["euler", "heun", "rk4"]


def _broadcast_time(t: jax.Array, x: jax.Array) -> jax.Array:
    """Reshapes per-sample times (B,) (or a scalar) to broadcast against x (B, ...)."""
    t = jnp.asarray(t, x.dtype)
    return t.reshape(t.shape + (1,) * (x.ndim - t.ndim))


def interpolate(data: jax.Array, noise: jax.Array, t: jax.Array) -> jax.Array:
    """The straight path `x_t = (1 - t) data + t noise`; t is a scalar or per sample (B,)."""
    t = _broadcast_time(t, data)
    return (1.0 - t) * data + t * noise


def velocity_target(data: jax.Array, noise: jax.Array) -> jax.Array:
    """The constant velocity of the straight path, `v* = noise - data`."""
    return noise - data


def sample_time(rng: jax.Array, batch_size: int, num_points: int = 0) -> jax.Array:
    """Training times (B,): uniform in [0, 1], or uniform over the grid {k / (K - 1)} if K > 1."""
    if num_points > 1:
        return jax.random.randint(rng, (batch_size,), 0, num_points) / (num_points - 1)
    return jax.random.uniform(rng, (batch_size,))


def rectified_flow_loss(
    velocity_fn: Callable[[jax.Array, jax.Array], jax.Array],
    data: jax.Array,
    noise: jax.Array,
    t: jax.Array,
) -> jax.Array:
    """`mean |v(x_t, t) - (noise - data)|^2` with per-sample times t (B,).

    `velocity_fn(x_t, t)` takes the batch of states and the per-sample times.
    """
    prediction = velocity_fn(interpolate(data, noise, t), t)
    return jnp.mean((prediction - velocity_target(data, noise)) ** 2)


def time_grid(num_steps: int, breakpoints: tuple[float, ...] | None = None) -> jax.Array:
    """The decreasing grid 1 = t_0 > ... > t_N = 0 of N steps: uniform, or the given points.

    `breakpoints` lists the interior times (N - 1 of them, strictly decreasing in (0, 1)), e.g.
    (0.5, 0.25, 0.05) for a 4-step schedule.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if breakpoints is None:
        return jnp.linspace(1.0, 0.0, num_steps + 1)
    points = (1.0, *breakpoints, 0.0)
    if len(points) != num_steps + 1 or any(a <= b for a, b in zip(points, points[1:])):
        raise ValueError(
            f"breakpoints {breakpoints} must be {num_steps - 1} strictly decreasing times in (0, 1)"
        )
    return jnp.asarray(points, jnp.float32)


def _euler(velocity_fn: VelocityFn, x: jax.Array, t: jax.Array, h: jax.Array) -> jax.Array:
    return x + h * velocity_fn(x, t)


def _heun(velocity_fn: VelocityFn, x: jax.Array, t: jax.Array, h: jax.Array) -> jax.Array:
    k1 = velocity_fn(x, t)
    k2 = velocity_fn(x + h * k1, t + h)
    return x + 0.5 * h * (k1 + k2)


def _rk4(velocity_fn: VelocityFn, x: jax.Array, t: jax.Array, h: jax.Array) -> jax.Array:
    k1 = velocity_fn(x, t)
    k2 = velocity_fn(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = velocity_fn(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = velocity_fn(x + h * k3, t + h)
    return x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


_STEPPERS = {"euler": _euler, "heun": _heun, "rk4": _rk4}


def integrate(
    velocity_fn: VelocityFn,
    x_start: jax.Array,
    grid: jax.Array,
    method: Method = "euler",
    remat: bool = False,
) -> jax.Array:
    """Solves dx/dt = velocity_fn(x, t) along `grid` (t_0 -> t_N), returning x at t_N.

    One step from t_i to t_{i+1} with h = t_{i+1} - t_i (negative when going 1 -> 0):
      euler: x + h v(x, t)
      heun:  x + h/2 (k1 + k2), k1 = v(x, t), k2 = v(x + h k1, t + h)
      rk4:   x + h/6 (k1 + 2 k2 + 2 k3 + k4) at t, t + h/2, t + h/2, t + h.
    Euler is exact for a constant velocity, Heun for one linear in t, RK4 for one cubic in t.
    The step count is the static length of `grid`; `remat` recomputes each step's activations
    in the backward pass instead of storing them (`jax.checkpoint`).
    """
    if method not in _STEPPERS:
        raise ValueError(f"unknown integrator {method!r}; choose one of {sorted(_STEPPERS)}")
    stepper = _STEPPERS[method]

    def step(x: jax.Array, times: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        t, t_next = times
        return stepper(velocity_fn, x, t, t_next - t), None

    if remat:
        step = jax.checkpoint(step)
    x_end, _ = jax.lax.scan(step, x_start, (grid[:-1], grid[1:]))
    return x_end
