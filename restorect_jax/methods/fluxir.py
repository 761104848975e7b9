"""FLUX-IR: a conditional flow restorer, improved by best-of-N trajectory RL, then distilled
into one or two steps (METHODS 4). Three phases by step (`config.fluxir`):

  base    [0, base_steps): a rectified flow from noise e (t = 1) to the clean image x (t = 0),
          conditioned on the degraded image y concatenated to the network input:
              x_t = (1 - t) x + t e,   L_base = |v(x_t, t; y) - (e - x)|^2.
  rl      [base_steps, base_steps + rl_steps): a frozen copy of the model ("policy", refreshed
          every `rl.refresh_every` steps) samples `rl.num_samples` trajectories per image from
          the same start noise with the modulated SDE step (`flow.sde_step`); the reward is the
          terminal fidelity (`rl.reward`: -L1 or PSNR against x); the trainable model's
          deterministic Euler rollout from that noise (gradients through the scan) regresses onto
          the best one:  traj * mean_t |X_ODE[t] - X_best[t]|^2 + terminal * |X_ODE[0] - x|^2
          + base * L_base, X_best under stop_gradient.
  distill [base_steps + rl_steps, num_steps): a frozen copy ("teacher") of the RL-improved
          model integrates `teacher_steps` Euler steps (plus the breakpoint t*); the trained
          model, now the student, jumps 1 -> t* -> 0 (`student_steps = 2`) or 1 -> 0 (1):
          2 steps: 100 MSE(X_t*, X^tea_t*) + 300 MSE(X_0, X^tea_0) + 300 MSE(X_0, x) + L_base
          1 step:  300 L1(X_0, X^tea_0) + 300 L1(X_0, x) + L_base       (weights in config).
Prediction starts from one fixed noise image (numpy, seed `fluxir.noise_seed`), shared by every
image of a batch, and integrates the default sampler: the student's grid after a distill phase,
else `fluxir.sampler`. t* comes from `tools/breakpoints.py` (or 0.5, the uniform 2-step grid).
Each phase starts a fresh EMA (`ema_warmup_start`), and in-training validation before the
distill phase integrates `fluxir.sampler`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from restorect_jax import flow, losses, models
from restorect_jax.config_keys import lookup, parsed, require
from restorect_jax.methods.base import Batch, Method, PyTree

BASE, RL, DISTILL = "base", "rl", "distill"
REWARDS = ("l1", "psnr")


class FluxIRMethod(Method):
    """A noise-to-image flow conditioned on LQ, with RL and distillation phases."""

    takes_sampler = True
    backbone_inputs = ("time",)  # its image input is [x_t | LQ] (6 channels)

    def __init__(self, config: ml_collections.ConfigDict, *, inference: bool = False):
        super().__init__(config, inference=inference)
        self.model = models.model_from_config(config.model)
        self.settings = config.fluxir

    @classmethod
    def validate_config(cls, config: ml_collections.ConfigDict) -> None:
        settings, steps = lookup(config, "fluxir"), config.train.num_steps
        for key in ("base_steps", "rl_steps"):
            value = settings[key]
            require(isinstance(value, int) and value >= 0, f"fluxir.{key}", value, "must be >= 0")
        trained = settings.base_steps + settings.rl_steps
        require(
            trained <= steps,
            "fluxir.rl_steps",
            settings.rl_steps,
            f"fluxir.base_steps + fluxir.rl_steps must be <= train.num_steps={steps}",
        )
        require(
            settings.student_steps in (0, 1, 2),
            "fluxir.student_steps",
            settings.student_steps,
            "must be 0 (no distill phase), 1 or 2",
        )
        distill = steps - trained
        require(
            (distill > 0) == (settings.student_steps > 0),
            "fluxir.student_steps",
            settings.student_steps,
            f"must be > 0 exactly when steps remain for a distill phase ({distill} do)",
        )
        require(
            distill == 0 or 0 < distill <= trained,
            "fluxir.base_steps",
            settings.base_steps,
            "the distill phase cannot be longer than the base and rl phases together "
            "(its teacher copy is refreshed every base_steps + rl_steps steps)",
        )
        require(0 < settings.breakpoint < 1, "fluxir.breakpoint", settings.breakpoint, "in (0, 1)")
        rl = settings.rl
        require(rl.num_samples >= 2, "fluxir.rl.num_samples", rl.num_samples, "must be >= 2")
        require(rl.refresh_every > 0, "fluxir.rl.refresh_every", rl.refresh_every, "must be > 0")
        require(
            settings.rl_steps == 0 or settings.base_steps % rl.refresh_every == 0,
            "fluxir.rl.refresh_every",
            rl.refresh_every,
            f"must divide fluxir.base_steps={settings.base_steps}, so that the policy copy is "
            "refreshed when the rl phase starts",
        )
        require(rl.reward in REWARDS, "fluxir.rl.reward", rl.reward, f"one of {REWARDS}")
        require(1 < rl.alpha_max < 2, "fluxir.rl.alpha_max", rl.alpha_max, "in (1, 2)")
        spec = parsed("fluxir.sampler", settings.sampler, flow.parse_sampler)
        require(
            spec.solver == "euler" and spec.steps(0) > 0,
            "fluxir.sampler",
            settings.sampler,
            "must be an Euler sampler that names its steps or grid (the RL rollouts follow it)",
        )

    # --- phases and copies -----------------------------------------------------------------------

    def phase_at(self, step: int) -> str:
        if step < self.settings.base_steps:
            return BASE
        return RL if step < self.settings.base_steps + self.settings.rl_steps else DISTILL

    def frozen_copies(self) -> dict[str, int]:
        copies = {}
        if self.settings.rl_steps:
            copies["policy"] = self.settings.rl.refresh_every
        if self.settings.student_steps:
            copies["teacher"] = self.settings.base_steps + self.settings.rl_steps
        return copies

    def ema_warmup_start(self, phase: str) -> int:
        """Each phase trains a different function (a flow, its RL fine-tune, a 1-2 step
        student): its EMA restarts at the phase's first step."""
        settings = self.settings
        return {BASE: 0, RL: settings.base_steps, DISTILL: settings.base_steps + settings.rl_steps}[
            phase
        ]

    def validation_sampler(self, phase: str) -> flow.SamplerSpec | None:
        """Before the distill phase the model is validated at `fluxir.sampler`, not at the
        student's grid."""
        return None if phase == DISTILL else flow.parse_sampler(self.settings.sampler)

    def base_grid(self) -> jax.Array:
        """The time grid of `fluxir.sampler` (validated to name its steps): the RL rollouts'."""
        return flow.parse_sampler(self.settings.sampler).time_grid(0)

    # --- the network -----------------------------------------------------------------------------

    def network(self, params: PyTree, lq: jax.Array) -> flow.NetworkFn:
        """v(x_t, t) conditioned on `lq` (concatenated to the input channels)."""
        return lambda x, t: self.model.apply(params, jnp.concatenate([x, lq], axis=-1), t)

    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        lq = batch["lq"]
        return self.model.init(rng, jnp.concatenate([lq, lq], axis=-1), jnp.ones(lq.shape[:1]))

    def flow_problem(self, params: PyTree, frozen: PyTree, batch: Batch) -> flow.FlowProblem:
        """From one fixed noise image (`flow.fixed_noise`, seed `fluxir.noise_seed`) shared by
        every image of the batch."""
        del frozen
        lq = batch["lq"]
        noise = flow.fixed_noise(self.settings.noise_seed, (1, *lq.shape[1:]))
        return flow.FlowProblem(self.network(params, lq), jnp.broadcast_to(noise, lq.shape))

    # --- losses ----------------------------------------------------------------------------------

    def base_loss(self, params: PyTree, batch: Batch, rng: jax.Array) -> jax.Array:
        """|v(x_t, t; y) - (e - x)|^2 with e ~ N(0, 1) and t ~ U[0, 1] per sample."""
        noise_rng, time_rng = jax.random.split(rng)
        gt = batch["gt"]
        noise = jax.random.normal(noise_rng, gt.shape, gt.dtype)
        t = flow.sample_time(time_rng, gt.shape[0])
        return flow.rectified_flow_loss(self.network(params, batch["lq"]), gt, noise, t)

    def rewards(self, terminal: jax.Array, gt: jax.Array) -> jax.Array:
        """Terminal fidelity of (N, B, H, W, C) samples against gt: (N, B), higher is better."""
        axes = tuple(range(2, terminal.ndim))
        if self.settings.rl.reward == "l1":
            return -jnp.mean(jnp.abs(terminal - gt[None]), axis=axes)
        mse = jnp.mean((jnp.clip(terminal, 0, 1) - gt[None]) ** 2, axis=axes)
        return -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))

    def best_trajectory(
        self, frozen: PyTree, batch: Batch, noise: jax.Array, rng: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """(T + 1, B, ...) the highest-reward of N SDE trajectories per image, and the rewards."""
        rl, lq, gt = self.settings.rl, batch["lq"], batch["gt"]
        n = rl.num_samples

        def repeat(x: jax.Array) -> jax.Array:  # (B, ...) -> (N B, ...), sample-major
            return jnp.concatenate([x] * n, axis=0)

        _, paths = flow.integrate(
            self.network(frozen["policy"], repeat(lq)),
            repeat(noise),
            self.base_grid(),
            "sde",
            rng=rng,
            alpha_max=rl.alpha_max,
            return_trajectory=True,
        )
        paths = paths.reshape(paths.shape[0], n, *noise.shape)  # (T + 1, N, B, ...)
        rewards = self.rewards(paths[-1], gt)
        best = jnp.argmax(rewards, axis=0)  # (B,)
        chosen = jnp.take_along_axis(
            paths, best.reshape((1, 1, -1) + (1,) * (noise.ndim - 1)), axis=1
        )[:, 0]
        return jax.lax.stop_gradient(chosen), rewards

    def rl_loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        noise_rng, sde_rng, base_rng = jax.random.split(rng, 3)
        gt, weights = batch["gt"], self.settings.rl
        noise = jax.random.normal(noise_rng, gt.shape, gt.dtype)
        best, rewards = self.best_trajectory(frozen, batch, noise, sde_rng)
        _, path = flow.integrate(
            self.network(params, batch["lq"]),
            noise,
            self.base_grid(),
            remat=True,
            return_trajectory=True,
        )
        terms = {
            "trajectory": jnp.mean((path[1:] - best[1:]) ** 2),
            "terminal": jnp.mean((path[-1] - gt) ** 2),
            "base": self.base_loss(params, batch, base_rng),
            "best_reward": jnp.mean(jnp.max(rewards, axis=0)),
        }
        total = sum(
            weights[f"{name}_weight"] * terms[name] for name in ("trajectory", "terminal", "base")
        )
        return total, terms

    def distill_grids(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(teacher grid, student grid, index of t* in the teacher grid): static numpy."""
        steps, t_star = self.settings.teacher_steps, self.settings.breakpoint
        points = np.append(np.linspace(1.0, 0.0, steps + 1), t_star)
        teacher = np.unique(np.round(points, 6))[::-1]
        student = np.asarray(self.default_sampler().grid or (1.0, 0.0), np.float32)
        index = int(np.argmin(np.abs(teacher - t_star)))
        return teacher.astype(np.float32), student, index

    def distill_loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        noise_rng, base_rng = jax.random.split(rng)
        lq, gt, weights = batch["lq"], batch["gt"], self.settings.distill
        noise = jax.random.normal(noise_rng, gt.shape, gt.dtype)
        teacher_grid, student_grid, index = self.distill_grids()
        _, teacher = flow.integrate(
            self.network(frozen["teacher"], lq), noise, teacher_grid, return_trajectory=True
        )
        teacher = jax.lax.stop_gradient(teacher)
        _, student = flow.integrate(
            self.network(params, lq), noise, student_grid, remat=True, return_trajectory=True
        )
        terms = {"base": self.base_loss(params, batch, base_rng)}
        if self.settings.student_steps == 2:
            terms["breakpoint"] = losses.mse_loss(student[1], teacher[index])
            terms["teacher"] = losses.mse_loss(student[-1], teacher[-1])
            terms["gt"] = losses.mse_loss(student[-1], gt)
        else:
            terms["teacher"] = losses.l1_loss(student[-1], teacher[-1])
            terms["gt"] = losses.l1_loss(student[-1], gt)
        total = sum(weights[name] * value for name, value in terms.items())
        return total, terms

    def loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array, phase: str = BASE
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        if phase == RL:
            return self.rl_loss(params, frozen, batch, rng)
        if phase == DISTILL:
            return self.distill_loss(params, frozen, batch, rng)
        base = self.base_loss(params, batch, rng)
        return base, {"base": base}

    # --- prediction ------------------------------------------------------------------------------

    def default_sampler(self) -> flow.SamplerSpec:
        if self.settings.student_steps == 2:
            return flow.SamplerSpec("euler", grid=(1.0, self.settings.breakpoint, 0.0))
        if self.settings.student_steps == 1:
            return flow.SamplerSpec("euler", 1)
        return flow.parse_sampler(self.settings.sampler)

    def predict(
        self,
        params: PyTree,
        frozen: PyTree,
        batch: Batch,
        sampler: flow.SamplerSpec | None = None,
    ) -> jax.Array:
        default = self.default_sampler()
        sampler = sampler or default
        return self.flow_problem(params, frozen, batch).solve(
            sampler.time_grid(default.steps(0)),  # a sampler without steps takes the default's
            sampler.solver,
            rng=sampler.fixed_rng(self.settings.noise_seed),
            alpha_max=sampler.alpha_max,
        )
