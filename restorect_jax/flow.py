"""Rectified flows: the interpolant, velocity targets, time sampling, samplers and ODE integrators.

Convention (METHODS.md 1.3): data `z` at t = 0, noise (or the degraded end point) `e` at t = 1,
    x_t = (1 - t) z + t e,        dx_t/dt = v* = e - z.
Sampling integrates dx/dt = v(x, t) from t = 1 down to t = 0 over a time grid
1 = t_0 > t_1 > ... > t_N = 0, shared by the batch (N + 1,) or per sample (B, N + 1).
The network predicts either the velocity itself (`parametrization="velocity"`) or the
**cumulative velocity** `G(x_t, t) ~ x_t - z = t v` (IR-Flow, METHODS 2), whose velocity is
`G / t`; the integrators never divide by a time that is 0 (see `integrate`).
Every integrator is one `lax.scan` with a static step count, differentiable end to end
(optionally rematerialising each step); `rollout` takes a traced step count up to a static
maximum, for losses that draw the number of steps.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

NetworkFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x (B, ...), t (B,)) -> output
Parametrization = Literal["velocity", "cumulative"]
PARAMETRIZATIONS = ("velocity", "cumulative")
SOLVERS = ("euler", "heun", "rk4", "sde")
EVALUATIONS_PER_STEP = {"euler": 1, "heun": 2, "rk4": 4, "sde": 1}  # network calls per step


# --- the sampler a prediction uses ---------------------------------------------------------------


# More steps than this gain nothing a flow model can show and take minutes per image.
MAX_SAMPLER_STEPS = 1000


@dataclasses.dataclass(frozen=True)
class SamplerSpec:
    """How a flow model samples at prediction time; methods without a flow ignore it.

    Attributes:
      solver: "euler", "heun", "rk4", or "sde" (the FLUX-IR modulated stochastic Euler step,
        `sde_step`; it needs an rng).
      num_steps: uniform steps; None means the method's default.
      grid: an explicit decreasing time grid from 1.0 to 0.0 (overrides num_steps).
      alpha_max: the stochastic step's overshoot factor is drawn in [1, alpha_max).

    Text form (`parse_sampler`): "euler", "euler:4", "heun:2", "euler:1,0.5,0.25,0.05,0",
    "sde:10:1.5" (solver, steps or grid, alpha_max).
    """

    solver: str = "euler"
    num_steps: int | None = None
    grid: tuple[float, ...] | None = None
    alpha_max: float = 1.5

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise ValueError(f"sampler solver {self.solver!r} is unknown; choose one of {SOLVERS}")
        if self.num_steps is not None and (
            not isinstance(self.num_steps, int) or not 1 <= self.num_steps <= MAX_SAMPLER_STEPS
        ):
            raise ValueError(
                f"sampler steps must be an integer in [1, {MAX_SAMPLER_STEPS}], "
                f"got {self.num_steps!r}"
            )
        if self.grid is not None:
            grid = self.grid
            if len(grid) > MAX_SAMPLER_STEPS + 1:
                raise ValueError(
                    f"sampler grid has {len(grid) - 1} steps; at most {MAX_SAMPLER_STEPS}"
                )
            if len(grid) < 2 or grid[0] != 1.0 or grid[-1] != 0.0:
                raise ValueError(f"sampler grid {grid} must run from 1 to 0 with 2+ points")
            if any(a <= b for a, b in itertools.pairwise(grid)):
                raise ValueError(f"sampler grid {grid} must be strictly decreasing")
        if not 1.0 < self.alpha_max < 2.0:
            raise ValueError(f"sampler alpha_max {self.alpha_max} must be in (1, 2)")

    @property
    def stochastic(self) -> bool:
        return self.solver == "sde"

    def fixed_rng(self, seed: int) -> jax.Array | None:
        """The rng of a stochastic sampler, fixed by `seed` so a restoration is repeatable;
        None for the deterministic solvers."""
        return jax.random.PRNGKey(seed) if self.stochastic else None

    def steps(self, default: int) -> int:
        """The number of steps this spec takes (`default` when it names none)."""
        if self.grid is not None:
            return len(self.grid) - 1
        return self.num_steps or default

    def time_grid(self, default_steps: int) -> jax.Array:
        """The (N + 1,) time grid: the explicit one, else `default_steps` or num_steps uniform."""
        if self.grid is not None:
            return jnp.asarray(self.grid, jnp.float32)
        return time_grid(self.steps(default_steps))

    def describe(self) -> str:
        """The text form `parse_sampler` reads back."""
        if self.grid is not None:
            where = ",".join(f"{t:g}" for t in self.grid)
        else:
            where = "" if self.num_steps is None else str(self.num_steps)
        if self.stochastic:
            return f"{self.solver}:{where}:{self.alpha_max:g}"
        return self.solver + (f":{where}" if where else "")


def parse_sampler(text: str) -> SamplerSpec:
    """The SamplerSpec of `text` ("euler:4", "heun:2", "euler:1,0.5,0"); ValueError names it."""
    parts = text.strip().split(":")
    try:
        if not 1 <= len(parts) <= 3 or (len(parts) == 3 and parts[0] != "sde"):
            raise ValueError("expected solver[:steps or grid] (sde: solver:steps:alpha_max)")
        solver, kwargs = parts[0], {}
        if len(parts) > 1 and parts[1]:
            if "," in parts[1]:
                kwargs["grid"] = tuple(float(t) for t in parts[1].split(","))
            else:
                kwargs["num_steps"] = int(parts[1])
        if len(parts) == 3:
            kwargs["alpha_max"] = float(parts[2])
        return SamplerSpec(solver, **kwargs)
    except ValueError as err:
        raise ValueError(f"sampler {text!r}: {err}") from None


# --- training-time pieces ------------------------------------------------------------------------


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
    velocity_fn: NetworkFn, data: jax.Array, noise: jax.Array, t: jax.Array
) -> jax.Array:
    """`mean |v(x_t, t) - (noise - data)|^2` with per-sample times t (B,)."""
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
    if len(points) != num_steps + 1 or any(a <= b for a, b in itertools.pairwise(points)):
        raise ValueError(
            f"breakpoints {breakpoints} must be {num_steps - 1} strictly decreasing times in (0, 1)"
        )
    return jnp.asarray(points, jnp.float32)


# --- one step ------------------------------------------------------------------------------------


def as_velocity(network_fn: NetworkFn, parametrization: Parametrization) -> NetworkFn:
    """The velocity field of a network's output: itself, or `G(x, t) / t` for cumulative.

    For the cumulative form, times t <= 0 divide by 1 instead: callers discard those values
    (`integrate` takes an Euler step wherever a higher-order stage would land on t = 0).
    """
    if parametrization == "velocity":
        return network_fn
    if parametrization != "cumulative":
        raise ValueError(f"parametrization {parametrization!r} must be one of {PARAMETRIZATIONS}")

    def velocity(x: jax.Array, t: jax.Array) -> jax.Array:
        safe_t = jnp.where(t > 0, t, 1.0)
        return network_fn(x, safe_t) / _broadcast_time(safe_t, x)

    return velocity


def _euler(velocity_fn: NetworkFn, x, t, h, rng, alpha_max) -> jax.Array:
    del rng, alpha_max
    return x + _broadcast_time(h, x) * velocity_fn(x, t)


def _heun(velocity_fn: NetworkFn, x, t, h, rng, alpha_max) -> jax.Array:
    del rng, alpha_max
    hb = _broadcast_time(h, x)
    k1 = velocity_fn(x, t)
    k2 = velocity_fn(x + hb * k1, t + h)
    return x + 0.5 * hb * (k1 + k2)


def _rk4(velocity_fn: NetworkFn, x, t, h, rng, alpha_max) -> jax.Array:
    del rng, alpha_max
    hb = _broadcast_time(h, x)
    k1 = velocity_fn(x, t)
    k2 = velocity_fn(x + 0.5 * hb * k1, t + 0.5 * h)
    k3 = velocity_fn(x + 0.5 * hb * k2, t + 0.5 * h)
    k4 = velocity_fn(x + hb * k3, t + h)
    return x + hb / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def sde_step(velocity_fn: NetworkFn, x, t, h, rng: jax.Array, alpha_max: float = 1.5) -> jax.Array:
    """FLUX-IR's modulated stochastic step from t to t - dt (dt = -h > 0), METHODS 4.

    Overshoots the ODE step by alpha ~ U[1, alpha_max) per sample and re-injects fresh noise z
    with the variance that puts the state back on the marginal at t - dt:
      beta^2 = (t - dt)^2 (1 - t + alpha dt)^2 / (1 - t + dt)^2 - (t - alpha dt)^2,
      x' = (x - alpha dt v - beta z) / ((1 - t + alpha dt) + sqrt((t - alpha dt)^2 + beta^2)).
    With an exact velocity, `x - alpha dt v - beta z` has signal weight `s = 1 - t + alpha dt`
    and noise std `n = sqrt((t - alpha dt)^2 + beta^2) = (t - dt) s / (1 - t + dt)`; dividing
    by `s + n` leaves weights `1 - (t - dt)` and `t - dt`: the marginal of the interpolant.
    """
    alpha_rng, noise_rng = jax.random.split(rng)
    t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
    dt = jnp.broadcast_to(-jnp.asarray(h, x.dtype), x.shape[:1])
    alpha = jax.random.uniform(alpha_rng, x.shape[:1], x.dtype, 1.0, alpha_max)
    alpha = jnp.minimum(alpha, t / jnp.maximum(dt, 1e-12))  # never step past t = 0
    signal = 1.0 - t + alpha * dt
    target_noise = (t - dt) * signal / (1.0 - t + dt)
    beta = jnp.sqrt(jnp.maximum(target_noise**2 - (t - alpha * dt) ** 2, 0.0))
    z = jax.random.normal(noise_rng, x.shape, x.dtype)
    moved = x - _broadcast_time(alpha * dt, x) * velocity_fn(x, t) - _broadcast_time(beta, x) * z
    return moved / _broadcast_time(signal + target_noise, x)


_STEPPERS = {"euler": _euler, "heun": _heun, "rk4": _rk4, "sde": sde_step}


def _step_fn(velocity_fn: NetworkFn, solver: str, parametrization: Parametrization, alpha_max):
    """One step (x, t, t_next, rng) -> x; cumulative models take Euler steps that end at 0."""
    if solver not in _STEPPERS:
        raise ValueError(f"unknown integrator {solver!r}; choose one of {sorted(_STEPPERS)}")
    stepper = _STEPPERS[solver]
    needs_fallback = parametrization == "cumulative" and solver in ("heun", "rk4")

    def step(x: jax.Array, t: jax.Array, t_next: jax.Array, rng: jax.Array) -> jax.Array:
        h = t_next - t
        out = stepper(velocity_fn, x, t, h, rng, alpha_max)
        if needs_fallback:
            euler = _euler(velocity_fn, x, t, h, rng, alpha_max)
            out = jnp.where(_broadcast_time(t_next > 0, x), out, euler)
        return out

    return step


# --- integrators ---------------------------------------------------------------------------------


def integrate(
    network_fn: NetworkFn,
    x_start: jax.Array,
    grid: jax.Array,
    method: str = "euler",
    remat: bool = False,
    *,
    parametrization: Parametrization = "velocity",
    rng: jax.Array | None = None,
    alpha_max: float = 1.5,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Solves dx/dt = v(x, t) along `grid` (t_0 -> t_N), returning x at t_N.

    Args:
      network_fn: (x (B, ...), t (B,)) -> velocity, or cumulative velocity G = t v.
      x_start: (B, ...) the state at grid[..., 0].
      grid: (N + 1,) shared by the batch, or (B, N + 1) one grid per sample.
      method: one step from t to t' with h = t' - t (negative when going 1 -> 0):
        euler: x + h v(x, t)
        heun:  x + h/2 (k1 + k2), k1 = v(x, t), k2 = v(x + h k1, t + h)
        rk4:   x + h/6 (k1 + 2 k2 + 2 k3 + k4) at t, t + h/2, t + h/2, t + h
        sde:   `sde_step` (stochastic; needs `rng`).
        Euler is exact for a constant velocity, Heun for one linear in t, RK4 for a cubic.
        With the cumulative parametrisation, a Heun or RK4 step that ends at t = 0 is an
        Euler step `x - (h / t) G(x, t)` instead, so nothing divides by t = 0.
      remat: recompute each step's activations in the backward pass (`jax.checkpoint`).
      rng: split once per step for stochastic solvers.
      return_trajectory: also return the states (N + 1, B, ...), x_start first.
    """
    if method == "sde" and rng is None:
        raise ValueError("the sde solver needs an rng")
    velocity_fn = as_velocity(network_fn, parametrization)
    step_fn = _step_fn(velocity_fn, method, parametrization, alpha_max)
    grid = jnp.asarray(grid, x_start.dtype)
    times = grid.T if grid.ndim == 2 else grid  # (N + 1, B) or (N + 1,)
    rngs = jax.random.split(rng if rng is not None else jax.random.PRNGKey(0), times.shape[0] - 1)

    def step(x, inputs):
        t, t_next, key = inputs
        x_next = step_fn(x, t, t_next, key)
        return x_next, x_next if return_trajectory else None

    if remat:
        step = jax.checkpoint(step)
    x_end, states = jax.lax.scan(step, x_start, (times[:-1], times[1:], rngs))
    if return_trajectory:
        return x_end, jnp.concatenate([x_start[None], states], axis=0)
    return x_end


def rollout(
    network_fn: NetworkFn,
    x_start: jax.Array,
    num_steps: jax.Array,
    max_steps: int,
    method: str = "euler",
    *,
    parametrization: Parametrization = "velocity",
    remat: bool = True,
    unroll: bool = False,
) -> jax.Array:
    """Integrates from t = 1 to 0 in `num_steps` uniform steps, traced, at most `max_steps`.

    `num_steps` is a traced int scalar or per sample (B,): a `lax.scan` of `max_steps` steps
    where step i moves from `1 - i/K` to `1 - (i+1)/K` while i < K and leaves x unchanged
    after, so the result equals the unmasked K-step integration and the program compiles once
    for every K (the work is always `max_steps` steps). Each step is rematerialised by default,
    so memory stays flat in K. `unroll` unrolls the scan: on this CPU the backward pass of the
    rolled loop, or of any step under `lax.cond`, runs about 5x slower than straight-line code
    (tools/results/bench_rollout_cpu.json has the timings), at the price of a longer compile.
    """
    velocity_fn = as_velocity(network_fn, parametrization)
    step_fn = _step_fn(velocity_fn, method, parametrization, 1.5)
    k = jnp.broadcast_to(jnp.asarray(num_steps, jnp.int32), x_start.shape[:1])
    k_float = jnp.maximum(k, 1).astype(x_start.dtype)
    dummy_rng = jax.random.PRNGKey(0)

    def step(x, i):
        active = i < k
        t = jnp.clip(1.0 - i / k_float, 0.0, 1.0)
        t_next = jnp.clip(1.0 - (i + 1) / k_float, 0.0, 1.0)
        x_next = step_fn(x, t, t_next, dummy_rng)
        return jnp.where(_broadcast_time(active, x), x_next, x), None

    if remat:
        step = jax.checkpoint(step)
    x_end, _ = jax.lax.scan(step, x_start, jnp.arange(max_steps), unroll=unroll)
    return x_end


# --- cost-aware breakpoints (FLUX-IR, METHODS 4) ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FlowProblem:
    """What a flow method integrates for one batch: its network, the state at t = 1 and the
    network's parametrisation (`Method.flow_problem` builds one)."""

    network_fn: NetworkFn
    start: jax.Array
    parametrization: Parametrization = "velocity"

    def solve(self, grid: jax.Array, solver: str = "euler", **options) -> Any:
        """`integrate` from `start` along `grid` (`options`: remat, rng, alpha_max,
        return_trajectory)."""
        return integrate(
            self.network_fn,
            self.start,
            grid,
            solver,
            parametrization=self.parametrization,
            **options,
        )


def fixed_noise(seed: int, shape: tuple[int, ...]) -> jax.Array:
    """A standard normal array drawn by numpy from `seed`: a prediction's start noise.

    Not by `jax.random`: its values change with the `jax_threefry_partitionable` setting, and
    a trained model's output must not.
    """
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal(shape, dtype=np.float32))


COSTS = ("secant", "displacement")


def two_step_costs(
    problem: FlowProblem, trajectory: jax.Array, grid: jax.Array, cost: str = "secant"
) -> jax.Array:
    """The cost of sampling in two jumps 1 -> t_k -> 0, for each interior point of a reference
    trajectory, per sample: (N - 1, B).

    `trajectory` (N + 1, B, ...) holds the states of a many-step integration at `grid` (N + 1,)
    from 1 to 0. One Euler jump from s to e lands at J = X_s - (t_s - t_e) v(X_s, t_s), so its
    secant is v(X_s, t_s), and the cost of the jump is the distance between the trajectory's
    own secant and it:
        cost(s -> e) = || (X_s - X_e) / (t_s - t_e) - (X_s - J(X_s; s -> e)) / (t_s - t_e) ||_2
                     = || (X_s - X_e) / (t_s - t_e) - v(X_s, t_s) ||_2.
    Entry k - 1 is cost(t_0 -> t_k) + cost(t_k -> t_N); both are 0 on a straight trajectory.
    `cost="displacement"` weights each jump's cost by its length t_s - t_e, which makes it the
    distance || X_e - J(X_s; s -> e) ||_2 between where the jump lands and the trajectory (the
    paper's `secant` cost is per unit of time, so it favours a short jump next to a long one).
    """
    if cost not in COSTS:
        raise ValueError(f"cost {cost!r} is unknown; choose one of {COSTS}")
    velocity = as_velocity(problem.network_fn, problem.parametrization)
    grid = jnp.asarray(grid, trajectory.dtype)
    batch = trajectory.shape[1]
    start, end, interior = trajectory[0], trajectory[-1], trajectory[1:-1]
    times = grid[1:-1]

    def per_sample_norm(x: jax.Array) -> jax.Array:  # (K, B, ...) -> (K, B)
        return jnp.sqrt(jnp.sum(x.reshape(x.shape[:2] + (-1,)) ** 2, axis=-1))

    def spread(t: jax.Array) -> jax.Array:  # (K,) -> broadcast against (K, B, ...)
        return t.reshape((-1,) + (1,) * (trajectory.ndim - 1))

    v_start = velocity(start, jnp.full((batch,), grid[0]))
    first = (start[None] - interior) / spread(grid[0] - times) - v_start[None]
    v_interior = jax.lax.map(
        lambda xt: velocity(xt[0], jnp.full((batch,), xt[1])), (interior, times)
    )
    second = (interior - end[None]) / spread(times - grid[-1]) - v_interior
    if cost == "displacement":
        first, second = first * spread(grid[0] - times), second * spread(times - grid[-1])
    return per_sample_norm(first) + per_sample_norm(second)


def sampler_from_flags(
    default: SamplerSpec, text: str | None, steps: int | None
) -> SamplerSpec | None:
    """The sampler of the `--sampler TEXT` / `--steps N` flags (None when neither is given).

    `--steps N` keeps the model's default solver with N uniform steps. Raises ValueError naming
    the flag.
    """
    if text is not None and steps is not None:
        raise ValueError("give --sampler or --steps, not both")
    if text is not None:
        try:
            return parse_sampler(text)
        except ValueError as err:
            raise ValueError(f"--sampler: {err}") from None
    if steps is not None:
        if not isinstance(steps, int) or not 1 <= steps <= MAX_SAMPLER_STEPS:
            raise ValueError(f"--steps {steps}: must be an integer in [1, {MAX_SAMPLER_STEPS}]")
        return dataclasses.replace(default, num_steps=steps, grid=None)
    return None
