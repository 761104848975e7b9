"""IR-Flow: a rectified flow straight from the degraded image y (t = 1) to the clean x (t = 0).

METHODS 2. No teacher and no noise: the states are the multilevel data flows
    x_t = t y + (1 - t) x,   t ~ U[0, 1] per sample (or the grid {n / (P - 1)}, P = time_points),
so every t is a partly degraded image. `config.irflow.target` picks what the network learns:
  "cumulative": the cumulative velocity `G(x_t, t) ~ x_t - x = t (y - x)`, so `x^_0 = x_t - G`
                (the paper's choice);
  "velocity":   the plain rectified-flow velocity `v(x_t, t) ~ y - x` (ablation);
  "one_step":   t = 1 only, `G(y, 1) ~ y - x`: the same network as a one-step residual
                restorer, the discriminative baseline (no flow, no sampler).
Loss: `MSE(network, target) + msc.weight * L_MSC`, where the multi-step consistency term draws
K uniformly from {msc.min_steps .. msc.max_steps} once per step and rolls the uniform K-step
sampler out from y,
    x^ <- y;  for i = K .. 1:  x^ <- x^ - (1 / i) G(x^, i / K);   L_MSC = MSE(x^, x),
as one masked `lax.scan` of msc.max_steps steps, each rematerialised (memory flat in K;
`msc.unroll` unrolls it, about 5x faster on CPU than the rolled loop's backward). With
`msc.gradient` the loss backpropagates through the rollout; without it the rollout sits under
stop_gradient, as in the public code, where L_MSC then trains nothing.
Prediction integrates from y at t = 1 to t = 0 with `flow.integrate` (cumulative: the Euler step
`x_{t'} = x_t - ((t - t') / t) G(x_t, t)`, exact when G is), on a uniform grid, the public
non-uniform grid for that step count when `irflow.grid = "public"`, or any `SamplerSpec` grid.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from restorect_jax import flow, losses, models
from restorect_jax.config_keys import lookup, parsed, require
from restorect_jax.methods.base import Batch, Method, PyTree

TARGETS = ("cumulative", "velocity", "one_step")
GRIDS = ("uniform", "public")
# The public code's non-uniform grids, by number of steps.
PUBLIC_GRIDS = {
    2: (1.0, 0.2, 0.0),
    3: (1.0, 0.2, 0.1, 0.0),
    4: (1.0, 0.5, 0.25, 0.05, 0.0),
}


class IRFlowMethod(Method):
    """Trains a time-conditioned network on the flow from y to x (see the module docstring)."""

    backbone_inputs = ("time",)

    def __init__(self, config: ml_collections.ConfigDict, *, inference: bool = False):
        super().__init__(config, inference=inference)
        self.model = models.model_from_config(config.model)
        self.settings = config.irflow
        self.takes_sampler = self.settings.target != "one_step"

    @classmethod
    def validate_config(cls, config: ml_collections.ConfigDict) -> None:
        settings = lookup(config, "irflow")
        require(settings.target in TARGETS, "irflow.target", settings.target, f"one of {TARGETS}")
        require(settings.grid in GRIDS, "irflow.grid", settings.grid, f"one of {GRIDS}")
        require(
            isinstance(settings.time_points, int) and settings.time_points >= 0,
            "irflow.time_points",
            settings.time_points,
            "must be 0 (uniform t) or the size of a time grid",
        )
        spec = parsed("irflow.sampler", settings.sampler, flow.parse_sampler)
        require(
            not spec.stochastic,
            "irflow.sampler",
            settings.sampler,
            "IR-Flow's end point y is not noise; use euler, heun or rk4",
        )
        msc = settings.msc
        require(msc.weight >= 0, "irflow.msc.weight", msc.weight, "must be >= 0")
        require(
            2 <= msc.min_steps <= msc.max_steps,
            "irflow.msc.min_steps",
            msc.min_steps,
            f"must be in [2, irflow.msc.max_steps={msc.max_steps}]",
        )
        require(
            settings.target != "one_step" or msc.weight == 0,
            "irflow.msc.weight",
            msc.weight,
            "must be 0 for target 'one_step' (a one-step model has no rollout)",
        )

    @property
    def parametrization(self) -> flow.Parametrization:
        return "velocity" if self.settings.target == "velocity" else "cumulative"

    def network(self, params: PyTree) -> flow.NetworkFn:
        """The network as a function (x (B, H, W, 3), t (B,)) -> field (B, H, W, 3)."""
        return lambda x, t: self.model.apply(params, x, t)

    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        lq = batch["lq"]
        return self.model.init(rng, lq, jnp.ones(lq.shape[:1], lq.dtype))

    def training_time(self, rng: jax.Array, batch_size: int) -> jax.Array:
        """Per-sample times t (B,) of the flow term (all 1 for the one-step baseline)."""
        if self.settings.target == "one_step":
            return jnp.ones((batch_size,))
        return flow.sample_time(rng, batch_size, self.settings.time_points)

    def msc_rollout(self, params: PyTree, lq: jax.Array, num_steps: jax.Array) -> jax.Array:
        """The uniform `num_steps`-step Euler sample from y (traced count, masked scan)."""
        return flow.rollout(
            self.network(params),
            lq,
            num_steps,
            self.settings.msc.max_steps,
            "euler",
            parametrization=self.parametrization,
            remat=True,
            unroll=self.settings.msc.unroll,
        )

    def loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array, phase: str = "train"
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        del frozen, phase  # nothing frozen, one phase
        lq, gt = batch["lq"], batch["gt"]
        time_rng, steps_rng = jax.random.split(rng)
        t = self.training_time(time_rng, lq.shape[0])
        x_t = flow.interpolate(gt, lq, t)
        target = flow.velocity_target(gt, lq) if self.parametrization == "velocity" else x_t - gt
        terms = {"flow": losses.mse_loss(self.network(params)(x_t, t), target)}
        msc = self.settings.msc
        if msc.weight > 0:
            num_steps = jax.random.randint(steps_rng, (), msc.min_steps, msc.max_steps + 1)
            sample = self.msc_rollout(params, lq, num_steps)
            if not msc.gradient:
                sample = jax.lax.stop_gradient(sample)
            terms["msc"] = losses.mse_loss(sample, gt)
        total = terms["flow"] + msc.weight * terms.get("msc", 0.0)
        return total, terms

    def default_sampler(self) -> flow.SamplerSpec:
        return flow.parse_sampler(self.settings.sampler)

    def flow_problem(self, params: PyTree, frozen: PyTree, batch: Batch) -> flow.FlowProblem:
        if not self.takes_sampler:
            return super().flow_problem(params, frozen, batch)
        return flow.FlowProblem(self.network(params), batch["lq"], self.parametrization)

    def time_grid(self, sampler: flow.SamplerSpec) -> jax.Array:
        """The sampler's grid; its uniform steps become the public grid if `irflow.grid` asks."""
        steps = sampler.steps(self.default_sampler().steps(1))
        if sampler.grid is None and self.settings.grid == "public" and steps in PUBLIC_GRIDS:
            sampler = dataclasses.replace(sampler, grid=PUBLIC_GRIDS[steps])
        return sampler.time_grid(steps)

    def predict(
        self,
        params: PyTree,
        frozen: PyTree,
        batch: Batch,
        sampler: flow.SamplerSpec | None = None,
    ) -> jax.Array:
        lq = batch["lq"]
        if not self.takes_sampler:  # the one-step baseline: x^ = y - G(y, 1)
            return lq - self.network(params)(lq, jnp.ones(lq.shape[:1], lq.dtype))
        sampler = sampler or self.default_sampler()
        if sampler.stochastic:
            raise ValueError(
                f"sampler {sampler.describe()!r}: IR-Flow starts from the degraded image, not "
                "noise; use euler, heun or rk4"
            )
        return self.flow_problem(params, frozen, batch).solve(
            self.time_grid(sampler), sampler.solver
        )
