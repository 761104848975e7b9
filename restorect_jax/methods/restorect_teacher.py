"""Stage S1 of RestoRect: the privileged teacher (METHODS.md 1.1, 1.2, 1.5, 1.6).

The teacher restores LQ with priors encoded from LQ *and* GT, so it needs the clean image at
prediction time too: its scores are an upper reference for the students, not a restorer for
photos without ground truth.

Loss, with weights from `config.restorect_teacher.loss`:
  l1 * |Y - GT|
  + retinex_head * (head_enc(R_lq, L_lq, LQ) + head_dec(R_gt, L_gt, GT))
  + hvi * HVI(Y, GT; k)
  + decomposition * (|R_lq L_lq - LQ| + |R_gt L_gt - GT| + |R_lq - R_gt|
                     + illumination_smoothness * (smooth(L_lq) + smooth(L_gt)))
  + diffusion * |A(GT; s) - A(R_gt; s)|
where head(R_t, L_t, I) = |[R^, L^] - [R_t, L_t]| + |R^ L^ - I| scores an auxiliary Retinex
head against the decomposition of the image its features come from: the level-1 encoder
features (which see LQ) against LQ's decomposition, the level-1 decoder features (which
produce the output) against GT's. The decomposition targets are stop-gradient'ed there, so the
heads follow the decomposition network, which learns from its own terms only.
"""

import jax
import ml_collections

from restorect_jax import flow, losses, models
from restorect_jax.config_keys import lookup
from restorect_jax.methods.base import Batch, Method, PyTree

# The keys of `config.restorect_teacher.loss` the loss reads.
LOSS_WEIGHTS = (
    "l1",
    "retinex_head",
    "hvi",
    "decomposition",
    "illumination_smoothness",
    "diffusion",
    "learn_hvi_k",
    "learn_diffusion_scale",
)


class RestoRectTeacherMethod(Method):
    """Trains a RestoRectTeacher from scratch with the S1 losses."""

    needs_ground_truth = True  # privileged: its priors come from GT
    backbone_inputs = ("gt",)

    def __init__(self, config: ml_collections.ConfigDict, *, inference: bool = False):
        super().__init__(config, inference=inference)
        self.model = models.model_from_config(config.model)

    @classmethod
    def validate_config(cls, config: ml_collections.ConfigDict) -> None:
        for weight in LOSS_WEIGHTS:
            lookup(config, f"restorect_teacher.loss.{weight}")

    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        return self.model.init(rng, batch["lq"], batch["gt"])

    def loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array, phase: str = "train"
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        del frozen, rng, phase  # no frozen inputs, no stochastic terms, one phase
        weights = self.config.restorect_teacher.loss
        lq, gt = batch["lq"], batch["gt"]
        out = self.model.apply(params, lq, gt)
        r_lq, l_lq = out.decomp_lq
        r_gt, l_gt = out.decomp_gt
        sg = jax.lax.stop_gradient
        # Learned only by the terms they scale, k and s run to their bounds (see configs).
        hvi_k = out.hvi_k if weights.learn_hvi_k else sg(out.hvi_k)
        diffusion_scale = (
            out.diffusion_scale if weights.learn_diffusion_scale else sg(out.diffusion_scale)
        )
        terms = {
            "l1": losses.l1_loss(out.restored, gt),
            "retinex_head": (
                losses.retinex_head_loss(*out.retinex_enc, sg(r_lq), sg(l_lq), lq)[0]
                + losses.retinex_head_loss(*out.retinex_dec, sg(r_gt), sg(l_gt), gt)[0]
            ),
            "hvi": losses.hvi_colour_loss(losses.clip_straight_through(out.restored), gt, hvi_k),
            "decomposition": losses.decomposition_loss(
                out.decomp_lq, out.decomp_gt, lq, gt, weights.illumination_smoothness
            ),
            "diffusion": losses.diffusion_texture_loss(gt, r_gt, diffusion_scale),
        }
        total = sum(weights[name] * value for name, value in terms.items())
        terms["hvi_k"] = out.hvi_k
        terms["diffusion_scale"] = out.diffusion_scale
        return total, terms

    def predict(
        self,
        params: PyTree,
        frozen: PyTree,
        batch: Batch,
        sampler: flow.SamplerSpec | None = None,
    ) -> jax.Array:
        del frozen, sampler
        return self.model.apply(params, batch["lq"], batch["gt"]).restored
