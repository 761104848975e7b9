"""SLKD: one compact student from two frozen teachers through quality-aware features (METHODS 3).

Teacher A is a restorer `y -> x` (a `restorer` run, `config.frozen.teacher_a`); Teacher B is the
same architecture trained as a clean-image autoencoder `x -> x` (`config.frozen.teacher_b`,
configs/slkd_autoencoder.py). The student is the same RGFormer design, narrower and shallower,
with one scale converter (a 1x1 conv, student width -> teacher width) per matched level. Loss,
with weights from `config.slkd`:
  L1(x^, x)
  + kl  * KL(softmax(T_A(y) / tau) || softmax(x^ / tau))     softmax over the pixels of each
                                                              channel (our reading), mean over
                                                              images and channels
  + nc  * L_NC,  L_NC = sum_l mean |B(SCM(E_S^l(y))) - B(E_A^l(y))|      encoder levels (DRL)
  + et  * L_ET,  L_ET = sum_l mean |P(SCM(D_S^l(y))) - P(D_B^l(x))|      decoder levels (IRL)
B is the BRISQUE extractor (MSCN, optionally with paired products) and P the PIQE extractor
(block activity weighted by edge strength), `restorect_jax/quality_features.py`. PIQE blocks
cover `piqe_block` image pixels at every level (`piqe_block / stride` feature pixels). The
matched levels are feature taps the student's backbone contract declares (and the teachers'),
with the strides it declares (`models.BackboneSpec.feature_taps`).
`slkd.drl` / `slkd.irl` switch either half off (ablations; the KL term belongs to DRL);
`slkd.features = "mse"` replaces B and P by the identity and |.|_1 by a squared error (the
feature-MSE baseline). The paper's exact formulas are not public: these are reconstructions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from restorect_jax import flow, losses, models, quality_features
from restorect_jax.config_keys import lookup, require
from restorect_jax.methods.base import Batch, Method, PyTree
from restorect_jax.methods.frozen import FrozenModel, load_frozen
from restorect_jax.models.student import FeatureProjections

FEATURES = ("quality", "mse")
WEIGHTS = ("l1", "kl", "nc", "et")
TEACHER_LEVELS = {"teacher_a": "encoder_levels", "teacher_b": "decoder_levels"}


def used_teachers(settings: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The frozen teachers a run needs: Teacher A for DRL, Teacher B for IRL."""
    return tuple(
        name for name, on in (("teacher_a", settings.drl), ("teacher_b", settings.irl)) if on
    )


class SLKDMethod(Method):
    """Trains the student and its scale converters; the teachers it uses enter the step frozen."""

    def __init__(self, config: ml_collections.ConfigDict, *, inference: bool = False):
        super().__init__(config, inference=inference)
        self.model = models.model_from_config(config.model)
        self.settings = config.slkd
        self.strides = self.backbone.taps  # {level: stride} of the matched feature maps
        self.teachers: dict[str, FrozenModel] = {}
        if not inference:
            for name in used_teachers(config.slkd):
                self.teachers[name] = load_frozen(name, config.frozen[name])
                self._check_teacher_taps(name)

    def _check_teacher_taps(self, name: str) -> None:
        """Teacher `name` declares the levels it is matched at, at the student's strides."""
        key = TEACHER_LEVELS[name]
        taps = self.teachers[name].method.backbone.taps
        for level in self.settings[key]:
            require(
                taps.get(level) == self.strides[level],
                f"frozen.{name}",
                self.config.frozen[name],
                f"its backbone has no feature tap {level!r} at stride {self.strides[level]} "
                f"(slkd.{key}); its taps: {taps}",
            )

    @classmethod
    def validate_config(cls, config: ml_collections.ConfigDict) -> None:
        settings = lookup(config, "slkd")
        for name in used_teachers(settings):
            lookup(config, f"frozen.{name}")  # present (config_lib checks every frozen entry)
        for term in WEIGHTS:
            value = settings[term]
            require(value >= 0, f"slkd.{term}", value, "must be >= 0")
        require(settings.mscn_c > 0, "slkd.mscn_c", settings.mscn_c, "must be > 0")
        require(settings.tau > 0, "slkd.tau", settings.tau, "must be > 0")
        require(
            settings.features in FEATURES, "slkd.features", settings.features, f"one of {FEATURES}"
        )
        taps = models.backbone_spec(config.model.name).taps  # {name: stride}
        require(
            bool(taps),
            "model.name",
            config.model.name,
            "SLKD matches feature maps; this backbone declares no feature taps",
        )
        for key in TEACHER_LEVELS.values():
            levels = tuple(settings[key])
            require(
                levels and set(levels) <= set(taps),
                f"slkd.{key}",
                levels,
                f"must be a non-empty subset of the {config.model.name} backbone's feature taps "
                f"{tuple(taps)}",
            )
        if settings.irl and settings.features == "quality":
            block = settings.piqe_block
            deepest = max(taps[level] for level in settings.decoder_levels)
            patches = [config.data.patch_size, *(stage[1] for stage in config.train.progressive)]
            require(
                block % deepest == 0 and block >= 2 * deepest,
                "slkd.piqe_block",
                block,
                f"must be a multiple of the deepest decoder level's stride {deepest} and at "
                "least twice it (blocks of 2 x 2 feature pixels or more)",
            )
            require(
                all(patch % block == 0 for patch in patches),
                "slkd.piqe_block",
                block,
                f"must divide every training patch size {patches}",
            )

    # --- parameters ------------------------------------------------------------------------------

    def _converters(self, batch: Batch) -> dict[str, FeatureProjections]:
        """One projection module per teacher, from the teacher's feature widths (eval_shape)."""
        modules = {}
        for name, teacher in self.teachers.items():
            shapes = jax.eval_shape(
                lambda p, lq, t=teacher: t.method.model.apply(p, lq), teacher.params, batch["lq"]
            ).features
            levels = tuple(self.settings[TEACHER_LEVELS[name]])
            modules[name] = FeatureProjections(tuple((lv, shapes[lv].shape[-1]) for lv in levels))
        return modules

    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        student_rng, converter_rng = jax.random.split(rng)
        student = self.model.init(student_rng, batch["lq"])
        if not self.teachers:  # built for inference: the converters are training-only
            return {"student": student}
        features = jax.eval_shape(self.model.apply, student, batch["lq"]).features
        dummy = {name: jnp.zeros(shape.shape, shape.dtype) for name, shape in features.items()}
        converters = self._converters(batch)
        rngs = dict(zip(TEACHER_LEVELS, jax.random.split(converter_rng), strict=True))
        return {
            "student": student,
            "converters": {
                name: module.init(rngs[name], dummy) for name, module in converters.items()
            },
        }

    def frozen_params(self) -> PyTree:
        return {name: teacher.params for name, teacher in self.teachers.items()}

    def inference_params(self, params: PyTree) -> PyTree:
        return {"student": params["student"]}

    # --- loss ------------------------------------------------------------------------------------

    def _extract(self, kind: str, x: jax.Array, stride: int) -> jax.Array:
        """B (kind "nc") or P (kind "et") of a feature map; identity for feature MSE."""
        settings = self.settings
        if settings.features == "mse":
            return x
        if kind == "nc":
            return quality_features.brisque_features(x, settings.mscn_c, settings.brisque_pairs)
        block = settings.piqe_block // stride
        return quality_features.piqe_features(x, settings.mscn_c, block, settings.piqe_threshold)

    def _distance(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return losses.mse_loss(a, b) if self.settings.features == "mse" else losses.l1_loss(a, b)

    def feature_term(
        self, kind: str, converted: dict, teacher: dict, strides: dict[str, int]
    ) -> jax.Array:
        """sum over levels of distance(extract(SCM(student)), extract(teacher))."""
        return sum(
            self._distance(
                self._extract(kind, converted[level], strides[level]),
                self._extract(kind, teacher[level], strides[level]),
            )
            for level in converted
        )

    def kl_term(self, teacher_out: jax.Array, student_out: jax.Array) -> jax.Array:
        """KL(softmax(T / tau) || softmax(S / tau)) over the pixels of each channel."""
        tau = self.settings.tau
        b, _, _, c = teacher_out.shape
        log_p = jax.nn.log_softmax(teacher_out.reshape(b, -1, c) / tau, axis=1)
        log_q = jax.nn.log_softmax(student_out.reshape(b, -1, c) / tau, axis=1)
        return jnp.mean(jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=1))

    def loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array, phase: str = "train"
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        del rng, phase  # deterministic, one phase
        settings, lq, gt = self.settings, batch["lq"], batch["gt"]
        student = self.model.apply(params["student"], lq)
        terms = {"l1": losses.l1_loss(student.restored, gt)}
        converters = self._converters(batch)
        if settings.drl:
            teacher_a = self.teachers["teacher_a"].method.model.apply(frozen["teacher_a"], lq)
            converted = converters["teacher_a"].apply(
                params["converters"]["teacher_a"], student.features
            )
            terms["kl"] = self.kl_term(teacher_a.restored, student.restored)
            terms["nc"] = self.feature_term("nc", converted, teacher_a.features, self.strides)
        if settings.irl:
            teacher_b = self.teachers["teacher_b"].method.model.apply(frozen["teacher_b"], gt)
            converted = converters["teacher_b"].apply(
                params["converters"]["teacher_b"], student.features
            )
            terms["et"] = self.feature_term("et", converted, teacher_b.features, self.strides)
        total = sum(settings[name] * value for name, value in terms.items())
        return total, terms

    def predict(
        self,
        params: PyTree,
        frozen: PyTree,
        batch: Batch,
        sampler: flow.SamplerSpec | None = None,
    ) -> jax.Array:
        del frozen, sampler  # the student alone, not a flow
        return self.model.apply(params["student"], batch["lq"]).restored
