"""Stage S2 of RestoRect: a small student distilled from a frozen teacher (METHODS 1.2-1.6).

`config.restorect.distill` picks what the student learns from the teacher:
  "restorect":   the latent rectified flow generates the teacher's priors from the student's LQ-only
                 conditions; FLEX aligns the projected student feature maps (decoder levels 3, 2,
                 1 and refinement) and the sampled priors with the teacher's. Two phases:
                 "flow" (the first `restorect.phase1_steps` steps) trains the decomposition,
                 condition encoders and velocity predictors; "student" trains all of it.
  "feature_mse": no flow (the conditions are the priors), MSE between the projected student
                 features and the teacher's; one phase.
  "none":        the same student alone, with the same reconstruction losses; no teacher.

Loss terms (weights from `config.restorect.loss`); every student term is on LQ-only computations:
  decomposition = |R_lq L_lq - LQ| + |R_gt L_gt - GT| + |R_lq - R_gt|
                  + illumination_smoothness (smooth(L_lq) + smooth(L_gt))   (the student's D)
  diffusion     = |A(GT; s) - A(R_gt; s)|, s = loss.diffusion_scale
  velocity      = |v(x_t, t, c) - (e - z)|^2 for z = [z_img | z_rex] of the teacher
  flex_prior    = FLEX([z_img, z_rex], sampled [z^_img, z^_rex]), weights loss.flex_prior_weights
  prior_l1      = |z^ - z|, z^ sampled by the differentiable N-step integrator from noise
  l1, retinex_head, hvi as for the teacher (head targets: the student's decompositions)
  flex          = FLEX(teacher maps, projected student maps), weights loss.flex_feature_weights
  feature_mse   = mean over the four maps of |P(S) - T|^2
Phase "flow" weighs velocity by loss.velocity_phase1 and trains no restorer; phase "student"
weighs it by loss.velocity. FLEX terms are multiplied by loss.flex (lambda).

The teacher is the frozen model `config.frozen.teacher` (a `restorect_teacher` run, read by
`methods.frozen.load_frozen`); its EMA params come back from `frozen_params`, enter the step as
an argument, and get no gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from restorect_jax import flow, losses, models
from restorect_jax.config_keys import lookup, require
from restorect_jax.methods.base import Batch, Method, PyTree
from restorect_jax.methods.frozen import load_frozen
from restorect_jax.models.student import FeatureProjections, StudentConditions
from restorect_jax.models.teacher import RestoRectTeacher

DISTILL_MODES = ("restorect", "feature_mse", "none")
FEATURE_NAMES = ("dec3", "dec2", "dec1", "refine")
FLOW_PHASE, STUDENT_PHASE = "flow", "student"
# Student submodules trained in the flow phase (the restorer waits for phase "student").
_FLOW_PHASE_MODULES = (
    "decomposition",
    "image_condition",
    "retinex_condition",
    "image_velocity",
    "retinex_velocity",
)


def load_teacher(workdir: str) -> tuple[RestoRectTeacher, PyTree]:
    """The RestoRect teacher in `workdir` (`config.frozen.teacher`) and its EMA params.

    Raises FileNotFoundError / ValueError naming `config.frozen.teacher` when the folder is not a
    finished RestoRect teacher run.
    """
    teacher = load_frozen("teacher", workdir)
    if not isinstance(teacher.method.model, RestoRectTeacher):
        raise ValueError(  # noqa: TRY004 (a config value, reported like every config error)
            f"config.frozen.teacher={workdir!r} holds a {teacher.config.method!r} run, not a "
            "restorect_teacher"
        )
    return teacher.method.model, teacher.params


class RestoRectMethod(Method):
    """Trains a RestoRectStudent from a frozen teacher, or alone (`config.restorect.distill`)."""

    backbone_inputs = ("noise",)  # the flow's start noise (the student's priors come from it)

    def __init__(self, config: ml_collections.ConfigDict, *, inference: bool = False):
        super().__init__(config, inference=inference)
        self.distill = config.restorect.distill
        if self.distill not in DISTILL_MODES:
            raise ValueError(
                f"config.restorect.distill={self.distill!r} must be one of {DISTILL_MODES}"
            )
        self.takes_sampler = self.distill == "restorect"
        model_config = config.model.copy_and_resolve_references()
        with model_config.unlocked():  # Command-line configs come locked.
            model_config.use_flow = self.distill == "restorect"
        self.student = self.model = models.model_from_config(model_config)
        self.teacher, self._teacher_params = None, None
        self.projections = None
        if self.distill != "none" and not inference:
            self.teacher, self._teacher_params = load_teacher(config.frozen.teacher)
            for key in ("prior_dim", "retinex_split"):
                if config.model[key] != getattr(self.teacher, key):
                    raise ValueError(
                        f"config.model.{key}={config.model[key]} must equal the teacher's "
                        f"{getattr(self.teacher, key)} (config.frozen.teacher="
                        f"{config.frozen.teacher!r})"
                    )
            self.projections = FeatureProjections(widths=self._teacher_feature_widths())

    def _teacher_feature_widths(self) -> tuple[tuple[str, int], ...]:
        """(name, channels) of the teacher's FLEX feature maps, from its traced shapes."""
        image = jax.ShapeDtypeStruct((1, 2 * self.stride, 2 * self.stride, 3), jnp.float32)
        shapes = jax.eval_shape(
            lambda params, x: self.teacher.apply(params, x, x).features,
            self._teacher_params,
            image,
        )
        return tuple((name, shapes[name].shape[-1]) for name in FEATURE_NAMES)

    @classmethod
    def validate_config(cls, config: ml_collections.ConfigDict) -> None:
        """The student's keys (configs/restorect_common.py)."""
        spec = models.backbone_spec(config.model.name)
        require(
            set(FEATURE_NAMES) <= set(spec.taps),
            "model.name",
            config.model.name,
            f"FLEX matches the feature taps {FEATURE_NAMES}; {config.model.name} declares "
            f"{tuple(spec.taps)}",
        )
        for key in ("restorect.distill", "restorect.flow.num_steps", "restorect.phase1_steps"):
            lookup(config, key)
        section = config.restorect
        require(
            section.distill in DISTILL_MODES,
            "restorect.distill",
            section.distill,
            f"must be one of {DISTILL_MODES}",
        )
        if section.distill != "none":
            teacher = config.get("frozen", {}).get("teacher", "")
            require(
                bool(teacher),
                "frozen.teacher",
                teacher,
                f"must name a trained teacher run for distill={section.distill!r}",
            )
        steps = section.flow.num_steps
        require(
            isinstance(steps, int) and steps > 0,
            "restorect.flow.num_steps",
            steps,
            "must be a positive integer",
        )
        solvers = tuple(s for s in flow.SOLVERS if s != "sde")
        require(
            section.flow.solver in solvers,
            "restorect.flow.solver",
            section.flow.solver,
            f"must be one of {solvers}",
        )
        phase1 = section.phase1_steps
        require(
            isinstance(phase1, int) and 0 <= phase1 < config.train.num_steps,
            "restorect.phase1_steps",
            phase1,
            f"must be an integer in [0, train.num_steps={config.train.num_steps})",
        )
        loss = section.loss
        for key, count, what in (
            ("flex_feature_weights", 4, "decoder levels 3, 2, 1, refinement"),
            ("flex_prior_weights", 2, "z_img, z_rex"),
        ):
            require(
                len(loss[key]) == count,
                f"restorect.loss.{key}",
                loss[key],
                f"needs {count} ({what})",
            )
        require(
            0 < loss.flex_percentile <= 100,
            "restorect.loss.flex_percentile",
            loss.flex_percentile,
            "must be in (0, 100]",
        )

    # --- parameters and phases ---------------------------------------------------------------

    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        student_rng, projection_rng = jax.random.split(rng)
        lq = batch["lq"]
        noise = jnp.zeros((lq.shape[0], 2 * self.config.model.prior_dim), lq.dtype)
        params = {"student": self.student.init(student_rng, lq, noise)}
        if self.projections is not None:
            features = self.student.apply(params["student"], lq, noise).features
            params["projections"] = self.projections.init(projection_rng, features)
        return params

    def frozen_params(self) -> PyTree:
        return {} if self._teacher_params is None else {"teacher": self._teacher_params}

    def inference_params(self, params: PyTree) -> PyTree:
        return {"student": params["student"]}

    def phase_at(self, step: int) -> str:
        if self.distill == "restorect" and step < self.config.restorect.phase1_steps:
            return FLOW_PHASE
        return STUDENT_PHASE

    def trainable(self, params: PyTree, phase: str) -> PyTree | None:
        if phase != FLOW_PHASE:
            return None
        mask = jax.tree.map(lambda _: False, params)
        student = mask["student"]["params"]
        for name in _FLOW_PHASE_MODULES:
            student[name] = jax.tree.map(lambda _: True, student[name])
        return mask

    # --- the student's forward pieces --------------------------------------------------------

    def _velocity_fn(self, params: PyTree, cond: StudentConditions):
        def velocity(x: jax.Array, t: jax.Array) -> jax.Array:
            return self.student.apply(
                params["student"], x, t, cond.c_img, cond.c_rex, method="velocity"
            )

        return velocity

    def priors(
        self,
        params: PyTree,
        cond: StudentConditions,
        noise: jax.Array,
        sampler: flow.SamplerSpec,
        rng: jax.Array | None = None,
    ) -> jax.Array:
        """The student's priors `[z_img | z_rex]` (B, 2 prior_dim).

        With the flow: integrated from `noise` at t = 1 to t = 0 with `sampler` (`rng` for a
        stochastic one). Without: the conditions themselves.
        """
        if self.distill != "restorect":
            return jnp.concatenate([cond.c_img, cond.c_rex], axis=-1)
        return flow.integrate(
            self._velocity_fn(params, cond),
            noise,
            sampler.time_grid(self.config.restorect.flow.num_steps),
            sampler.solver,
            self.config.restorect.flow.remat,
            rng=rng,
            alpha_max=sampler.alpha_max,
        )

    def default_sampler(self) -> flow.SamplerSpec:
        return flow.SamplerSpec(
            self.config.restorect.flow.solver, self.config.restorect.flow.num_steps
        )

    def flow_problem(self, params: PyTree, frozen: PyTree, batch: Batch) -> flow.FlowProblem:
        """The latent flow of the priors: from the fixed noise, conditioned on the LQ image."""
        if not self.takes_sampler:
            return super().flow_problem(params, frozen, batch)
        cond, noise = self._conditions_and_noise(params, batch["lq"])
        return flow.FlowProblem(self._velocity_fn(params, cond), noise)

    def fixed_noise(self, dim: int) -> jax.Array:
        """The (1, dim) prediction start noise (`flow.fixed_noise`, seed `flow.noise_seed`)."""
        return flow.fixed_noise(self.config.restorect.flow.noise_seed, (1, dim))

    def _conditions_and_noise(self, params: PyTree, lq: jax.Array) -> tuple[PyTree, jax.Array]:
        """The student's flow conditions on `lq` and the fixed start noise, one row per image."""
        cond = self.student.apply(params["student"], lq, method="conditions")
        dim = 2 * self.config.model.prior_dim
        return cond, jnp.broadcast_to(self.fixed_noise(dim), (lq.shape[0], dim))

    def predict(
        self,
        params: PyTree,
        frozen: PyTree,
        batch: Batch,
        sampler: flow.SamplerSpec | None = None,
    ) -> jax.Array:
        """Restores `batch["lq"]` (GT unused), sampling the priors with `sampler`.

        The default sampler is `flow.solver` with `flow.num_steps` steps. The flow starts from
        one fixed noise vector (seed `flow.noise_seed`) shared by every image, so a restoration
        does not depend on the batch it is in (a stochastic sampler's rng is fixed the same way).
        """
        del frozen
        lq = batch["lq"]
        cond, noise = self._conditions_and_noise(params, lq)
        sampler = sampler or self.default_sampler()
        z = self.priors(
            params, cond, noise, sampler, sampler.fixed_rng(self.config.restorect.flow.noise_seed)
        )
        z_img, z_rex = jnp.split(z, 2, axis=-1)
        return self.student.apply(params["student"], lq, z_img, z_rex, method="restore").restored

    # --- the loss ----------------------------------------------------------------------------

    def loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array, phase: str = "train"
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        weights = self.config.restorect.loss
        lq, gt = batch["lq"], batch["gt"]
        sg = jax.lax.stop_gradient
        student_params = params["student"]
        cond = self.student.apply(student_params, lq, method="conditions")
        r_lq, l_lq = cond.decomp_lq
        r_gt, l_gt = self.student.apply(student_params, gt, method="decompose")
        terms = {
            "decomposition": losses.decomposition_loss(
                cond.decomp_lq, (r_gt, l_gt), lq, gt, weights.illumination_smoothness
            ),
            "diffusion": losses.diffusion_texture_loss(gt, r_gt, weights.diffusion_scale),
        }
        total = weights.decomposition * terms["decomposition"]
        total += weights.diffusion * terms["diffusion"]

        teacher_out = None
        if self.teacher is not None:
            if phase == FLOW_PHASE:  # the priors are all the flow phase reads from the teacher
                teacher_out = self.teacher.apply(frozen["teacher"], lq, gt, method="priors")
            else:
                teacher_out = self.teacher.apply(frozen["teacher"], lq, gt)
            z_teacher = sg(jnp.concatenate([teacher_out.z_img, teacher_out.z_rex], axis=-1))

        if self.distill == "restorect":
            total, (z_img, z_rex) = self._prior_terms(
                params, cond, z_teacher, rng, phase, terms, total
            )
        else:
            z_img, z_rex = cond.c_img, cond.c_rex

        if phase == FLOW_PHASE:
            return total, terms

        out = self.student.apply(student_params, lq, z_img, z_rex, method="restore")
        terms["l1"] = losses.l1_loss(out.restored, gt)
        terms["retinex_head"] = (
            losses.retinex_head_loss(*out.retinex_enc, sg(r_lq), sg(l_lq), lq)[0]
            + losses.retinex_head_loss(*out.retinex_dec, sg(r_gt), sg(l_gt), gt)[0]
        )
        terms["hvi"] = losses.hvi_colour_loss(
            losses.clip_straight_through(out.restored), gt, weights.hvi_k
        )
        total += weights.l1 * terms["l1"] + weights.retinex_head * terms["retinex_head"]
        total += weights.hvi * terms["hvi"]
        if self.projections is not None:
            total = self._feature_terms(params, out.features, teacher_out.features, terms, total)
        return total, terms

    def _prior_terms(
        self,
        params: PyTree,
        cond: StudentConditions,
        z_teacher: jax.Array,
        rng: jax.Array,
        phase: str,
        terms: dict[str, jax.Array],
        total: jax.Array,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """RestoRect's prior distillation: the velocity loss of the latent flow towards the
        teacher's priors, and FLEX + L1 between the priors it generates and the teacher's.
        Adds the weighted terms to `total` (in `terms` too); returns it and the priors."""
        weights = self.config.restorect.loss
        noise_rng, time_rng, sample_rng = jax.random.split(rng, 3)
        noise = jax.random.normal(noise_rng, z_teacher.shape)
        t = flow.sample_time(time_rng, z_teacher.shape[0], self.config.restorect.flow.time_points)
        terms["velocity"] = flow.rectified_flow_loss(
            self._velocity_fn(params, cond), z_teacher, noise, t
        )
        z = self.priors(
            params, cond, jax.random.normal(sample_rng, z_teacher.shape), self.default_sampler()
        )
        z_teacher_img, z_teacher_rex = jnp.split(z_teacher, 2, axis=-1)
        z_img, z_rex = jnp.split(z, 2, axis=-1)
        terms["flex_prior"] = losses.flex_loss(
            [z_teacher_img, z_teacher_rex],
            [z_img, z_rex],
            weights.flex_prior_weights,
            percentile=weights.flex_percentile,
            stats_gradient=weights.flex_stats_gradient,
        )
        terms["prior_l1"] = losses.l1_loss(z, z_teacher)
        velocity_weight = weights.velocity_phase1 if phase == FLOW_PHASE else weights.velocity
        total += velocity_weight * terms["velocity"]
        total += weights.flex * terms["flex_prior"] + weights.prior_l1 * terms["prior_l1"]
        return total, (z_img, z_rex)

    def _feature_terms(
        self,
        params: PyTree,
        features: dict[str, jax.Array],
        teacher_features: dict[str, jax.Array],
        terms: dict[str, jax.Array],
        total: jax.Array,
    ) -> jax.Array:
        """Feature distillation through the projections: FLEX (RestoRect) or MSE (the baseline)
        between the student's projected maps and the teacher's; adds it to `total`."""
        weights = self.config.restorect.loss
        projected = self.projections.apply(params["projections"], features)
        teacher_maps = [jax.lax.stop_gradient(teacher_features[name]) for name in FEATURE_NAMES]
        student_maps = [projected[name] for name in FEATURE_NAMES]
        if self.distill == "restorect":
            terms["flex"] = losses.flex_loss(
                teacher_maps,
                student_maps,
                weights.flex_feature_weights,
                percentile=weights.flex_percentile,
                stats_gradient=weights.flex_stats_gradient,
            )
            return total + weights.flex * terms["flex"]
        terms["feature_mse"] = jnp.mean(
            jnp.stack([losses.mse_loss(s, t) for s, t in zip(student_maps, teacher_maps)])
        )
        return total + weights.feature_mse * terms["feature_mse"]
