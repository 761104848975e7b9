"""Stage S1 of RestoRect: the privileged teacher (METHODS.md 1.1, 1.2, 1.5, 1.6).

The teacher restores LQ with priors encoded from LQ *and* GT, so it needs the clean image at
prediction time too: its scores are an upper reference for the students, not a restorer for
photos without ground truth.

Loss, with weights from `config.loss`:
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
import jax.numpy as jnp
import ml_collections

from restorect_jax import losses
from restorect_jax import models
from restorect_jax.methods.base import Batch, Method, PyTree


def _clip_straight_through(image: jax.Array) -> jax.Array:
    """Clips to [0, 1] in the forward pass and passes gradients through unchanged.

    The HVI transform assumes RGB in [0, 1] (saturation and sin(pi I / 2) misbehave outside).
    """
    return image + jax.lax.stop_gradient(jnp.clip(image, 0.0, 1.0) - image)


def model_from_config(model_config: ml_collections.ConfigDict):
    """The registry model named `model_config.name`, built with the config's other fields."""
    kwargs = {key: value for key, value in model_config.items() if key != "name"}
    for key, value in kwargs.items():
        if isinstance(value, list):
            kwargs[key] = tuple(value)
    return models.get_model(model_config.name, **kwargs)


class TeacherMethod(Method):
    """Trains a RestoRectTeacher from scratch with the S1 losses."""

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        self.model = model_from_config(config.model)

    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        return self.model.init(rng, batch["lq"], batch["gt"])

    def loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        del frozen, rng  # the teacher has no frozen inputs and no stochastic terms
        weights = self.config.loss
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
            "hvi": losses.hvi_colour_loss(_clip_straight_through(out.restored), gt, hvi_k),
            "decomposition": (
                losses.retinex_reconstruction_loss(r_lq, l_lq, lq)
                + losses.retinex_reconstruction_loss(r_gt, l_gt, gt)
                + losses.reflectance_consistency_loss(r_lq, r_gt)
                + weights.illumination_smoothness
                * (
                    losses.illumination_smoothness_loss(l_lq)
                    + losses.illumination_smoothness_loss(l_gt)
                )
            ),
            "diffusion": losses.diffusion_texture_loss(gt, r_gt, diffusion_scale),
        }
        total = sum(weights[name] * value for name, value in terms.items())
        terms["hvi_k"] = out.hvi_k
        terms["diffusion_scale"] = out.diffusion_scale
        return total, terms

    def predict(self, params: PyTree, frozen: PyTree, batch: Batch) -> jax.Array:
        del frozen
        return self.model.apply(params, batch["lq"], batch["gt"]).restored
