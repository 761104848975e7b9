"""A plain supervised restorer: LQ in, clean image out, nothing that sees the ground truth.

Any registered backbone whose contract (`models.BackboneSpec`) reads LQ alone, or LQ and a noise
level, and whose output holds a restoration (the image itself or a typed output's `restored`;
an RGFormer without priors is the default). A backbone that reads a noise level (a noise-level
map network, `model.noise_map` in models/convnets.py) gets each image's: the batch's
`noise_level` (training data with `data.noise_level`, or a user's choice) or, without one, the
blind estimate of `restorect_jax.noise_level`. Loss, with weights from
`config.restorer.loss`:
  l1 * |Y - GT| + psnr * (-PSNR(Y, GT)) + hvi * HVI(clip(Y), GT; hvi_k).
At the teacher's size it is the fair reference for a distilled student (and SLKD's Teacher A);
at the student's size it is the student "trained alone".
"""

from __future__ import annotations

import jax
import ml_collections

from restorect_jax import flow, losses, models
from restorect_jax.config_keys import lookup, require
from restorect_jax.methods.base import Batch, Method, PyTree, noise_level_of

LOSS_TERMS = ("l1", "psnr", "hvi")


class RestorerMethod(Method):
    """Trains any LQ -> clean backbone with L1 (+ optional PSNR and HVI terms)."""

    optional_backbone_inputs = ("noise_level",)

    def __init__(self, config: ml_collections.ConfigDict, *, inference: bool = False):
        super().__init__(config, inference=inference)
        self.model = models.model_from_config(config.model)

    @classmethod
    def validate_config(cls, config: ml_collections.ConfigDict) -> None:
        spec, fields = models.check_model_config(config.model)
        if "noise_level" in spec.inputs(fields):
            require(
                bool(config.data.get("noise_level", False)),
                "data.noise_level",
                config.data.get("noise_level", False),
                f"must be True when the {config.model.name} backbone reads a noise level "
                "(training batches carry it)",
            )
        for term in (*LOSS_TERMS, "hvi_k"):
            value = lookup(config, f"restorer.loss.{term}")
            require(value >= 0, f"restorer.loss.{term}", value, "must be >= 0")
        require(
            any(config.restorer.loss[term] > 0 for term in LOSS_TERMS),
            "restorer.loss.l1",
            config.restorer.loss.l1,
            f"at least one of restorer.loss.{', restorer.loss.'.join(LOSS_TERMS)} must be > 0",
        )

    def _inputs(self, batch: Batch) -> tuple[jax.Array, ...]:
        """The network's arguments: LQ, and its noise level when the network reads one."""
        if self.takes_noise_level:
            return batch["lq"], noise_level_of(batch)
        return (batch["lq"],)

    def _restore(self, params: PyTree, batch: Batch) -> jax.Array:
        return self.backbone.restored(self.model.apply(params, *self._inputs(batch)))

    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        return self.model.init(rng, *self._inputs(batch))

    def loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array, phase: str = "train"
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        del frozen, rng, phase  # no frozen inputs, no stochastic terms, one phase
        weights = self.config.restorer.loss
        restored, gt = self._restore(params, batch), batch["gt"]
        terms = {"l1": losses.l1_loss(restored, gt)}
        if weights.psnr:
            terms["psnr"] = losses.psnr_loss(restored, gt)
        if weights.hvi:
            clipped = losses.clip_straight_through(restored)
            terms["hvi"] = losses.hvi_colour_loss(clipped, gt, weights.hvi_k)
        total = sum(weights[name] * value for name, value in terms.items())
        return total, terms

    def predict(
        self,
        params: PyTree,
        frozen: PyTree,
        batch: Batch,
        sampler: flow.SamplerSpec | None = None,
    ) -> jax.Array:
        del frozen, sampler  # not a flow
        return self._restore(params, batch)
