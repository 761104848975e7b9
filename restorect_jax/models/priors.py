"""Prior encoders: images (or Retinex components) -> prior vectors that modulate the RGFormer.

The teacher's encoders see LQ and GT (they condition on the ground truth):
`z_img = PriorEncoder()([LQ, GT])` on the 6-channel concatenation, `z_rex = RetinexPriorEncoder()([R_lq, R_gt], [L_lq, L_gt])`. The
student's condition encoders are the same modules with `normalize_output=True`, fed LQ only.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from restorect_jax.image_ops import pad_to_multiple
from restorect_jax.models.layers import Conv3x3, pixel_unshuffle

Array = jax.Array


class ResBlock(nn.Module):
    """EDSR residual block: `x + conv3x3(relu(conv3x3(x)))`."""

    @nn.compact
    def __call__(self, x: Array) -> Array:
        channels = x.shape[-1]
        y = nn.relu(Conv3x3(channels, name="conv0")(x))
        return x + Conv3x3(channels, name="conv1")(y)


class PriorEncoder(nn.Module):
    """Image(s) (B, H, W, C_in) -> prior vector (B, out_dim).

      x = pixel_unshuffle(reflect_pad(x), downscale)          (B, H/4, W/4, 16 C_in)
      x = act(conv3x3(x -> features)), `num_res_blocks` ResBlocks, act(conv3x3(-> embed_dim))
      z = Dense_out(act(Dense_hidden(mean_HW(x))))            (2-layer MLP -> out_dim)
      z = LayerNorm(z) without scale and bias if `normalize_output`
    `act` is leaky ReLU; the output layer is linear. H and W are reflect-padded at the bottom and
    right to a multiple of `downscale`, so any size works (the pad enters the spatial mean).
    `embed_dim` and `mlp_hidden` default (0) to `out_dim`, the teacher's shape; a student's
    condition encoders narrow them, since at out_dim = 256 the MLP alone has 131k params.
    """

    out_dim: int = 256
    features: int = 64
    num_res_blocks: int = 5
    embed_dim: int = 0  # channels before the spatial mean; 0 = out_dim
    mlp_hidden: int = 0  # hidden width of the MLP; 0 = out_dim
    downscale: int = 4  # pixel-unshuffle factor of the input
    negative_slope: float = 0.1
    normalize_output: bool = False  # layer-normalise z (the student's condition encoders)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = pixel_unshuffle(pad_to_multiple(x, self.downscale), self.downscale)
        x = nn.leaky_relu(Conv3x3(self.features, name="embed")(x), self.negative_slope)
        for i in range(self.num_res_blocks):
            x = ResBlock(name=f"res_{i}")(x)
        embed_dim = self.embed_dim or self.out_dim
        x = nn.leaky_relu(Conv3x3(embed_dim, name="to_prior")(x), self.negative_slope)
        z = jnp.mean(x, axis=(1, 2))
        hidden = self.mlp_hidden or self.out_dim
        z = nn.leaky_relu(nn.Dense(hidden, name="mlp_hidden")(z), self.negative_slope)
        z = nn.Dense(self.out_dim, name="mlp_out")(z)
        if self.normalize_output:
            z = nn.LayerNorm(use_bias=False, use_scale=False, name="out_norm")(z)
        return z


class RetinexPriorEncoder(nn.Module):
    """Retinex prior `z_rex = [E_refl(reflectance) | E_illum(illumination)]`, two `PriorEncoder`s.

    `reflectance` holds the R channels (teacher: R_lq and R_gt, 6 channels), `illumination` the L
    channels (teacher: 2). Output (B, reflectance_dim + illumination_dim); with
    `normalize_output` each part is layer-normalised on its own.
    """

    reflectance_dim: int = 192
    illumination_dim: int = 64
    features: int = 64
    num_res_blocks: int = 5
    embed_dim: int = 0  # as in PriorEncoder, for both branches
    mlp_hidden: int = 0
    normalize_output: bool = False

    @nn.compact
    def __call__(self, reflectance: Array, illumination: Array) -> Array:
        def branch(out_dim: int, name: str) -> PriorEncoder:
            return PriorEncoder(
                out_dim,
                self.features,
                self.num_res_blocks,
                embed_dim=self.embed_dim,
                mlp_hidden=self.mlp_hidden,
                normalize_output=self.normalize_output,
                name=name,
            )

        z_refl = branch(self.reflectance_dim, "reflectance")(reflectance)
        z_illum = branch(self.illumination_dim, "illumination")(illumination)
        return jnp.concatenate([z_refl, z_illum], axis=-1)
