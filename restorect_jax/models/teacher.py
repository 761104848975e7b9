"""The stage-S1 RestoRect teacher: decomposition, GT-conditioned prior encoders and the RGFormer."""

from __future__ import annotations

from typing import ClassVar, Literal

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from restorect_jax.models.priors import PriorEncoder, RetinexPriorEncoder
from restorect_jax.models.restorer import RestorerOutput, RGFormer, rgformer_of
from restorect_jax.models.retinex import DecompositionNet

Array = jax.Array


@flax.struct.dataclass
class TeacherPriors:
    """The teacher's priors and the Retinex decompositions they were computed from.

    z_img: (B, prior_dim) image prior from [LQ, GT].
    z_rex: (B, prior_dim) Retinex prior [reflectance (retinex_split) | illumination].
    decomp_lq, decomp_gt: (R (B, H, W, 3), L (B, H, W, 1)) of LQ and GT.
    """

    z_img: Array
    z_rex: Array
    decomp_lq: tuple[Array, Array]
    decomp_gt: tuple[Array, Array]


@flax.struct.dataclass
class TeacherOutput:
    """Everything the S1 losses and the S2 distillation read from the teacher.

    restored, features, retinex_enc, retinex_dec: as in `RestorerOutput`.
    decomp_lq, decomp_gt, z_img, z_rex: as in `TeacherPriors`.
    hvi_k: () exponent k of the HVI colour loss, clamped to `hvi_k_range` ([0.5, 2] by default):
      the loss alone pushes k to extreme values, where `sin(pi I / 2)^k` flattens to 1 or
      collapses to 0.
    diffusion_scale: () edge scale s of the anisotropic diffusion term, clamped to
      `diffusion_scale_range` ([0.01, 1] by default).
    """

    restored: Array
    features: dict[str, Array]
    retinex_enc: tuple[Array, Array]
    retinex_dec: tuple[Array, Array]
    decomp_lq: tuple[Array, Array]
    decomp_gt: tuple[Array, Array]
    z_img: Array
    z_rex: Array
    hvi_k: Array
    diffusion_scale: Array


class RestoRectTeacher(nn.Module):
    """GT-conditioned teacher (METHODS 1.2): its priors see LQ and GT.

      (R_lq, L_lq), (R_gt, L_gt) = D(LQ), D(GT)
      z_img = E_img([LQ, GT]),  z_rex = E_rex([R_lq, R_gt], [L_lq, L_gt])
      output = RGFormer(LQ, z_img, z_rex)
    Gradients flow from the restorer through the priors into the decomposition network. Submodule
    names: `decomposition`, `image_prior`, `retinex_prior`, `restorer` (its params can seed a
    student's RGFormer), and the scalar params `hvi_k`, `diffusion_scale`.
    `priors` and `restore` run the two halves on their own (`apply(..., method=...)`).
    """

    stride: ClassVar[int] = RGFormer.stride
    # RGFormer (see its fields).
    width: int = 64
    num_blocks: tuple[int, int, int, int] = (3, 3, 3, 3)
    num_heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    num_refinement_blocks: int = 3
    ffn_expansion: float = 2.66
    prior_dim: int = 256
    retinex_split: int = 192
    head_features: int = 64
    use_bias: bool = False
    remat: bool = False
    # Prior encoders.
    prior_features: int = 64  # width of the prior encoders' residual trunk
    prior_res_blocks: int = 5  # residual blocks per prior encoder
    # Decomposition network.
    decomp_features: int = 32
    decomp_output_activation: Literal["sigmoid", "relu"] = "sigmoid"
    # Learnable loss scalars. Outside its range a raw param gets zero gradient from the clamp, so
    # keep both out of weight decay (which would otherwise drag them there).
    hvi_k_init: float = 1.0
    hvi_k_range: tuple[float, float] = (0.5, 2.0)
    diffusion_scale_init: float = 0.1
    diffusion_scale_range: tuple[float, float] = (0.01, 1.0)

    def setup(self) -> None:
        self.decomposition = DecompositionNet(
            self.decomp_features, output_activation=self.decomp_output_activation
        )
        self.image_prior = PriorEncoder(
            out_dim=self.prior_dim,
            features=self.prior_features,
            num_res_blocks=self.prior_res_blocks,
        )
        self.retinex_prior = RetinexPriorEncoder(
            reflectance_dim=self.retinex_split,
            illumination_dim=self.prior_dim - self.retinex_split,
            features=self.prior_features,
            num_res_blocks=self.prior_res_blocks,
        )
        self.restorer = rgformer_of(self)
        self.hvi_k = self.param("hvi_k", nn.initializers.constant(self.hvi_k_init), ())
        self.diffusion_scale = self.param(
            "diffusion_scale", nn.initializers.constant(self.diffusion_scale_init), ()
        )

    def priors(self, lq: Array, gt: Array) -> TeacherPriors:
        """Decomposes LQ and GT and encodes the priors from both."""
        r_lq, l_lq = self.decomposition(lq)
        r_gt, l_gt = self.decomposition(gt)
        z_img = self.image_prior(jnp.concatenate([lq, gt], axis=-1))
        z_rex = self.retinex_prior(
            jnp.concatenate([r_lq, r_gt], axis=-1), jnp.concatenate([l_lq, l_gt], axis=-1)
        )
        return TeacherPriors(
            z_img=z_img, z_rex=z_rex, decomp_lq=(r_lq, l_lq), decomp_gt=(r_gt, l_gt)
        )

    def restore(self, lq: Array, z_img: Array, z_rex: Array) -> RestorerOutput:
        """Runs the RGFormer on LQ with given priors."""
        return self.restorer(lq, z_img, z_rex)

    def __call__(self, lq: Array, gt: Array) -> TeacherOutput:
        priors = self.priors(lq, gt)
        out = self.restore(lq, priors.z_img, priors.z_rex)
        return TeacherOutput(
            restored=out.restored,
            features=out.features,
            retinex_enc=out.retinex_enc,
            retinex_dec=out.retinex_dec,
            decomp_lq=priors.decomp_lq,
            decomp_gt=priors.decomp_gt,
            z_img=priors.z_img,
            z_rex=priors.z_rex,
            hvi_k=jnp.clip(self.hvi_k, *self.hvi_k_range),
            diffusion_scale=jnp.clip(self.diffusion_scale, *self.diffusion_scale_range),
        )
